/**
 * Wire schemas of what nodes carry between devices: the 1:1 envelope, the group envelope,
 * receipts and control messages. Every one is a MessagePack map with a version `v` and a
 * discriminant `kind`, so one stream can carry all of them and {@link decodeWireMessage}
 * dispatches. Contents are opaque here: ciphertexts and ratchet headers are bytes that the E2E
 * layer (protocol/e2e) produces and consumes.
 */
import { canonicalEncode, decodeValue, encodeValue, expectArray, expectBytes, expectEnum, expectObject, expectString, expectUint, expectVersion, type CanonicalValue, type WireObject } from './codec.js'
import { ProtocolError } from './errors.js'
import { parseConversationId, parseDeviceId, parseGroupId, parseMessageId, parseUserId, type ConversationId, type DeviceId, type GroupId, type MessageId, type UserId } from './ids.js'
import {
  MAX_CIPHERTEXT_BYTES, MAX_CONTROL_BYTES, MAX_ENVELOPE_BYTES, MAX_ERROR_CODE_LENGTH, MAX_ERROR_MESSAGE_LENGTH, MAX_GAP_RANGE,
  MAX_RATCHET_HEADER_BYTES, MAX_RECEIPT_BYTES, MAX_RECEIPT_IDS
} from './limits.js'

/** Version of every envelope format (the `v` field). */
export const ENVELOPE_FORMAT_VERSION = 1

const MAX_U32 = 0xffffffff

/** A device of a user: the sender or the recipient of an envelope. */
export interface DeviceAddress {
  user: UserId
  device: DeviceId
}

/** X3DH fields carried by the first message(s) of a session ('prekey' envelopes). */
export interface X3dhInit {
  /** The sender device's X25519 identity key. */
  identityKey: Uint8Array
  /** The sender's ephemeral X25519 key. */
  ephemeralKey: Uint8Array
  /** Which of the recipient's signed prekeys was used. */
  signedPrekeyId: number
  /** Which one-time prekey was used, if any. */
  oneTimePrekeyId?: number
}

/** A 1:1 envelope: one ciphertext from one device to one device. */
export interface DirectEnvelope {
  kind: 'direct'
  id: MessageId
  from: DeviceAddress
  to: DeviceAddress
  conv: ConversationId
  /** Per-(sender device, conversation) counter, from 1; gaps reveal missing messages. */
  seq: number
  /** Sender's clock, ms since the epoch. */
  sentAt: number
  /** 'prekey' carries `init` and starts a session; 'message' continues one. */
  type: 'prekey' | 'message'
  init?: X3dhInit
  /** The ratchet header, opaque here. */
  header: Uint8Array
  ciphertext: Uint8Array
}

/** A group envelope, published on the group's topic and signed by the sender device. */
export interface GroupEnvelope {
  kind: 'group'
  id: MessageId
  group: GroupId
  from: DeviceAddress
  /** Which sender key (chain) of the sender device encrypted this. */
  senderKeyId: number
  /** The position in that sender key chain. */
  iteration: number
  sentAt: number
  ciphertext: Uint8Array
  /** Ed25519 signature by the sender device key over {@link groupEnvelopeSigningBytes}. */
  sig: Uint8Array
}

/** A delivery or read receipt for messages of one conversation. */
export interface Receipt {
  kind: 'receipt'
  type: 'delivered' | 'read'
  from: DeviceAddress
  conv: ConversationId
  ids: MessageId[]
  at: number
}

/** Positive acknowledgement: the listed envelopes are durably stored. */
export interface AckMessage { kind: 'control', type: 'ack', ids: MessageId[] }
/** Negative acknowledgement: the envelope was refused, with a stable error code. */
export interface NackMessage { kind: 'control', type: 'nack', id: MessageId, code: string, message?: string }
/** A request to resend a sender device's messages `fromSeq..toSeq` (inclusive) of a conversation. */
export interface GapRequest { kind: 'control', type: 'gap', conv: ConversationId, sender: DeviceId, fromSeq: number, toSeq: number }
/** Any control message. */
export type ControlMessage = AckMessage | NackMessage | GapRequest

