/**
 * The client protocol (v1): what a client and the node it connects to exchange over the WebSocket
 * at `/v1`. Binary frames carry MessagePack, text frames carry JSON — the same schema; in JSON,
 * byte fields travel as `{ "$b": "<base64url>" }`.
 *
 * This file is the contract between the node's gateway (`node/gateway/`) and the client SDK
 * (`client/`). The frame codecs and validators live alongside it in this file.
 */
import { fromBase64url, toBase64url } from './bytes.js'
import { canonicalEncode, decodeValue, encodeValue, expectArray, expectBytes, expectEnum, expectObject, expectString, expectUint, type WireObject } from './codec.js'
import { TalariaError } from './errors.js'
import { parseDeviceId, parseGroupId, parseMessageId, parseUserId, type DeviceId, type GroupId, type MessageId, type UserId } from './ids.js'
import {
  MAX_ADDR_LENGTH, MAX_CERTIFICATE_BYTES, MAX_DEVICE_LIST_BYTES, MAX_ENVELOPE_BYTES, MAX_ERROR_CODE_LENGTH, MAX_NESTING_DEPTH,
  MAX_PEER_ID_LENGTH, MAX_RECORD_BYTES
} from './limits.js'

/** Version carried in the challenge; a client refuses a node that speaks another. */
export const CLIENT_PROTOCOL_VERSION = 1
/** HTTP path of the client WebSocket. */
export const CLIENT_PATH = '/v1'

/** Limits a node announces in its challenge; each has its own error code when exceeded. */
export interface ClientLimits {
  /** Largest frame the node accepts, in bytes (ERR_FRAME_TOO_LARGE). */
  maxFrameBytes: number
  /** Requests per second per connection (ERR_RATE_LIMITED). */
  maxRequestsPerSecond: number
  /** Requests per second per user across its connections (ERR_USER_RATE_LIMITED). */
  maxUserRequestsPerSecond: number
  /** Envelopes in one `send` (ERR_TOO_MANY_ENVELOPES). */
  maxEnvelopesPerSend: number
  /** Pushed envelopes not yet acked before the node pauses pushing to this connection. */
  maxUnackedPushes: number
}

/** Server → client, first frame on every connection. */
export interface ChallengeFrame {
  t: 'challenge'
  v: number
  /** 32 random bytes the client signs to authenticate. */
  nonce: Uint8Array
  /** The node's peer id, bound into the signature so a challenge cannot be replayed elsewhere. */
  node: string
  /** The node's libp2p multiaddrs, for the client's location record. */
  addrs: string[]
  limits: ClientLimits
  /** Node clock, ms since the epoch. */
  time: number
}

