import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { Packr } from 'msgpackr'
import {
  concatBytes, certifyDevice, createDevice, createDeviceList, createGroupGenesis, createUserIdentity, decodeControl, decodeDeviceCertificate,
  decodeDeviceIdentity, decodeDeviceList, decodeDevicesPayload, decodeEnvelope, decodeGroupEnvelope, decodeGroupRecordPayload,
  decodeLocationPayload, decodePrekeyPayload, decodeProfilePayload, decodeReceipt, decodeRecord, decodeUserIdentity, decodeValue,
  decodeWireMessage, directConversationId, encodeControl, encodeDeviceCertificate, encodeDeviceIdentity, encodeDeviceList,
  encodeEnvelope, encodeGroupEnvelope, encodeGroupRecordPayload, encodeLocationPayload, encodePrekeyPayload, encodeProfilePayload,
  encodeReceipt, encodeUserIdentity, fromBase32, fromBase64url, fromHex, newMessageId, parseConversationId, parseDeviceId,
  parseGroupId, parseMessageId, parseRecordKey, parseUserId, ProtocolError, recordKey, selectRecord, signRecord, utf8Decode,
  validateRecord
} from '../../protocol/index.js'

const NOW = 1_800_000_000_000
/** Generous: a decode takes microseconds; this only catches a hang or a blow-up. */
const MAX_CALL_MS = 250
const RUNS = 2000

// ---- fixtures: one valid encoding per decoder --------------------------------------------------

const user = createUserIdentity(undefined, NOW)
const other = createUserIdentity(undefined, NOW)
const device = createDevice(undefined, NOW)
const cert = certifyDevice(user, device, { now: NOW })
const list = createDeviceList(user, [cert], { now: NOW })
const conv = directConversationId(user.userId, other.userId)
const from = { user: user.userId, device: device.deviceId }
const to = { user: other.userId, device: device.deviceId }
const genesis = createGroupGenesis(user.rootPublicKey, new Uint8Array([1]), { now: NOW })
const locationPayload = encodeLocationPayload([{ device: device.deviceId, node: '12D3KooWxyz', addrs: ['/ip4/127.0.0.1/tcp/1'], expires: NOW + 1000 }])
const locationKey = recordKey('location', device.deviceId)
const locationRecord = signRecord({ kind: 'location', id: device.deviceId, seq: 1, expiresAt: NOW + 3600_000, payload: locationPayload }, { seed: device.signingSeed, publicKey: device.signingPublicKey, cert }, { now: NOW })
const profileRecord = signRecord({ kind: 'profile', id: user.userId, seq: 1, expiresAt: NOW + 3600_000, payload: encodeProfilePayload({ displayName: 'A' }) }, { seed: user.rootSeed, publicKey: user.rootPublicKey }, { now: NOW })

interface Target { name: string, decode: (bytes: Uint8Array) => unknown, valid: Uint8Array }