/** Anything decodeWireMessage returns. */
export type WireMessage = DirectEnvelope | GroupEnvelope | Receipt | ControlMessage

const KINDS = ['direct', 'group', 'receipt', 'control'] as const

// ---- shared pieces --------------------------------------------------------------------------

function addressToWire (a: DeviceAddress): WireObject {
  return { user: a.user, device: a.device }
}

function addressFromWire (v: unknown, what: string): DeviceAddress {
  const o = expectObject(v, what)
  return { user: parseUserId(o.user), device: parseDeviceId(o.device) }
}

function idsFromWire (v: unknown, what: string): MessageId[] {
  const ids = expectArray(v, what, MAX_RECEIPT_IDS)
  if (ids.length === 0) throw new ProtocolError('ERR_MALFORMED', `${what}: empty`)
  return ids.map((id) => parseMessageId(id))
}

function header (o: WireObject, kind: WireMessage['kind'], what: string): void {
  expectVersion(o, what, ENVELOPE_FORMAT_VERSION)
  if (o.kind !== kind) throw new ProtocolError('ERR_MALFORMED', `${what}: wrong kind`)
}

// ---- 1:1 envelope ---------------------------------------------------------------------------

/** Encodes a 1:1 envelope. */
export function encodeEnvelope (e: DirectEnvelope): Uint8Array {
  const wire: WireObject = {
    v: ENVELOPE_FORMAT_VERSION,
    kind: 'direct',
    id: e.id,
    from: addressToWire(e.from),
    to: addressToWire(e.to),
    conv: e.conv,
    seq: e.seq,
    sentAt: e.sentAt,
    type: e.type,
    header: e.header,
    ciphertext: e.ciphertext
  }
  if (e.init !== undefined) {
    const init: WireObject = { identityKey: e.init.identityKey, ephemeralKey: e.init.ephemeralKey, signedPrekeyId: e.init.signedPrekeyId }
    if (e.init.oneTimePrekeyId !== undefined) init.oneTimePrekeyId = e.init.oneTimePrekeyId
    wire.init = init
  }
  return encodeValue(wire)
}

function envelopeFromWire (o: WireObject): DirectEnvelope {
  header(o, 'direct', 'envelope')
  const e: DirectEnvelope = {
    kind: 'direct',
    id: parseMessageId(o.id),
    from: addressFromWire(o.from, 'envelope.from'),
    to: addressFromWire(o.to, 'envelope.to'),
    conv: parseConversationId(o.conv),
    seq: expectUint(o.seq, 'envelope.seq', Number.MAX_SAFE_INTEGER, 1),
    sentAt: expectUint(o.sentAt, 'envelope.sentAt'),
    type: expectEnum(o.type, 'envelope.type', ['prekey', 'message']),
    header: expectBytes(o.header, 'envelope.header', 0, MAX_RATCHET_HEADER_BYTES),
    ciphertext: expectBytes(o.ciphertext, 'envelope.ciphertext', 0, MAX_CIPHERTEXT_BYTES)
  }
  if (o.init !== undefined) {
    const i = expectObject(o.init, 'envelope.init')
    const init: X3dhInit = {
      identityKey: expectBytes(i.identityKey, 'init.identityKey', 32, 32),
      ephemeralKey: expectBytes(i.ephemeralKey, 'init.ephemeralKey', 32, 32),
      signedPrekeyId: expectUint(i.signedPrekeyId, 'init.signedPrekeyId', MAX_U32)
    }
    if (i.oneTimePrekeyId !== undefined) init.oneTimePrekeyId = expectUint(i.oneTimePrekeyId, 'init.oneTimePrekeyId', MAX_U32)
    e.init = init
  }
  // the type says whether a session starts here; the fields must agree with it
  if ((e.type === 'prekey') !== (e.init !== undefined)) throw new ProtocolError('ERR_MALFORMED', 'envelope: init present iff type is prekey')
  return e
}

/** Decodes and validates a 1:1 envelope. */
export function decodeEnvelope (bytes: Uint8Array): DirectEnvelope {
  return envelopeFromWire(expectObject(decodeValue(bytes, MAX_ENVELOPE_BYTES), 'envelope'))
}

