/**
 * Binary key encodings. Keys are compared bytewise, so every part is encoded to keep that order
 * meaningful: strings are length-prefixed (u16 big-endian, then UTF-8) so that a composite key is
 * unambiguous and a prefix scan over leading parts is exact; numbers are unsigned 64-bit
 * big-endian so that numeric order equals byte order.
 */
import { concatBytes } from '../protocol/bytes.js'
import { StorageError } from './errors.js'

/** Longest string part accepted in a key, in UTF-8 bytes. */
export const MAX_KEY_STRING_BYTES = 1024

const utf8 = new TextEncoder()

/** A part of a composite key: a string or a non-negative safe integer. */
export type KeyPart = string | number

/** Encodes a string key part (u16 BE length + UTF-8). */
function stringPart (s: string): Uint8Array {
  const bytes = utf8.encode(s)
  if (bytes.length > MAX_KEY_STRING_BYTES) {
    throw new StorageError('ERR_TOO_LARGE', `key part of ${bytes.length} bytes exceeds ${MAX_KEY_STRING_BYTES}`)
  }
  const out = new Uint8Array(2 + bytes.length)
  new DataView(out.buffer).setUint16(0, bytes.length)
  out.set(bytes, 2)
  return out
}

/** Encodes a numeric key part (u64 BE); rejects negatives, fractions and unsafe integers. */
function numberPart (n: number): Uint8Array {
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new StorageError('ERR_INVALID_ARGUMENT', `numeric key part must be a non-negative safe integer, got ${n}`)
  }
  const out = new Uint8Array(8)
  new DataView(out.buffer).setBigUint64(0, BigInt(n))
  return out
}

/** Encodes a composite key from its parts, in order. */
export function encodeKey (...parts: readonly KeyPart[]): Uint8Array {
  return concatBytes(...parts.map((p) => typeof p === 'string' ? stringPart(p) : numberPart(p)))
}

/** Reads composite keys back; used by index scans to recover the parts they need. */
export class KeyReader {
  private offset = 0
  private readonly view: DataView

  constructor (private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  }

  /** Reads a string part. */
  string (): string {
    const len = this.view.getUint16(this.offset)
    const start = this.offset + 2
    if (start + len > this.bytes.length) throw new StorageError('ERR_CORRUPT', 'truncated key')
    this.offset = start + len
    return new TextDecoder('utf-8', { fatal: true }).decode(this.bytes.subarray(start, start + len))
  }

  /** Reads a numeric part. */
  number (): number {
    const n = this.view.getBigUint64(this.offset)
    this.offset += 8
    return Number(n)
  }
}

/**
 * The smallest key greater than every key that starts with `prefix`, or undefined when there is
 * none (the prefix is empty or all 0xff bytes): the exclusive upper bound of a prefix scan.
 */
export function prefixUpperBound (prefix: Uint8Array): Uint8Array | undefined {
  for (let i = prefix.length - 1; i >= 0; i--) {
    if (prefix[i] !== 0xff) {
      const out = prefix.slice(0, i + 1)
      out[i] = (out[i] ?? 0) + 1
      return out
    }
  }
  return undefined
}

/** Bytewise comparison, the order every engine keeps keys in. */
export function compareBytes (a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0)
    if (d !== 0) return d
  }
  return a.length - b.length
}

/** True when `key` starts with `prefix`. */
export function hasPrefix (key: Uint8Array, prefix: Uint8Array): boolean {
  if (key.length < prefix.length) return false
  for (let i = 0; i < prefix.length; i++) if (key[i] !== prefix[i]) return false
  return true
}
