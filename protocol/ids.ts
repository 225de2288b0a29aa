/**
 * Identifiers. Every id is a short printable string, safe in URLs, DHT keys, file names and
 * DNS labels: a one-letter kind prefix followed by unpadded lowercase base32.
 *
 * User, device and group ids are self-certifying: the 20 bytes after the prefix are the first
 * 20 bytes of SHA-256(domain tag || key or genesis), so a claim made for an id can be checked
 * offline against the key that hashes to it. 160 bits keep second preimages out of reach while the
 * id stays 33 characters long. Message ids are 16 random bytes.
 */
import { concatBytes, toBase32, utf8Encode } from './bytes.js'
import { defaultCrypto } from './crypto/index.js'
import type { CryptoProvider } from './crypto/provider.js'
import { ProtocolError } from './errors.js'

declare const brand: unique symbol
type Brand<T, B extends string> = T & { readonly [brand]: B }

/** A user: 'u' + base32(first 20 bytes of SHA-256("talaria/user-id/v1" || root Ed25519 public key)). */
export type UserId = Brand<string, 'UserId'>
/** A device: 'd' + base32(first 20 bytes of SHA-256("talaria/device-id/v1" || device Ed25519 public key)). */
export type DeviceId = Brand<string, 'DeviceId'>
/** A group: 'g' + base32(first 20 bytes of SHA-256("talaria/group-id/v1" || genesis bytes)). */
export type GroupId = Brand<string, 'GroupId'>
/** A message: 'm' + base32(16 random bytes). */
export type MessageId = Brand<string, 'MessageId'>
/** A conversation: a direct conversation id ('c' + base32 of 20 bytes) or a GroupId. */
export type ConversationId = Brand<string, 'ConversationId'>

/** Length in bytes of the hash part of user, device, group and direct conversation ids. */
export const ID_HASH_BYTES = 20
/** Length in bytes of the random part of a message id. */
export const MESSAGE_ID_BYTES = 16
/** Length of a user, device, group or conversation id string. */
export const HASH_ID_LENGTH = 33
/** Length of a message id string. */
export const MESSAGE_ID_LENGTH = 27

const USER_TAG = utf8Encode('talaria/user-id/v1')
const DEVICE_TAG = utf8Encode('talaria/device-id/v1')
const GROUP_TAG = utf8Encode('talaria/group-id/v1')
const CONVERSATION_TAG = utf8Encode('talaria/conversation-id/v1')

function hashId (prefix: string, tag: Uint8Array, data: Uint8Array, crypto: CryptoProvider): string {
  return prefix + toBase32(crypto.sha256(concatBytes(tag, data)).subarray(0, ID_HASH_BYTES))
}

function checkKey (publicKey: Uint8Array): void {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== 32) {
    throw new ProtocolError('ERR_BAD_KEY', 'expected a 32-byte Ed25519 public key')
  }
}

/** The user id of a root Ed25519 public key. */
export function userIdFromKey (rootPublicKey: Uint8Array, crypto: CryptoProvider = defaultCrypto): UserId {
  checkKey(rootPublicKey)
  return hashId('u', USER_TAG, rootPublicKey, crypto) as UserId
}

/** The device id of a device's Ed25519 signing public key. */
export function deviceIdFromKey (signingPublicKey: Uint8Array, crypto: CryptoProvider = defaultCrypto): DeviceId {
  checkKey(signingPublicKey)
  return hashId('d', DEVICE_TAG, signingPublicKey, crypto) as DeviceId
}

/** The group id of a group's genesis (its canonical genesis bytes, see identity.ts). */
export function groupIdFromGenesis (genesis: Uint8Array, crypto: CryptoProvider = defaultCrypto): GroupId {
  return hashId('g', GROUP_TAG, genesis, crypto) as GroupId
}

/**
 * The conversation id of a direct conversation between two users: the same for both sides,
 * whichever one computes it (the two ids are sorted before hashing).
 */
export function directConversationId (a: UserId, b: UserId, crypto: CryptoProvider = defaultCrypto): ConversationId {
  const [lo, hi] = a < b ? [a, b] : [b, a]
  return hashId('c', CONVERSATION_TAG, utf8Encode(`${lo}/${hi}`), crypto) as ConversationId
}