/**
 * The canonical bytes of everything in a 1:1 envelope except the ciphertext: the AEAD associated
 * data, so a node that rewrites the sender, recipient, conversation, counter, type, X3DH fields or
 * header makes decryption fail.
 */
export function envelopeAssociatedData (e: Omit<DirectEnvelope, 'ciphertext'>): Uint8Array {
  const init: CanonicalValue = e.init === undefined
    ? null
    : [e.init.identityKey, e.init.ephemeralKey, e.init.signedPrekeyId, e.init.oneTimePrekeyId ?? null]
  return canonicalEncode(['talaria/envelope/v1', e.id, e.from.user, e.from.device, e.to.user, e.to.device, e.conv, e.seq, e.sentAt, e.type, init, e.header])
}

// ---- group envelope -------------------------------------------------------------------------

/** Encodes a group envelope. */
export function encodeGroupEnvelope (e: GroupEnvelope): Uint8Array {
  return encodeValue({
    v: ENVELOPE_FORMAT_VERSION,
    kind: 'group',
    id: e.id,
    group: e.group,
    from: addressToWire(e.from),
    senderKeyId: e.senderKeyId,
    iteration: e.iteration,
    sentAt: e.sentAt,
    ciphertext: e.ciphertext,
    sig: e.sig
  })
}

function groupEnvelopeFromWire (o: WireObject): GroupEnvelope {
  header(o, 'group', 'group envelope')
  return {
    kind: 'group',
    id: parseMessageId(o.id),
    group: parseGroupId(o.group),
    from: addressFromWire(o.from, 'group envelope.from'),
    senderKeyId: expectUint(o.senderKeyId, 'group envelope.senderKeyId', MAX_U32),
    iteration: expectUint(o.iteration, 'group envelope.iteration', MAX_U32),
    sentAt: expectUint(o.sentAt, 'group envelope.sentAt'),
    ciphertext: expectBytes(o.ciphertext, 'group envelope.ciphertext', 0, MAX_CIPHERTEXT_BYTES),
    sig: expectBytes(o.sig, 'group envelope.sig', 64, 64)
  }
}

/** Decodes and validates a group envelope (structure; the signature is the group layer's check). */
export function decodeGroupEnvelope (bytes: Uint8Array): GroupEnvelope {
  return groupEnvelopeFromWire(expectObject(decodeValue(bytes, MAX_ENVELOPE_BYTES), 'group envelope'))
}

function groupFields (e: Omit<GroupEnvelope, 'sig' | 'ciphertext'>): CanonicalValue[] {
  return [e.id, e.group, e.from.user, e.from.device, e.senderKeyId, e.iteration, e.sentAt]
}

/** AEAD associated data of a group envelope: every field but the ciphertext and signature. */
export function groupEnvelopeAssociatedData (e: Omit<GroupEnvelope, 'sig' | 'ciphertext'>): Uint8Array {
  return canonicalEncode(['talaria/group-envelope-ad/v1', ...groupFields(e)])
}

/** The bytes the sender device signs: every field but the signature, ciphertext included. */
export function groupEnvelopeSigningBytes (e: Omit<GroupEnvelope, 'sig'>): Uint8Array {
  return canonicalEncode(['talaria/group-envelope/v1', ...groupFields(e), e.ciphertext])
}

// ---- receipts -------------------------------------------------------------------------------

/** Encodes a receipt. */
export function encodeReceipt (r: Receipt): Uint8Array {
  return encodeValue({ v: ENVELOPE_FORMAT_VERSION, kind: 'receipt', type: r.type, from: addressToWire(r.from), conv: r.conv, ids: r.ids, at: r.at })
}

function receiptFromWire (o: WireObject): Receipt {
  header(o, 'receipt', 'receipt')
  return {
    kind: 'receipt',
    type: expectEnum(o.type, 'receipt.type', ['delivered', 'read']),
    from: addressFromWire(o.from, 'receipt.from'),
    conv: parseConversationId(o.conv),
    ids: idsFromWire(o.ids, 'receipt.ids'),
    at: expectUint(o.at, 'receipt.at')
  }
}

