/**
 * Sender keys for group messages. Each member device owns a sender key: a key id, a symmetric chain
 * key that advances once per message (the Double Ratchet's KDF_CK) and an Ed25519 signing key. It
 * sends the current chain key and the signing public key to every other member over their 1:1
 * ratchet sessions (a distribution message); then one encryption and one signature per group
 * message serve all members.
 *
 * Rotation: when anyone leaves or is removed, every remaining member makes a fresh sender key
 * (`rotateSenderKey`, a new key id, chain key and signing key) and distributes it only to the
 * remaining members, so the one who left can read nothing sent afterwards.
 */
import { defaultCrypto } from '../crypto/index.js'
import type { CryptoProvider } from '../crypto/provider.js'
import { ProtocolError } from '../errors.js'
import { arrayField, counterField, keyField, packPlain, unpackLimited, versionedArray } from './codec.js'
import {
  AEAD_TAG_LENGTH, KEY_LENGTH, SIGNATURE_LENGTH, concatBytes, expandMessageKey, isU32, kdfChain, readU32be,
  requireBytes, u32be, utf8, writeU32be
} from './primitives.js'

/** Most message keys a receiver derives ahead in one step (a larger gap is refused). */
export const SENDER_KEY_MAX_SKIP = 1000
/** Most skipped keys a receiver state keeps per sender key; beyond it the oldest are evicted. */
export const SENDER_KEY_MAX_SKIPPED_KEYS = 2000
/** Version byte of group messages, distribution messages and serialized sender-key states. */
export const SENDER_KEY_VERSION = 1
/** Largest encoded group message `decodeGroupMessage` accepts. */
export const MAX_GROUP_MESSAGE_BYTES = 256 * 1024
/** Largest serialized receiver state accepted. */
export const MAX_SENDER_KEY_STATE_BYTES = 128 * 1024
/** HKDF info that expands a group message key into the AEAD key and nonce. */
export const SENDER_KEY_MESSAGE_INFO = 'Talaria SenderKey MK v1'
/** Domain separator of the group-message signature. */
export const SENDER_KEY_SIGNATURE_DOMAIN = 'Talaria SenderKey Message v1'
/** Encoded distribution: version || u32 keyId || u32 iteration || chain key || signing public key. */
export const SENDER_KEY_DISTRIBUTION_LENGTH = 1 + 4 + 4 + KEY_LENGTH + KEY_LENGTH

const MESSAGE_INFO_BYTES = utf8(SENDER_KEY_MESSAGE_INFO)
const SIGNATURE_DOMAIN_BYTES = utf8(SENDER_KEY_SIGNATURE_DOMAIN)
const GROUP_MESSAGE_PREFIX = 1 + 4 + 4
const EMPTY = new Uint8Array(0)

/** The sending side of a sender key, kept only by the device that owns it. */
export interface SenderKeyState {
  keyId: number
  /** Index of the next message; its key derives from `chainKey`. */
  iteration: number
  chainKey: Uint8Array
  /** Ed25519 seed. */
  signingPrivateKey: Uint8Array
  signingPublicKey: Uint8Array
}

/** What a sender sends each member over the 1:1 sessions so they can read its group messages. */
export interface SenderKeyDistribution {
  keyId: number
  iteration: number
  chainKey: Uint8Array
  signingPublicKey: Uint8Array
}

/** A member's copy of another device's sender key. */
export interface ReceiverSenderKeyState {
  keyId: number
  /** Next iteration whose key derives from `chainKey`. */
  iteration: number
  chainKey: Uint8Array
  signingPublicKey: Uint8Array
  /** Keys of skipped iterations, ascending (= eviction order). */
  skipped: Map<number, Uint8Array>
}

/** A group message: ciphertext under the sender key, signed by its signing key. */
export interface GroupMessage {
  keyId: number
  iteration: number
  /** ChaCha20-Poly1305 ciphertext || tag. */
  ciphertext: Uint8Array
  /** Ed25519 signature over domain, version, key id, iteration, caller AD and ciphertext. */
  signature: Uint8Array
}

function freshKeyId (crypto: CryptoProvider, avoid: number | undefined): number {
  for (;;) {
    const id = readU32be(crypto.randomBytes(4), 0)
    if (id !== avoid) return id
  }
}

/** Makes a new sender key at iteration 0 with a random key id. */
export function createSenderKey (crypto: CryptoProvider = defaultCrypto): SenderKeyState {
  return makeSenderKey(crypto, undefined)
}

