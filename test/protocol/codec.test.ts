import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { canonicalEncode, decodeValue, encodeValue, isErrorCode, toHex, type CanonicalValue } from '../../protocol/index.js'

describe('canonical encoding', () => {
  test('integers take the shortest form', () => {
    const cases: Array<[number, string]> = [
      [0, '00'], [127, '7f'], [128, 'cc80'], [255, 'ccff'], [256, 'cd0100'], [65535, 'cdffff'], [65536, 'ce00010000'],
      [0xffffffff, 'ceffffffff'], [0x100000000, 'cf0000000100000000'], [Number.MAX_SAFE_INTEGER, 'cf001fffffffffffff']
    ]
    for (const [n, hex] of cases) assert.equal(toHex(canonicalEncode([n])), '91' + hex, String(n))
  })

  test('strings, bytes and arrays at their length boundaries', () => {
    assert.equal(toHex(canonicalEncode(['a'.repeat(31)])).slice(0, 4), '91bf')
    assert.equal(toHex(canonicalEncode(['a'.repeat(32)])).slice(0, 6), '91d920')
    assert.equal(toHex(canonicalEncode(['é'])), '91a2c3a9')
    assert.equal(toHex(canonicalEncode(['é'.repeat(20)])).slice(0, 6), '91d928')
    assert.equal(toHex(canonicalEncode([new Uint8Array(0)])), '91c400')
    assert.equal(toHex(canonicalEncode([new Uint8Array(256)])).slice(0, 8), '91c50100')
    assert.equal(toHex(canonicalEncode([new Array<number>(15).fill(0)])).slice(0, 4), '919f')
    assert.equal(toHex(canonicalEncode([new Array<number>(16).fill(0)])).slice(0, 8), '91dc0010')
    assert.equal(toHex(canonicalEncode([null, true, false])), '93c0c3c2')
  })

  test('negative and fractional numbers are refused', () => {
    for (const bad of [-1, 1.5, Number.NaN, 2 ** 53]) assert.throws(() => canonicalEncode([bad]), (err) => isErrorCode(err, 'ERR_MALFORMED'))
  })

  test('canonical bytes are valid MessagePack that decodes to the same values', () => {
    const leaf: fc.Arbitrary<CanonicalValue> = fc.oneof(fc.string({ maxLength: 300 }), fc.maxSafeNat(), fc.boolean(), fc.constant(null), fc.uint8Array({ maxLength: 300 }))
    const value = fc.array(fc.oneof(leaf, fc.array(leaf, { maxLength: 20 })), { maxLength: 20 })
    fc.assert(fc.property(value, (v) => {
      const bytes = canonicalEncode(v)
      assert.deepEqual(decodeValue(bytes, 1 << 20), v)
      // deterministic: the same value always gives the same bytes
      assert.equal(toHex(canonicalEncode(v)), toHex(bytes))
    }), { numRuns: 300 })
  })
})

describe('decodeValue', () => {
  test('round trips plain values and never mutates the input', () => {
    const input = encodeValue({ a: 1, b: 'x', c: new Uint8Array([1, 2]), d: [true, null] })
    const before = Object.keys(input).length
    assert.deepEqual(decodeValue(input, 100), { a: 1, b: 'x', c: new Uint8Array([1, 2]), d: [true, null] })
    assert.equal(Object.keys(input).length, before)
    assert.equal(Object.getOwnPropertyNames(input).includes('dataView'), false)
  })

  test('decoded bytes do not alias the input buffer', () => {
    const input = encodeValue({ c: new Uint8Array([7, 7]) })
    const out = decodeValue(input, 100) as { c: Uint8Array }
    input.fill(0)
    assert.deepEqual(out.c, new Uint8Array([7, 7]))
  })

  test('size limit first, then structure', () => {
    assert.throws(() => decodeValue(new Uint8Array(11), 10), (err) => isErrorCode(err, 'ERR_TOO_LARGE'))
    assert.throws(() => decodeValue(new Uint8Array(0), 10), (err) => isErrorCode(err, 'ERR_MALFORMED'))
    assert.throws(() => decodeValue('x' as unknown as Uint8Array, 10), (err) => isErrorCode(err, 'ERR_MALFORMED'))
  })
})