/** A fresh random message id. */
export function newMessageId (crypto: CryptoProvider = defaultCrypto): MessageId {
  return ('m' + toBase32(crypto.randomBytes(MESSAGE_ID_BYTES))) as MessageId
}

/** True when `userId` is the id derived from `rootPublicKey` (the offline check). */
export function userIdMatchesKey (userId: string, rootPublicKey: Uint8Array, crypto: CryptoProvider = defaultCrypto): boolean {
  if (rootPublicKey.length !== 32) return false
  return userIdFromKey(rootPublicKey, crypto) === userId
}

/** True when `deviceId` is the id derived from `signingPublicKey`. */
export function deviceIdMatchesKey (deviceId: string, signingPublicKey: Uint8Array, crypto: CryptoProvider = defaultCrypto): boolean {
  if (signingPublicKey.length !== 32) return false
  return deviceIdFromKey(signingPublicKey, crypto) === deviceId
}

const B32_ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567'
const B32_VALUE = new Int8Array(128).fill(-1)
for (let i = 0; i < B32_ALPHABET.length; i++) B32_VALUE[B32_ALPHABET.charCodeAt(i)] = i

/**
 * Format check without decoding (ids are parsed on every envelope): the prefix, the length, the
 * base32 alphabet, and zero padding bits in the last character (`padBits`), so that every id has
 * exactly one spelling.
 */
function checkFormat (value: unknown, prefix: string, length: number, padBits: number, what: string): string {
  if (typeof value !== 'string') throw new ProtocolError('ERR_MALFORMED', `${what}: expected a string`)
  if (value.length !== length || value[0] !== prefix) throw new ProtocolError('ERR_MALFORMED', `${what}: bad length or prefix`)
  let v = 0
  for (let i = 1; i < length; i++) {
    const c = value.charCodeAt(i)
    v = c < 128 ? B32_VALUE[c]! : -1
    if (v < 0) throw new ProtocolError('ERR_MALFORMED', `${what}: invalid character`)
  }
  if ((v & ((1 << padBits) - 1)) !== 0) throw new ProtocolError('ERR_MALFORMED', `${what}: non-canonical encoding`)
  return value
}

/** Validates the format of a user id (not that a key exists for it). Throws ERR_MALFORMED. */
export function parseUserId (value: unknown): UserId {
  return checkFormat(value, 'u', HASH_ID_LENGTH, 0, 'user id') as UserId
}

/** Validates the format of a device id. Throws ERR_MALFORMED. */
export function parseDeviceId (value: unknown): DeviceId {
  return checkFormat(value, 'd', HASH_ID_LENGTH, 0, 'device id') as DeviceId
}

/** Validates the format of a group id. Throws ERR_MALFORMED. */
export function parseGroupId (value: unknown): GroupId {
  return checkFormat(value, 'g', HASH_ID_LENGTH, 0, 'group id') as GroupId
}

/** Validates the format of a message id. Throws ERR_MALFORMED. */
export function parseMessageId (value: unknown): MessageId {
  return checkFormat(value, 'm', MESSAGE_ID_LENGTH, 2, 'message id') as MessageId
}

/** Validates the format of a conversation id: a direct one ('c…') or a group id ('g…'). */
export function parseConversationId (value: unknown): ConversationId {
  if (typeof value === 'string' && value[0] === 'g') return parseGroupId(value) as string as ConversationId
  return checkFormat(value, 'c', HASH_ID_LENGTH, 0, 'conversation id') as ConversationId
}

/** True for a well-formed user id. */
export function isUserId (value: unknown): value is UserId {
  try { parseUserId(value); return true } catch { return false }
}

/** True for a well-formed device id. */
export function isDeviceId (value: unknown): value is DeviceId {
  try { parseDeviceId(value); return true } catch { return false }
}

/** True for a well-formed group id. */
export function isGroupId (value: unknown): value is GroupId {
  try { parseGroupId(value); return true } catch { return false }
}

/** True for a well-formed message id. */
export function isMessageId (value: unknown): value is MessageId {
  try { parseMessageId(value); return true } catch { return false }
}
