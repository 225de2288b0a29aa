/**
 * Node-to-node wire formats of 1:1 messaging: length-prefixed MessagePack frames on the deliver
 * and mailbox protocols. Every frame is size-checked from its length prefix before a byte of it is
 * buffered, and decoded with the protocol codec's limits, so a hostile peer costs at most one
 * frame of memory and its own stream.
 */
import { decodeValue, encodeValue, expectArray, expectBytes, expectEnum, expectObject, expectString, expectUint, type WireObject } from '../../protocol/codec.js'
import { ProtocolError } from '../../protocol/errors.js'
import { parseDeviceId, parseMessageId, parseUserId, type DeviceId, type MessageId, type UserId } from '../../protocol/ids.js'
import { MAX_ENVELOPE_BYTES, MAX_RECORD_BYTES } from '../../protocol/limits.js'

/** Protocol of the long-lived, pipelined delivery stream between two nodes. */
export const DELIVER_PROTOCOL = '/talaria/deliver/1.0.0'
/** Protocol of mailbox replica operations (one request and one response per stream). */
export const MAILBOX_PROTOCOL = '/talaria/mailbox/1.0.0'
/** Largest frame either protocol accepts, in bytes (length prefix excluded). */
export const MAX_FRAME_BYTES = 4 * 1024 * 1024
/** Most envelopes in one deliver batch or mailbox request/response. */
export const MAX_ENVELOPES_PER_FRAME = 256
/** Most ids in one mailbox delete. */
export const MAX_IDS_PER_FRAME = 1024
/** Bytes of the frame length prefix (u32 big-endian). */
export const FRAME_PREFIX_BYTES = 4

/** Outcome of one delivered envelope, as the receiving node reports it. */
export const DELIVER_RESULTS = ['stored', 'not-here', 'invalid', 'failed'] as const
/** Outcome of one delivered envelope. */
export type DeliverResult = typeof DELIVER_RESULTS[number]

/** Deliver protocol, sender → receiver: a batch of encoded envelopes under a batch id. */
export interface DeliverBatchFrame { t: 'batch', id: number, envelopes: Uint8Array[] }
/** Deliver protocol, receiver → sender: the per-envelope results of a batch, sent once durable. */
export interface DeliverAckFrame { t: 'ack', id: number, results: DeliverResult[] }

/** A position in a mailbox's arrival order. */
export interface MailboxCursor { at: number, id: MessageId }

/** Largest proof a fetch or delete may carry: one signed record. */
export const MAX_MAILBOX_PROOF_BYTES = MAX_RECORD_BYTES

/**
 * Mailbox protocol requests. `fetch` and `delete` carry `proof`: the device's signed location
 * record naming the requesting node. It is optional on the wire so that a request without one is
 * answered with a typed refusal rather than a dropped stream.
 */
export type MailboxRequest =
  | { op: 'put', user: UserId, device: DeviceId, ttlMs: number, envelopes: Uint8Array[] }
  | { op: 'fetch', user: UserId, device: DeviceId, after?: MailboxCursor, limit: number, proof?: Uint8Array }
  | { op: 'delete', user: UserId, device: DeviceId, ids: MessageId[], proof?: Uint8Array }

/** Mailbox protocol responses. */
export type MailboxResponse =
  | { ok: true, count: number, envelopes?: Uint8Array[], next?: MailboxCursor }
  | { ok: false, code: string }

/** Prefixes `body` with its length. */
export function frame (body: Uint8Array): Uint8Array {
  if (body.length > MAX_FRAME_BYTES) throw new ProtocolError('ERR_TOO_LARGE', 'frame exceeds MAX_FRAME_BYTES')
  const out = new Uint8Array(FRAME_PREFIX_BYTES + body.length)
  new DataView(out.buffer).setUint32(0, body.length)
  out.set(body, FRAME_PREFIX_BYTES)
  return out
}

