import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { nativeCrypto, nobleCrypto } from '../../protocol/crypto/index.js'
import type { CryptoProvider } from '../../protocol/crypto/index.js'
import {
  createInitiatorSession, createPreKeyBundle, createResponderSession, encodeX25519PublicKey, generateDeviceIdentityKeys,
  generateOneTimePreKeys, generateSignedPreKey, ratchetDecrypt, ratchetEncrypt, verifyPreKeyBundle, x3dhInitiate, x3dhRespond
} from '../../protocol/e2e/index.js'
import type { PreKeyBundle } from '../../protocol/e2e/index.js'

// Every case runs on each provider present (native is absent outside Node.js), and across them.
const providers: CryptoProvider[] = [nobleCrypto, ...(nativeCrypto === undefined ? [] : [nativeCrypto])]

for (const aliceCrypto of providers) {
  for (const bobCrypto of providers) {
    describe(`X3DH (initiator ${aliceCrypto.name}, responder ${bobCrypto.name})`, () => {
      test('both sides derive the same secret and AD with a one-time prekey, which is reported consumed', () => {
        const alice = generateDeviceIdentityKeys(aliceCrypto)
        const bob = generateDeviceIdentityKeys(bobCrypto)
        const spk = generateSignedPreKey(bob, 7, bobCrypto)
        const [opk] = generateOneTimePreKeys(100, 1, bobCrypto)
        assert.ok(opk !== undefined)
        const init = x3dhInitiate(alice, createPreKeyBundle(bob, spk, opk), aliceCrypto)
        assert.equal(init.initialMessage.oneTimePreKeyId, 100)
        assert.equal(init.initialMessage.signedPreKeyId, 7)
        const resp = x3dhRespond({ identity: bob, signedPreKey: spk, oneTimePreKey: opk }, init.initialMessage, bobCrypto)
        assert.equal(init.sharedSecret.length, 32)
        assert.deepEqual(resp.sharedSecret, init.sharedSecret)
        assert.deepEqual(resp.associatedData, init.associatedData)
        assert.deepEqual(init.associatedData, new Uint8Array([...encodeX25519PublicKey(alice.identityPublicKey), ...encodeX25519PublicKey(bob.identityPublicKey)]))
        assert.equal(resp.consumedOneTimePreKeyId, 100)
        // Once deleted, the prekey is gone: the same initial message can no longer be answered.
        assert.throws(() => x3dhRespond({ identity: bob, signedPreKey: spk }, init.initialMessage, bobCrypto), { name: 'ProtocolError', code: 'ERR_BAD_KEY' })
      })

      test('both sides derive the same secret without a one-time prekey, and it seeds a working session', () => {
        const alice = generateDeviceIdentityKeys(aliceCrypto)
        const bob = generateDeviceIdentityKeys(bobCrypto)
        const spk = generateSignedPreKey(bob, 1, bobCrypto)
        const init = x3dhInitiate(alice, createPreKeyBundle(bob, spk), aliceCrypto)
        assert.equal(init.initialMessage.oneTimePreKeyId, undefined)
        const resp = x3dhRespond({ identity: bob, signedPreKey: spk }, init.initialMessage, bobCrypto)
        assert.deepEqual(resp.sharedSecret, init.sharedSecret)
        assert.equal(resp.consumedOneTimePreKeyId, undefined)
        // The X3DH outputs seed a working ratchet session in both directions.
        const a = createInitiatorSession(init, aliceCrypto)
        const b = createResponderSession(resp, spk)
        const hello = new TextEncoder().encode('hello')
        assert.deepEqual(ratchetDecrypt(b, ratchetEncrypt(a, hello, undefined, aliceCrypto), undefined, bobCrypto), hello)
        assert.deepEqual(ratchetDecrypt(a, ratchetEncrypt(b, hello, undefined, bobCrypto), undefined, aliceCrypto), hello)
      })

      test('a tampered signed prekey, id, identity key or signature is rejected as ERR_BAD_SIGNATURE', () => {
        const alice = generateDeviceIdentityKeys(aliceCrypto)
        const bob = generateDeviceIdentityKeys(bobCrypto)
        const spk = generateSignedPreKey(bob, 3, bobCrypto)
        const bundle = createPreKeyBundle(bob, spk)
        verifyPreKeyBundle(bundle, aliceCrypto)
        const flipBit = (bytes: Uint8Array, bit: number): Uint8Array => {
          const out = bytes.slice()
          out[(bit >> 3) % out.length] = (out[(bit >> 3) % out.length] ?? 0) ^ (1 << (bit & 7))
          return out
        }
        fc.assert(fc.property(fc.constantFrom('signedPreKey', 'identityKey', 'signedPreKeySignature', 'signedPreKeyId'), fc.nat({ max: 511 }), (field, bit) => {
          const tampered: PreKeyBundle = field === 'signedPreKeyId'
            ? { ...bundle, signedPreKeyId: (bundle.signedPreKeyId ^ (1 << (bit % 32))) >>> 0 }
            : { ...bundle, [field]: flipBit(bundle[field], bit) }
          assert.throws(() => x3dhInitiate(alice, tampered, aliceCrypto), { name: 'ProtocolError', code: 'ERR_BAD_SIGNATURE' })
        }), { numRuns: 40 })
        // A bundle signed by another device's key does not verify either.
        const mallory = generateDeviceIdentityKeys(bobCrypto)
        assert.throws(() => verifyPreKeyBundle({ ...bundle, signingKey: mallory.signingPublicKey }, aliceCrypto), { name: 'ProtocolError', code: 'ERR_BAD_SIGNATURE' })
      })
    })
  }
}

describe('X3DH input checks', () => {
  test('malformed bundles and initial messages fail with typed errors', () => {
    const alice = generateDeviceIdentityKeys()
    const bob = generateDeviceIdentityKeys()
    const spk = generateSignedPreKey(bob, 1)
    const bundle = createPreKeyBundle(bob, spk)
    assert.throws(() => verifyPreKeyBundle({ ...bundle, signedPreKey: new Uint8Array(31) }), { name: 'ProtocolError', code: 'ERR_MALFORMED' })
    assert.throws(() => verifyPreKeyBundle({ ...bundle, signedPreKeyId: -1 }), { name: 'ProtocolError', code: 'ERR_MALFORMED' })
    const init = x3dhInitiate(alice, bundle)
    assert.throws(() => x3dhRespond({ identity: bob, signedPreKey: spk }, { ...init.initialMessage, ephemeralKey: new Uint8Array(5) }), { name: 'ProtocolError', code: 'ERR_MALFORMED' })
    assert.throws(() => x3dhRespond({ identity: bob, signedPreKey: spk }, { ...init.initialMessage, signedPreKeyId: 2 }), { name: 'ProtocolError', code: 'ERR_BAD_KEY' })
    // A low-order ephemeral key gives an all-zero DH output, which the provider refuses.
    assert.throws(() => x3dhRespond({ identity: bob, signedPreKey: spk }, { ...init.initialMessage, ephemeralKey: new Uint8Array(32) }), { name: 'ProtocolError', code: 'ERR_BAD_KEY' })
  })
})
