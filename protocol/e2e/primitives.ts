/**
 * Byte helpers and the symmetric-key KDF chain shared by the Double Ratchet and sender keys.
 * Internal to `protocol/e2e`: the public API re-exports only what other layers need.
 */
import { ProtocolError } from '../errors.js'
import { concatBytes, equalBytes as bytesEqual, toHex, utf8Encode as utf8 } from '../bytes.js'
import type { CryptoProvider } from '../crypto/provider.js'

// The shared byte helpers, under the names the E2E modules use.
export { concatBytes, bytesEqual, toHex, utf8 }

/** Length of every X25519 / Ed25519 public key and of every chain, root and message key. */
export const KEY_LENGTH = 32
/** Length of an Ed25519 signature. */
export const SIGNATURE_LENGTH = 64
/** ChaCha20-Poly1305 key length (RFC 8439). */
export const AEAD_KEY_LENGTH = 32
/** ChaCha20-Poly1305 nonce length (RFC 8439). */
export const AEAD_NONCE_LENGTH = 12
/** Poly1305 tag appended to every ciphertext. */
export const AEAD_TAG_LENGTH = 16

/** Big-endian unsigned 32-bit encoding. */
export function u32be (value: number): Uint8Array {
  const out = new Uint8Array(4)
  writeU32be(out, 0, value)
  return out
}

/** Writes `value` as big-endian u32 at `offset`. */
export function writeU32be (out: Uint8Array, offset: number, value: number): void {
  out[offset] = (value >>> 24) & 0xff
  out[offset + 1] = (value >>> 16) & 0xff
  out[offset + 2] = (value >>> 8) & 0xff
  out[offset + 3] = value & 0xff
}

/** Reads a big-endian u32 at `offset`; the caller has checked the length. */
export function readU32be (bytes: Uint8Array, offset: number): number {
  return (((bytes[offset] ?? 0) << 24) | ((bytes[offset + 1] ?? 0) << 16) |
    ((bytes[offset + 2] ?? 0) << 8) | (bytes[offset + 3] ?? 0)) >>> 0
}

/** True for an integer in [0, 2^32 - 1]: counters and ids travel as u32. */
export function isU32 (value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 0xffffffff
}

/** Throws ERR_MALFORMED unless `value` is a byte array of exactly `length` bytes. */
export function requireBytes (value: unknown, length: number, what: string): Uint8Array {
  if (!(value instanceof Uint8Array) || value.length !== length) {
    throw new ProtocolError('ERR_MALFORMED', `${what} must be ${length} bytes`)
  }
  return value
}

const CHAIN_MESSAGE_KEY = Uint8Array.of(0x01)
const CHAIN_NEXT_KEY = Uint8Array.of(0x02)
const ZERO_SALT = new Uint8Array(32)

/**
 * One step of a symmetric-key chain (Double Ratchet KDF_CK): HMAC-SHA256 keyed by the chain key,
 * over the constant 0x01 for the message key and 0x02 for the next chain key, as the Double
 * Ratchet specification recommends.
 */
export function kdfChain (crypto: CryptoProvider, chainKey: Uint8Array): { chainKey: Uint8Array, messageKey: Uint8Array } {
  return {
    messageKey: crypto.hmacSha256(chainKey, CHAIN_MESSAGE_KEY),
    chainKey: crypto.hmacSha256(chainKey, CHAIN_NEXT_KEY)
  }
}

/** The AEAD key and nonce a message key expands to. */
export interface AeadKeys {
  key: Uint8Array
  nonce: Uint8Array
}

/**
 * Expands a message key into a ChaCha20-Poly1305 key and nonce with HKDF-SHA256 (zero salt, the
 * given info). Each message key encrypts one message, so a nonce derived with the key never repeats
 * under that key.
 */
export function expandMessageKey (crypto: CryptoProvider, messageKey: Uint8Array, info: Uint8Array): AeadKeys {
  const okm = crypto.hkdfSha256(messageKey, ZERO_SALT, info, AEAD_KEY_LENGTH + AEAD_NONCE_LENGTH)
  return { key: okm.subarray(0, AEAD_KEY_LENGTH), nonce: okm.subarray(AEAD_KEY_LENGTH) }
}
