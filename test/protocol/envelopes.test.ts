import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import {
  createDevice, createUserIdentity, decodeControl, decodeEnvelope, decodeGroupEnvelope, decodeReceipt, decodeWireMessage,
  directConversationId, encodeControl, encodeEnvelope, encodeGroupEnvelope, encodeReceipt, encodeValue, encodeWireMessage,
  envelopeAssociatedData, groupEnvelopeAssociatedData, groupEnvelopeSigningBytes, groupIdFromGenesis, isErrorCode, MAX_CIPHERTEXT_BYTES,
  MAX_GAP_RANGE, newMessageId, defaultCrypto, toHex, type ControlMessage, type DirectEnvelope, type GroupEnvelope, type Receipt
} from '../../protocol/index.js'

const has = (code: string) => (err: unknown): boolean => isErrorCode(err, code)
const alice = createUserIdentity()
const bob = createUserIdentity()
const aPhone = createDevice()
const bPhone = createDevice()
const conv = directConversationId(alice.userId, bob.userId)

function sampleEnvelope (): DirectEnvelope {
  return {
    kind: 'direct',
    id: newMessageId(),
    from: { user: alice.userId, device: aPhone.deviceId },
    to: { user: bob.userId, device: bPhone.deviceId },
    conv,
    seq: 1,
    sentAt: 1_800_000_000_000,
    type: 'prekey',
    init: { identityKey: aPhone.exchangePublicKey, ephemeralKey: new Uint8Array(32).fill(4), signedPrekeyId: 7, oneTimePrekeyId: 12 },
    header: new Uint8Array(41).fill(1),
    ciphertext: new Uint8Array(100).fill(2)
  }
}

describe('1:1 envelopes', () => {
  test('round trip, with and without X3DH init', () => {
    const e = sampleEnvelope()
    assert.deepEqual(decodeEnvelope(encodeEnvelope(e)), e)
    const { init: _init, ...rest } = e
    const m: DirectEnvelope = { ...rest, type: 'message', seq: 2 }
    assert.deepEqual(decodeEnvelope(encodeEnvelope(m)), m)
    assert.deepEqual(decodeWireMessage(encodeWireMessage(m)), m)
  })

  test('type and init must agree', () => {
    const e = sampleEnvelope()
    assert.throws(() => decodeEnvelope(encodeEnvelope({ ...e, type: 'message' })), has('ERR_MALFORMED'))
    const { init: _init, ...rest } = e
    assert.throws(() => decodeEnvelope(encodeEnvelope({ ...rest, type: 'prekey' })), has('ERR_MALFORMED'))
  })

  test('limits: oversized ciphertext, seq 0, bad ids, unknown version', () => {
    const e = sampleEnvelope()
    assert.throws(() => decodeEnvelope(encodeEnvelope({ ...e, ciphertext: new Uint8Array(MAX_CIPHERTEXT_BYTES + 1) })), has('ERR_TOO_LARGE'))
    assert.throws(() => decodeEnvelope(encodeEnvelope({ ...e, seq: 0 })), has('ERR_MALFORMED'))
    assert.throws(() => decodeEnvelope(encodeEnvelope({ ...e, header: new Uint8Array(257) })), has('ERR_TOO_LARGE'))
    assert.throws(() => decodeEnvelope(encodeValue({ v: 2, kind: 'direct' })), has('ERR_UNSUPPORTED_VERSION'))
    assert.throws(() => decodeEnvelope(encodeValue({ v: 1, kind: 'direct', id: 'nope' })), has('ERR_MALFORMED'))
    assert.throws(() => decodeEnvelope(new Uint8Array(300 * 1024)), has('ERR_TOO_LARGE'))
  })

  test('associated data covers every field but the ciphertext', () => {
    const e = sampleEnvelope()
    const ad = toHex(envelopeAssociatedData(e))
    const withOther: DirectEnvelope = { ...e, ciphertext: new Uint8Array(3) }
    assert.equal(toHex(envelopeAssociatedData(withOther)), ad)
    const variants: DirectEnvelope[] = [
      { ...e, id: newMessageId() },
      { ...e, seq: 2 },
      { ...e, sentAt: e.sentAt + 1 },
      { ...e, to: { ...e.to, device: aPhone.deviceId } },
      { ...e, from: { ...e.from, user: bob.userId } },
      { ...e, header: new Uint8Array(41) },
      { ...e, init: { ...e.init!, oneTimePrekeyId: undefined } },
      { ...e, init: { ...e.init!, signedPrekeyId: 8 } }
    ]
    for (const v of variants) assert.notEqual(toHex(envelopeAssociatedData(v)), ad)
    // decoding does not change it: the AD is computed from fields, not from wire bytes
    assert.equal(toHex(envelopeAssociatedData(decodeEnvelope(encodeEnvelope(e)))), ad)
  })
})