/** Every request operation with its request and response bodies. */
export interface ClientOps {
  /**
   * Authenticates a device. `sig` is the device's Ed25519 signature over
   * `authSigningBytes(nonce, node, user, device)`. The node checks the certificate, the
   * root-signed device list (the device must be active in it, and not revoked in a newer list the
   * node knows) and the signature.
   */
  auth: {
    req: { user: UserId, device: DeviceId, cert: Uint8Array, deviceList: Uint8Array, sig: Uint8Array }
    res: { user: UserId, device: DeviceId, time: number }
  }
  /**
   * Stores signed records (device list, prekeys, location, profile) in the DHT. Each must be
   * valid (`validateRecord`) and about the authenticated user or device.
   */
  publish: {
    /**
     * `onDisconnect`: records the node publishes, unchanged, when this connection closes — the
     * client pre-signs a newer location record with no entries, so its location is withdrawn
     * even though it is gone when that happens.
     */
    req: { records: Uint8Array[], onDisconnect?: Uint8Array[] }
    res: { stored: number, failures: Array<{ index: number, code: string, message: string }> }
  }
  /** The signed records a sender needs to reach `user`: its device list and each active device's prekeys. */
  lookup: {
    req: { user: UserId }
    res: { deviceList?: Uint8Array, prekeys: Uint8Array[] }
  }
  /**
   * Hands encoded DirectEnvelopes to the node. Every `from` must be the authenticated device.
   * The response means: durable in this node's outbox. Idempotent by envelope id.
   */
  send: {
    req: { envelopes: Uint8Array[] }
    res: { accepted: MessageId[] }
  }
  /** The client has durably stored these pushed envelopes; the node may delete them everywhere. */
  ack: {
    req: { ids: MessageId[] }
    res: { removed: number }
  }
  /** Application-level keepalive (browsers cannot send WebSocket pings). */
  ping: {
    req: Record<string, never>
    res: { time: number }
  }
  /**
   * Hands signed group operations (encoded GroupOps, see docs/protocol/groups.md) to the node: new
   * ops the client authored, or the log of a group the node may not know yet (a client that joins
   * a group uploads the ops it received in its invitation). The node checks every signature,
   * merges the ops into its copy of the log, stores them, and passes new ones on to the group's
   * other nodes. Per op, `results` says what the log did with it, in request order: `applied`,
   * `rejected` (with the reason's code, e.g. ERR_FORBIDDEN), `pending` (parents still unknown; the
   * node fetches them from its peers) or `duplicate`. An op that does not decode fails the whole
   * request with ERR_INVALID_OP. `heads` are the log's heads afterwards (the parents of the next op).
   */
  groupOps: {
    req: { group: GroupId, ops: Uint8Array[] }
    res: { results: Array<{ status: 'applied' | 'rejected' | 'pending' | 'duplicate', code?: string, message?: string }>, heads: string[] }
  }
  /**
   * The node's copy of a group's log, in its linear order, one page at a time from index `after`
   * (0 = the start). `next` is set while there is more. ERR_NOT_FOUND when the node knows no op of
   * the group and could not fetch it from its peers.
   */
  groupGet: {
    req: { group: GroupId, after?: number }
    res: { ops: Uint8Array[], next?: number }
  }
  /**
   * Sends one group message (an encoded GroupEnvelope) or room message (an encoded RoomEnvelope)
   * from the authenticated device. The node checks that the sender is allowed to send now
   * (ERR_NOT_MEMBER, ERR_MUTED, ERR_BANNED, ERR_GROUP_DISMISSED, ERR_NOT_SENDER), applies a room's
   * moderation (ERR_CONTENT_BLOCKED, ERR_ROOM_RATE_LIMITED), stores it in its group history and
   * publishes it to the group's topic. The response means: durable in this node's history.
   * Idempotent by envelope id.
   */
  groupSend: {
    req: { envelope: Uint8Array }
    res: { id: MessageId, at: number }
  }
  /**
   * Group or room messages this node holds with `sentAt >= since`, ordered by (sentAt, id), at
   * most `limit` (node default 500) per page; `cursor` continues a previous page and is returned
   * while there is more. A node that holds no history reaching back to `since` first fetches it
   * from the group's other nodes (`/talaria/history/1.0.0`). Members only (ERR_NOT_MEMBER), except
   * for rooms. Clients deduplicate by envelope id.
   */
  groupHistory: {
    req: { group: GroupId, since: number, limit?: number, cursor?: Uint8Array }
    /**
     * `masked`: for messages of a room that masks its filtered words, the masked text of each
     * message (by its index in `messages`) the filter changed, as the `group` event's `text`.
     */
    res: { messages: Uint8Array[], cursor?: Uint8Array, masked?: Array<{ i: number, text: string }> }
  }
  /**
   * Enters a room: the node joins the room's topic (learning the room's log from the DHT and its
   * peers, or from `ops` when given) and pushes the room's messages to this connection as `group`
   * events until `roomLeave` or disconnect. ERR_BANNED for a banned user, ERR_NOT_FOUND for an
   * unknown room, ERR_BAD_REQUEST for a group that is not a room.
   */
  roomEnter: {
    req: { room: GroupId, ops?: Uint8Array[] }
    res: { heads: string[] }
  }
  /** Leaves a room entered on this connection. */
  roomLeave: {
    req: { room: GroupId }
    res: Record<string, never>
  }
}

/** Name of a request operation. */
export type ClientOp = keyof ClientOps

/** Client → server. `id` is chosen by the client, unique among its requests in flight. */
export interface RequestFrame<Op extends ClientOp = ClientOp> {
  t: 'req'
  id: number
  op: Op
  body: ClientOps[Op]['req']
}

