import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { nobleCrypto } from '../../protocol/crypto/index.js'
import {
  createInitiatorSession, createPreKeyBundle, createResponderSession, generateOneTimePreKeys, generateSignedPreKey,
  nextHeader, ratchetDecrypt, ratchetEncrypt, x3dhInitiate, x3dhRespond
} from '../../protocol/e2e/index.js'
import type { DeviceIdentityKeys } from '../../protocol/e2e/index.js'
import { decodeEnvelope, encodeEnvelope, envelopeAssociatedData } from '../../protocol/envelopes.js'
import type { DirectEnvelope } from '../../protocol/envelopes.js'
import { createDevice, createUserIdentity } from '../../protocol/identity.js'
import type { DeviceIdentity } from '../../protocol/identity.js'
import { directConversationId, newMessageId } from '../../protocol/ids.js'

const te = new TextEncoder()

/** The E2E view of a protocol device: its Ed25519 key and its X25519 exchange key as IK. */
function e2eKeys (d: DeviceIdentity): DeviceIdentityKeys {
  return { signingPrivateKey: d.signingSeed, signingPublicKey: d.signingPublicKey, identityPrivateKey: d.exchangePrivateKey, identityPublicKey: d.exchangePublicKey }
}

describe('E2E inside the 1:1 envelope', () => {
  test('a prekey envelope starts a session through the codec; rewriting any outer field breaks decryption', () => {
    const crypto = nobleCrypto
    const alice = createUserIdentity(crypto)
    const bob = createUserIdentity(crypto)
    const aPhone = createDevice(crypto)
    const bPhone = createDevice(crypto)
    const spk = generateSignedPreKey(e2eKeys(bPhone), 3, crypto)
    const [opk] = generateOneTimePreKeys(40, 1, crypto)
    assert.ok(opk !== undefined)

    const init = x3dhInitiate(e2eKeys(aPhone), createPreKeyBundle(e2eKeys(bPhone), spk, opk), crypto)
    const session = createInitiatorSession(init, crypto)
    const head: Omit<DirectEnvelope, 'ciphertext'> = {
      kind: 'direct',
      id: newMessageId(crypto),
      from: { user: alice.userId, device: aPhone.deviceId },
      to: { user: bob.userId, device: bPhone.deviceId },
      conv: directConversationId(alice.userId, bob.userId, crypto),
      seq: 1,
      sentAt: 1_800_000_000_000,
      type: 'prekey',
      init: {
        identityKey: init.initialMessage.identityKey,
        ephemeralKey: init.initialMessage.ephemeralKey,
        signedPrekeyId: init.initialMessage.signedPreKeyId,
        oneTimePrekeyId: init.initialMessage.oneTimePreKeyId
      },
      header: new Uint8Array(0)
    }
    // The envelope's AD covers the ratchet header, so the sender asks for it before encrypting.
    const withHeader = { ...head, header: nextHeader(session) }
    const message = ratchetEncrypt(session, te.encode('hi bob'), envelopeAssociatedData(withHeader), crypto)
    assert.deepEqual(message.header, withHeader.header)
    const wire = encodeEnvelope({ ...withHeader, header: message.header, ciphertext: message.ciphertext })

    // Bob's side: decode, X3DH from the envelope's init, decrypt with the envelope's AD.
    const respond = (e: DirectEnvelope): Uint8Array => {
      assert.ok(e.init !== undefined)
      const resp = x3dhRespond({ identity: e2eKeys(bPhone), signedPreKey: spk, oneTimePreKey: opk }, {
        identityKey: e.init.identityKey,
        ephemeralKey: e.init.ephemeralKey,
        signedPreKeyId: e.init.signedPrekeyId,
        oneTimePreKeyId: e.init.oneTimePrekeyId
      }, crypto)
      assert.equal(resp.consumedOneTimePreKeyId, 40)
      const b = createResponderSession(resp, spk)
      const { ciphertext, ...rest } = e
      return ratchetDecrypt(b, { header: e.header, ciphertext }, envelopeAssociatedData(rest), crypto)
    }
    const received = decodeEnvelope(wire)
    assert.deepEqual(respond(received), te.encode('hi bob'))

    // A node that rewrites the counter, the sender or the conversation makes decryption fail.
    for (const tampered of [
      { ...received, seq: 2 },
      { ...received, sentAt: received.sentAt + 1 },
      { ...received, from: { ...received.from, device: bPhone.deviceId } }
    ]) {
      assert.throws(() => respond(tampered), { name: 'ProtocolError', code: 'ERR_DECRYPT' })
    }
  })
})
