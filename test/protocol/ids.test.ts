import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import {
  deviceIdFromKey, directConversationId, fromBase32, fromBase64url, fromHex, HASH_ID_LENGTH, isDeviceId, isErrorCode, isMessageId,
  isUserId, MESSAGE_ID_LENGTH, newMessageId, nobleCrypto, parseConversationId, parseDeviceId, parseGroupId, parseMessageId,
  parseUserId, toBase32, toBase64url, toHex, userIdFromKey, userIdMatchesKey, concatBytes, equalBytes, utf8Decode, utf8Encode,
  groupIdFromGenesis, type UserId
} from '../../protocol/index.js'

const malformed = (err: unknown): boolean => isErrorCode(err, 'ERR_MALFORMED')

describe('bytes', () => {
  test('hex, base64url and base32 round trip any bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
      assert.deepEqual(fromHex(toHex(b)), b)
      assert.equal(toHex(b), Buffer.from(b).toString('hex'))
      assert.deepEqual(fromBase64url(toBase64url(b)), b)
      assert.deepEqual(fromBase32(toBase32(b)), b)
    }), { numRuns: 300 })
  })
  test('known encodings (RFC 4648 section 10)', () => {
    assert.equal(toBase32(utf8Encode('foobar')), 'mzxw6ytboi')
    assert.equal(toBase64url(utf8Encode('foob')), 'Zm9vYg')
    assert.equal(toBase64url(new Uint8Array([0xfb, 0xff])), '-_8')
    assert.equal(toHex(new Uint8Array([0, 255, 16])), '00ff10')
  })
  test('strict decoders reject non-canonical text', () => {
    for (const bad of ['Zm9vYg==', 'Zm9vYh', 'Z', 'ab+/']) assert.throws(() => fromBase64url(bad), malformed, bad)
    for (const bad of ['MZXW6', 'mzxw7', 'mzx', 'a1']) assert.throws(() => fromBase32(bad), malformed, bad)
    for (const bad of ['0', 'zz', '0g']) assert.throws(() => fromHex(bad), malformed, bad)
  })
  test('utf8 is strict', () => {
    assert.equal(utf8Decode(utf8Encode('héllo ✓')), 'héllo ✓')
    assert.throws(() => utf8Decode(new Uint8Array([0xc3, 0x28])), malformed)
  })
  test('concat and constant-time equality', () => {
    assert.deepEqual(concatBytes(new Uint8Array([1]), new Uint8Array(0), new Uint8Array([2, 3])), new Uint8Array([1, 2, 3]))
    assert.equal(equalBytes(new Uint8Array([1, 2]), new Uint8Array([1, 2])), true)
    assert.equal(equalBytes(new Uint8Array([1, 2]), new Uint8Array([1, 3])), false)
    assert.equal(equalBytes(new Uint8Array([1, 2]), new Uint8Array([1])), false)
  })
})

describe('ids', () => {
  const key = nobleCrypto.ed25519PublicKey(new Uint8Array(32).fill(1))

  test('user and device ids: prefix, length, alphabet, derivation', () => {
    const u = userIdFromKey(key)
    const d = deviceIdFromKey(key)
    assert.match(u, /^u[a-z2-7]{32}$/)
    assert.match(d, /^d[a-z2-7]{32}$/)
    assert.equal(u.length, HASH_ID_LENGTH)
    // domain separation: the same key gives unrelated user and device ids
    assert.notEqual(u.slice(1), d.slice(1))
    // the same with either provider
    assert.equal(userIdFromKey(key, nobleCrypto), u)
    assert.equal(parseUserId(u), u)
    assert.equal(parseDeviceId(d), d)
    assert.equal(userIdMatchesKey(u, key), true)
    assert.equal(userIdMatchesKey(u, new Uint8Array(32)), false)
    assert.equal(userIdMatchesKey(u, new Uint8Array(3)), false)
  })

  test('a key of the wrong length → ERR_BAD_KEY', () => {
    assert.throws(() => userIdFromKey(new Uint8Array(31)), (err) => isErrorCode(err, 'ERR_BAD_KEY'))
  })

  test('message ids are random, printable and parse', () => {
    const a = newMessageId()
    assert.match(a, /^m[a-z2-7]{26}$/)
    assert.equal(a.length, MESSAGE_ID_LENGTH)
    assert.notEqual(a, newMessageId())
    assert.equal(parseMessageId(a), a)
    assert.equal(isMessageId(a), true)
  })

  test('direct conversation ids are symmetric; group ids parse as conversations', () => {
    const a = userIdFromKey(key)
    const b = userIdFromKey(nobleCrypto.ed25519PublicKey(new Uint8Array(32).fill(2)))
    assert.equal(directConversationId(a, b), directConversationId(b, a))
    assert.notEqual(directConversationId(a, b), directConversationId(a, a))
    assert.equal(parseConversationId(directConversationId(a, b)), directConversationId(a, b))
    const g = groupIdFromGenesis(new Uint8Array([1, 2, 3]))
    assert.equal(parseGroupId(g), g)
    assert.equal(parseConversationId(g), g)
  })

  test('malformed ids → ERR_MALFORMED', () => {
    const u = userIdFromKey(key)
    const bad: unknown[] = [undefined, 3, '', 'u', u.toUpperCase(), 'd' + u.slice(1), u + 'a', u.slice(0, -1), u.slice(0, -1) + '1', u.slice(0, -1) + 'é']
    for (const v of bad) {
      assert.throws(() => parseUserId(v), malformed, String(v))
      assert.equal(isUserId(v), false)
    }
    assert.equal(isDeviceId(u), false)
    assert.throws(() => parseMessageId('m' + 'a'.repeat(25) + 'b'), malformed, 'non-zero trailing bits')
    assert.throws(() => parseConversationId(u), malformed)
  })

  test('parsers accept exactly what the generators produce', () => {
    fc.assert(fc.property(fc.string({ maxLength: 40 }), (s) => {
      let ok: boolean
      try { parseUserId(s); ok = true } catch (err) { assert.ok(malformed(err)); ok = false }
      if (ok) assert.equal(toBase32(fromBase32(s.slice(1))), s.slice(1))
    }), { numRuns: 500 })
    const id: UserId = userIdFromKey(fromHex('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a'))
    assert.equal(isUserId(id), true)
  })
})