/** Server → client answer to a request. */
export type ResponseFrame<Op extends ClientOp = ClientOp> =
  | { t: 'res', id: number, ok: true, body: ClientOps[Op]['res'] }
  | { t: 'res', id: number, ok: false, error: ClientErrorBody }

/** A typed error as the client sees it; `code` is from docs/ERRORS.md. */
export interface ClientErrorBody {
  code: ClientErrorCode
  message: string
  /** For rate limits: when to try again. */
  retryAfterMs?: number
}

/** Events the node pushes, with their bodies. */
export interface ClientEvents {
  /** An envelope for this device. The client acks it (`ack`) once it is durable on its side. */
  message: { envelope: Uint8Array }
  /** Envelopes this device sent reached the recipient's node inbox or its mailbox replicas. */
  delivered: { ids: MessageId[] }
  /**
   * A group message (encoded GroupEnvelope) for a group this user is a member of, or a room
   * message (encoded RoomEnvelope) for a room entered on this connection, already checked by the
   * node (signature, membership, moderation). For a room whose word filter masks, `text` is the
   * masked text to show instead of the envelope's. Not acked: a client that misses some (see
   * `groupLag`) reads them with `groupHistory`.
   */
  group: { envelope: Uint8Array, text?: string }
  /** A new op of the log of a group this user is a member of (or was, until this op). */
  groupOp: { group: GroupId, op: Uint8Array }
  /** The node dropped pushes of this group to this connection (the client read too slowly): read `groupHistory`. */
  groupLag: { group: GroupId }
}

/** Server → client push. */
export interface EventFrame<Ev extends keyof ClientEvents = keyof ClientEvents> {
  t: 'evt'
  ev: Ev
  body: ClientEvents[Ev]
}

/** Any frame. */
export type ClientFrame = ChallengeFrame | RequestFrame | ResponseFrame | EventFrame

/**
 * Client-facing error codes; docs/ERRORS.md documents each and a test holds the two equal.
 * Codes never change meaning between releases.
 */
export const CLIENT_ERROR_CODES = [
  'ERR_BAD_FRAME',
  'ERR_FRAME_TOO_LARGE',
  'ERR_UNKNOWN_OP',
  'ERR_BAD_REQUEST',
  'ERR_NOT_AUTHENTICATED',
  'ERR_ALREADY_AUTHENTICATED',
  'ERR_AUTH_FAILED',
  'ERR_DEVICE_REVOKED',
  'ERR_RATE_LIMITED',
  'ERR_USER_RATE_LIMITED',
  'ERR_TOO_MANY_CONNECTIONS',
  'ERR_TOO_MANY_ENVELOPES',
  'ERR_INVALID_ENVELOPE',
  'ERR_NOT_SENDER',
  'ERR_INVALID_RECORD',
  'ERR_NOT_FOUND',
  'ERR_INVALID_OP',
  'ERR_NOT_MEMBER',
  'ERR_FORBIDDEN',
  'ERR_MUTED',
  'ERR_BANNED',
  'ERR_GROUP_DISMISSED',
  'ERR_CONTENT_BLOCKED',
  'ERR_ROOM_RATE_LIMITED',
  'ERR_UNAVAILABLE',
  'ERR_TIMEOUT',
  'ERR_INTERNAL'
] as const

/** A client-facing error code. */
export type ClientErrorCode = typeof CLIENT_ERROR_CODES[number]

// ---- errors ---------------------------------------------------------------------------------

/**
 * A failure reported to a client with a {@link ClientErrorCode}. The frame decoder raises it for
 * bad frames; the gateway raises it for refused requests; the client SDK raises it for error
 * responses. `requestId` is set when the failure belongs to one request (0 otherwise).
 */
export class ClientProtocolError extends TalariaError {
  declare readonly code: ClientErrorCode
  /** The request this failure answers, or 0 when it is not tied to one. */
  readonly requestId: number
  /** For rate limits: when the client may try again. */
  readonly retryAfterMs: number | undefined

