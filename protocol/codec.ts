/**
 * The wire codec: MessagePack through msgpackr, hardened for hostile input, plus a canonical
 * encoding for signatures and small field validators.
 *
 * Decoding rules, in order: (1) the byte length is checked against the caller's limit before
 * anything is parsed; (2) a linear pre-scan walks the MessagePack structure without allocating and
 * rejects extension types (msgpackr would otherwise build records, Dates, Errors, RegExps, Sets,
 * BigInts, typed arrays and structured-clone references from them), the reserved byte 0xc1,
 * non-string map keys, nesting deeper than MAX_NESTING_DEPTH, truncated data and trailing bytes;
 * (3) msgpackr parses what is left, and any exception it raises is wrapped in a ProtocolError;
 * (4) the caller's hand-written validator checks every field's type and limit.
 *
 * Validators are plain functions rather than a schema library: decoding sits on the per-message hot
 * path, these checks are a handful of `typeof` tests per field with no allocation, and a single
 * place owns both the wire layout and its limits.
 *
 * Signatures never cover wire bytes: each signed structure defines a fixed-order array of its
 * fields, encoded by {@link canonicalEncode} with one exact byte form per value, so a re-encoding
 * peer, a different MessagePack library or a different map key order cannot break a signature.
 */
import { Packr } from 'msgpackr'
import { ProtocolError } from './errors.js'
import { MAX_NESTING_DEPTH } from './limits.js'

const packr = new Packr({
  useRecords: false,
  mapsAsObjects: true,
  // decoded byte fields must not alias the caller's buffer, which stream readers reuse
  copyBuffers: true,
  // numbers above 2^53 stay numbers, so validators reject them instead of meeting a BigInt
  int64AsType: 'number',
  structuredClone: false,
  moreTypes: false,
  bundleStrings: false,
  variableMapSize: true
})

/** Encodes a plain value (objects, arrays, strings, numbers, booleans, null, Uint8Array). */
export function encodeValue (value: unknown): Uint8Array {
  const out = packr.pack(value)
  // a plain Uint8Array view, so callers in Node and browsers see the same type
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength)
}

function malformed (message: string, cause?: unknown): ProtocolError {
  return new ProtocolError('ERR_MALFORMED', message, cause === undefined ? undefined : { cause })
}

// Stack of the prescan: items left in each open container (map entries count twice, key and
// value), and whether it is a map. Module-level and fixed-size: the walk runs on every decode.
const scanRemaining = new Float64Array(MAX_NESTING_DEPTH + 1)
const scanIsMap = new Uint8Array(MAX_NESTING_DEPTH + 1)

/**
 * Walks one complete MessagePack value starting at 0 and checks that it ends exactly at the end of
 * `b`. Iterative, with an explicit bounded stack, so hostile nesting cannot overflow the call
 * stack; every step advances by at least one byte, so the walk is linear in the input.
 */
function prescan (b: Uint8Array): void {
  const end = b.length
  let pos = 0
  let depth = 0
  do {
    if (pos >= end) throw malformed('truncated MessagePack data')
    const top = depth - 1
    const expectKey = depth > 0 && scanIsMap[top] === 1 && scanRemaining[top]! % 2 === 0
    const t = b[pos++]!
    let container = 0
    let isMap = 0
    let skip = 0
    let isString = false
    if (t <= 0x7f || t >= 0xe0) {
      // fixint
    } else if (t <= 0x8f) {
      container = (t & 0x0f) * 2; isMap = 1
    } else if (t <= 0x9f) {
      container = t & 0x0f
    } else if (t <= 0xbf) {
      isString = true; skip = t & 0x1f
    } else {
      // the length fields below may read past the end: they then yield undefined → NaN, and the
      // bounds check after the switch rejects it
      switch (t) {
        case 0xc0: case 0xc2: case 0xc3: break
        case 0xc4: skip = 1 + b[pos]!; break
        case 0xc5: skip = 2 + ((b[pos]! << 8) | b[pos + 1]!); break
        case 0xc6: skip = 4 + (b[pos]! * 0x1000000 + ((b[pos + 1]! << 16) | (b[pos + 2]! << 8) | b[pos + 3]!)); break
        case 0xd9: skip = 1 + b[pos]!; isString = true; break
        case 0xda: skip = 2 + ((b[pos]! << 8) | b[pos + 1]!); isString = true; break
        case 0xdb: skip = 4 + (b[pos]! * 0x1000000 + ((b[pos + 1]! << 16) | (b[pos + 2]! << 8) | b[pos + 3]!)); isString = true; break
        case 0xcc: case 0xd0: skip = 1; break
        case 0xcd: case 0xd1: skip = 2; break
        case 0xca: case 0xce: case 0xd2: skip = 4; break
        case 0xcb: case 0xcf: case 0xd3: skip = 8; break
        case 0xdc: container = (b[pos]! << 8) | b[pos + 1]!; skip = 2; break
        case 0xdd: container = b[pos]! * 0x1000000 + ((b[pos + 1]! << 16) | (b[pos + 2]! << 8) | b[pos + 3]!); skip = 4; break
        case 0xde: container = ((b[pos]! << 8) | b[pos + 1]!) * 2; isMap = 1; skip = 2; break
        case 0xdf: container = (b[pos]! * 0x1000000 + ((b[pos + 1]! << 16) | (b[pos + 2]! << 8) | b[pos + 3]!)) * 2; isMap = 1; skip = 4; break
        default:
          // 0xc1 (never used) and 0xc7-0xc9, 0xd4-0xd8 (extensions)
          throw malformed(`MessagePack type 0x${t.toString(16)} is not allowed`)
      }
    }
    if (!(skip <= end - pos)) throw malformed('truncated MessagePack data')
    pos += skip
    if (expectKey && !isString) throw malformed('map key is not a string')
    if (depth > 0) scanRemaining[top] = scanRemaining[top]! - 1
    if (container > 0) {
      // each item takes at least one byte: a count beyond what is left is a lie, reject it early
      if (!(container <= end - pos)) throw malformed('truncated MessagePack data')
      if (depth >= MAX_NESTING_DEPTH) throw malformed('MessagePack nesting too deep')
      scanRemaining[depth] = container
      scanIsMap[depth] = isMap
      depth++
    }
    while (depth > 0 && scanRemaining[depth - 1] === 0) depth--
  } while (depth > 0)
  if (pos !== end) throw malformed('trailing bytes after MessagePack value')
}

