import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { nativeCrypto, nobleCrypto } from '../../protocol/crypto/index.js'
import type { CryptoProvider } from '../../protocol/crypto/index.js'
import { ProtocolError } from '../../protocol/errors.js'
import {
  SENDER_KEY_MAX_SKIP, createReceiverSenderKey, createSenderKey, decodeGroupMessage, decodeSenderKeyDistribution,
  deserializeReceiverSenderKey, deserializeSenderKey, encodeGroupMessage, encodeSenderKeyDistribution, groupDecrypt,
  groupEncrypt, rotateSenderKey, senderKeyDistribution, serializeReceiverSenderKey, serializeSenderKey
} from '../../protocol/e2e/index.js'
import type { GroupMessage, ReceiverSenderKeyState, SenderKeyState } from '../../protocol/e2e/index.js'

// Every case runs on each provider present (native is absent outside Node.js), and across them.
const providers: CryptoProvider[] = [nobleCrypto, ...(nativeCrypto === undefined ? [] : [nativeCrypto])]

const te = new TextEncoder()
const GROUP_AD = te.encode('group:g1')

interface Member {
  name: string
  own: SenderKeyState
  /** Receiver states by sender name, then by key id (old keys stay until the application drops them). */
  peers: Map<string, Map<number, ReceiverSenderKeyState>>
}

/** The distribution travels as bytes, as it would inside a 1:1 ratchet message. */
function distribute (from: Member, to: Member[]): void {
  const bytes = encodeSenderKeyDistribution(senderKeyDistribution(from.own))
  for (const m of to) {
    if (m === from) continue
    const byKey = m.peers.get(from.name) ?? new Map<number, ReceiverSenderKeyState>()
    const d = decodeSenderKeyDistribution(bytes)
    byKey.set(d.keyId, createReceiverSenderKey(d))
    m.peers.set(from.name, byKey)
  }
}

/** Decrypts with the receiver state named by the message's key id, or fails as an unknown key would. */
function read (reader: Member, senderName: string, wire: Uint8Array, crypto: CryptoProvider): Uint8Array {
  const msg = decodeGroupMessage(wire)
  const state = reader.peers.get(senderName)?.get(msg.keyId)
  if (state === undefined) throw new ProtocolError('ERR_BAD_KEY', 'no sender key with this id')
  return groupDecrypt(state, msg, GROUP_AD, crypto)
}