function makeSenderKey (crypto: CryptoProvider, avoidKeyId: number | undefined): SenderKeyState {
  const signingPrivateKey = crypto.randomBytes(KEY_LENGTH)
  return {
    keyId: freshKeyId(crypto, avoidKeyId),
    iteration: 0,
    chainKey: crypto.randomBytes(KEY_LENGTH),
    signingPrivateKey,
    signingPublicKey: crypto.ed25519PublicKey(signingPrivateKey)
  }
}

/**
 * Replaces a sender key after a member left or was removed: a new key id (never the previous one),
 * chain key and signing key. Distribute the result to the remaining members only.
 */
export function rotateSenderKey (previous: SenderKeyState, crypto: CryptoProvider = defaultCrypto): SenderKeyState {
  return makeSenderKey(crypto, previous.keyId)
}

/** The distribution message for the sender key's current position (later messages only). */
export function senderKeyDistribution (state: SenderKeyState): SenderKeyDistribution {
  return { keyId: state.keyId, iteration: state.iteration, chainKey: state.chainKey.slice(), signingPublicKey: state.signingPublicKey.slice() }
}

/** Encodes a distribution (SENDER_KEY_DISTRIBUTION_LENGTH bytes) to send inside a 1:1 message. */
export function encodeSenderKeyDistribution (d: SenderKeyDistribution): Uint8Array {
  if (!isU32(d.keyId) || !isU32(d.iteration)) throw new ProtocolError('ERR_MALFORMED', 'key id and iteration must be u32')
  requireBytes(d.chainKey, KEY_LENGTH, 'chain key')
  requireBytes(d.signingPublicKey, KEY_LENGTH, 'signing public key')
  const out = new Uint8Array(SENDER_KEY_DISTRIBUTION_LENGTH)
  out[0] = SENDER_KEY_VERSION
  writeU32be(out, 1, d.keyId)
  writeU32be(out, 5, d.iteration)
  out.set(d.chainKey, 9)
  out.set(d.signingPublicKey, 9 + KEY_LENGTH)
  return out
}

/** Decodes a distribution; ERR_MALFORMED / ERR_TOO_LARGE / ERR_UNSUPPORTED_VERSION when invalid. */
export function decodeSenderKeyDistribution (bytes: Uint8Array): SenderKeyDistribution {
  checkEncoded(bytes, SENDER_KEY_DISTRIBUTION_LENGTH, SENDER_KEY_DISTRIBUTION_LENGTH, 'sender key distribution')
  return {
    keyId: readU32be(bytes, 1),
    iteration: readU32be(bytes, 5),
    chainKey: bytes.slice(9, 9 + KEY_LENGTH),
    signingPublicKey: bytes.slice(9 + KEY_LENGTH)
  }
}

/** A receiver state from a distribution received over a 1:1 session from the sending device. */
export function createReceiverSenderKey (d: SenderKeyDistribution): ReceiverSenderKeyState {
  if (!isU32(d.keyId) || !isU32(d.iteration)) throw new ProtocolError('ERR_MALFORMED', 'key id and iteration must be u32')
  return {
    keyId: d.keyId,
    iteration: d.iteration,
    chainKey: new Uint8Array(requireBytes(d.chainKey, KEY_LENGTH, 'chain key')),
    signingPublicKey: new Uint8Array(requireBytes(d.signingPublicKey, KEY_LENGTH, 'signing public key')),
    skipped: new Map()
  }
}

function aeadAd (keyId: number, iteration: number, ad: Uint8Array): Uint8Array {
  return concatBytes(Uint8Array.of(SENDER_KEY_VERSION), u32be(keyId), u32be(iteration), ad)
}

function signedBytes (keyId: number, iteration: number, ad: Uint8Array, ciphertext: Uint8Array): Uint8Array {
  return concatBytes(SIGNATURE_DOMAIN_BYTES, Uint8Array.of(SENDER_KEY_VERSION), u32be(keyId), u32be(iteration),
    u32be(ad.length), ad, ciphertext)
}

/**
 * Encrypts and signs one group message, advancing the sender key. `ad` binds the caller's outer
 * fields; it should hold at least the group id and the sending device id.
 */