  constructor (code: ClientErrorCode, message: string, options: { cause?: unknown, requestId?: number, retryAfterMs?: number } = {}) {
    super(code, message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'ClientProtocolError'
    this.requestId = options.requestId ?? 0
    this.retryAfterMs = options.retryAfterMs
  }

  /** The error as it travels in a response. */
  toBody (): ClientErrorBody {
    const body: ClientErrorBody = { code: this.code, message: this.message }
    if (this.retryAfterMs !== undefined) body.retryAfterMs = this.retryAfterMs
    return body
  }
}

/** True when `code` is one of {@link CLIENT_ERROR_CODES}. */
export function isClientErrorCode (code: unknown): code is ClientErrorCode {
  return typeof code === 'string' && (CLIENT_ERROR_CODES as readonly string[]).includes(code)
}

// ---- limits of the frame schema -------------------------------------------------------------

/**
 * Most items in any list inside a frame (records, envelopes, ids, addrs). A node's own limits
 * (such as `maxEnvelopesPerSend`) are lower; this one only bounds what a decoder walks.
 */
export const MAX_FRAME_LIST_ITEMS = 1024
/** Longest error message in a response, in UTF-16 code units. */
export const MAX_CLIENT_ERROR_MESSAGE_LENGTH = 1024
/** Longest multiaddr list in a challenge. */
export const MAX_CHALLENGE_ADDRS = 64
/** Length of the challenge nonce, in bytes. */
export const AUTH_NONCE_BYTES = 32
/**
 * Request ids run from 1 to 2^32 - 1; a response with id 0 reports a failure that belongs to no
 * request (a frame whose id could not be read, a connection refused).
 */
export const MAX_REQUEST_ID = 0xffffffff

/** The request operations, as a runtime list. */
export const CLIENT_OPS: readonly ClientOp[] = [
  'auth', 'publish', 'lookup', 'send', 'ack', 'ping', 'groupOps', 'groupGet', 'groupSend', 'groupHistory', 'roomEnter', 'roomLeave'
]
/** The event names, as a runtime list. */
export const CLIENT_EVENTS: ReadonlyArray<keyof ClientEvents> = ['message', 'delivered', 'group', 'groupOp', 'groupLag']
/** Largest encoded group operation a frame may carry (the groups layer holds ops to its own, lower limit). */
export const MAX_FRAME_GROUP_OP_BYTES = 16 * 1024
/** Longest history cursor. */
export const MAX_HISTORY_CURSOR_BYTES = 256
/** Longest masked room text in a `group` event, in UTF-16 code units. */
export const MAX_EVENT_TEXT_LENGTH = 64 * 1024

// ---- auth -----------------------------------------------------------------------------------

/**
 * The canonical bytes a device signs to authenticate: domain tag, the node's nonce, the node's
 * peer id, the user and the device. Binding the node id means a signature captured by one node
 * cannot be replayed to another; the fresh nonce means it cannot be replayed to the same one.
 */
export function authSigningBytes (nonce: Uint8Array, nodePeerId: string, user: UserId, device: DeviceId): Uint8Array {
  return canonicalEncode(['talaria/auth/v1', nonce, nodePeerId, user, device])
}

// ---- encoding -------------------------------------------------------------------------------

/** How a frame travels: `binary` is MessagePack in a binary frame, `text` is JSON in a text frame. */
export type FrameFormat = 'binary' | 'text'

/** Copies a value without `undefined` members, which MessagePack would encode as an extension. */
function plain (v: unknown, depth: number): unknown {
  if (typeof v !== 'object' || v === null || v instanceof Uint8Array) return v
  if (depth > MAX_NESTING_DEPTH) throw new ClientProtocolError('ERR_BAD_FRAME', 'frame nested too deeply to encode')
  if (Array.isArray(v)) return v.map((item) => plain(item, depth + 1))
  const out: WireObject = {}
  for (const [k, item] of Object.entries(v)) if (item !== undefined) out[k] = plain(item, depth + 1)
  return out
}

function jsonReplacer (this: unknown, key: string, value: unknown): unknown {
  // `value` has already been through toJSON (a Buffer becomes {type, data}): look at the original
  const raw = (this as Record<string, unknown>)[key]
  if (raw instanceof Uint8Array) return { $b: toBase64url(raw) }
  return value
}

/**
 * Encodes a frame: MessagePack bytes for `binary`, a JSON string for `text` (byte fields as
 * `{ "$b": "<base64url>" }`).
 */
export function encodeFrame (frame: ClientFrame, format: FrameFormat): Uint8Array | string {
  if (format === 'text') return JSON.stringify(frame, jsonReplacer)
  return encodeValue(plain(frame, 0))
}

// ---- decoding -------------------------------------------------------------------------------

function badFrame (message: string, requestId = 0, cause?: unknown): ClientProtocolError {
  return new ClientProtocolError('ERR_BAD_FRAME', message, { requestId, ...(cause === undefined ? {} : { cause }) })
}

/** UTF-8 length of a string without encoding it. */
function utf8Length (s: string): number {
  let n = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x80) n += 1
    else if (c < 0x800) n += 2
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) { n += 4; i++ } else n += 3
  }
  return n
}

