/**
 * Group and room traffic: topic names, gossip message ids, the sealed group envelope (sender-key
 * ciphertext, signed by the sender device) and the plaintext, signed room envelope.
 */
import { canonicalEncode, decodeValue, encodeValue, expectEnum, expectObject, expectString, expectUint, expectVersion, expectBytes, type WireObject } from '../codec.js'
import { MAX_CONTENT_BYTES, MAX_TEXT_LENGTH } from '../content.js'
import { defaultCrypto } from '../crypto/index.js'
import type { CryptoProvider } from '../crypto/provider.js'
import {
  decodeGroupMessage, encodeGroupMessage, groupDecrypt, groupEncrypt, type ReceiverSenderKeyState, type SenderKeyState
} from '../e2e/sender-keys.js'
import {
  decodeGroupEnvelope, encodeGroupEnvelope, ENVELOPE_FORMAT_VERSION, groupEnvelopeAssociatedData, groupEnvelopeSigningBytes,
  type GroupEnvelope
} from '../envelopes.js'
import { ProtocolError } from '../errors.js'
import { certificateFromWire, certificateToWire, verifyDeviceCertificate, type DeviceCertificate } from '../identity.js'
import { deviceIdFromKey, newMessageId, parseDeviceId, parseGroupId, parseMessageId, parseUserId, type DeviceId, type GroupId, type MessageId, type UserId } from '../ids.js'
import { MAX_ENVELOPE_BYTES } from '../limits.js'
import type { GroupTextContent, RoomEnvelope } from './types.js'

/** Prefix of group and room gossip topics: '/talaria/g/<group id>'. */
export const GROUP_TOPIC_PREFIX = '/talaria/g/'
/** Length of a gossip message id. */
export const GOSSIP_MESSAGE_ID_BYTES = 20
/** Longest room message text, in UTF-16 code units. */
export const MAX_ROOM_TEXT_LENGTH = 4096
/** Largest encoded room envelope: the text at 3 bytes per unit plus the fixed fields. */
export const MAX_ROOM_ENVELOPE_BYTES = 16 * 1024
/** Version of the group content format (the `v` field). */
export const GROUP_CONTENT_FORMAT_VERSION = 1

/** The gossip topic of a group or room. */
export function groupTopic (id: GroupId): string {
  return GROUP_TOPIC_PREFIX + parseGroupId(id)
}

/** The group id of a group topic; undefined for any other topic. */
export function groupIdFromTopic (topic: string): GroupId | undefined {
  if (typeof topic !== 'string' || !topic.startsWith(GROUP_TOPIC_PREFIX)) return undefined
  try {
    return parseGroupId(topic.slice(GROUP_TOPIC_PREFIX.length))
  } catch {
    return undefined
  }
}

/** The gossipsub message id of published data: the first 20 bytes of SHA-256(data). */
export function gossipMessageId (data: Uint8Array, crypto: CryptoProvider = defaultCrypto): Uint8Array {
  return crypto.sha256(data).slice(0, GOSSIP_MESSAGE_ID_BYTES)
}

// ---- group content --------------------------------------------------------------------------

/** Encodes the plaintext of a group message. Validates it first. */
export function encodeGroupContent (c: GroupTextContent): Uint8Array {
  checkContent(c)
  return encodeValue({ v: GROUP_CONTENT_FORMAT_VERSION, type: 'text', id: c.id, text: c.text, sentAt: c.sentAt, seq: c.seq })
}

function checkContent (o: WireObject | GroupTextContent): GroupTextContent {
  return {
    type: expectEnum(o.type, 'group content.type', ['text']),
    id: parseMessageId(o.id),
    text: expectString(o.text, 'group content.text', MAX_TEXT_LENGTH),
    sentAt: expectUint(o.sentAt, 'group content.sentAt'),
    seq: expectUint(o.seq, 'group content.seq', Number.MAX_SAFE_INTEGER, 1)
  }
}

/** Decodes and validates the plaintext of a group message; throws ProtocolError only. */
export function decodeGroupContent (bytes: Uint8Array): GroupTextContent {
  const o = expectObject(decodeValue(bytes, MAX_CONTENT_BYTES), 'group content')
  expectVersion(o, 'group content', GROUP_CONTENT_FORMAT_VERSION)
  return checkContent(o)
}

// ---- group envelopes ------------------------------------------------------------------------

/** What sealGroupEnvelope sends. */
export interface SealGroupEnvelopeInit {
  group: GroupId
  from: { user: UserId, device: DeviceId }
  text: string
  /** The sender device's counter for this group, from 1. */
  seq: number
  /** Defaults to a fresh random id. */
  id?: MessageId
  /** Defaults to Date.now(). */
  sentAt?: number
}

