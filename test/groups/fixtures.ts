/**
 * Fixtures of the groups tests: members with certified devices (as the groups service sees them
 * authenticated), ops and envelopes made with the protocol helpers, and a sink that records what
 * the service pushes.
 */
import type { AuthenticatedDevice, GroupEventName, GroupSink, TalariaNode } from '../../node/index.js'
import type { ClientEvents } from '../../protocol/client-protocol.js'
import { createSenderKey, type SenderKeyState } from '../../protocol/e2e/sender-keys.js'
import {
  createGroup, sealGroupEnvelope, signGroupOp, signRoomEnvelope, type GroupKind, type GroupOp, type GroupOpBody, type GroupOpSigner,
  type GroupSettings
} from '../../protocol/groups/index.js'
import type { GroupId } from '../../protocol/ids.js'
import { devicesRecord, testDevice, type TestDevice } from '../messaging/fixtures.js'

/** A user with one certified device, ready to sign ops and messages. */
export interface Member extends TestDevice {
  signer: GroupOpSigner
  auth: AuthenticatedDevice
  senderKey: SenderKeyState
  seq: number
}

/** A fresh member. */
export function member (): Member {
  const d = testDevice()
  d.device.cert = d.cert
  return {
    ...d,
    signer: { user: d.user.userId, device: d.device },
    auth: { ...d.ref, signingKey: d.device.signingPublicKey },
    senderKey: createSenderKey(),
    seq: 0
  }
}

/** Publishes the members' device lists through `node`'s directory (so other nodes can check their signatures). */
export async function publishDevices (node: TalariaNode, ...members: Member[]): Promise<void> {
  const res = await node.messaging().directory.publish(members.map((m) => devicesRecord(m)))
  if (res.failures.length > 0) throw new Error(`device list publish failed: ${JSON.stringify(res.failures)}`)
}

/** A group made by `owner`, and a function appending ops on the current heads. */
export class TestGroup {
  readonly id: GroupId
  readonly ops: GroupOp[]
  private heads: string[]

  constructor (readonly owner: Member, settings: Partial<GroupSettings> = {}, kind: GroupKind = 'group') {
    const { id, op } = createGroup(owner.signer, { kind, settings: { name: 'test', joinPolicy: 'invite', ...settings } })
    this.id = id
    this.ops = [op]
    this.heads = [op.id]
  }

  /** Signs `body` by `author` on the heads so far (linear history) and records it. */
  op (author: Member, body: GroupOpBody): GroupOp {
    const op = signGroupOp({ group: this.id, parents: this.heads as GroupOp['parents'], body }, author.signer)
    this.ops.push(op)
    this.heads = [op.id]
    return op
  }

  bytes (from = 0): Uint8Array[] {
    return this.ops.slice(from).map((op) => op.bytes)
  }
}

/** A sealed group envelope from `m`. */
export function groupMessage (m: Member, group: GroupId, text = 'hello', sentAt = Date.now()): { id: string, bytes: Uint8Array } {
  const { envelope, bytes } = sealGroupEnvelope({ group, from: m.ref, text, seq: ++m.seq, sentAt }, m.senderKey, m.device.signingSeed)
  return { id: envelope.id, bytes }
}

/** A signed room envelope from `m`. */
export function roomMessage (m: Member, room: GroupId, text: string, sentAt = Date.now()): { id: string, bytes: Uint8Array } {
  const { envelope, bytes } = signRoomEnvelope({ room, cert: m.cert, text, sentAt }, m.device.signingSeed)
  return { id: envelope.id, bytes }
}

/** A recorded push. */
export type Pushed = { [E in GroupEventName]: { ev: E, body: ClientEvents[E] } }[GroupEventName]

/** A sink that records every event and lets a test wait for a condition on them. */
export class RecordingGroupSink implements GroupSink {
  readonly events: Pushed[] = []
  /** False makes `event` refuse (a backed-up connection). */
  accepting = true
  private readonly waiters: Array<() => void> = []

  event<E extends GroupEventName> (ev: E, body: ClientEvents[E]): boolean {
    if (!this.accepting) return false
    this.events.push({ ev, body } as Pushed)
    for (const w of this.waiters.splice(0)) w()
    return true
  }

  /** Envelopes of `group` events, in push order. */
  messages (): Array<ClientEvents['group']> {
    return this.events.flatMap((e) => e.ev === 'group' ? [e.body] : [])
  }

  /** Ops of `groupOp` events, in push order. */
  ops (): Array<ClientEvents['groupOp']> {
    return this.events.flatMap((e) => e.ev === 'groupOp' ? [e.body] : [])
  }

  /** Resolves once `condition` holds, re-checked on every event; rejects after `timeoutMs`. */
  async until (condition: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (!condition()) {
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`timed out waiting for ${what} (${this.events.length} events)`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.waiters.push(() => { clearTimeout(timer); resolve() })
      })
    }
  }
}