/**
 * Splits a byte stream into frames. `push` throws ProtocolError('ERR_TOO_LARGE') as soon as a
 * length prefix announces more than the limit, before buffering the body.
 */
export class FrameReader {
  private chunks: Uint8Array[] = []
  private buffered = 0

  constructor (private readonly maxFrameBytes = MAX_FRAME_BYTES) {}

  /** Adds received bytes and returns every frame now complete. */
  push (chunk: Uint8Array): Uint8Array[] {
    if (chunk.length > 0) {
      this.chunks.push(chunk)
      this.buffered += chunk.length
    }
    const frames: Uint8Array[] = []
    for (;;) {
      if (this.buffered < FRAME_PREFIX_BYTES) break
      const head = this.peek(FRAME_PREFIX_BYTES)
      const len = new DataView(head.buffer, head.byteOffset, FRAME_PREFIX_BYTES).getUint32(0)
      if (len > this.maxFrameBytes) throw new ProtocolError('ERR_TOO_LARGE', `frame of ${len} bytes exceeds ${this.maxFrameBytes}`)
      if (this.buffered < FRAME_PREFIX_BYTES + len) break
      const whole = this.take(FRAME_PREFIX_BYTES + len)
      frames.push(whole.subarray(FRAME_PREFIX_BYTES))
    }
    return frames
  }

  /** Bytes received and not yet part of a complete frame. */
  get pending (): number {
    return this.buffered
  }

  private peek (n: number): Uint8Array {
    const first = this.chunks[0] as Uint8Array
    if (first.length >= n) return first.subarray(0, n)
    return this.collect(n, false)
  }

  private take (n: number): Uint8Array {
    return this.collect(n, true)
  }

  private collect (n: number, consume: boolean): Uint8Array {
    const first = this.chunks[0] as Uint8Array
    if (consume && first.length === n) {
      this.chunks.shift()
      this.buffered -= n
      return first
    }
    if (consume && first.length > n) {
      this.chunks[0] = first.subarray(n)
      this.buffered -= n
      return first.subarray(0, n)
    }
    const out = new Uint8Array(n)
    let off = 0
    let i = 0
    while (off < n) {
      const c = this.chunks[i] as Uint8Array
      const part = Math.min(c.length, n - off)
      out.set(c.subarray(0, part), off)
      off += part
      if (consume) {
        if (part === c.length) {
          this.chunks.shift()
        } else {
          this.chunks[0] = c.subarray(part)
        }
      } else {
        i++
      }
    }
    if (consume) this.buffered -= n
    return out
  }
}

/** A stream chunk as a plain Uint8Array (libp2p yields Uint8Array or Uint8ArrayList). */
export function chunkBytes (chunk: Uint8Array | { subarray: () => Uint8Array }): Uint8Array {
  return chunk instanceof Uint8Array ? chunk : chunk.subarray()
}

function envelopesFromWire (v: unknown, what: string): Uint8Array[] {
  return expectArray(v, what, MAX_ENVELOPES_PER_FRAME).map((e) => expectBytes(e, `${what}[]`, 1, MAX_ENVELOPE_BYTES))
}

/** Encodes a deliver frame, length prefix included. */
export function encodeDeliverFrame (f: DeliverBatchFrame | DeliverAckFrame): Uint8Array {
  const wire: WireObject = f.t === 'batch'
    ? { t: 'batch', id: f.id, envelopes: f.envelopes }
    : { t: 'ack', id: f.id, results: f.results }
  return frame(encodeValue(wire))
}

/** Decodes a deliver frame body; throws ProtocolError. */
export function decodeDeliverFrame (body: Uint8Array): DeliverBatchFrame | DeliverAckFrame {
  const o = expectObject(decodeValue(body, MAX_FRAME_BYTES), 'deliver frame')
  const t = expectEnum(o.t, 'deliver frame type', ['batch', 'ack'])
  const id = expectUint(o.id, 'deliver frame id')
  if (t === 'batch') return { t, id, envelopes: envelopesFromWire(o.envelopes, 'deliver batch') }
  return { t, id, results: expectArray(o.results, 'deliver results', MAX_ENVELOPES_PER_FRAME).map((r) => expectEnum(r, 'deliver result', DELIVER_RESULTS)) }
}

