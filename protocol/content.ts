/**
 * The plaintext inside a 1:1 ratchet ciphertext: what one device says to another. Nodes never see
 * it. A MessagePack map with a version `v` and a discriminant `type`. An unknown type is refused
 * with ERR_MALFORMED but recognisable ({@link isUnknownContentType}), so a receiver can skip what a
 * newer sender adds instead of treating it as garbage.
 *
 * - `text`: a chat message. `id` is the logical message id the application sees (the envelope id
 *   is a per-device transport id). `peer` is set only on the copies a sender sends to its own
 *   other devices: it names the other party of the conversation. `base` says where the sender's
 *   stream to this device starts.
 * - `receipt`: delivered / read receipts for logical message ids.
 * - `gap`: asks the sending device to resend its messages `fromSeq..toSeq` of a conversation.
 * - `senderKey`: a member device's sender key for a group (an encoded SenderKeyDistribution),
 *   sent to every other member device; `epoch` is the group epoch it was made for.
 * - `groupInvite`: the ops of a group (encoded, in linear order) sent to a newly added or invited
 *   member, so its node and devices can learn the group. Checked op by op by the receiver.
 */
import { decodeValue, encodeValue, expectArray, expectBytes, expectEnum, expectObject, expectString, expectUint, expectVersion } from './codec.js'
import { decodeSenderKeyDistribution } from './e2e/sender-keys.js'
import { ProtocolError } from './errors.js'
import { MAX_GROUP_OP_BYTES } from './groups/ops.js'
import { parseConversationId, parseGroupId, parseMessageId, parseUserId, type ConversationId, type GroupId, type MessageId, type UserId } from './ids.js'
import { MAX_GAP_RANGE, MAX_RECEIPT_IDS } from './limits.js'

/** Version of the content format (the `v` field). */
export const CONTENT_FORMAT_VERSION = 1
/** Longest text of one message, in UTF-16 code units (64 Ki). */
export const MAX_TEXT_LENGTH = 64 * 1024
/** Largest encoded content, checked before parsing: the text at 3 bytes per unit plus overhead. */
export const MAX_CONTENT_BYTES = MAX_TEXT_LENGTH * 3 + 1024
/** Most ops in one `groupInvite` content (the encoded content must also fit MAX_CONTENT_BYTES). */
export const MAX_GROUP_INVITE_OPS = 256

/** Content types this version understands. */
export const CONTENT_TYPES = ['text', 'receipt', 'gap', 'senderKey', 'groupInvite'] as const
/** A content type. */
export type ContentType = typeof CONTENT_TYPES[number]

/** A chat message. */
export interface TextContent {
  type: 'text'
  /** The logical message id: the same on every device copy and on every resend. */
  id: MessageId
  text: string
  /** Sender's clock when the message was composed, ms since the epoch. */
  sentAt: number
  /** On copies to the sender's own devices: the other party of the conversation. */
  peer?: UserId
  /**
   * The first seq this sender device sent to this recipient device in this conversation: where
   * the recipient's ordered stream starts, so a first message that arrives late is waited for
   * instead of being overtaken by the second.
   */
  base?: number
}

/** Delivered or read receipts for logical message ids. */
export interface ReceiptContent {
  type: 'receipt'
  receipt: 'delivered' | 'read'
  ids: MessageId[]
}

/** Please resend your messages `fromSeq..toSeq` (inclusive) of conversation `conv`. */
export interface GapContent {
  type: 'gap'
  conv: ConversationId
  fromSeq: number
  toSeq: number
}

/** A member device's sender key for a group, sent to each other member device over 1:1 sessions. */
export interface SenderKeyContent {
  type: 'senderKey'
  group: GroupId
  /** The group epoch this key was made for; a newer epoch replaces it. */
  epoch: number
  /** An encoded SenderKeyDistribution (protocol/e2e/sender-keys.ts). */
  distribution: Uint8Array
}

/** A group's ops (encoded, at most MAX_GROUP_INVITE_OPS) for a newly added or invited member. */
export interface GroupInviteContent {
  type: 'groupInvite'
  group: GroupId
  ops: Uint8Array[]
  /**
   * The inviting device's sender key, for a user the ops make a member (never for an invitee who
   * has yet to join): one 1:1 message instead of an invitation and then a key.
   */
  senderKey?: { epoch: number, distribution: Uint8Array }
}

/** Anything inside a 1:1 ciphertext. */
export type Content = TextContent | ReceiptContent | GapContent | SenderKeyContent | GroupInviteContent