/**
 * Turns `{ "$b": "<base64url>" }` objects back into bytes, in place, with bounded depth. An object
 * holding a `$b` key must be exactly such a marker, so no other shape can smuggle one in.
 */
function reviveBytes (v: unknown, depth: number): unknown {
  if (typeof v !== 'object' || v === null) return v
  if (depth > MAX_NESTING_DEPTH) throw badFrame('JSON nested too deeply')
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) v[i] = reviveBytes(v[i], depth + 1)
    return v
  }
  const o = v as WireObject
  if (Object.hasOwn(o, '$b')) {
    const b = o.$b
    if (typeof b !== 'string' || Object.keys(o).length !== 1) throw badFrame('a "$b" object must hold exactly one base64url string')
    try {
      return fromBase64url(b)
    } catch (err) {
      throw badFrame('"$b" is not valid base64url', 0, err)
    }
  }
  for (const k of Object.keys(o)) {
    // JSON.parse makes "__proto__" an own key; assigning to it would swap the prototype
    if (k === '__proto__') throw badFrame('"__proto__" is not a valid key')
    const item = o[k]
    const revived = reviveBytes(item, depth + 1)
    if (revived !== item) o[k] = revived
  }
  return o
}

function parseJson (text: string): unknown {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    throw badFrame('invalid JSON', 0, err)
  }
  return reviveBytes(value, 0)
}

/** Wraps a validator failure as a client error tied to `requestId`. */
function wrap<T> (requestId: number, what: string, fn: () => T): T {
  try {
    return fn()
  } catch (err) {
    if (err instanceof ClientProtocolError) throw err
    const message = err instanceof Error ? err.message : String(err)
    throw badFrame(`${what}: ${message}`, requestId, err)
  }
}

function expectBytesList (v: unknown, what: string, maxItemBytes: number): Uint8Array[] {
  return expectArray(v, what, MAX_FRAME_LIST_ITEMS).map((item) => expectBytes(item, `${what} item`, 1, maxItemBytes))
}

function expectMessageIds (v: unknown, what: string): MessageId[] {
  return expectArray(v, what, MAX_FRAME_LIST_ITEMS).map((id) => parseMessageId(id))
}

