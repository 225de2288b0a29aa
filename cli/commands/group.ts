/**
 * `talaria group create | add | remove | leave | send`: one group operation or message per run,
 * on the identity's client store (`FILE.store/`), so the group's log and this device's sender keys
 * persist between runs. Each connects, acts, waits for the node's answer and exits.
 */
import { isGroupId, isUserId, type GroupId, type UserId } from '../../protocol/ids.js'
import type { TalariaClient } from '../../client/index.js'
import { describeError } from '../describe-error.js'
import { EXIT_USAGE } from '../exit-codes.js'
import { CliFailure, positive, runConnected, waitReachable } from './client-support.js'

/** Seconds a group command waits in total (connect, lookups, the node's answer) by default. */
export const DEFAULT_GROUP_TIMEOUT_S = 30

/** Flags every group command takes. */
export interface GroupCommonFlags {
  node: string
  identity: string
  timeout?: string
}

/** Flags of the commands that act on an existing group. */
export interface GroupFlags extends GroupCommonFlags {
  group: string
}

/** Flags of `group create`. */
export interface GroupCreateFlags extends GroupCommonFlags {
  name: string
  members?: string
}

/** Users from comma-separated lists (`U1,U2 U3`); CliFailure (usage) for anything else. */
export function parseUserList (values: readonly string[], what: string): UserId[] {
  const users = values.flatMap((v) => v.split(',')).map((u) => u.trim()).filter((u) => u !== '')
  for (const u of users) if (!isUserId(u)) throw new CliFailure(`${what}: not a user id: ${u}`, EXIT_USAGE)
  return [...new Set(users)] as UserId[]
}

function parseGroupFlag (value: string): GroupId {
  if (!isGroupId(value)) throw new CliFailure(`--group: not a group id: ${value}`, EXIT_USAGE)
  return value
}

/** Runs `action` on a connected client with the command's `--timeout` (see runConnected). */
async function withClient (flags: GroupCommonFlags, what: string, action: (client: TalariaClient, signal: AbortSignal, timeoutS: number) => Promise<string | undefined>): Promise<number> {
  let timeoutS: number
  try {
    timeoutS = positive(flags.timeout, '--timeout', false) ?? DEFAULT_GROUP_TIMEOUT_S
  } catch (err) {
    process.stderr.write(`talaria: ${describeError(err)}\n`)
    return EXIT_USAGE
  }
  return await runConnected(flags, what, timeoutS, async (client, signal) => await action(client, signal, timeoutS))
}

/** Validates before connecting: a usage error exits 2 without touching the network. */
function usage (fn: () => void): number | undefined {
  try {
    fn()
    return undefined
  } catch (err) {
    process.stderr.write(`talaria: ${describeError(err)}\n`)
    return err instanceof CliFailure ? err.exitCode : EXIT_USAGE
  }
}

/** `talaria group create`: prints the new group's id. */
export async function runGroupCreate (flags: GroupCreateFlags): Promise<number> {
  let members: UserId[] = []
  const bad = usage(() => { members = flags.members === undefined ? [] : parseUserList([flags.members], '--members') })
  if (bad !== undefined) return bad
  return await withClient(flags, 'group create', async (client, signal, timeoutS) => {
    // an invitation to a member whose keys are not visible yet would be lost
    await Promise.all(members.map(async (u) => { await waitReachable(client, u, signal, timeoutS) }))
    return await client.createGroup({ name: flags.name, members }, { signal })
  })
}

/** `talaria group add|remove`: adds or removes the users. */
export async function runGroupMembers (kind: 'add' | 'remove', flags: GroupFlags, users: string[]): Promise<number> {
  let group: GroupId | undefined
  let list: UserId[] = []
  const bad = usage(() => {
    group = parseGroupFlag(flags.group)
    list = parseUserList(users, 'users')
    if (list.length === 0) throw new CliFailure('name at least one user id', EXIT_USAGE)
  })
  if (bad !== undefined) return bad
  return await withClient(flags, `group ${kind}`, async (client, signal, timeoutS) => {
    if (kind === 'add') {
      await Promise.all(list.map(async (u) => { await waitReachable(client, u, signal, timeoutS) }))
      await client.addMembers(group!, list, { signal })
    }
    else await client.removeMembers(group!, list, { signal })
    return undefined
  })
}

/** `talaria group leave`. */
export async function runGroupLeave (flags: GroupFlags): Promise<number> {
  let group: GroupId | undefined
  const bad = usage(() => { group = parseGroupFlag(flags.group) })
  if (bad !== undefined) return bad
  return await withClient(flags, 'group leave', async (client, signal) => {
    await client.leaveGroup(group!, { signal })
    return undefined
  })
}

/** `talaria group send`: prints the message id once the node holds the message. */
export async function runGroupSend (flags: GroupFlags, text: string): Promise<number> {
  let group: GroupId | undefined
  const bad = usage(() => { group = parseGroupFlag(flags.group) })
  if (bad !== undefined) return bad
  return await withClient(flags, 'group send', async (client, signal) => await client.sendGroup(group!, text, { signal }))
}
