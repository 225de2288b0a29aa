/**
 * Value encoding: msgpack through msgpackr, with records (structure sharing) off so that every
 * stored value is self-describing and does not depend on state kept by one process.
 */
import { Packr } from 'msgpackr'
import { StorageError } from './errors.js'

const packr = new Packr({ useRecords: false, mapsAsObjects: true })

/** Encodes a value to msgpack bytes. */
export function encodeValue (value: unknown): Uint8Array {
  return packr.pack(value)
}

/**
 * Decodes msgpack bytes. A decode failure is reported as `ERR_CORRUPT`, never thrown raw: a bad
 * byte on disk must not crash the node.
 */
export function decodeValue (bytes: Uint8Array, what: string): unknown {
  try {
    return packr.unpack(bytes)
  } catch (err) {
    throw new StorageError('ERR_CORRUPT', `cannot decode stored ${what}: ${err instanceof Error ? err.message : String(err)}`, { cause: err })
  }
}

/** Returns a plain Uint8Array view of decoded binary data (msgpackr yields Buffers on Node). */
export function asBytes (v: unknown): Uint8Array | undefined {
  if (!(v instanceof Uint8Array)) return undefined
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength)
}