/**
 * Encrypts a text under the sender key (advancing it, as groupEncrypt does) and signs the
 * envelope with the device key. The envelope's `senderKeyId` and `iteration` are the sender key's
 * id and the iteration this message uses; the ciphertext is the encoded GroupMessage, whose AEAD
 * associated data is groupEnvelopeAssociatedData.
 */
export function sealGroupEnvelope (
  init: SealGroupEnvelopeInit, senderKey: SenderKeyState, deviceSeed: Uint8Array, crypto: CryptoProvider = defaultCrypto
): { envelope: GroupEnvelope, bytes: Uint8Array } {
  const id = init.id ?? newMessageId(crypto)
  const sentAt = init.sentAt ?? Date.now()
  const header = { kind: 'group' as const, id, group: init.group, from: { user: init.from.user, device: init.from.device }, senderKeyId: senderKey.keyId, iteration: senderKey.iteration, sentAt }
  const plaintext = encodeGroupContent({ type: 'text', id, text: init.text, sentAt, seq: init.seq })
  const message = groupEncrypt(senderKey, plaintext, groupEnvelopeAssociatedData(header), crypto)
  const unsigned = { ...header, ciphertext: encodeGroupMessage(message) }
  const envelope: GroupEnvelope = { ...unsigned, sig: crypto.ed25519Sign(deviceSeed, groupEnvelopeSigningBytes(unsigned)) }
  const bytes = encodeGroupEnvelope(envelope)
  if (bytes.length > MAX_ENVELOPE_BYTES) throw new ProtocolError('ERR_TOO_LARGE', 'group envelope exceeds MAX_ENVELOPE_BYTES')
  return { envelope, bytes }
}

function checkSigner (deviceSigningKey: Uint8Array, device: DeviceId, crypto: CryptoProvider): void {
  if (!(deviceSigningKey instanceof Uint8Array) || deviceSigningKey.length !== 32) throw new ProtocolError('ERR_BAD_KEY', 'expected a 32-byte Ed25519 public key')
  if (deviceIdFromKey(deviceSigningKey, crypto) !== device) throw new ProtocolError('ERR_KEY_MISMATCH', 'the key is not the sender device\'s')
}

/**
 * Checks a group envelope's device signature (what nodes run before relaying or storing it):
 * ERR_KEY_MISMATCH when the key is not the sender device's, ERR_BAD_SIGNATURE when it does not
 * verify.
 */
export function verifyGroupEnvelope (env: GroupEnvelope, deviceSigningKey: Uint8Array, crypto: CryptoProvider = defaultCrypto): void {
  checkSigner(deviceSigningKey, env.from.device, crypto)
  if (!crypto.ed25519Verify(deviceSigningKey, groupEnvelopeSigningBytes(env), env.sig)) throw new ProtocolError('ERR_BAD_SIGNATURE', 'bad group envelope signature')
}

/**
 * Decrypts a group envelope with the sender's key (the receiver state advances only on success)
 * and returns its content. Throws ProtocolError: what groupDecrypt throws (ERR_BAD_KEY for
 * another or a rotated sender key, ERR_BAD_SIGNATURE, ERR_REPLAY, ERR_DECRYPT, …),
 * ERR_MALFORMED when the inner message or content disagrees with the envelope.
 */
export function openGroupEnvelope (env: GroupEnvelope, receiver: ReceiverSenderKeyState, crypto: CryptoProvider = defaultCrypto): GroupTextContent {
  const message = decodeGroupMessage(env.ciphertext)
  if (message.keyId !== env.senderKeyId || message.iteration !== env.iteration) throw new ProtocolError('ERR_MALFORMED', 'group envelope: sender key fields disagree with the ciphertext')
  const plaintext = groupDecrypt(receiver, message, groupEnvelopeAssociatedData(env), crypto)
  const content = decodeGroupContent(plaintext)
  if (content.id !== env.id || content.sentAt !== env.sentAt) throw new ProtocolError('ERR_MALFORMED', 'group envelope: content disagrees with the envelope')
  return content
}

// ---- room envelopes -------------------------------------------------------------------------

/** Encodes a room envelope. */
export function encodeRoomEnvelope (e: RoomEnvelope): Uint8Array {
  return encodeValue({
    v: ENVELOPE_FORMAT_VERSION,
    kind: 'room',
    id: e.id,
    room: e.room,
    from: { user: e.from.user, device: e.from.device },
    sentAt: e.sentAt,
    text: e.text,
    cert: certificateToWire(e.cert),
    sig: e.sig
  })
}