const requestValidators: { [Op in ClientOp]: (body: WireObject) => ClientOps[Op]['req'] } = {
  auth: (b) => ({
    user: parseUserId(b.user),
    device: parseDeviceId(b.device),
    cert: expectBytes(b.cert, 'auth.cert', 1, MAX_CERTIFICATE_BYTES),
    deviceList: expectBytes(b.deviceList, 'auth.deviceList', 1, MAX_DEVICE_LIST_BYTES),
    sig: expectBytes(b.sig, 'auth.sig', 64, 64)
  }),
  publish: (b) => {
    const req: ClientOps['publish']['req'] = { records: expectBytesList(b.records, 'publish.records', MAX_RECORD_BYTES) }
    if (b.onDisconnect !== undefined) req.onDisconnect = expectBytesList(b.onDisconnect, 'publish.onDisconnect', MAX_RECORD_BYTES)
    return req
  },
  lookup: (b) => ({ user: parseUserId(b.user) }),
  send: (b) => ({ envelopes: expectBytesList(b.envelopes, 'send.envelopes', MAX_ENVELOPE_BYTES) }),
  ack: (b) => ({ ids: expectMessageIds(b.ids, 'ack.ids') }),
  ping: () => ({}),
  groupOps: (b) => ({ group: parseGroupId(b.group), ops: expectBytesList(b.ops, 'groupOps.ops', MAX_FRAME_GROUP_OP_BYTES) }),
  groupGet: (b) => {
    const req: ClientOps['groupGet']['req'] = { group: parseGroupId(b.group) }
    if (b.after !== undefined) req.after = expectUint(b.after, 'groupGet.after')
    return req
  },
  groupSend: (b) => ({ envelope: expectBytes(b.envelope, 'groupSend.envelope', 1, MAX_ENVELOPE_BYTES) }),
  groupHistory: (b) => {
    const req: ClientOps['groupHistory']['req'] = { group: parseGroupId(b.group), since: expectUint(b.since, 'groupHistory.since') }
    if (b.limit !== undefined) req.limit = expectUint(b.limit, 'groupHistory.limit', MAX_FRAME_LIST_ITEMS, 1)
    if (b.cursor !== undefined) req.cursor = expectBytes(b.cursor, 'groupHistory.cursor', 1, MAX_HISTORY_CURSOR_BYTES)
    return req
  },
  roomEnter: (b) => {
    const req: ClientOps['roomEnter']['req'] = { room: parseGroupId(b.room) }
    if (b.ops !== undefined) req.ops = expectBytesList(b.ops, 'roomEnter.ops', MAX_FRAME_GROUP_OP_BYTES)
    return req
  },
  roomLeave: (b) => ({ room: parseGroupId(b.room) })
}

const OP_STATUSES = ['applied', 'rejected', 'pending', 'duplicate'] as const

function expectStrings (v: unknown, what: string, maxLength: number): string[] {
  return expectArray(v, what, MAX_FRAME_LIST_ITEMS).map((item) => expectString(item, `${what} item`, maxLength, 1))
}

const responseValidators: { [Op in ClientOp]: (body: WireObject) => ClientOps[Op]['res'] } = {
  auth: (b) => ({ user: parseUserId(b.user), device: parseDeviceId(b.device), time: expectUint(b.time, 'auth.time') }),
  publish: (b) => ({
    stored: expectUint(b.stored, 'publish.stored'),
    failures: expectArray(b.failures, 'publish.failures', MAX_FRAME_LIST_ITEMS * 2).map((item) => {
      const f = expectObject(item, 'publish failure')
      return {
        index: expectUint(f.index, 'failure.index'),
        code: expectString(f.code, 'failure.code', MAX_ERROR_CODE_LENGTH, 1),
        message: expectString(f.message, 'failure.message', MAX_CLIENT_ERROR_MESSAGE_LENGTH)
      }
    })
  }),
  lookup: (b) => {
    const res: ClientOps['lookup']['res'] = { prekeys: expectBytesList(b.prekeys, 'lookup.prekeys', MAX_RECORD_BYTES) }
    if (b.deviceList !== undefined) res.deviceList = expectBytes(b.deviceList, 'lookup.deviceList', 1, MAX_RECORD_BYTES)
    return res
  },
  send: (b) => ({ accepted: expectMessageIds(b.accepted, 'send.accepted') }),
  ack: (b) => ({ removed: expectUint(b.removed, 'ack.removed') }),
  ping: (b) => ({ time: expectUint(b.time, 'ping.time') }),
  groupOps: (b) => ({
    results: expectArray(b.results, 'groupOps.results', MAX_FRAME_LIST_ITEMS).map((item) => {
      const r = expectObject(item, 'groupOps result')
      const out: ClientOps['groupOps']['res']['results'][number] = { status: expectEnum(r.status, 'result.status', OP_STATUSES) }
      if (r.code !== undefined) out.code = expectString(r.code, 'result.code', MAX_ERROR_CODE_LENGTH, 1)
      if (r.message !== undefined) out.message = expectString(r.message, 'result.message', MAX_CLIENT_ERROR_MESSAGE_LENGTH)
      return out
    }),
    heads: expectStrings(b.heads, 'groupOps.heads', 64)
  }),
  groupGet: (b) => {
    const res: ClientOps['groupGet']['res'] = { ops: expectBytesList(b.ops, 'groupGet.ops', MAX_FRAME_GROUP_OP_BYTES) }
    if (b.next !== undefined) res.next = expectUint(b.next, 'groupGet.next')
    return res
  },
  groupSend: (b) => ({ id: parseMessageId(b.id), at: expectUint(b.at, 'groupSend.at') }),
  groupHistory: (b) => {
    const res: ClientOps['groupHistory']['res'] = { messages: expectBytesList(b.messages, 'groupHistory.messages', MAX_ENVELOPE_BYTES) }
    if (b.cursor !== undefined) res.cursor = expectBytes(b.cursor, 'groupHistory.cursor', 1, MAX_HISTORY_CURSOR_BYTES)
    if (b.masked !== undefined) {
      res.masked = expectArray(b.masked, 'groupHistory.masked', res.messages.length).map((m, k) => {
        const o = expectObject(m, `groupHistory.masked[${k}]`)
        return { i: expectUint(o.i, `groupHistory.masked[${k}].i`, res.messages.length - 1), text: expectString(o.text, `groupHistory.masked[${k}].text`, MAX_EVENT_TEXT_LENGTH) }
      })
    }
    return res
  },
  roomEnter: (b) => ({ heads: expectStrings(b.heads, 'roomEnter.heads', 64) }),
  roomLeave: () => ({})
}