/** Encodes content to the plaintext bytes the ratchet encrypts. Validates it first. */
export function encodeContent (c: Content): Uint8Array {
  switch (c.type) {
    case 'text': {
      parseMessageId(c.id)
      expectString(c.text, 'content.text', MAX_TEXT_LENGTH)
      expectUint(c.sentAt, 'content.sentAt')
      const wire: Record<string, unknown> = { v: CONTENT_FORMAT_VERSION, type: 'text', id: c.id, text: c.text, sentAt: c.sentAt }
      if (c.peer !== undefined) wire.peer = parseUserId(c.peer)
      if (c.base !== undefined) wire.base = expectUint(c.base, 'content.base', Number.MAX_SAFE_INTEGER, 1)
      return encodeValue(wire)
    }
    case 'receipt':
      checkIds(c.ids)
      return encodeValue({ v: CONTENT_FORMAT_VERSION, type: 'receipt', receipt: expectEnum(c.receipt, 'content.receipt', ['delivered', 'read']), ids: c.ids })
    case 'gap':
      checkRange(c.fromSeq, c.toSeq)
      return encodeValue({ v: CONTENT_FORMAT_VERSION, type: 'gap', conv: parseConversationId(c.conv), fromSeq: c.fromSeq, toSeq: c.toSeq })
    case 'senderKey': {
      const wire = { v: CONTENT_FORMAT_VERSION, type: 'senderKey', group: parseGroupId(c.group), epoch: expectUint(c.epoch, 'content.epoch'), distribution: checkDistribution(c.distribution) }
      return encodeValue(wire)
    }
    case 'groupInvite': {
      const wire: Record<string, unknown> = { v: CONTENT_FORMAT_VERSION, type: 'groupInvite', group: parseGroupId(c.group), ops: checkOps(c.ops) }
      if (c.senderKey !== undefined) wire.senderKey = checkInviteKey(c.senderKey)
      const bytes = encodeValue(wire)
      // the receiver refuses anything larger: split a long log over several invites
      if (bytes.length > MAX_CONTENT_BYTES) throw new ProtocolError('ERR_TOO_LARGE', 'content: group invite exceeds MAX_CONTENT_BYTES')
      return bytes
    }
  }
}

function checkDistribution (v: unknown): Uint8Array {
  const bytes = expectBytes(v, 'content.distribution', 0, MAX_CONTENT_BYTES)
  decodeSenderKeyDistribution(bytes)
  return bytes
}

function checkInviteKey (v: unknown): { epoch: number, distribution: Uint8Array } {
  const o = expectObject(v, 'content.senderKey')
  return { epoch: expectUint(o.epoch, 'content.senderKey.epoch'), distribution: checkDistribution(o.distribution) }
}

function checkOps (v: unknown): Uint8Array[] {
  const ops = expectArray(v, 'content.ops', MAX_GROUP_INVITE_OPS)
  if (ops.length === 0) throw new ProtocolError('ERR_MALFORMED', 'content.ops: empty')
  return ops.map((op) => expectBytes(op, 'content.op', 1, MAX_GROUP_OP_BYTES))
}

function checkIds (v: unknown): MessageId[] {
  const ids = expectArray(v, 'content.ids', MAX_RECEIPT_IDS)
  if (ids.length === 0) throw new ProtocolError('ERR_MALFORMED', 'content.ids: empty')
  return ids.map((id) => parseMessageId(id))
}

function checkRange (fromSeq: unknown, toSeq: unknown): void {
  const from = expectUint(fromSeq, 'content.fromSeq', Number.MAX_SAFE_INTEGER, 1)
  const to = expectUint(toSeq, 'content.toSeq', Number.MAX_SAFE_INTEGER, 1)
  // a bounded range, so one request cannot make a sender re-encrypt its whole history
  if (to < from || to - from >= MAX_GAP_RANGE) throw new ProtocolError('ERR_MALFORMED', 'content: bad gap range')
}

/**
 * Decodes and validates decrypted content: size first, then structure and every field's limit.
 * Throws ProtocolError only: ERR_TOO_LARGE, ERR_MALFORMED, ERR_UNSUPPORTED_VERSION.
 */
export function decodeContent (bytes: Uint8Array): Content {
  const o = expectObject(decodeValue(bytes, MAX_CONTENT_BYTES), 'content')
  expectVersion(o, 'content', CONTENT_FORMAT_VERSION)
  if (typeof o.type === 'string' && !(CONTENT_TYPES as readonly string[]).includes(o.type)) {
    throw new ProtocolError('ERR_MALFORMED', `content: unknown type ${o.type.slice(0, 32)}`, { cause: UNKNOWN_TYPE })
  }
  const type = expectEnum(o.type, 'content.type', CONTENT_TYPES)
  switch (type) {
    case 'text': {
      const c: TextContent = {
        type,
        id: parseMessageId(o.id),
        text: expectString(o.text, 'content.text', MAX_TEXT_LENGTH),
        sentAt: expectUint(o.sentAt, 'content.sentAt')
      }
      if (o.peer !== undefined) c.peer = parseUserId(o.peer)
      if (o.base !== undefined) c.base = expectUint(o.base, 'content.base', Number.MAX_SAFE_INTEGER, 1)
      return c
    }
    case 'receipt':
      return { type, receipt: expectEnum(o.receipt, 'content.receipt', ['delivered', 'read']), ids: checkIds(o.ids) }
    case 'gap':
      checkRange(o.fromSeq, o.toSeq)
      return { type, conv: parseConversationId(o.conv), fromSeq: o.fromSeq as number, toSeq: o.toSeq as number }
    case 'senderKey':
      return { type, group: parseGroupId(o.group), epoch: expectUint(o.epoch, 'content.epoch'), distribution: checkDistribution(o.distribution) }
    case 'groupInvite': {
      const c: GroupInviteContent = { type, group: parseGroupId(o.group), ops: checkOps(o.ops) }
      if (o.senderKey !== undefined) c.senderKey = checkInviteKey(o.senderKey)
      return c
    }
  }
}

const UNKNOWN_TYPE = Symbol('unknown content type')

/** True when decodeContent failed only because the content type is newer than this version. */
export function isUnknownContentType (err: unknown): boolean {
  return err instanceof ProtocolError && err.cause === UNKNOWN_TYPE
}
