/**
 * Byte helpers shared by every protocol module. They work on plain `Uint8Array`s so that the same
 * code runs in Node.js and in browsers (no `Buffer`).
 */
import { ProtocolError } from './errors.js'

const encoder = new TextEncoder()
// fatal: a malformed UTF-8 sequence on the wire is an error, never a silent U+FFFD
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/** Concatenates byte arrays into one new array. */
export function concatBytes (...parts: Uint8Array[]): Uint8Array {
  let length = 0
  for (const p of parts) length += p.length
  const out = new Uint8Array(length)
  let offset = 0
  for (const p of parts) {
    out.set(p, offset)
    offset += p.length
  }
  return out
}

/**
 * Compares two byte arrays in time that depends only on their lengths, so comparing a secret
 * (a MAC, a key) leaks nothing about where the first difference is.
 */
export function equalBytes (a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  let diff = 0
  for (let i = 0; i < a.length; i++) diff |= (a[i] as number) ^ (b[i] as number)
  return diff === 0
}

/** UTF-8 encoding of a string. */
export function utf8Encode (text: string): Uint8Array {
  return encoder.encode(text)
}

/** Strict UTF-8 decoding; throws ProtocolError('ERR_MALFORMED') on invalid sequences. */
export function utf8Decode (bytes: Uint8Array): string {
  try {
    return decoder.decode(bytes)
  } catch (err) {
    throw new ProtocolError('ERR_MALFORMED', 'invalid UTF-8', { cause: err })
  }
}

const HEX = '0123456789abcdef'
const BYTE_HEX = Array.from({ length: 256 }, (_, b) => HEX[b >> 4]! + HEX[b & 15]!)

/**
 * Lowercase hexadecimal encoding. Joined, not appended: `out += …` builds a chain of one V8 cons
 * string per byte (32 B each), and a key kept in a cache (the verified-certificate cache holds
 * 1,024) kept the whole chain: ~8 KB per key instead of the ~0.4 KB of its characters.
 */
export function toHex (bytes: Uint8Array): string {
  const parts = new Array<string>(bytes.length)
  for (let i = 0; i < bytes.length; i++) parts[i] = BYTE_HEX[bytes[i]!]!
  return parts.join('')
}

function hexNibble (code: number): number {
  if (code >= 48 && code <= 57) return code - 48
  if (code >= 97 && code <= 102) return code - 87
  if (code >= 65 && code <= 70) return code - 55
  return -1
}

/** Hexadecimal decoding (either case); throws ProtocolError('ERR_MALFORMED') on bad input. */
export function fromHex (text: string): Uint8Array {
  if (text.length % 2 !== 0) throw new ProtocolError('ERR_MALFORMED', 'hex string of odd length')
  const out = new Uint8Array(text.length / 2)
  for (let i = 0; i < out.length; i++) {
    const hi = hexNibble(text.charCodeAt(2 * i))
    const lo = hexNibble(text.charCodeAt(2 * i + 1))
    if (hi < 0 || lo < 0) throw new ProtocolError('ERR_MALFORMED', 'invalid hex digit')
    out[i] = (hi << 4) | lo
  }
  return out
}

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
const B64URL_INDEX = new Int16Array(128).fill(-1)
for (let i = 0; i < B64URL.length; i++) B64URL_INDEX[B64URL.charCodeAt(i)] = i

/** Unpadded base64url encoding (RFC 4648 section 5). */
export function toBase64url (bytes: Uint8Array): string {
  let out = ''
  let i = 0
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!
    out += B64URL[n >> 18]! + B64URL[(n >> 12) & 63]! + B64URL[(n >> 6) & 63]! + B64URL[n & 63]!
  }
  const rest = bytes.length - i
  if (rest === 1) {
    const n = bytes[i]! << 16
    out += B64URL[n >> 18]! + B64URL[(n >> 12) & 63]!
  } else if (rest === 2) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8)
    out += B64URL[n >> 18]! + B64URL[(n >> 12) & 63]! + B64URL[(n >> 6) & 63]!
  }
  return out
}

/**
 * Unpadded base64url decoding. Strict: rejects padding, foreign characters and non-zero trailing
 * bits, so every byte string has exactly one textual form (ids are compared as strings).
 */
export function fromBase64url (text: string): Uint8Array {
  if (text.length % 4 === 1) throw new ProtocolError('ERR_MALFORMED', 'invalid base64url length')
  const out = new Uint8Array(Math.floor(text.length * 3 / 4))
  let acc = 0
  let bits = 0
  let o = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    const v = c < 128 ? B64URL_INDEX[c]! : -1
    if (v < 0) throw new ProtocolError('ERR_MALFORMED', 'invalid base64url character')
    acc = ((acc << 6) | v) & 0xffff
    bits += 6
    if (bits >= 8) {
      bits -= 8
      out[o++] = (acc >> bits) & 0xff
    }
  }
  if ((acc & ((1 << bits) - 1)) !== 0) throw new ProtocolError('ERR_MALFORMED', 'non-canonical base64url')
  return out
}

const B32 = 'abcdefghijklmnopqrstuvwxyz234567'
const B32_INDEX = new Int8Array(128).fill(-1)
for (let i = 0; i < B32.length; i++) B32_INDEX[B32.charCodeAt(i)] = i

/** Unpadded lowercase base32 (RFC 4648 section 6 alphabet, lowercased): URL- and DNS-safe. */
export function toBase32 (bytes: Uint8Array): string {
  let out = ''
  let acc = 0
  let bits = 0
  for (const b of bytes) {
    acc = ((acc << 8) | b) & 0xffff
    bits += 8
    while (bits >= 5) {
      bits -= 5
      out += B32[(acc >> bits) & 31]!
    }
  }
  if (bits > 0) out += B32[(acc << (5 - bits)) & 31]!
  return out
}

/**
 * Unpadded lowercase base32 decoding. Strict like {@link fromBase64url}: one textual form per
 * byte string (no uppercase, no padding, zero trailing bits).
 */
export function fromBase32 (text: string): Uint8Array {
  const out = new Uint8Array(Math.floor(text.length * 5 / 8))
  const tail = (text.length * 5) % 8
  // lengths whose leftover bits would be a whole character are never produced by toBase32
  if (tail >= 5) throw new ProtocolError('ERR_MALFORMED', 'invalid base32 length')
  let acc = 0
  let bits = 0
  let o = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    const v = c < 128 ? B32_INDEX[c]! : -1
    if (v < 0) throw new ProtocolError('ERR_MALFORMED', 'invalid base32 character')
    acc = ((acc << 5) | v) & 0xffff
    bits += 5
    if (bits >= 8) {
      bits -= 8
      out[o++] = (acc >> bits) & 0xff
    }
  }
  if ((acc & ((1 << bits) - 1)) !== 0) throw new ProtocolError('ERR_MALFORMED', 'non-canonical base32')
  return out
}
