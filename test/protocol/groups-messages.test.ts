import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import {
  certifyDevice, createDevice, createReceiverSenderKey, createSenderKey, createUserIdentity, decodeSenderKeyDistribution, encodeGroupEnvelope,
  encodeSenderKeyDistribution, groupIdFromGenesis, newMessageId, ProtocolError, rotateSenderKey, senderKeyDistribution, toHex, utf8Encode,
  MAX_ENVELOPE_BYTES
} from '../../protocol/index.js'
import {
  decodeGroupContent, decodeGroupTraffic, decodeRoomEnvelope, encodeGroupContent, encodeRoomEnvelope, gossipMessageId, groupIdFromTopic,
  groupTopic, MAX_ROOM_TEXT_LENGTH, openGroupEnvelope, sealGroupEnvelope, signRoomEnvelope, verifyGroupEnvelope, verifyRoomEnvelope, verifyRoomSender
} from '../../protocol/groups/index.js'
import { code } from '../helpers/errors.js'

const NOW = 1_800_000_000_000

const group = groupIdFromGenesis(utf8Encode('test group'))
const user = createUserIdentity(undefined, NOW)
const device = createDevice(undefined, NOW)
const from = { user: user.userId, device: device.deviceId }
const cert = certifyDevice(user, device, { now: NOW })

describe('topics and gossip ids', () => {
  test('topic round trip', () => {
    assert.equal(groupTopic(group), `/talaria/g/${group}`)
    assert.equal(groupIdFromTopic(groupTopic(group)), group)
    assert.equal(groupIdFromTopic('/talaria/g/nope'), undefined)
    assert.equal(groupIdFromTopic('/other/' + group), undefined)
  })

  test('gossip message id: first 20 bytes of SHA-256', () => {
    const id = gossipMessageId(utf8Encode('abc'))
    assert.equal(toHex(id), 'ba7816bf8f01cfea414140de5dae2223b00361a3')
  })
})

describe('group content', () => {
  test('round trip and limits', () => {
    const c = { type: 'text' as const, id: newMessageId(), text: 'hi', sentAt: NOW, seq: 1 }
    assert.deepEqual(decodeGroupContent(encodeGroupContent(c)), c)
    assert.equal(code(() => encodeGroupContent({ ...c, seq: 0 })), 'ERR_MALFORMED')
    assert.equal(code(() => encodeGroupContent({ ...c, text: 'x'.repeat(64 * 1024 + 1) })), 'ERR_TOO_LARGE')
  })
})

describe('group envelopes', () => {
  test('seal, verify, open; the sender key advances', () => {
    const sk = createSenderKey()
    const receiver = createReceiverSenderKey(decodeSenderKeyDistribution(encodeSenderKeyDistribution(senderKeyDistribution(sk))))
    const keyId = sk.keyId
    const first = sealGroupEnvelope({ group, from, text: 'one', seq: 1, sentAt: NOW }, sk, device.signingSeed)
    const second = sealGroupEnvelope({ group, from, text: 'two', seq: 2, sentAt: NOW + 1 }, sk, device.signingSeed)
    assert.equal(first.envelope.senderKeyId, keyId)
    assert.equal(first.envelope.iteration, 0)
    assert.equal(second.envelope.iteration, 1)
    assert.equal(sk.iteration, 2)
    const decoded = decodeGroupTraffic(second.bytes)
    assert.deepEqual(decoded, second.envelope)
    verifyGroupEnvelope(second.envelope, device.signingPublicKey)
    // out of order is fine within the skip window
    assert.deepEqual(openGroupEnvelope(second.envelope, receiver), { type: 'text', id: second.envelope.id, text: 'two', sentAt: NOW + 1, seq: 2 })
    assert.equal(openGroupEnvelope(first.envelope, receiver).text, 'one')
    assert.equal(code(() => openGroupEnvelope(first.envelope, receiver)), 'ERR_REPLAY')
  })

  test('a tampered envelope fails verification and decryption', () => {
    const sk = createSenderKey()
    const receiver = createReceiverSenderKey(senderKeyDistribution(sk))
    const { envelope } = sealGroupEnvelope({ group, from, text: 'x', seq: 1, sentAt: NOW }, sk, device.signingSeed)
    const moved = { ...envelope, sentAt: NOW + 1 }
    assert.equal(code(() => verifyGroupEnvelope(moved, device.signingPublicKey)), 'ERR_BAD_SIGNATURE')
    assert.equal(code(() => openGroupEnvelope(moved, receiver)), 'ERR_BAD_SIGNATURE')
    assert.equal(code(() => openGroupEnvelope({ ...envelope, iteration: 5 }, receiver)), 'ERR_MALFORMED')
    const other = createDevice()
    assert.equal(code(() => verifyGroupEnvelope(envelope, other.signingPublicKey)), 'ERR_KEY_MISMATCH')
    assert.equal(openGroupEnvelope(envelope, receiver).text, 'x')
  })

  test('a removed member with an old receiver state cannot open messages after rotation', () => {
    const sk = createSenderKey()
    const removed = createReceiverSenderKey(senderKeyDistribution(sk))
    const rotated = rotateSenderKey(sk)
    const staying = createReceiverSenderKey(senderKeyDistribution(rotated))
    const { envelope } = sealGroupEnvelope({ group, from, text: 'after', seq: 5, sentAt: NOW }, rotated, device.signingSeed)
    assert.equal(code(() => openGroupEnvelope(envelope, removed)), 'ERR_BAD_KEY')
    // even forcing the old key id on the envelope does not help: the ciphertext names the new one
    assert.equal(code(() => openGroupEnvelope({ ...envelope, senderKeyId: removed.keyId }, removed)), 'ERR_MALFORMED')
    assert.equal(openGroupEnvelope(envelope, staying).text, 'after')
  })
})