const targets: Target[] = [
  { name: 'decodeValue', decode: (b) => decodeValue(b, 4096), valid: locationPayload },
  { name: 'decodeRecord', decode: decodeRecord, valid: locationRecord },
  { name: 'validateRecord', decode: (b) => validateRecord(locationKey, b, { now: NOW }), valid: locationRecord },
  { name: 'validateRecord (root-signed)', decode: (b) => validateRecord(recordKey('profile', user.userId), b, { now: NOW }), valid: profileRecord },
  { name: 'parseRecordKey', decode: parseRecordKey, valid: locationKey },
  { name: 'decodeLocationPayload', decode: decodeLocationPayload, valid: locationPayload },
  { name: 'decodeProfilePayload', decode: decodeProfilePayload, valid: encodeProfilePayload({ displayName: 'Alice', status: 's', avatar: new Uint8Array(8) }) },
  { name: 'decodePrekeyPayload', decode: decodePrekeyPayload, valid: encodePrekeyPayload({ identityKey: new Uint8Array(32), signedPrekey: { id: 1, key: new Uint8Array(32), sig: new Uint8Array(64) }, oneTimePrekeys: [{ id: 2, key: new Uint8Array(32) }] }) },
  { name: 'decodeDevicesPayload', decode: decodeDevicesPayload, valid: encodeDeviceList(list) },
  { name: 'decodeGroupRecordPayload', decode: decodeGroupRecordPayload, valid: encodeGroupRecordPayload({ genesis, head: new Uint8Array(4) }) },
  { name: 'decodeDeviceList', decode: decodeDeviceList, valid: encodeDeviceList(list) },
  { name: 'decodeDeviceCertificate', decode: decodeDeviceCertificate, valid: encodeDeviceCertificate(cert) },
  { name: 'decodeUserIdentity', decode: (b) => decodeUserIdentity(b), valid: encodeUserIdentity(user) },
  { name: 'decodeDeviceIdentity', decode: (b) => decodeDeviceIdentity(b), valid: encodeDeviceIdentity({ ...device, cert }) },
  {
    name: 'decodeEnvelope',
    decode: decodeEnvelope,
    valid: encodeEnvelope({ kind: 'direct', id: newMessageId(), from, to, conv, seq: 1, sentAt: NOW, type: 'prekey', init: { identityKey: new Uint8Array(32), ephemeralKey: new Uint8Array(32), signedPrekeyId: 1, oneTimePrekeyId: 2 }, header: new Uint8Array(41), ciphertext: new Uint8Array(40) })
  },
  { name: 'decodeGroupEnvelope', decode: decodeGroupEnvelope, valid: encodeGroupEnvelope({ kind: 'group', id: newMessageId(), group: parseGroupId('g' + 'a'.repeat(32)), from, senderKeyId: 1, iteration: 2, sentAt: NOW, ciphertext: new Uint8Array(40), sig: new Uint8Array(64) }) },
  { name: 'decodeReceipt', decode: decodeReceipt, valid: encodeReceipt({ kind: 'receipt', type: 'delivered', from, conv, ids: [newMessageId()], at: NOW }) },
  { name: 'decodeControl', decode: decodeControl, valid: encodeControl({ kind: 'control', type: 'gap', conv, sender: device.deviceId, fromSeq: 1, toSeq: 5 }) },
  { name: 'decodeWireMessage', decode: decodeWireMessage, valid: encodeControl({ kind: 'control', type: 'nack', id: newMessageId(), code: 'ERR_X', message: 'm' }) }
]

const textDecoder = new TextDecoder('latin1')
const idParsers: Array<[string, (v: unknown) => unknown]> = [
  ['parseUserId', parseUserId], ['parseDeviceId', parseDeviceId], ['parseGroupId', parseGroupId],
  ['parseMessageId', parseMessageId], ['parseConversationId', parseConversationId],
  ['fromBase32', (v) => fromBase32(v as string)], ['fromBase64url', (v) => fromBase64url(v as string)], ['fromHex', (v) => fromHex(v as string)]
]

let slowest = 0

/** Runs one decode: it returns, or throws a ProtocolError, within MAX_CALL_MS. */
function check (name: string, fn: () => unknown): void {
  const start = performance.now()
  try {
    fn()
  } catch (err) {
    if (!(err instanceof ProtocolError)) assert.fail(`${name} threw a non-ProtocolError: ${String(err)}`)
  }
  const took = performance.now() - start
  if (took > slowest) slowest = took
  assert.ok(took < MAX_CALL_MS, `${name} took ${took.toFixed(1)} ms`)
}

// ---- mutations --------------------------------------------------------------------------------

type Mutation =
  | { op: 'flip', at: number, bit: number }
  | { op: 'truncate', at: number }
  | { op: 'splice', at: number, bytes: Uint8Array }
  | { op: 'delete', at: number, count: number }
  | { op: 'set', at: number, byte: number }
  | { op: 'duplicate', at: number, count: number }

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('splice' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 16 }) }),
  // interesting bytes: MessagePack type tags of extensions, big containers and the reserved 0xc1
  fc.record({ op: fc.constant('set' as const), at: fc.nat(), byte: fc.oneof(fc.constantFrom(0xc1, 0xc7, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xdc, 0xdd, 0xde, 0xdf, 0xc6, 0xdb, 0xcf, 0xcb, 0x72, 0xff, 0x00), fc.integer({ min: 0, max: 255 })) }),
  fc.record({ op: fc.constant('duplicate' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 32 }) })
)