describe('group envelopes', () => {
  const group = groupIdFromGenesis(new Uint8Array([9]))
  const unsigned = {
    kind: 'group' as const,
    id: newMessageId(),
    group,
    from: { user: alice.userId, device: aPhone.deviceId },
    senderKeyId: 3,
    iteration: 42,
    sentAt: 1_800_000_000_000,
    ciphertext: new Uint8Array(64).fill(5)
  }
  const env: GroupEnvelope = { ...unsigned, sig: defaultCrypto.ed25519Sign(aPhone.signingSeed, groupEnvelopeSigningBytes(unsigned)) }

  test('round trip and signature over the signing bytes', () => {
    const decoded = decodeGroupEnvelope(encodeGroupEnvelope(env))
    assert.deepEqual(decoded, env)
    assert.equal(defaultCrypto.ed25519Verify(aPhone.signingPublicKey, groupEnvelopeSigningBytes(decoded), decoded.sig), true)
    assert.equal(defaultCrypto.ed25519Verify(aPhone.signingPublicKey, groupEnvelopeSigningBytes({ ...decoded, iteration: 43 }), decoded.sig), false)
    assert.deepEqual(decodeWireMessage(encodeGroupEnvelope(env)), env)
  })

  test('associated data excludes ciphertext and signature', () => {
    const withOther: GroupEnvelope = { ...env, ciphertext: new Uint8Array(1) }
    assert.equal(toHex(groupEnvelopeAssociatedData(env)), toHex(groupEnvelopeAssociatedData(withOther)))
    assert.notEqual(toHex(groupEnvelopeAssociatedData(env)), toHex(groupEnvelopeAssociatedData({ ...env, senderKeyId: 4 })))
  })

  test('a 1:1 envelope is not a group envelope', () => {
    assert.throws(() => decodeGroupEnvelope(encodeEnvelope(sampleEnvelope())), has('ERR_MALFORMED'))
  })
})

describe('receipts and control messages', () => {
  test('receipts round trip; empty or oversized id lists are refused', () => {
    const r: Receipt = { kind: 'receipt', type: 'read', from: { user: bob.userId, device: bPhone.deviceId }, conv, ids: [newMessageId(), newMessageId()], at: 5 }
    assert.deepEqual(decodeReceipt(encodeReceipt(r)), r)
    assert.deepEqual(decodeWireMessage(encodeReceipt(r)), r)
    assert.throws(() => decodeReceipt(encodeReceipt({ ...r, ids: [] })), has('ERR_MALFORMED'))
    assert.throws(() => decodeReceipt(encodeReceipt({ ...r, ids: Array.from({ length: 257 }, () => newMessageId()) })), has('ERR_TOO_LARGE'))
  })

  test('ack, nack and gap round trip', () => {
    const messages: ControlMessage[] = [
      { kind: 'control', type: 'ack', ids: [newMessageId()] },
      { kind: 'control', type: 'nack', id: newMessageId(), code: 'ERR_TOO_LARGE', message: 'too big' },
      { kind: 'control', type: 'nack', id: newMessageId(), code: 'ERR_STALE' },
      { kind: 'control', type: 'gap', conv, sender: aPhone.deviceId, fromSeq: 3, toSeq: 9 }
    ]
    for (const m of messages) {
      assert.deepEqual(decodeControl(encodeControl(m)), m)
      assert.deepEqual(decodeWireMessage(encodeWireMessage(m)), m)
    }
  })

  test('gap ranges are bounded and ordered', () => {
    const gap = { kind: 'control' as const, type: 'gap' as const, conv, sender: aPhone.deviceId, fromSeq: 10, toSeq: 9 }
    assert.throws(() => decodeControl(encodeControl(gap)), has('ERR_MALFORMED'))
    assert.throws(() => decodeControl(encodeControl({ ...gap, fromSeq: 1, toSeq: MAX_GAP_RANGE + 1 })), has('ERR_TOO_LARGE'))
  })

  test('unknown kinds → ERR_MALFORMED', () => {
    assert.throws(() => decodeWireMessage(encodeValue({ v: 1, kind: 'other' })), has('ERR_MALFORMED'))
  })
})