export function groupEncrypt (state: SenderKeyState, plaintext: Uint8Array, ad: Uint8Array = EMPTY, crypto: CryptoProvider = defaultCrypto): GroupMessage {
  if (state.iteration >= 0xffffffff) throw new ProtocolError('ERR_TOO_LARGE', 'sender key exhausted; rotate it')
  const { chainKey, messageKey } = kdfChain(crypto, state.chainKey)
  const iteration = state.iteration
  const { key, nonce } = expandMessageKey(crypto, messageKey, MESSAGE_INFO_BYTES)
  const ciphertext = crypto.aeadSeal(key, nonce, plaintext, aeadAd(state.keyId, iteration, ad))
  const signature = crypto.ed25519Sign(state.signingPrivateKey, signedBytes(state.keyId, iteration, ad, ciphertext))
  state.chainKey = chainKey
  state.iteration = iteration + 1
  return { keyId: state.keyId, iteration, ciphertext, signature }
}

/**
 * Verifies and decrypts a group message; the receiver state changes only when it succeeds.
 * Errors: ERR_BAD_KEY for another key id (an old, rotated or unknown sender key), ERR_BAD_SIGNATURE,
 * ERR_REPLAY for an iteration already read (or evicted), ERR_TOO_MANY_SKIPPED beyond
 * SENDER_KEY_MAX_SKIP, ERR_DECRYPT when authentication fails.
 */
export function groupDecrypt (state: ReceiverSenderKeyState, message: GroupMessage, ad: Uint8Array = EMPTY, crypto: CryptoProvider = defaultCrypto): Uint8Array {
  if (!isU32(message.keyId) || !isU32(message.iteration)) throw new ProtocolError('ERR_MALFORMED', 'key id and iteration must be u32')
  if (message.keyId !== state.keyId) throw new ProtocolError('ERR_BAD_KEY', 'message is under another sender key')
  // The signature comes first: only the sender may make a receiver derive keys or touch its state.
  if (!crypto.ed25519Verify(state.signingPublicKey, signedBytes(message.keyId, message.iteration, ad, message.ciphertext), message.signature)) {
    throw new ProtocolError('ERR_BAD_SIGNATURE', 'group message signature does not verify')
  }
  const aad = aeadAd(message.keyId, message.iteration, ad)
  if (message.iteration < state.iteration) {
    const messageKey = state.skipped.get(message.iteration)
    if (messageKey === undefined) throw new ProtocolError('ERR_REPLAY', 'group message key already used')
    const { key, nonce } = expandMessageKey(crypto, messageKey, MESSAGE_INFO_BYTES)
    const plaintext = crypto.aeadOpen(key, nonce, message.ciphertext, aad)
    state.skipped.delete(message.iteration)
    return plaintext
  }
  if (message.iteration - state.iteration > SENDER_KEY_MAX_SKIP) {
    throw new ProtocolError('ERR_TOO_MANY_SKIPPED', `message would skip ${message.iteration - state.iteration} keys (limit ${SENDER_KEY_MAX_SKIP})`)
  }
  const newSkipped: Array<[number, Uint8Array]> = []
  let chainKey = state.chainKey
  for (let i = state.iteration; i < message.iteration; i++) {
    const step = kdfChain(crypto, chainKey)
    newSkipped.push([i, step.messageKey])
    chainKey = step.chainKey
  }
  const step = kdfChain(crypto, chainKey)
  const { key, nonce } = expandMessageKey(crypto, step.messageKey, MESSAGE_INFO_BYTES)
  const plaintext = crypto.aeadOpen(key, nonce, message.ciphertext, aad)
  state.chainKey = step.chainKey
  state.iteration = message.iteration + 1
  for (const [i, k] of newSkipped) state.skipped.set(i, k)
  for (const i of state.skipped.keys()) {
    if (state.skipped.size <= SENDER_KEY_MAX_SKIPPED_KEYS) break
    state.skipped.delete(i)
  }
  return plaintext
}

function checkEncoded (bytes: Uint8Array, min: number, max: number, what: string): void {
  if (!(bytes instanceof Uint8Array)) throw new ProtocolError('ERR_MALFORMED', `${what} must be bytes`)
  if (bytes.length > max) throw new ProtocolError('ERR_TOO_LARGE', `${what} exceeds ${max} bytes`)
  if (bytes.length < min) throw new ProtocolError('ERR_MALFORMED', `${what} is truncated`)
  if (bytes[0] !== SENDER_KEY_VERSION) throw new ProtocolError('ERR_UNSUPPORTED_VERSION', `${what} version ${bytes[0] ?? 0}`)
}