function apply (input: Uint8Array, mutations: Mutation[]): Uint8Array {
  let b = input
  for (const m of mutations) {
    const at = b.length === 0 ? 0 : m.at % (b.length + 1)
    switch (m.op) {
      case 'flip': if (at < b.length) { b = b.slice(); b[at] = b[at]! ^ (1 << m.bit) } break
      case 'truncate': b = b.slice(0, at); break
      case 'splice': b = concatBytes(b.subarray(0, at), m.bytes, b.subarray(at)); break
      case 'delete': b = concatBytes(b.subarray(0, at), b.subarray(Math.min(b.length, at + m.count))); break
      case 'set': if (at < b.length) { b = b.slice(); b[at] = m.byte } break
      case 'duplicate': b = concatBytes(b.subarray(0, at), b.subarray(at, at + m.count), b.subarray(at)); break
    }
  }
  return b
}

// a permissive encoder, only to build hostile inputs with records and extensions in them
const hostilePackr = new Packr({ useRecords: true, moreTypes: true, structuredClone: true })
const loosePackr = new Packr({ useRecords: false })

// ---- tests ------------------------------------------------------------------------------------

describe('fuzz: every decoder returns or throws ProtocolError, in bounded time', () => {
  test('fixtures are valid', () => {
    for (const t of targets) assert.doesNotThrow(() => t.decode(t.valid), t.name)
  })

  for (const t of targets) {
    test(`${t.name}: random bytes`, () => {
      fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => { check(t.name, () => t.decode(bytes)) }), { numRuns: RUNS })
    })
    test(`${t.name}: mutated valid encodings`, () => {
      fc.assert(fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), (ms) => { check(t.name, () => t.decode(apply(t.valid, ms))) }), { numRuns: RUNS })
    })
    test(`${t.name}: a field replaced by an arbitrary value`, () => {
      let base: unknown
      try { base = loosePackr.unpack(t.valid) } catch { base = undefined }
      fc.assert(fc.property(fc.nat(), fc.anything({ maxDepth: 3, withMap: true, withSet: true, withDate: true, withTypedArray: true, withBigInt: true, withNullPrototype: true }), (pick, value) => {
        let bytes: Uint8Array
        if (typeof base === 'object' && base !== null && !Array.isArray(base)) {
          const keys = Object.keys(base)
          const key = keys[pick % keys.length]!
          const copy: Record<string, unknown> = { ...(base as Record<string, unknown>), [key]: value }
          try { bytes = (pick % 2 === 0 ? loosePackr : hostilePackr).pack(copy) } catch { return }
        } else {
          try { bytes = hostilePackr.pack(value) } catch { return }
        }
        check(t.name, () => t.decode(bytes))
      }), { numRuns: RUNS })
    })
  }

  test('selectRecord never throws and never picks a mutated invalid record over a valid one', () => {
    fc.assert(fc.property(fc.array(mutation, { minLength: 1, maxLength: 3 }), (ms) => {
      const mutated = apply(locationRecord, ms)
      let valid: boolean
      try { validateRecord(locationKey, mutated, { now: NOW }); valid = true } catch { valid = false }
      const start = performance.now()
      const index = selectRecord(locationKey, [mutated, locationRecord], { now: NOW })
      assert.ok(performance.now() - start < MAX_CALL_MS)
      if (!valid) assert.equal(index, 1)
    }), { numRuns: 1000 })
  })

  test('record keys from random strings', () => {
    fc.assert(fc.property(fc.string({ maxLength: 120 }), (s) => {
      check('parseRecordKey', () => parseRecordKey(new TextEncoder().encode('/talaria/' + s)))
    }), { numRuns: RUNS })
  })

  test('id parsers on random strings and bytes', () => {
    fc.assert(fc.property(fc.oneof(fc.string({ maxLength: 40 }), fc.uint8Array({ maxLength: 40 }).map((b) => textDecoder.decode(b)), fc.anything({ maxDepth: 1 })), (v) => {
      for (const [name, parse] of idParsers) {
        if (name.startsWith('from') && typeof v !== 'string') continue
        check(name, () => parse(v))
      }
    }), { numRuns: RUNS })
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (b) => { check('utf8Decode', () => utf8Decode(b)) }), { numRuns: RUNS })
  })

  test('the slowest call stayed bounded', () => {
    assert.ok(slowest < MAX_CALL_MS)
  })
})

