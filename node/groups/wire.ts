/**
 * Node-to-node wire formats of groups: the frame of a group topic message, and the requests and
 * responses of the history protocol (`/talaria/history/1.0.0`). History frames are length-prefixed
 * MessagePack, like the messaging protocols (node/messaging/wire.ts), size-checked from the prefix
 * before a byte is buffered.
 */
import { decodeValue, encodeValue, expectArray, expectBytes, expectEnum, expectObject, expectString, expectUint, type WireObject } from '../../protocol/codec.js'
import { ProtocolError } from '../../protocol/errors.js'
import { MAX_GROUP_OP_BYTES } from '../../protocol/groups/ops.js'
import { parseGroupId, parseMessageId, type GroupId, type MessageId } from '../../protocol/ids.js'
import { MAX_ENVELOPE_BYTES } from '../../protocol/limits.js'
import { frame } from '../messaging/wire.js'

/** Protocol of history and log fetches between nodes (one request and one response per stream). */
export const HISTORY_PROTOCOL = '/talaria/history/1.0.0'
/** Largest history frame, in bytes (length prefix excluded). */
export const MAX_HISTORY_FRAME_BYTES = 4 * 1024 * 1024
/** Most messages or ops in one history response. */
export const MAX_HISTORY_PAGE = 256

/** Tag byte of a topic frame carrying an encoded group or room envelope. */
export const TOPIC_FRAME_MESSAGE = 0x01
/** Tag byte of a topic frame carrying an encoded group op. */
export const TOPIC_FRAME_OP = 0x02

/** What a group topic carries: one tag byte, then the encoded envelope or op. */
export type TopicFrame = { kind: 'message', bytes: Uint8Array } | { kind: 'op', bytes: Uint8Array }

/** Frames an envelope or an op for its group topic. */
export function encodeTopicFrame (f: TopicFrame): Uint8Array {
  const out = new Uint8Array(1 + f.bytes.length)
  out[0] = f.kind === 'message' ? TOPIC_FRAME_MESSAGE : TOPIC_FRAME_OP
  out.set(f.bytes, 1)
  return out
}

/** Splits a topic frame; throws ProtocolError on an unknown tag or an oversized body. */
export function decodeTopicFrame (data: Uint8Array): TopicFrame {
  const tag = data[0]
  const bytes = data.subarray(1)
  if (tag === TOPIC_FRAME_MESSAGE) {
    if (bytes.length === 0 || bytes.length > MAX_ENVELOPE_BYTES) throw new ProtocolError('ERR_TOO_LARGE', 'topic message size out of bounds')
    return { kind: 'message', bytes }
  }
  if (tag === TOPIC_FRAME_OP) {
    if (bytes.length === 0 || bytes.length > MAX_GROUP_OP_BYTES) throw new ProtocolError('ERR_TOO_LARGE', 'topic op size out of bounds')
    return { kind: 'op', bytes }
  }
  throw new ProtocolError('ERR_MALFORMED', 'unknown topic frame tag')
}

/** A position in a group's history order. */
export interface HistoryPosition { sentAt: number, id: MessageId }

/** History protocol requests. */
export type HistoryRequest =
  /** Messages with sentAt >= since, in (sentAt, id) order, after `after`. */
  | { op: 'messages', group: GroupId, since: number, after?: HistoryPosition, limit: number }
  /** The log's ops in the responder's linear order, from index `from`. */
  | { op: 'ops', group: GroupId, from: number, limit: number }
  /**
   * Asks a node among the k closest to the group's key to keep a copy: it pulls the log and the
   * messages it lacks from the requester. Answered at once with no items (or ERR_NOT_NEAREST,
   * ERR_TOO_MANY_GROUPS).
   */
  | { op: 'keep', group: GroupId }

/** History protocol responses. */
export type HistoryResponse =
  | { ok: true, items: Uint8Array[], next?: HistoryPosition | number }
  | { ok: false, code: string }

function positionFromWire (v: unknown): HistoryPosition {
  const o = expectObject(v, 'history position')
  return { sentAt: expectUint(o.sentAt, 'position.sentAt'), id: parseMessageId(o.id) }
}

/** Encodes a history request, length prefix included. */
export function encodeHistoryRequest (r: HistoryRequest): Uint8Array {
  if (r.op === 'keep') return frame(encodeValue({ op: r.op, group: r.group }))
  const wire: WireObject = { op: r.op, group: r.group, limit: r.limit }
  if (r.op === 'messages') {
    wire.since = r.since
    if (r.after !== undefined) wire.after = { sentAt: r.after.sentAt, id: r.after.id }
  } else {
    wire.from = r.from
  }
  return frame(encodeValue(wire))
}

/** Decodes a history request body; throws ProtocolError. */
export function decodeHistoryRequest (body: Uint8Array): HistoryRequest {
  const o = expectObject(decodeValue(body, MAX_HISTORY_FRAME_BYTES), 'history request')
  const op = expectEnum(o.op, 'history op', ['messages', 'ops', 'keep'])
  const group = parseGroupId(o.group)
  if (op === 'keep') return { op, group }
  const limit = expectUint(o.limit, 'history limit', MAX_HISTORY_PAGE, 1)
  if (op === 'ops') return { op, group, from: expectUint(o.from, 'history from'), limit }
  const r: HistoryRequest = { op, group, since: expectUint(o.since, 'history since'), limit }
  if (o.after !== undefined) r.after = positionFromWire(o.after)
  return r
}

/** Encodes a history response, length prefix included. */
export function encodeHistoryResponse (r: HistoryResponse): Uint8Array {
  if (!r.ok) return frame(encodeValue({ ok: false, code: r.code }))
  const wire: WireObject = { ok: true, items: r.items }
  if (typeof r.next === 'number') wire.next = r.next
  else if (r.next !== undefined) wire.next = { sentAt: r.next.sentAt, id: r.next.id }
  return frame(encodeValue(wire))
}

/** Decodes a history response body for a request of kind `op`; throws ProtocolError. */
export function decodeHistoryResponse (body: Uint8Array, op: HistoryRequest['op']): HistoryResponse {
  const o = expectObject(decodeValue(body, MAX_HISTORY_FRAME_BYTES), 'history response')
  if (o.ok !== true) return { ok: false, code: expectString(o.code, 'history error code', 64, 1) }
  const max = op === 'ops' ? MAX_GROUP_OP_BYTES : MAX_ENVELOPE_BYTES
  const items = expectArray(o.items, 'history items', MAX_HISTORY_PAGE).map((b) => expectBytes(b, 'history item', 1, max))
  const r: HistoryResponse = { ok: true, items }
  if (o.next !== undefined) r.next = op === 'ops' ? expectUint(o.next, 'history next') : positionFromWire(o.next)
  return r
}
