import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { defaultCrypto, fromHex, isErrorCode, nativeCrypto, nobleCrypto, toHex, utf8Encode, type CryptoProvider } from '../../protocol/index.js'

assert.ok(nativeCrypto !== undefined, 'the native provider must be available on Node.js')
const native: CryptoProvider = nativeCrypto
const providers: CryptoProvider[] = [native, nobleCrypto]

const h = fromHex

// RFC 8032 section 7.1: TEST 1, 2, 3 and TEST SHA(abc)
const ED25519_VECTORS = [
  {
    name: 'test 1',
    seed: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
    pub: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    msg: '',
    sig: 'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b'
  },
  {
    name: 'test 2',
    seed: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
    pub: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
    msg: '72',
    sig: '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00'
  },
  {
    name: 'test 3',
    seed: 'c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7',
    pub: 'fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025',
    msg: 'af82',
    sig: '6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a'
  },
  {
    name: 'test SHA(abc)',
    seed: '833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42',
    pub: 'ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf',
    msg: 'ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f',
    sig: 'dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b58909351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704'
  }
]

// RFC 7748 section 5.2 (the two single-call vectors) and section 6.1 (Alice and Bob)
const X25519_VECTORS = [
  {
    scalar: 'a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4',
    u: 'e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c',
    out: 'c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552'
  },
  {
    scalar: '4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d',
    u: 'e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493',
    out: '95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957'
  }
]
const ALICE_PRIV = '77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a'
const ALICE_PUB = '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a'
const BOB_PRIV = '5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb'
const BOB_PUB = 'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f'
const ALICE_BOB_SHARED = '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742'

// RFC 8439 section 2.8.2
const AEAD = {
  key: '808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f',
  nonce: '070000004041424344454647',
  aad: '50515253c0c1c2c3c4c5c6c7',
  plaintext: "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.",
  ciphertext: 'd31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116',
  tag: '1ae10b594f09e26a7e902ecbd0600691'
}

function range (from: number, to: number): Uint8Array {
  const out = new Uint8Array(to - from + 1)
  for (let i = 0; i < out.length; i++) out[i] = from + i
  return out
}

// RFC 5869 appendix A, test cases 1-3 (SHA-256)
const HKDF_VECTORS = [
  {
    name: 'case 1',
    ikm: new Uint8Array(22).fill(0x0b),
    salt: h('000102030405060708090a0b0c'),
    info: h('f0f1f2f3f4f5f6f7f8f9'),
    length: 42,
    okm: '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865'
  },
  {
    name: 'case 2',
    ikm: range(0x00, 0x4f),
    salt: range(0x60, 0xaf),
    info: range(0xb0, 0xff),
    length: 82,
    okm: 'b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87'
  },
  {
    name: 'case 3',
    ikm: new Uint8Array(22).fill(0x0b),
    salt: new Uint8Array(0),
    info: new Uint8Array(0),
    length: 42,
    okm: '8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8'
  }
]