for (const crypto of providers) {
  describe(`sender keys (${crypto.name})`, () => {
    test('10 members read each other; after a removal and rotation the removed member reads nothing new', () => {
      const members: Member[] = Array.from({ length: 10 }, (_, i) => ({ name: `m${i}`, own: createSenderKey(crypto), peers: new Map() }))
      for (const m of members) distribute(m, members)

      for (let round = 0; round < 3; round++) {
        for (const sender of members) {
          const pt = te.encode(`${sender.name} round ${round}`)
          const wire = encodeGroupMessage(groupEncrypt(sender.own, pt, GROUP_AD, crypto))
          for (const r of members) if (r !== sender) assert.deepEqual(read(r, sender.name, wire, crypto), pt)
        }
      }

      const removed = members[9] as Member
      const remaining = members.slice(0, 9)
      const oldKeyIds = new Map(remaining.map((m) => [m.name, m.own.keyId]))
      for (const m of remaining) {
        m.own = rotateSenderKey(m.own, crypto)
        assert.notEqual(m.own.keyId, oldKeyIds.get(m.name))
        distribute(m, remaining)
      }

      for (const sender of remaining) {
        const pt = te.encode(`${sender.name} after removal`)
        const msg = groupEncrypt(sender.own, pt, GROUP_AD, crypto)
        const wire = encodeGroupMessage(msg)
        for (const r of remaining) if (r !== sender) assert.deepEqual(read(r, sender.name, wire, crypto), pt)
        // The removed member holds only the old key: the new key id is unknown to it.
        assert.throws(() => read(removed, sender.name, wire, crypto), { name: 'ProtocolError', code: 'ERR_BAD_KEY' })
        // Even if it relabels the message with the old key id, its old state cannot verify or open it.
        const oldState = removed.peers.get(sender.name)?.get(oldKeyIds.get(sender.name) ?? -1)
        assert.ok(oldState !== undefined)
        const relabeled: GroupMessage = { ...msg, keyId: oldState.keyId }
        assert.throws(() => groupDecrypt(oldState, relabeled, GROUP_AD, crypto), { name: 'ProtocolError', code: 'ERR_BAD_SIGNATURE' })
      }
    })

    test('a forged or altered group message is rejected before decryption, and the state is unchanged', () => {
      const sender = createSenderKey(crypto)
      const receiver = createReceiverSenderKey(senderKeyDistribution(sender))
      const genuine = groupEncrypt(sender, te.encode('pay 10'), GROUP_AD, crypto)
      // Someone who knows the chain key (any member) but not the sender's signing key.
      const forger = { ...sender, iteration: 0, chainKey: receiver.chainKey, signingPrivateKey: crypto.randomBytes(32) }
      const forged = groupEncrypt(forger, te.encode('pay 1000'), GROUP_AD, crypto)
      const before = serializeReceiverSenderKey(receiver)
      assert.throws(() => groupDecrypt(receiver, forged, GROUP_AD, crypto), { name: 'ProtocolError', code: 'ERR_BAD_SIGNATURE' })
      fc.assert(fc.property(fc.constantFrom('ciphertext', 'signature', 'ad', 'iteration'), fc.nat({ max: 4095 }), (part, bit) => {
        const flip = (bytes: Uint8Array): Uint8Array => {
          const out = bytes.slice()
          const b = bit % (out.length * 8)
          out[b >> 3] = (out[b >> 3] ?? 0) ^ (1 << (b & 7))
          return out
        }
        const msg: GroupMessage = {
          ...genuine,
          ciphertext: part === 'ciphertext' ? flip(genuine.ciphertext) : genuine.ciphertext,
          signature: part === 'signature' ? flip(genuine.signature) : genuine.signature,
          iteration: part === 'iteration' ? genuine.iteration + 1 + (bit % 5) : genuine.iteration
        }
        assert.throws(() => groupDecrypt(receiver, msg, part === 'ad' ? flip(GROUP_AD) : GROUP_AD, crypto), { name: 'ProtocolError', code: 'ERR_BAD_SIGNATURE' })
      }), { numRuns: 40 })
      assert.deepEqual(serializeReceiverSenderKey(receiver), before)
      assert.deepEqual(groupDecrypt(receiver, genuine, GROUP_AD, crypto), te.encode('pay 10'))
    })

    test('out of order within bounds decrypts once, duplicates are ERR_REPLAY, big gaps ERR_TOO_MANY_SKIPPED', () => {
      fc.assert(fc.property(fc.shuffledSubarray(Array.from({ length: 30 }, (_, i) => i), { minLength: 1 }), fc.boolean(), (order, persist) => {
        const sender = createSenderKey(crypto)
        let receiver = createReceiverSenderKey(senderKeyDistribution(sender))
        const msgs = Array.from({ length: 30 }, (_, i) => groupEncrypt(sender, te.encode(`g${i}`), GROUP_AD, crypto))
        for (const i of order) {
          assert.deepEqual(groupDecrypt(receiver, msgs[i] as GroupMessage, GROUP_AD, crypto), te.encode(`g${i}`))
          if (persist) receiver = deserializeReceiverSenderKey(serializeReceiverSenderKey(receiver))
        }
        for (const i of order) {
          assert.throws(() => groupDecrypt(receiver, msgs[i] as GroupMessage, GROUP_AD, crypto), { name: 'ProtocolError', code: 'ERR_REPLAY' })
        }
      }), { numRuns: 25 })

      const sender = createSenderKey(crypto)
      const receiver = createReceiverSenderKey(senderKeyDistribution(sender))
      const msgs = Array.from({ length: SENDER_KEY_MAX_SKIP + 2 }, () => groupEncrypt(sender, te.encode('x'), GROUP_AD, crypto))
      assert.throws(() => groupDecrypt(receiver, msgs[SENDER_KEY_MAX_SKIP + 1] as GroupMessage, GROUP_AD, crypto), { name: 'ProtocolError', code: 'ERR_TOO_MANY_SKIPPED' })
      assert.deepEqual(groupDecrypt(receiver, msgs[SENDER_KEY_MAX_SKIP] as GroupMessage, GROUP_AD, crypto), te.encode('x'))
    })

    test('a member who joins later reads only messages after its distribution', () => {
      const sender = createSenderKey(crypto)
      const early = groupEncrypt(sender, te.encode('before'), GROUP_AD, crypto)
      const late = createReceiverSenderKey(senderKeyDistribution(sender))
      assert.throws(() => groupDecrypt(late, early, GROUP_AD, crypto), { name: 'ProtocolError', code: 'ERR_REPLAY' })
      assert.deepEqual(groupDecrypt(late, groupEncrypt(sender, te.encode('after'), GROUP_AD, crypto), GROUP_AD, crypto), te.encode('after'))
    })
  })
}

describe('sender key codecs', () => {
  test('states and messages round-trip; bad input fails with typed errors', () => {
    const sender = createSenderKey()
    groupEncrypt(sender, te.encode('advance'))
    assert.deepEqual(deserializeSenderKey(serializeSenderKey(sender)), sender)
    const d = senderKeyDistribution(sender)
    assert.deepEqual(decodeSenderKeyDistribution(encodeSenderKeyDistribution(d)), d)
    const msg = groupEncrypt(sender, te.encode('m'))
    assert.deepEqual(decodeGroupMessage(encodeGroupMessage(msg)), msg)
    assert.throws(() => decodeGroupMessage(new Uint8Array(10)), { name: 'ProtocolError', code: 'ERR_MALFORMED' })
    assert.throws(() => decodeGroupMessage(new Uint8Array(300 * 1024)), { name: 'ProtocolError', code: 'ERR_TOO_LARGE' })
    const v9 = encodeGroupMessage(msg)
    v9[0] = 9
    assert.throws(() => decodeGroupMessage(v9), { name: 'ProtocolError', code: 'ERR_UNSUPPORTED_VERSION' })
    assert.throws(() => decodeSenderKeyDistribution(new Uint8Array(72)), { name: 'ProtocolError', code: 'ERR_MALFORMED' })
    fc.assert(fc.property(fc.uint8Array({ maxLength: 120 }), (junk) => {
      for (const decode of [deserializeSenderKey, deserializeReceiverSenderKey, decodeSenderKeyDistribution, decodeGroupMessage]) {
        try {
          decode(junk)
        } catch (err) {
          assert.ok(err instanceof ProtocolError, String(err))
        }
      }
    }), { numRuns: 300 })
  })
})