/**
 * Decodes untrusted bytes into a plain value. Throws ProtocolError ERR_TOO_LARGE when
 * `bytes.length > maxBytes` (checked first), ERR_MALFORMED for anything that is not a single,
 * extension-free MessagePack value; never any other exception.
 */
export function decodeValue (bytes: Uint8Array, maxBytes: number): unknown {
  if (!(bytes instanceof Uint8Array)) throw malformed('expected bytes')
  if (bytes.length > maxBytes) throw new ProtocolError('ERR_TOO_LARGE', `${bytes.length} bytes exceeds the limit of ${maxBytes}`)
  if (bytes.length === 0) throw malformed('empty input')
  prescan(bytes)
  try {
    // msgpackr caches a DataView as a property on the buffer it reads: hand it a throwaway view
    // so the caller's array is never mutated
    return packr.unpack(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength))
  } catch (err) {
    throw malformed('invalid MessagePack data', err)
  }
}

/** A value the canonical encoding can represent. */
export type CanonicalValue = string | number | boolean | null | Uint8Array | readonly CanonicalValue[]

const textEncoder = new TextEncoder()

/**
 * Growable output for the canonical encoder; keeps one scratch buffer alive between calls
 * because signing and verifying run on every record and group message.
 */
class Writer {
  buf = new Uint8Array(512)
  pos = 0
  reserve (n: number): void {
    if (this.pos + n <= this.buf.length) return
    let size = this.buf.length * 2
    while (size < this.pos + n) size *= 2
    const next = new Uint8Array(size)
    next.set(this.buf.subarray(0, this.pos))
    this.buf = next
  }

  byte (v: number): void { this.reserve(1); this.buf[this.pos++] = v }
  u16 (v: number): void { this.reserve(2); this.buf[this.pos++] = v >>> 8; this.buf[this.pos++] = v & 0xff }
  u32 (v: number): void {
    this.reserve(4)
    this.buf[this.pos++] = v >>> 24; this.buf[this.pos++] = (v >>> 16) & 0xff
    this.buf[this.pos++] = (v >>> 8) & 0xff; this.buf[this.pos++] = v & 0xff
  }

  bytes (v: Uint8Array): void { this.reserve(v.length); this.buf.set(v, this.pos); this.pos += v.length }
}

const writer = new Writer()

function isAscii (s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false
  return true
}