describe('crypto providers', () => {
  test('defaultCrypto is the native provider on Node.js', () => {
    assert.equal(defaultCrypto.name, 'native')
    assert.equal(native.name, 'native')
    assert.equal(nobleCrypto.name, 'noble')
  })

  for (const p of providers) {
    describe(p.name, () => {
      test('RFC 8032 Ed25519 vectors', () => {
        for (const v of ED25519_VECTORS) {
          assert.equal(toHex(p.ed25519PublicKey(h(v.seed))), v.pub, v.name)
          assert.equal(toHex(p.ed25519Sign(h(v.seed), h(v.msg))), v.sig, v.name)
          assert.equal(p.ed25519Verify(h(v.pub), h(v.msg), h(v.sig)), true, v.name)
          assert.equal(p.ed25519Verify(h(v.pub), utf8Encode('other'), h(v.sig)), false, v.name)
        }
      })

      test('RFC 7748 X25519 vectors and the Alice/Bob exchange', () => {
        for (const v of X25519_VECTORS) assert.equal(toHex(p.x25519(h(v.scalar), h(v.u))), v.out)
        assert.equal(toHex(p.x25519PublicKey(h(ALICE_PRIV))), ALICE_PUB)
        assert.equal(toHex(p.x25519PublicKey(h(BOB_PRIV))), BOB_PUB)
        assert.equal(toHex(p.x25519(h(ALICE_PRIV), h(BOB_PUB))), ALICE_BOB_SHARED)
        assert.equal(toHex(p.x25519(h(BOB_PRIV), h(ALICE_PUB))), ALICE_BOB_SHARED)
      })

      test('X25519 with a low-order point → ERR_BAD_KEY', () => {
        assert.throws(() => p.x25519(h(ALICE_PRIV), new Uint8Array(32)), (err) => isErrorCode(err, 'ERR_BAD_KEY'))
      })

      test('RFC 8439 ChaCha20-Poly1305 AEAD vector', () => {
        const sealed = p.aeadSeal(h(AEAD.key), h(AEAD.nonce), utf8Encode(AEAD.plaintext), h(AEAD.aad))
        assert.equal(toHex(sealed), AEAD.ciphertext + AEAD.tag)
        const opened = p.aeadOpen(h(AEAD.key), h(AEAD.nonce), sealed, h(AEAD.aad))
        assert.equal(new TextDecoder().decode(opened), AEAD.plaintext)
      })

      test('tampered ciphertext, tag or AAD → ERR_DECRYPT', () => {
        const sealed = h(AEAD.ciphertext + AEAD.tag)
        for (const index of [0, 50, sealed.length - 1]) {
          const bad = sealed.slice()
          bad[index] = bad[index]! ^ 1
          assert.throws(() => p.aeadOpen(h(AEAD.key), h(AEAD.nonce), bad, h(AEAD.aad)), (err) => isErrorCode(err, 'ERR_DECRYPT'))
        }
        assert.throws(() => p.aeadOpen(h(AEAD.key), h(AEAD.nonce), sealed, h('00')), (err) => isErrorCode(err, 'ERR_DECRYPT'))
        assert.throws(() => p.aeadOpen(h(AEAD.key), h(AEAD.nonce), sealed.subarray(0, 10), h(AEAD.aad)), (err) => isErrorCode(err, 'ERR_DECRYPT'))
      })

      test('AEAD with empty plaintext and no AAD round trips', () => {
        const key = new Uint8Array(32).fill(1)
        const nonce = new Uint8Array(12)
        const sealed = p.aeadSeal(key, nonce, new Uint8Array(0))
        assert.equal(sealed.length, 16)
        assert.deepEqual(p.aeadOpen(key, nonce, sealed), new Uint8Array(0))
      })

      test('RFC 5869 HKDF-SHA-256 test cases 1-3', () => {
        for (const v of HKDF_VECTORS) assert.equal(toHex(p.hkdfSha256(v.ikm, v.salt, v.info, v.length)), v.okm, v.name)
      })

      test('RFC 4231 HMAC-SHA-256 cases 1 and 2; SHA-256 and SHA-512 of "abc"', () => {
        assert.equal(toHex(p.hmacSha256(new Uint8Array(20).fill(0x0b), utf8Encode('Hi There'))), 'b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7')
        assert.equal(toHex(p.hmacSha256(utf8Encode('Jefe'), utf8Encode('what do ya want for nothing?'))), '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843')
        assert.equal(toHex(p.sha256(utf8Encode('abc'))), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')
        assert.equal(toHex(p.sha512(utf8Encode('abc'))), ED25519_VECTORS[3]!.msg)
      })

      test('bad-length Ed25519 key or signature → verify returns false', () => {
        const v = ED25519_VECTORS[1]!
        assert.equal(p.ed25519Verify(h(v.pub).subarray(0, 31), h(v.msg), h(v.sig)), false)
        assert.equal(p.ed25519Verify(h(v.pub), h(v.msg), h(v.sig).subarray(0, 63)), false)
        assert.equal(p.ed25519Verify(new Uint8Array(0), h(v.msg), new Uint8Array(0)), false)
        assert.equal(p.ed25519Verify(h(v.pub), h(v.msg), new Uint8Array(65)), false)
      })

      test('small-order or non-canonical Ed25519 keys verify nothing', () => {
        const identity = new Uint8Array(32)
        identity[0] = 1
        const orderTwo = new Uint8Array(32).fill(0xff)
        orderTwo[0] = 0xec
        orderTwo[31] = 0x7f
        // R = identity, S = 0 satisfies the verification equation for any message under these keys
        const trivial = new Uint8Array(64)
        trivial[0] = 1
        for (const key of [identity, orderTwo]) {
          assert.equal(p.ed25519Verify(key, utf8Encode('anything'), trivial), false)
          assert.equal(p.ed25519Verify(key, new Uint8Array(0), trivial), false)
        }
        // y = p (non-canonical encoding of y = 0)
        const nonCanonical = fromHex('edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f')
        assert.equal(p.ed25519Verify(nonCanonical, utf8Encode('x'), trivial), false)
      })

      test('randomBytes returns the requested length and is not constant', () => {
        assert.equal(p.randomBytes(0).length, 0)
        assert.equal(p.randomBytes(70_000).length, 70_000)
        assert.notEqual(toHex(p.randomBytes(32)), toHex(p.randomBytes(32)))
      })
    })
  }

  test('results are plain Uint8Arrays, not Buffers', () => {
    for (const out of [native.sha256(new Uint8Array(1)), native.ed25519Sign(new Uint8Array(32), new Uint8Array(1)), native.hkdfSha256(new Uint8Array(1), new Uint8Array(0), new Uint8Array(0), 8)]) {
      assert.equal(Object.getPrototypeOf(out), Uint8Array.prototype)
    }
  })

  test('HKDF edge cases the native call refuses agree with noble (empty ikm, long info)', () => {
    const info = new Uint8Array(2000).fill(3)
    assert.equal(toHex(native.hkdfSha256(new Uint8Array(0), new Uint8Array(0), new Uint8Array(0), 64)), toHex(nobleCrypto.hkdfSha256(new Uint8Array(0), new Uint8Array(0), new Uint8Array(0), 64)))
    assert.equal(toHex(native.hkdfSha256(new Uint8Array(5), new Uint8Array(3), info, 100)), toHex(nobleCrypto.hkdfSha256(new Uint8Array(5), new Uint8Array(3), info, 100)))
  })
})

describe('native and noble agree on random inputs', () => {
  const key32 = fc.uint8Array({ minLength: 32, maxLength: 32 })
  const message = fc.uint8Array({ maxLength: 300 })

  test('Ed25519 public keys, signatures and verification', () => {
    fc.assert(fc.property(key32, message, (seed, msg) => {
      const pubA = native.ed25519PublicKey(seed)
      const pubB = nobleCrypto.ed25519PublicKey(seed)
      assert.equal(toHex(pubA), toHex(pubB))
      const sigA = native.ed25519Sign(seed, msg)
      assert.equal(toHex(sigA), toHex(nobleCrypto.ed25519Sign(seed, msg)))
      assert.equal(native.ed25519Verify(pubA, msg, sigA), true)
      assert.equal(nobleCrypto.ed25519Verify(pubA, msg, sigA), true)
    }), { numRuns: 150 })
  })

  test('X25519 public keys and shared secrets', () => {
    fc.assert(fc.property(key32, key32, (a, b) => {
      const pubB = nobleCrypto.x25519PublicKey(b)
      assert.equal(toHex(native.x25519PublicKey(b)), toHex(pubB))
      assert.equal(toHex(native.x25519(a, pubB)), toHex(nobleCrypto.x25519(a, pubB)))
    }), { numRuns: 150 })
  })

  test('X25519 on arbitrary 32-byte public values', () => {
    fc.assert(fc.property(key32, key32, (a, u) => {
      let resultA: string
      let resultB: string
      try { resultA = toHex(native.x25519(a, u)) } catch (err) { resultA = isErrorCode(err, 'ERR_BAD_KEY') ? 'bad' : 'other' }
      try { resultB = toHex(nobleCrypto.x25519(a, u)) } catch (err) { resultB = isErrorCode(err, 'ERR_BAD_KEY') ? 'bad' : 'other' }
      assert.equal(resultA, resultB)
    }), { numRuns: 150 })
  })

  test('ChaCha20-Poly1305 ciphertexts, and each opens the other', () => {
    fc.assert(fc.property(key32, fc.uint8Array({ minLength: 12, maxLength: 12 }), message, message, (key, nonce, pt, aad) => {
      const a = native.aeadSeal(key, nonce, pt, aad)
      const b = nobleCrypto.aeadSeal(key, nonce, pt, aad)
      assert.equal(toHex(a), toHex(b))
      assert.equal(toHex(native.aeadOpen(key, nonce, b, aad)), toHex(pt))
      assert.equal(toHex(nobleCrypto.aeadOpen(key, nonce, a, aad)), toHex(pt))
    }), { numRuns: 200 })
  })

  test('hashes, HMAC and HKDF', () => {
    fc.assert(fc.property(message, message, message, fc.integer({ min: 1, max: 255 }), (ikm, salt, info, length) => {
      assert.equal(toHex(native.sha256(ikm)), toHex(nobleCrypto.sha256(ikm)))
      assert.equal(toHex(native.sha512(ikm)), toHex(nobleCrypto.sha512(ikm)))
      assert.equal(toHex(native.hmacSha256(salt, ikm)), toHex(nobleCrypto.hmacSha256(salt, ikm)))
      assert.equal(toHex(native.hkdfSha256(ikm, salt, info, length)), toHex(nobleCrypto.hkdfSha256(ikm, salt, info, length)))
    }), { numRuns: 200 })
  })
})