const eventValidators: { [Ev in keyof ClientEvents]: (body: WireObject) => ClientEvents[Ev] } = {
  message: (b) => ({ envelope: expectBytes(b.envelope, 'message.envelope', 1, MAX_ENVELOPE_BYTES) }),
  delivered: (b) => ({ ids: expectMessageIds(b.ids, 'delivered.ids') }),
  group: (b) => {
    const body: ClientEvents['group'] = { envelope: expectBytes(b.envelope, 'group.envelope', 1, MAX_ENVELOPE_BYTES) }
    if (b.text !== undefined) body.text = expectString(b.text, 'group.text', MAX_EVENT_TEXT_LENGTH)
    return body
  },
  groupOp: (b) => ({ group: parseGroupId(b.group), op: expectBytes(b.op, 'groupOp.op', 1, MAX_FRAME_GROUP_OP_BYTES) }),
  groupLag: (b) => ({ group: parseGroupId(b.group) })
}

/**
 * Validates the body of a response to `op`. Responses do not name their operation, so the client
 * calls this with the op it remembers for the response's id. Throws ClientProtocolError
 * ERR_BAD_FRAME.
 */
export function parseResponseBody<Op extends ClientOp> (op: Op, body: unknown, requestId = 0): ClientOps[Op]['res'] {
  return wrap(requestId, `${op} response`, () => responseValidators[op](expectObject(body, 'body')))
}

function requestId (v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1 || v > MAX_REQUEST_ID) throw badFrame('request id must be an integer in 1..2^32-1')
  return v
}

function decodeRequest (o: WireObject): RequestFrame {
  const id = requestId(o.id)
  const op = o.op
  if (typeof op !== 'string') throw badFrame('request op must be a string', id)
  if (!(CLIENT_OPS as readonly string[]).includes(op)) {
    throw new ClientProtocolError('ERR_UNKNOWN_OP', `unknown operation "${op.slice(0, 32)}"`, { requestId: id })
  }
  const known = op as ClientOp
  const body = wrap(id, `${known} request`, () => requestValidators[known](expectObject(o.body, 'body')))
  return { t: 'req', id, op: known, body }
}

function decodeResponse (o: WireObject): ResponseFrame {
  const id = expectUint(o.id, 'response id', MAX_REQUEST_ID)
  if (o.ok === true) return { t: 'res', id, ok: true, body: expectObject(o.body, 'response body') as ClientOps[ClientOp]['res'] }
  if (o.ok !== false) throw badFrame('response ok must be a boolean')
  const e = expectObject(o.error, 'response error')
  const error: ClientErrorBody = {
    code: expectEnum(e.code, 'error code', CLIENT_ERROR_CODES),
    message: expectString(e.message, 'error message', MAX_CLIENT_ERROR_MESSAGE_LENGTH)
  }
  if (e.retryAfterMs !== undefined) error.retryAfterMs = expectUint(e.retryAfterMs, 'retryAfterMs')
  return { t: 'res', id, ok: false, error }
}

