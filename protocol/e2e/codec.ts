/**
 * MessagePack helpers for the serialized E2E state: plain MessagePack (no msgpackr records) so any
 * MessagePack implementation can read it, a size limit before parsing, and field checks that turn
 * every malformed input into a typed ProtocolError. Internal to `protocol/e2e`.
 */
import { Packr, Unpackr } from 'msgpackr'
import { ProtocolError } from '../errors.js'
import { KEY_LENGTH, isU32, requireBytes } from './primitives.js'

const packr = new Packr({ useRecords: false, variableMapSize: true })
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true })

/** Packs a value as plain MessagePack into a fresh Uint8Array (never a view of a reused buffer). */
export function packPlain (value: unknown): Uint8Array {
  return new Uint8Array(packr.pack(value))
}

/** Unpacks MessagePack bytes after a size check; decoder failures become ERR_MALFORMED. */
export function unpackLimited (bytes: Uint8Array, maxBytes: number, what: string): unknown {
  if (!(bytes instanceof Uint8Array)) throw new ProtocolError('ERR_MALFORMED', `${what} must be bytes`)
  if (bytes.length > maxBytes) throw new ProtocolError('ERR_TOO_LARGE', `${what} exceeds ${maxBytes} bytes`)
  try {
    // A fresh view: msgpackr caches a DataView on the object it reads, which must not be the caller's.
    return unpackr.unpack(bytes.subarray(0))
  } catch (err) {
    throw new ProtocolError('ERR_MALFORMED', `${what} is not valid MessagePack`, { cause: err })
  }
}

/** Checks the version then the field count of a decoded top-level array. */
export function versionedArray (value: unknown, version: number, fields: number, what: string): unknown[] {
  if (!Array.isArray(value) || value.length < 1) throw new ProtocolError('ERR_MALFORMED', `${what} must be an array`)
  if (value[0] !== version) throw new ProtocolError('ERR_UNSUPPORTED_VERSION', `${what} format ${String(value[0])}`)
  if (value.length !== fields) throw new ProtocolError('ERR_MALFORMED', `${what} has the wrong number of fields`)
  return value
}

/** Copies a decoded byte field into a plain Uint8Array of the expected length. */
export function keyField (value: unknown, what: string, length = KEY_LENGTH): Uint8Array {
  return new Uint8Array(requireBytes(value, length, what))
}

/** A key field that may be nil. */
export function optionalKeyField (value: unknown, what: string): Uint8Array | undefined {
  return value === null || value === undefined ? undefined : keyField(value, what)
}

/** A u32 counter or id. */
export function counterField (value: unknown, what: string): number {
  if (!isU32(value)) throw new ProtocolError('ERR_MALFORMED', `${what} must be a u32`)
  return value
}

/** An array of at most `max` entries. */
export function arrayField (value: unknown, max: number, what: string): unknown[] {
  if (!Array.isArray(value)) throw new ProtocolError('ERR_MALFORMED', `${what} must be an array`)
  if (value.length > max) throw new ProtocolError('ERR_TOO_LARGE', `${what} exceeds ${max} entries`)
  return value
}
