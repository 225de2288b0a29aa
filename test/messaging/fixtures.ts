/**
 * Fixtures of the messaging tests: users with certified devices, their location records, envelopes
 * built with the protocol codec, and a device sink that records what the node pushes.
 */
import { randomBytes } from 'node:crypto'
import { encodeEnvelope, type DirectEnvelope } from '../../protocol/envelopes.js'
import { certifyDevice, createDevice, createDeviceList, createUserIdentity, type DeviceCertificate, type DeviceIdentity, type UserIdentity } from '../../protocol/identity.js'
import { peerIdFromString } from '@libp2p/peer-id'
import { directConversationId, newMessageId, type DeviceId, type MessageId } from '../../protocol/ids.js'
import { encodeDevicesPayload, encodeLocationPayload, signRecord } from '../../protocol/records.js'
import type { DeviceRef, DeviceSink, SubmittedEnvelope, TalariaNode } from '../../node/index.js'

/** A user with one certified device. */
export interface TestDevice {
  user: UserIdentity
  device: DeviceIdentity
  cert: DeviceCertificate
  ref: DeviceRef
}

/** A fresh user and device. */
export function testDevice (): TestDevice {
  const user = createUserIdentity()
  const device = createDevice()
  const cert = certifyDevice(user, device)
  return { user, device, cert, ref: { user: user.userId, device: device.deviceId } }
}

/** The device's location record: connected to `node`. */
export function locationRecord (d: TestDevice, node: TalariaNode, seq = Date.now()): Uint8Array {
  return locationRecordFor(d, node.peerId, { seq, addrs: node.getMultiaddrs() })
}

/** Options of {@link locationRecordFor}; times are ms since the epoch. */
export interface LocationRecordOptions {
  seq?: number
  addrs?: string[]
  /** Expiry of the record (default ten minutes from now). */
  expiresAt?: number
  /** Expiry of the entry (default the record's). */
  entryExpires?: number
  /** Signing time (default now); set it in the past to sign a record that has already expired. */
  issuedAt?: number
  /** The device the entry names (default `d`'s own). */
  entryDevice?: string
}

/** A location record signed by `d` placing a device on the node with peer id `nodeId`. */
export function locationRecordFor (d: TestDevice, nodeId: string, opts: LocationRecordOptions = {}): Uint8Array {
  const expiresAt = opts.expiresAt ?? Date.now() + 10 * 60_000
  const entry = { device: (opts.entryDevice ?? d.device.deviceId) as DeviceId, node: nodeId, addrs: opts.addrs ?? [], expires: opts.entryExpires ?? expiresAt }
  return signRecord(
    { kind: 'location', id: d.device.deviceId, seq: opts.seq ?? Date.now(), expiresAt, payload: encodeLocationPayload([entry]) },
    { seed: d.device.signingSeed, publicKey: d.device.signingPublicKey, cert: d.cert },
    opts.issuedAt !== undefined ? { now: opts.issuedAt } : {}
  )
}

/**
 * How many live envelopes of `d` the node's own mailbox store holds, read the way the device's own
 * node would: with a location record placing `d` on `node`.
 */
export async function heldBy (node: TalariaNode, d: TestDevice): Promise<number> {
  const proof = locationRecord(d, node)
  const self = peerIdFromString(node.peerId)
  let total = 0
  let after: { at: number, id: MessageId } | undefined
  // bounded: 20 pages of 256 is more than any test stores
  for (let page = 0; page < 20; page++) {
    const r = await node.messaging().mailbox.serve({ op: 'fetch', user: d.ref.user, device: d.ref.device, limit: 256, proof, ...(after !== undefined ? { after } : {}) }, self)
    if (!r.ok) throw new Error(r.code)
    total += r.count
    if (r.next === undefined) break
    after = r.next
  }
  return total
}

/** A newer location record of the device with no entry: it went offline. */
export function withdrawnLocationRecord (d: TestDevice, seq = Date.now() + 1): Uint8Array {
  return signRecord(
    { kind: 'location', id: d.device.deviceId, seq, expiresAt: Date.now() + 10 * 60_000, payload: encodeLocationPayload([]) },
    { seed: d.device.signingSeed, publicKey: d.device.signingPublicKey, cert: d.cert }
  )
}

/** The user's device list record (root-signed). */
export function devicesRecord (d: TestDevice): Uint8Array {
  const list = createDeviceList(d.user, [d.cert])
  return signRecord(
    { kind: 'devices', id: d.user.userId, seq: list.seq, expiresAt: Date.now() + 3600_000, payload: encodeDevicesPayload(list) },
    { seed: d.user.rootSeed, publicKey: d.user.rootPublicKey }
  )
}

/** An envelope from `from` to `to` with random header and ciphertext (nodes never decrypt). */
export function envelope (from: TestDevice, to: TestDevice, seq: number, fields: Partial<DirectEnvelope> = {}): SubmittedEnvelope {
  const e: DirectEnvelope = {
    kind: 'direct',
    id: newMessageId(),
    from: from.ref,
    to: to.ref,
    conv: directConversationId(from.user.userId, to.user.userId),
    seq,
    sentAt: Date.now(),
    type: 'message',
    header: randomBytes(40),
    ciphertext: randomBytes(64),
    ...fields
  }
  return { envelope: e, bytes: encodeEnvelope(e) }
}

/** Envelopes with seq 1..n. */
export function envelopes (from: TestDevice, to: TestDevice, n: number, firstSeq = 1): SubmittedEnvelope[] {
  return Array.from({ length: n }, (_, i) => envelope(from, to, firstSeq + i))
}

/** A sink that records pushes and delivered ids and lets a test wait for counts. */
export class RecordingSink {
  readonly pushed: Array<{ id: MessageId, bytes: Uint8Array }> = []
  readonly delivered = new Set<MessageId>()
  private readonly waiters: Array<() => void> = []

  constructor (private readonly window = Number.POSITIVE_INFINITY) {}

  /** Ids pushed and not yet acked by the test. */
  readonly unacked = new Set<MessageId>()

  /** Takes the envelope unless `window` envelopes are unacked, like the gateway's push window. */
  push (id: MessageId, bytes: Uint8Array): boolean {
    if (this.unacked.size >= this.window) return false
    this.unacked.add(id)
    this.pushed.push({ id, bytes })
    this.wake()
    return true
  }

  /** Marks ids acked (the test then calls DeliveryService.ack). */
  acked (ids: MessageId[]): void {
    for (const id of ids) this.unacked.delete(id)
  }

  readonly deliveredIds = (ids: MessageId[]): void => {
    for (const id of ids) this.delivered.add(id)
    this.wake()
  }

  private wake (): void {
    for (const w of this.waiters.splice(0)) w()
  }

  /** Resolves once `condition` holds, re-checked on every push or delivered call; rejects after `timeoutMs`. */
  async until (condition: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (!condition()) {
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`timed out waiting for ${what} (pushed ${this.pushed.length}, delivered ${this.delivered.size})`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.waiters.push(() => { clearTimeout(timer); resolve() })
      })
    }
  }
}

/** The DeviceSink shape of a RecordingSink (its `delivered` is a method on the contract). */
export function sinkOf (s: RecordingSink): DeviceSink {
  return { push: (id, bytes) => s.push(id, bytes), delivered: s.deliveredIds }
}