/** Encodes a group message: version || u32 keyId || u32 iteration || ciphertext || signature (64). */
export function encodeGroupMessage (message: GroupMessage): Uint8Array {
  if (!isU32(message.keyId) || !isU32(message.iteration)) throw new ProtocolError('ERR_MALFORMED', 'key id and iteration must be u32')
  requireBytes(message.signature, SIGNATURE_LENGTH, 'group message signature')
  const out = new Uint8Array(GROUP_MESSAGE_PREFIX + message.ciphertext.length + SIGNATURE_LENGTH)
  out[0] = SENDER_KEY_VERSION
  writeU32be(out, 1, message.keyId)
  writeU32be(out, 5, message.iteration)
  out.set(message.ciphertext, GROUP_MESSAGE_PREFIX)
  out.set(message.signature, out.length - SIGNATURE_LENGTH)
  return out
}

/** Decodes a group message with the MAX_GROUP_MESSAGE_BYTES limit; typed errors when invalid. */
export function decodeGroupMessage (bytes: Uint8Array): GroupMessage {
  checkEncoded(bytes, GROUP_MESSAGE_PREFIX + AEAD_TAG_LENGTH + SIGNATURE_LENGTH, MAX_GROUP_MESSAGE_BYTES, 'group message')
  return {
    keyId: readU32be(bytes, 1),
    iteration: readU32be(bytes, 5),
    ciphertext: bytes.slice(GROUP_MESSAGE_PREFIX, bytes.length - SIGNATURE_LENGTH),
    signature: bytes.slice(bytes.length - SIGNATURE_LENGTH)
  }
}

/** Serializes the sending side: MessagePack [version, keyId, iteration, chainKey, signingPriv, signingPub]. Holds secrets. */
export function serializeSenderKey (state: SenderKeyState): Uint8Array {
  return packPlain([SENDER_KEY_VERSION, state.keyId, state.iteration, state.chainKey, state.signingPrivateKey, state.signingPublicKey])
}

/** Restores `serializeSenderKey` output; typed errors (ERR_TOO_LARGE, ERR_UNSUPPORTED_VERSION, ERR_MALFORMED). */
export function deserializeSenderKey (bytes: Uint8Array): SenderKeyState {
  const [, keyId, iteration, chainKey, priv, pub] = versionedArray(unpackLimited(bytes, 1024, 'sender key'), SENDER_KEY_VERSION, 6, 'sender key')
  return {
    keyId: counterField(keyId, 'key id'),
    iteration: counterField(iteration, 'iteration'),
    chainKey: keyField(chainKey, 'chain key'),
    signingPrivateKey: keyField(priv, 'signing private key'),
    signingPublicKey: keyField(pub, 'signing public key')
  }
}

/**
 * Serializes a receiver state: MessagePack [version, keyId, iteration, chainKey, signingPub,
 * [[iteration, messageKey]...] ascending]. Holds secrets.
 */
export function serializeReceiverSenderKey (state: ReceiverSenderKeyState): Uint8Array {
  return packPlain([SENDER_KEY_VERSION, state.keyId, state.iteration, state.chainKey, state.signingPublicKey, [...state.skipped]])
}

/** Restores `serializeReceiverSenderKey` output with MAX_SENDER_KEY_STATE_BYTES; typed errors. */
export function deserializeReceiverSenderKey (bytes: Uint8Array): ReceiverSenderKeyState {
  const [, keyId, iteration, chainKey, pub, skippedRaw] = versionedArray(
    unpackLimited(bytes, MAX_SENDER_KEY_STATE_BYTES, 'receiver sender key'), SENDER_KEY_VERSION, 6, 'receiver sender key')
  const skipped = new Map<number, Uint8Array>()
  for (const entry of arrayField(skippedRaw, SENDER_KEY_MAX_SKIPPED_KEYS, 'skipped keys')) {
    if (!Array.isArray(entry) || entry.length !== 2) throw new ProtocolError('ERR_MALFORMED', 'skipped key entry')
    skipped.set(counterField(entry[0], 'skipped iteration'), keyField(entry[1], 'skipped message key'))
  }
  return {
    keyId: counterField(keyId, 'key id'),
    iteration: counterField(iteration, 'iteration'),
    chainKey: keyField(chainKey, 'chain key'),
    signingPublicKey: keyField(pub, 'signing public key'),
    skipped
  }
}