function writeCanonical (w: Writer, v: CanonicalValue): void {
  if (v === null) { w.byte(0xc0); return }
  if (v === false) { w.byte(0xc2); return }
  if (v === true) { w.byte(0xc3); return }
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v) || v < 0) throw malformed('canonical numbers are unsigned safe integers')
    if (v <= 0x7f) w.byte(v)
    else if (v <= 0xff) { w.byte(0xcc); w.byte(v) } else if (v <= 0xffff) { w.byte(0xcd); w.u16(v) } else if (v <= 0xffffffff) { w.byte(0xce); w.u32(v) } else { w.byte(0xcf); w.u32(Math.floor(v / 0x100000000)); w.u32(v >>> 0) }
    return
  }
  if (typeof v === 'string') {
    // ids and tags are ASCII: write them directly, skipping an encoder call and an allocation
    if (v.length <= 0xff && isAscii(v)) {
      if (v.length <= 31) w.byte(0xa0 | v.length)
      else { w.byte(0xd9); w.byte(v.length) }
      w.reserve(v.length)
      for (let i = 0; i < v.length; i++) w.buf[w.pos++] = v.charCodeAt(i)
      return
    }
    const s = textEncoder.encode(v)
    if (s.length <= 31) w.byte(0xa0 | s.length)
    else if (s.length <= 0xff) { w.byte(0xd9); w.byte(s.length) } else if (s.length <= 0xffff) { w.byte(0xda); w.u16(s.length) } else { w.byte(0xdb); w.u32(s.length) }
    w.bytes(s)
    return
  }
  if (v instanceof Uint8Array) {
    if (v.length <= 0xff) { w.byte(0xc4); w.byte(v.length) } else if (v.length <= 0xffff) { w.byte(0xc5); w.u16(v.length) } else { w.byte(0xc6); w.u32(v.length) }
    w.bytes(v)
    return
  }
  if (v.length <= 15) w.byte(0x90 | v.length)
  else if (v.length <= 0xffff) { w.byte(0xdc); w.u16(v.length) } else { w.byte(0xdd); w.u32(v.length) }
  for (const item of v) writeCanonical(w, item)
}

/**
 * The canonical bytes of a fixed-order array of fields: MessagePack with exactly one form per
 * value — unsigned integers in the shortest of fixint/uint8/16/32/64, strings as UTF-8 in the
 * shortest of fixstr/str8/16/32, bytes in the shortest of bin8/16/32, arrays in the shortest of
 * fixarray/array16/32, null/false/true as 0xc0/0xc2/0xc3. No maps, floats or negative numbers.
 * The first field of every signed structure is a domain tag string, so a signature over one
 * structure can never be replayed as another.
 */
export function canonicalEncode (fields: readonly CanonicalValue[]): Uint8Array {
  writer.pos = 0
  writeCanonical(writer, fields)
  return writer.buf.slice(0, writer.pos)
}

// ---- validators -----------------------------------------------------------------------------

/** A decoded MessagePack map: string keys, unknown values. */
export type WireObject = Record<string, unknown>

/** Asserts that `v` is a plain decoded map. */
export function expectObject (v: unknown, what: string): WireObject {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Uint8Array) {
    throw malformed(`${what}: expected a map`)
  }
  return v as WireObject
}

/** Asserts that `v` is an array of at most `max` items. */
export function expectArray (v: unknown, what: string, max: number): unknown[] {
  if (!Array.isArray(v)) throw malformed(`${what}: expected an array`)
  if (v.length > max) throw new ProtocolError('ERR_TOO_LARGE', `${what}: more than ${max} items`)
  return v
}

/** Asserts that `v` is a byte string whose length lies in [min, max]. */
export function expectBytes (v: unknown, what: string, min: number, max: number): Uint8Array {
  if (!(v instanceof Uint8Array)) throw malformed(`${what}: expected bytes`)
  if (v.length < min) throw malformed(`${what}: shorter than ${min} bytes`)
  if (v.length > max) throw new ProtocolError('ERR_TOO_LARGE', `${what}: longer than ${max} bytes`)
  return v
}

/** Asserts that `v` is a string of at most `max` UTF-16 code units (and at least `min`). */
export function expectString (v: unknown, what: string, max: number, min = 0): string {
  if (typeof v !== 'string') throw malformed(`${what}: expected a string`)
  if (v.length > max) throw new ProtocolError('ERR_TOO_LARGE', `${what}: longer than ${max} characters`)
  if (v.length < min) throw malformed(`${what}: shorter than ${min} characters`)
  return v
}

/** Asserts that `v` is an integer in [min, max] (defaults: 0 .. 2^53-1). */
export function expectUint (v: unknown, what: string, max = Number.MAX_SAFE_INTEGER, min = 0): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw malformed(`${what}: expected an integer`)
  if (v < min || v > max) throw malformed(`${what}: out of range`)
  return v
}

/** Asserts that `v` is one of `values`. */
export function expectEnum<T extends string> (v: unknown, what: string, values: readonly T[]): T {
  if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) throw malformed(`${what}: unknown value`)
  return v as T
}

/** Asserts the `v` field of a decoded map is the supported format version. */
export function expectVersion (o: WireObject, what: string, supported: number): void {
  const v = o.v
  if (v === supported) return
  if (typeof v === 'number' && Number.isSafeInteger(v) && v > 0) {
    throw new ProtocolError('ERR_UNSUPPORTED_VERSION', `${what}: version ${v} is not supported (expected ${supported})`)
  }
  throw malformed(`${what}: missing or invalid version`)
}