describe('hostile MessagePack', () => {
  const malformedOrTooLarge = (err: unknown): boolean => err instanceof ProtocolError && (err.code === 'ERR_MALFORMED' || err.code === 'ERR_TOO_LARGE')
  const cases: Array<[string, Uint8Array]> = [
    ['record definition (fixext1 0x72)', Uint8Array.of(0xd4, 0x72, 0x40, 0x91, 0xa1, 0x61, 0x40, 0x01)],
    ['timestamp extension', Uint8Array.of(0xd6, 0xff, 0, 0, 0, 1)],
    ['ext 8 with error type', Uint8Array.of(0xc7, 0x02, 0x65, 0x92, 0xa1)],
    ['undefined (ext 0)', Uint8Array.of(0xd4, 0x00, 0x00)],
    ['reserved 0xc1', Uint8Array.of(0xc1)],
    ['array32 claiming 4 billion items', Uint8Array.of(0xdd, 0xff, 0xff, 0xff, 0xff, 0x01)],
    ['map32 claiming 4 billion entries', Uint8Array.of(0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 0x61, 0x01)],
    ['bin32 longer than the input', Uint8Array.of(0xc6, 0x7f, 0xff, 0xff, 0xff, 0x00)],
    ['str32 longer than the input', Uint8Array.of(0xdb, 0x00, 0x01, 0x00, 0x00, 0x61)],
    ['deep nesting', new Uint8Array(4000).fill(0x91)],
    ['integer map key', Uint8Array.of(0x81, 0x01, 0x02)],
    ['trailing bytes', Uint8Array.of(0x01, 0x02)],
    ['empty input', new Uint8Array(0)]
  ]
  for (const [name, bytes] of cases) {
    test(`${name} → ProtocolError`, () => {
      assert.throws(() => decodeValue(bytes, 1 << 20), malformedOrTooLarge)
      for (const t of targets) check(t.name, () => t.decode(bytes))
    })
  }

  test('structures built by a permissive encoder (records, Maps, Sets, Dates, BigInts) are refused', () => {
    for (const value of [{ kind: 'x', v: 1 }, new Map([[1, 2]]), new Set([1]), new Date(0), 10n ** 30n, new Float64Array(2), [{ a: 1 }, { a: 2 }]]) {
      const bytes = hostilePackr.pack(value)
      for (const t of targets) check(t.name, () => t.decode(bytes))
    }
    assert.throws(() => decodeValue(hostilePackr.pack(new Set([1])), 1 << 20), malformedOrTooLarge)
  })

  test('a __proto__ key does not reach the prototype', () => {
    const bytes = Uint8Array.of(0x81, 0xa9, ...new TextEncoder().encode('__proto__'), 0x81, 0xa1, 0x78, 0x01)
    const v = decodeValue(bytes, 100) as Record<string, unknown>
    assert.equal(Object.getPrototypeOf(v), Object.prototype)
    assert.equal((v as { x?: unknown }).x, undefined)
  })

  test('the size limit is checked before parsing', () => {
    assert.throws(() => decodeRecord(new Uint8Array(16 * 1024 + 1)), (err) => err instanceof ProtocolError && err.code === 'ERR_TOO_LARGE')
  })
})
