/**
 * What the client commands (`send`, `listen`, `group …`) share: an identity file, its store next to it
 * (`FILE.store/`, so sessions persist across invocations), a client on both, and how they report
 * failures.
 */
import { readFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import WebSocket from 'ws'
import { LevelStore, createClient, decodeIdentity, type TalariaClient, type WebSocketConstructor } from '../../client/index.js'
import type { UserId } from '../../protocol/ids.js'
import { MAX_CLIENT_IDENTITY_BYTES } from '../../client/identity.js'
import { describeError } from '../describe-error.js'
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from '../exit-codes.js'

/** A failure the CLI reports with its exit code. */
export class CliFailure extends Error {
  constructor (message: string, readonly exitCode: number) {
    super(message)
    this.name = 'CliFailure'
  }
}

/**
 * Loads `identityPath` and creates a client on its store for `url`, not yet connected: the caller
 * subscribes to events first (pushes can arrive as soon as it connects), connects, and closes it.
 */
export async function prepareClient (url: string, identityPath: string): Promise<TalariaClient> {
  const path = resolve(identityPath)
  let bytes: Uint8Array
  try {
    bytes = await readFile(path)
  } catch (err) {
    throw new CliFailure(`cannot read identity ${path}: ${err instanceof Error ? err.message : String(err)}`, 1)
  }
  if (bytes.length > MAX_CLIENT_IDENTITY_BYTES) throw new CliFailure(`${path} is not an identity file (too large)`, 1)
  const identity = decodeIdentity(new Uint8Array(bytes))
  const client = createClient({
    url,
    identity,
    store: new LevelStore(`${path}.store`),
    WebSocket: WebSocket as unknown as WebSocketConstructor,
    // a command is short-lived: a lost connection is a failure to report, not to ride out
    reconnect: false
  })
  return client
}


/**
 * {@link prepareClient}, or the exit code after printing why it could not be prepared, so each
 * command handles that failure the same way.
 */
export async function openClient (url: string, identityPath: string): Promise<TalariaClient | number> {
  try {
    return await prepareClient(url, identityPath)
  } catch (err) {
    process.stderr.write(`talaria: ${describeError(err)}\n`)
    return err instanceof CliFailure ? err.exitCode : EXIT_FAILURE
  }
}

/** `value` as a positive number (an integer when `integer`); undefined when absent; CliFailure (usage) otherwise. */
export function positive (value: string | undefined, what: string, integer: boolean): number | undefined {
  if (value === undefined) return undefined
  const n = Number(value)
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) throw new CliFailure(`${what} must be a positive ${integer ? 'integer' : 'number'}`, EXIT_USAGE)
  return n
}

/** Pause between lookups while a user's keys are not yet visible, in milliseconds. */
const LOOKUP_RETRY_MS = 500

/**
 * Waits until `user` has a reachable device: a user that has just come online may not be visible
 * in the DHT yet, and a message or invitation to it now would be lost. CliFailure at the signal.
 */
export async function waitReachable (client: TalariaClient, user: UserId, signal: AbortSignal, timeoutS: number): Promise<void> {
  for (let refresh = false; ; refresh = true) {
    try {
      if ((await client.devices(user, { refresh, signal })).length > 0) return
    } catch (err) {
      if ((err as { code?: string }).code !== 'ERR_NO_DEVICES') throw err
    }
    if (signal.aborted) throw new CliFailure(`${user} has no reachable device (no published keys found within ${timeoutS} s)`, EXIT_FAILURE)
    await new Promise((resolve) => setTimeout(resolve, LOOKUP_RETRY_MS))
  }
}

/**
 * The shape of a one-shot client command: opens the identity's client, connects within
 * `timeoutS`, runs `action` with the command's deadline, prints what it returns on stdout (when
 * anything), closes, and returns the exit code (`talaria: <what> failed: …` on stderr otherwise).
 */
export async function runConnected (
  flags: { node: string, identity: string }, what: string, timeoutS: number,
  action: (client: TalariaClient, signal: AbortSignal) => Promise<string | undefined>
): Promise<number> {
  const signal = AbortSignal.timeout(timeoutS * 1000)
  const client = await openClient(flags.node, flags.identity)
  if (typeof client === 'number') return client
  try {
    try {
      await client.connect({ signal })
    } catch (err) {
      throw new CliFailure(`cannot connect to ${flags.node}: ${describeError(err)}`, EXIT_FAILURE)
    }
    const out = await action(client, signal)
    if (out !== undefined) process.stdout.write(`${out}\n`)
    return EXIT_OK
  } catch (err) {
    process.stderr.write(`talaria: ${what} failed: ${describeError(err)}\n`)
    return err instanceof CliFailure ? err.exitCode : EXIT_FAILURE
  } finally {
    await client.close().catch(() => {})
  }
}
