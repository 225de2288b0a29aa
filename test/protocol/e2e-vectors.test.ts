import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { nativeCrypto, nobleCrypto } from '../../protocol/crypto/index.js'
import type { CryptoProvider } from '../../protocol/crypto/index.js'
import { toHex } from '../../protocol/bytes.js'
import {
  createInitiatorSession, createPreKeyBundle, createResponderSession, createSenderKey, generateDeviceIdentityKeys,
  generateOneTimePreKeys, generateSignedPreKey, groupEncrypt, ratchetDecrypt, ratchetEncrypt, x3dhInitiate, x3dhRespond
} from '../../protocol/e2e/index.js'

const providers: CryptoProvider[] = [nobleCrypto, ...(nativeCrypto === undefined ? [] : [nativeCrypto])]

/**
 * The provider with its randomness replaced by a fixed sequence: the k-th call to
 * randomBytes(length) returns `length` bytes of value k (k = 1, 2, ...), as docs/protocol/e2e.md
 * describes for the test vector.
 */
function fixedRandomness (base: CryptoProvider): CryptoProvider {
  let k = 0
  return { ...base, randomBytes: (length: number) => new Uint8Array(length).fill(++k) }
}

const te = new TextEncoder()

/** The scenario of the test vector in docs/protocol/e2e.md; every output in hex. */
function scenario (base: CryptoProvider): Record<string, string> {
  const crypto = fixedRandomness(base)
  const alice = generateDeviceIdentityKeys(crypto) // randomness 1, 2
  const bob = generateDeviceIdentityKeys(crypto) // 3, 4
  const spk = generateSignedPreKey(bob, 1, crypto) // 5
  const [opk] = generateOneTimePreKeys(7, 1, crypto) // 6
  assert.ok(opk !== undefined)
  const init = x3dhInitiate(alice, createPreKeyBundle(bob, spk, opk), crypto) // EK_A: 7
  const a = createInitiatorSession(init, crypto) // DHs: 8
  const m1 = ratchetEncrypt(a, te.encode('hello bob'), te.encode('ad-1'), crypto)
  const resp = x3dhRespond({ identity: bob, signedPreKey: spk, oneTimePreKey: opk }, init.initialMessage, crypto)
  const b = createResponderSession(resp, spk)
  assert.deepEqual(ratchetDecrypt(b, m1, te.encode('ad-1'), crypto), te.encode('hello bob')) // Bob's new DHs: 9
  const m2 = ratchetEncrypt(b, te.encode('hello alice'), te.encode('ad-2'), crypto)
  assert.deepEqual(ratchetDecrypt(a, m2, te.encode('ad-2'), crypto), te.encode('hello alice')) // Alice's new DHs: 10
  const sk = createSenderKey(crypto) // signing seed 11, key id 12, chain key 13
  const g = groupEncrypt(sk, te.encode('hello group'), te.encode('group-ad'), crypto)
  return {
    spkSignature: toHex(spk.signature),
    sharedSecret: toHex(init.sharedSecret),
    associatedData: toHex(init.associatedData),
    m1Header: toHex(m1.header),
    m1Ciphertext: toHex(m1.ciphertext),
    m2Header: toHex(m2.header),
    m2Ciphertext: toHex(m2.ciphertext),
    groupKeyId: sk.keyId.toString(16),
    groupCiphertext: toHex(g.ciphertext),
    groupSignature: toHex(g.signature)
  }
}

const EXPECTED: Record<string, string> = {
  spkSignature: 'db35201526efc0a8cb7ac9d7f89682677433960bb1e687aa6d2a7923a21d41efd5117a8c4a822f556b52632c7d9b41b51550e5c3c74cb1d53acd7a0574d1a305',
  sharedSecret: 'bb8cd8bda2197b73cefcd8011ff6f67ada5edbf2e866b61d8836dbaf96a1b24c',
  associatedData: '05ce8d3ad1ccb633ec7b70c17814a5c76ecd029685050d344745ba05870e587d5905ac01b2209e86354fb853237b5de0f4fab13c7fcbf433a61c019369617fecf10b',
  m1Header: '0131d4ab6aceec961137917037936e60716fac573afe94d9da84a8020448dfc1120000000000000000',
  m1Ciphertext: '1f1f769279f85af8359985deda440094d98348d58a42e7273d',
  m2Header: '0157db4b359f23ae5e146e4e2512056704722506348c150c14753d0c933d04d4210000000000000000',
  m2Ciphertext: '49930d7abfc3cfb591a29b26215ce548b8543c2f0e1d0177516e8b',
  groupKeyId: 'c0c0c0c',
  groupCiphertext: '5ea75e0dcb83768c8bbb2f41cab9e8741e32db6273a204ee021299',
  groupSignature: '1e83dc398f0c142ea9af0e417fa0e5541a0ef2e4a0341b9577fc7a20322d83f17407bdce746d62fcbbad727ea54d4d13f535927c8c57562baefcf36c3860cf0e'
}