describe('room envelopes', () => {
  test('sign, encode, decode, verify', () => {
    const { envelope, bytes } = signRoomEnvelope({ room: group, cert, text: 'hello room', sentAt: NOW }, device.signingSeed)
    assert.deepEqual(decodeRoomEnvelope(bytes), envelope)
    assert.deepEqual(decodeGroupTraffic(bytes), envelope)
    assert.deepEqual(encodeRoomEnvelope(envelope), bytes)
    verifyRoomEnvelope(envelope, device.signingPublicKey)
    verifyRoomSender(envelope)
    assert.deepEqual(envelope.from, from)
  })

  test('the certificate it carries lets anyone check the sender, and only the sender', () => {
    const { envelope } = signRoomEnvelope({ room: group, cert, text: 'hello', sentAt: NOW }, device.signingSeed)
    // another device's valid certificate does not vouch for this sender
    const other = createDevice(undefined, NOW)
    const otherCert = certifyDevice(user, other, { now: NOW })
    assert.equal(code(() => verifyRoomSender({ ...envelope, cert: otherCert })), 'ERR_KEY_MISMATCH')
    // nor does a certificate of this device from another user's root key
    const mallory = createUserIdentity(undefined, NOW)
    assert.equal(code(() => verifyRoomSender({ ...envelope, cert: { ...cert, rootKey: mallory.rootPublicKey } })), 'ERR_KEY_MISMATCH')
    // a certificate whose root signature is forged
    assert.equal(code(() => verifyRoomSender({ ...envelope, cert: { ...cert, issuedAt: NOW + 1 } })), 'ERR_BAD_SIGNATURE')
    // a message signed by another key under this certificate
    const forged = signRoomEnvelope({ room: group, cert: otherCert, text: 'hello', sentAt: NOW }, other.signingSeed).envelope
    assert.equal(code(() => verifyRoomSender({ ...forged, from, cert })), 'ERR_BAD_SIGNATURE')
    assert.equal(code(() => verifyRoomSender({ ...envelope, text: 'hellO' })), 'ERR_BAD_SIGNATURE')
  })

  test('tampering and wrong keys are caught', () => {
    const { envelope } = signRoomEnvelope({ room: group, cert, text: 'hello', sentAt: NOW }, device.signingSeed)
    assert.equal(code(() => verifyRoomEnvelope({ ...envelope, text: 'hellO' }, device.signingPublicKey)), 'ERR_BAD_SIGNATURE')
    assert.equal(code(() => verifyRoomEnvelope({ ...envelope, sentAt: NOW + 1 }, device.signingPublicKey)), 'ERR_BAD_SIGNATURE')
    assert.equal(code(() => verifyRoomEnvelope(envelope, createDevice().signingPublicKey)), 'ERR_KEY_MISMATCH')
    assert.equal(code(() => verifyRoomEnvelope(envelope, new Uint8Array(3))), 'ERR_BAD_KEY')
  })

  test('text limit', () => {
    assert.equal(code(() => signRoomEnvelope({ room: group, cert, text: 'x'.repeat(MAX_ROOM_TEXT_LENGTH + 1) }, device.signingSeed)), 'ERR_TOO_LARGE')
    const { bytes } = signRoomEnvelope({ room: group, cert, text: '€'.repeat(MAX_ROOM_TEXT_LENGTH) }, device.signingSeed)
    assert.equal(decodeRoomEnvelope(bytes).text.length, MAX_ROOM_TEXT_LENGTH)
  })

  test('oversize traffic is ERR_TOO_LARGE before parsing', () => {
    assert.equal(code(() => decodeGroupTraffic(new Uint8Array(MAX_ENVELOPE_BYTES + 1))), 'ERR_TOO_LARGE')
    assert.equal(code(() => decodeRoomEnvelope(new Uint8Array(MAX_ENVELOPE_BYTES))), 'ERR_TOO_LARGE')
  })
})

describe('traffic decoding fuzz', () => {
  const sk = createSenderKey()
  const samples = [
    sealGroupEnvelope({ group, from, text: 'x', seq: 1, sentAt: NOW }, sk, device.signingSeed).bytes,
    signRoomEnvelope({ room: group, cert, text: 'y', sentAt: NOW }, device.signingSeed).bytes
  ]

  test('random bytes only ever throw ProtocolError', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => {
      for (const decode of [decodeGroupTraffic, decodeRoomEnvelope]) {
        try { decode(bytes) } catch (err) { assert.ok(err instanceof ProtocolError, String(err)) }
      }
    }), { numRuns: 2000 })
  })

  test('mutated envelopes only ever throw ProtocolError', () => {
    fc.assert(fc.property(fc.nat(1), fc.nat(10_000), fc.integer({ min: 1, max: 255 }), (which, at, x) => {
      const bytes = samples[which]!.slice()
      bytes[at % bytes.length]! ^= x
      for (const decode of [decodeGroupTraffic, decodeRoomEnvelope]) {
        try { decode(bytes) } catch (err) { assert.ok(err instanceof ProtocolError, String(err)) }
      }
    }), { numRuns: 2000 })
  })

  test('the group envelope encoder and decoder agree', () => {
    const env = decodeGroupTraffic(samples[0]!)
    assert.equal(env.kind, 'group')
    if (env.kind === 'group') assert.deepEqual(encodeGroupEnvelope(env), samples[0])
  })
})