function decodeChallenge (o: WireObject): ChallengeFrame {
  const l = expectObject(o.limits, 'challenge.limits')
  return {
    t: 'challenge',
    v: expectUint(o.v, 'challenge.v'),
    nonce: expectBytes(o.nonce, 'challenge.nonce', AUTH_NONCE_BYTES, AUTH_NONCE_BYTES),
    node: expectString(o.node, 'challenge.node', MAX_PEER_ID_LENGTH, 1),
    addrs: expectArray(o.addrs, 'challenge.addrs', MAX_CHALLENGE_ADDRS).map((a) => expectString(a, 'challenge.addr', MAX_ADDR_LENGTH, 1)),
    limits: {
      maxFrameBytes: expectUint(l.maxFrameBytes, 'limits.maxFrameBytes'),
      maxRequestsPerSecond: expectUint(l.maxRequestsPerSecond, 'limits.maxRequestsPerSecond'),
      maxUserRequestsPerSecond: expectUint(l.maxUserRequestsPerSecond, 'limits.maxUserRequestsPerSecond'),
      maxEnvelopesPerSend: expectUint(l.maxEnvelopesPerSend, 'limits.maxEnvelopesPerSend'),
      maxUnackedPushes: expectUint(l.maxUnackedPushes, 'limits.maxUnackedPushes')
    },
    time: expectUint(o.time, 'challenge.time')
  }
}

function decodeEvent (o: WireObject): EventFrame {
  const ev = expectEnum(o.ev, 'event name', CLIENT_EVENTS)
  return { t: 'evt', ev, body: eventValidators[ev](expectObject(o.body, 'event body')) } as EventFrame
}

/** Options of {@link decodeFrame}. */
export interface DecodeFrameOptions {
  /** Largest frame accepted, in bytes (UTF-8 bytes for text); checked before anything is parsed. */
  maxBytes: number
}

/**
 * Decodes and validates one frame from bytes (MessagePack) or a string (JSON). Throws only
 * ClientProtocolError: ERR_FRAME_TOO_LARGE when the frame exceeds `maxBytes` (checked first),
 * ERR_UNKNOWN_OP for a request naming an unknown operation, ERR_BAD_FRAME for everything else
 * (with `requestId` set whenever the request id could be read). Response bodies are checked as
 * maps only; see {@link parseResponseBody}.
 */
export function decodeFrame (data: Uint8Array | string, opts: DecodeFrameOptions): ClientFrame {
  let value: unknown
  if (typeof data === 'string') {
    // UTF-8 never takes fewer bytes than UTF-16 code units, so the cheap test settles most cases
    if (data.length > opts.maxBytes || (data.length * 3 > opts.maxBytes && utf8Length(data) > opts.maxBytes)) {
      throw new ClientProtocolError('ERR_FRAME_TOO_LARGE', `frame exceeds ${opts.maxBytes} bytes`)
    }
    value = parseJson(data)
  } else if (data instanceof Uint8Array) {
    if (data.length > opts.maxBytes) throw new ClientProtocolError('ERR_FRAME_TOO_LARGE', `frame exceeds ${opts.maxBytes} bytes`)
    try {
      value = decodeValue(data, opts.maxBytes)
    } catch (err) {
      throw badFrame(err instanceof Error ? err.message : 'invalid MessagePack', 0, err)
    }
  } else {
    throw badFrame('a frame is bytes or a string')
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array) throw badFrame('a frame is a map')
  const o = value as WireObject
  // the id is read first, so a failure later in the frame can still answer the request
  const id = o.t === 'req' && typeof o.id === 'number' && Number.isSafeInteger(o.id) && o.id >= 1 && o.id <= MAX_REQUEST_ID ? o.id : 0
  return wrap(id, 'frame', () => {
    switch (o.t) {
      case 'req': return decodeRequest(o)
      case 'res': return decodeResponse(o)
      case 'evt': return decodeEvent(o)
      case 'challenge': return decodeChallenge(o)
      default: throw badFrame('unknown frame type')
    }
  })
}