const fill = (k: number, length = 32): Uint8Array => new Uint8Array(length).fill(k)
const cat = (...parts: Uint8Array[]): Uint8Array => new Uint8Array(parts.flatMap((p) => [...p]))
const u32 = (n: number): Uint8Array => Uint8Array.of(n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff)

describe('E2E test vector (docs/protocol/e2e.md)', () => {
  for (const crypto of providers) {
    test(`${crypto.name} reproduces the published vector`, () => {
      const got = scenario(crypto)
      assert.deepEqual(got, EXPECTED)
    })
  }

  test('the documented formulas, applied by hand to the raw primitives, give the same bytes', () => {
    const c = nobleCrypto
    const enc = (pk: Uint8Array): Uint8Array => cat(Uint8Array.of(0x05), pk)
    // Keys by the randomness rule: Alice IK 2, Bob signing 3, Bob IK 4, SPK 5, OPK 6, EK_A 7, DHs_A 8.
    const ikA = c.x25519PublicKey(fill(2))
    const ikB = c.x25519PublicKey(fill(4))
    const spkB = c.x25519PublicKey(fill(5))
    const opkB = c.x25519PublicKey(fill(6))
    const signed = cat(te.encode('Talaria SignedPreKey v1'), enc(ikB), u32(1), enc(spkB))
    assert.equal(toHex(c.ed25519Sign(fill(3), signed)), EXPECTED.spkSignature)
    const km = cat(fill(0xff), c.x25519(fill(2), spkB), c.x25519(fill(7), ikB), c.x25519(fill(7), spkB), c.x25519(fill(7), opkB))
    const sk = c.hkdfSha256(km, fill(0), te.encode('Talaria X3DH v1'), 32)
    assert.equal(toHex(sk), EXPECTED.sharedSecret)
    const ad = cat(enc(ikA), enc(ikB))
    assert.equal(toHex(ad), EXPECTED.associatedData)
    const rk = c.hkdfSha256(c.x25519(fill(8), spkB), sk, te.encode('Talaria Ratchet RK v1'), 64)
    const cks = rk.slice(32)
    const header = cat(Uint8Array.of(1), c.x25519PublicKey(fill(8)), u32(0), u32(0))
    assert.equal(toHex(header), EXPECTED.m1Header)
    const mk = c.hmacSha256(cks, Uint8Array.of(0x01))
    const okm = c.hkdfSha256(mk, fill(0), te.encode('Talaria Ratchet MK v1'), 44)
    const aad = cat(Uint8Array.of(0, ad.length), ad, header, te.encode('ad-1'))
    assert.equal(toHex(c.aeadSeal(okm.slice(0, 32), okm.slice(32), te.encode('hello bob'), aad)), EXPECTED.m1Ciphertext)
    // Sender key: signing seed 11, key id 0x0c0c0c0c, chain key 13.
    const gmk = c.hmacSha256(fill(13), Uint8Array.of(0x01))
    const gokm = c.hkdfSha256(gmk, fill(0), te.encode('Talaria SenderKey MK v1'), 44)
    const gad = te.encode('group-ad')
    const gct = c.aeadSeal(gokm.slice(0, 32), gokm.slice(32), te.encode('hello group'), cat(Uint8Array.of(1), fill(12, 4), u32(0), gad))
    assert.equal(toHex(gct), EXPECTED.groupCiphertext)
    const gsig = c.ed25519Sign(fill(11), cat(te.encode('Talaria SenderKey Message v1'), Uint8Array.of(1), fill(12, 4), u32(0), u32(gad.length), gad, gct))
    assert.equal(toHex(gsig), EXPECTED.groupSignature)
  })
})