function cursorFromWire (v: unknown): MailboxCursor {
  const o = expectObject(v, 'mailbox cursor')
  return { at: expectUint(o.at, 'cursor.at'), id: parseMessageId(o.id) }
}

function proofFromWire (v: unknown): Uint8Array {
  return expectBytes(v, 'mailbox proof', 1, MAX_MAILBOX_PROOF_BYTES)
}

/** Encodes a mailbox request, length prefix included. */
export function encodeMailboxRequest (r: MailboxRequest): Uint8Array {
  const wire: WireObject = { op: r.op, user: r.user, device: r.device }
  if (r.op === 'put') {
    wire.ttlMs = r.ttlMs
    wire.envelopes = r.envelopes
  } else if (r.op === 'fetch') {
    wire.limit = r.limit
    if (r.after !== undefined) wire.after = { at: r.after.at, id: r.after.id }
    if (r.proof !== undefined) wire.proof = r.proof
  } else {
    wire.ids = r.ids
    if (r.proof !== undefined) wire.proof = r.proof
  }
  return frame(encodeValue(wire))
}

/** Decodes a mailbox request body; throws ProtocolError. */
export function decodeMailboxRequest (body: Uint8Array): MailboxRequest {
  const o = expectObject(decodeValue(body, MAX_FRAME_BYTES), 'mailbox request')
  const op = expectEnum(o.op, 'mailbox op', ['put', 'fetch', 'delete'])
  const user = parseUserId(o.user)
  const device = parseDeviceId(o.device)
  if (op === 'put') return { op, user, device, ttlMs: expectUint(o.ttlMs, 'mailbox ttlMs'), envelopes: envelopesFromWire(o.envelopes, 'mailbox envelopes') }
  if (op === 'fetch') {
    const r: MailboxRequest = { op, user, device, limit: expectUint(o.limit, 'mailbox limit', MAX_ENVELOPES_PER_FRAME, 1) }
    if (o.after !== undefined) r.after = cursorFromWire(o.after)
    if (o.proof !== undefined) r.proof = proofFromWire(o.proof)
    return r
  }
  const r: MailboxRequest = { op, user, device, ids: expectArray(o.ids, 'mailbox ids', MAX_IDS_PER_FRAME).map((id) => parseMessageId(id)) }
  if (o.proof !== undefined) r.proof = proofFromWire(o.proof)
  return r
}

/** Encodes a mailbox response, length prefix included. */
export function encodeMailboxResponse (r: MailboxResponse): Uint8Array {
  if (!r.ok) return frame(encodeValue({ ok: false, code: r.code }))
  const wire: WireObject = { ok: true, count: r.count }
  if (r.envelopes !== undefined) wire.envelopes = r.envelopes
  if (r.next !== undefined) wire.next = { at: r.next.at, id: r.next.id }
  return frame(encodeValue(wire))
}

/** Decodes a mailbox response body; throws ProtocolError. */
export function decodeMailboxResponse (body: Uint8Array): MailboxResponse {
  const o = expectObject(decodeValue(body, MAX_FRAME_BYTES), 'mailbox response')
  if (o.ok !== true) return { ok: false, code: expectString(o.code, 'mailbox error code', 64, 1) }
  const r: MailboxResponse = { ok: true, count: expectUint(o.count, 'mailbox count') }
  if (o.envelopes !== undefined) r.envelopes = envelopesFromWire(o.envelopes, 'mailbox envelopes')
  if (o.next !== undefined) r.next = cursorFromWire(o.next)
  return r
}