function roomEnvelopeFromWire (o: WireObject): RoomEnvelope {
  expectVersion(o, 'room envelope', ENVELOPE_FORMAT_VERSION)
  expectEnum(o.kind, 'room envelope.kind', ['room'])
  const from = expectObject(o.from, 'room envelope.from')
  return {
    kind: 'room',
    id: parseMessageId(o.id),
    room: parseGroupId(o.room),
    from: { user: parseUserId(from.user), device: parseDeviceId(from.device) },
    sentAt: expectUint(o.sentAt, 'room envelope.sentAt'),
    text: expectString(o.text, 'room envelope.text', MAX_ROOM_TEXT_LENGTH),
    cert: certificateFromWire(o.cert),
    sig: expectBytes(o.sig, 'room envelope.sig', 64, 64)
  }
}

/** Decodes and validates a room envelope (size, structure; not the signature). */
export function decodeRoomEnvelope (bytes: Uint8Array): RoomEnvelope {
  return roomEnvelopeFromWire(expectObject(decodeValue(bytes, MAX_ROOM_ENVELOPE_BYTES), 'room envelope'))
}

const ROOM_TAG = 'talaria/room-envelope/v1'

/** The canonical bytes a room envelope signature covers: every field but the signature. */
export function roomEnvelopeSigningBytes (e: Omit<RoomEnvelope, 'sig'>): Uint8Array {
  return canonicalEncode([ROOM_TAG, e.id, e.room, e.from.user, e.from.device, e.sentAt, e.text])
}

/** What signRoomEnvelope sends. */
export interface SignRoomEnvelopeInit {
  room: GroupId
  /** The sender device's certificate: it names the sender and travels with the message. */
  cert: DeviceCertificate
  text: string
  /** Defaults to a fresh random id. */
  id?: MessageId
  /** Defaults to Date.now(). */
  sentAt?: number
}

/** Signs a room message with the sender device key. Throws ERR_TOO_LARGE for a long text. */
export function signRoomEnvelope (init: SignRoomEnvelopeInit, deviceSeed: Uint8Array, crypto: CryptoProvider = defaultCrypto): { envelope: RoomEnvelope, bytes: Uint8Array } {
  const unsigned: Omit<RoomEnvelope, 'sig'> = {
    kind: 'room',
    id: init.id ?? newMessageId(crypto),
    room: parseGroupId(init.room),
    from: { user: parseUserId(init.cert.userId), device: parseDeviceId(init.cert.deviceId) },
    sentAt: init.sentAt ?? Date.now(),
    text: expectString(init.text, 'room text', MAX_ROOM_TEXT_LENGTH),
    cert: init.cert
  }
  const envelope: RoomEnvelope = { ...unsigned, sig: crypto.ed25519Sign(deviceSeed, roomEnvelopeSigningBytes(unsigned)) }
  return { envelope, bytes: encodeRoomEnvelope(envelope) }
}

/** Checks a room envelope's device signature: ERR_KEY_MISMATCH / ERR_BAD_SIGNATURE. */
export function verifyRoomEnvelope (env: RoomEnvelope, deviceSigningKey: Uint8Array, crypto: CryptoProvider = defaultCrypto): void {
  checkSigner(deviceSigningKey, env.from.device, crypto)
  if (!crypto.ed25519Verify(deviceSigningKey, roomEnvelopeSigningBytes(env), env.sig)) throw new ProtocolError('ERR_BAD_SIGNATURE', 'bad room envelope signature')
}

/**
 * Checks a room envelope on its own, as a node that never saw the sender authenticate does: the
 * certificate it carries must name the sender, be signed by the user's root key (whose hash is the
 * user id), and certify the key that signed the envelope. ERR_KEY_MISMATCH / ERR_BAD_SIGNATURE.
 * Revocation is not in the certificate: the caller checks the user's device list where it has one.
 */
export function verifyRoomSender (env: RoomEnvelope, crypto: CryptoProvider = defaultCrypto): void {
  if (env.cert.userId !== env.from.user || env.cert.deviceId !== env.from.device) throw new ProtocolError('ERR_KEY_MISMATCH', 'the certificate is not the sender\'s')
  verifyDeviceCertificate(env.cert, crypto)
  verifyRoomEnvelope(env, env.cert.signingKey, crypto)
}

/**
 * Decodes what arrives on a group topic: a group envelope or a room envelope, by `kind`. Size
 * first (MAX_ENVELOPE_BYTES, then MAX_ROOM_ENVELOPE_BYTES for rooms); throws ProtocolError only.
 */
export function decodeGroupTraffic (bytes: Uint8Array): GroupEnvelope | RoomEnvelope {
  const o = expectObject(decodeValue(bytes, MAX_ENVELOPE_BYTES), 'group traffic')
  const kind = expectEnum(o.kind, 'group traffic.kind', ['group', 'room'])
  if (kind === 'group') return decodeGroupEnvelope(bytes)
  if (bytes.length > MAX_ROOM_ENVELOPE_BYTES) throw new ProtocolError('ERR_TOO_LARGE', 'room envelope too large')
  return roomEnvelopeFromWire(o)
}