/** Decodes and validates a receipt. */
export function decodeReceipt (bytes: Uint8Array): Receipt {
  return receiptFromWire(expectObject(decodeValue(bytes, MAX_RECEIPT_BYTES), 'receipt'))
}

// ---- control messages -----------------------------------------------------------------------

/** Encodes a control message (ack, nack or gap request). */
export function encodeControl (m: ControlMessage): Uint8Array {
  const base = { v: ENVELOPE_FORMAT_VERSION, kind: 'control', type: m.type }
  switch (m.type) {
    case 'ack': return encodeValue({ ...base, ids: m.ids })
    case 'nack': return encodeValue(m.message === undefined ? { ...base, id: m.id, code: m.code } : { ...base, id: m.id, code: m.code, message: m.message })
    case 'gap': return encodeValue({ ...base, conv: m.conv, sender: m.sender, fromSeq: m.fromSeq, toSeq: m.toSeq })
  }
}

function controlFromWire (o: WireObject): ControlMessage {
  header(o, 'control', 'control')
  const type = expectEnum(o.type, 'control.type', ['ack', 'nack', 'gap'])
  switch (type) {
    case 'ack':
      return { kind: 'control', type, ids: idsFromWire(o.ids, 'ack.ids') }
    case 'nack': {
      const m: NackMessage = { kind: 'control', type, id: parseMessageId(o.id), code: expectString(o.code, 'nack.code', MAX_ERROR_CODE_LENGTH, 1) }
      if (o.message !== undefined) m.message = expectString(o.message, 'nack.message', MAX_ERROR_MESSAGE_LENGTH)
      return m
    }
    case 'gap': {
      const fromSeq = expectUint(o.fromSeq, 'gap.fromSeq', Number.MAX_SAFE_INTEGER, 1)
      const toSeq = expectUint(o.toSeq, 'gap.toSeq', Number.MAX_SAFE_INTEGER, 1)
      if (toSeq < fromSeq) throw new ProtocolError('ERR_MALFORMED', 'gap: toSeq before fromSeq')
      if (toSeq - fromSeq >= MAX_GAP_RANGE) throw new ProtocolError('ERR_TOO_LARGE', `gap: more than ${MAX_GAP_RANGE} messages`)
      return { kind: 'control', type, conv: parseConversationId(o.conv), sender: parseDeviceId(o.sender), fromSeq, toSeq }
    }
  }
}

/** Decodes and validates a control message. */
export function decodeControl (bytes: Uint8Array): ControlMessage {
  return controlFromWire(expectObject(decodeValue(bytes, MAX_CONTROL_BYTES), 'control'))
}

// ---- any ------------------------------------------------------------------------------------

/** Encodes any wire message by its kind. */
export function encodeWireMessage (m: WireMessage): Uint8Array {
  switch (m.kind) {
    case 'direct': return encodeEnvelope(m)
    case 'group': return encodeGroupEnvelope(m)
    case 'receipt': return encodeReceipt(m)
    case 'control': return encodeControl(m)
  }
}

/**
 * Decodes any wire message, dispatching on `kind`. The size limit is the largest of them
 * (MAX_ENVELOPE_BYTES); receipts and control messages are then held to their own limits.
 */
export function decodeWireMessage (bytes: Uint8Array): WireMessage {
  const o = expectObject(decodeValue(bytes, MAX_ENVELOPE_BYTES), 'message')
  const kind = expectEnum(o.kind, 'message.kind', KINDS)
  switch (kind) {
    case 'direct': return envelopeFromWire(o)
    case 'group': return groupEnvelopeFromWire(o)
    case 'receipt':
      if (bytes.length > MAX_RECEIPT_BYTES) throw new ProtocolError('ERR_TOO_LARGE', 'receipt too large')
      return receiptFromWire(o)
    case 'control':
      if (bytes.length > MAX_CONTROL_BYTES) throw new ProtocolError('ERR_TOO_LARGE', 'control message too large')
      return controlFromWire(o)
  }
}
