import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { nativeCrypto, nobleCrypto } from '../../protocol/crypto/index.js'
import type { CryptoProvider } from '../../protocol/crypto/index.js'
import { ProtocolError } from '../../protocol/errors.js'
import {
  HEADER_LENGTH, MAX_SKIP, MAX_SKIPPED_KEYS, createInitiatorSession, createPreKeyBundle, createResponderSession,
  decodeHeader, deserializeSession, encodeHeader, generateDeviceIdentityKeys, generateSignedPreKey, ratchetDecrypt,
  ratchetEncrypt, serializeSession, x3dhInitiate, x3dhRespond
} from '../../protocol/e2e/index.js'
import type { RatchetMessage, RatchetSession } from '../../protocol/e2e/index.js'

// Every case runs on each provider present (native is absent outside Node.js), and across them.
const providers: CryptoProvider[] = [nobleCrypto, ...(nativeCrypto === undefined ? [] : [nativeCrypto])]

const te = new TextEncoder()

function pair (aliceCrypto: CryptoProvider, bobCrypto: CryptoProvider): { alice: RatchetSession, bob: RatchetSession } {
  const aliceId = generateDeviceIdentityKeys(aliceCrypto)
  const bobId = generateDeviceIdentityKeys(bobCrypto)
  const spk = generateSignedPreKey(bobId, 1, bobCrypto)
  const init = x3dhInitiate(aliceId, createPreKeyBundle(bobId, spk), aliceCrypto)
  const resp = x3dhRespond({ identity: bobId, signedPreKey: spk }, init.initialMessage, bobCrypto)
  return { alice: createInitiatorSession(init, aliceCrypto), bob: createResponderSession(resp, spk) }
}

type Party = 'A' | 'B'
interface InFlight { id: number, to: Party, message: RatchetMessage, ad: Uint8Array, plaintext: Uint8Array }

const partyArb = fc.constantFrom<Party>('A', 'B')
const commandArb = fc.oneof(
  { weight: 4, arbitrary: fc.record({ t: fc.constant('send' as const), from: partyArb, count: fc.integer({ min: 1, max: 3 }) }) },
  { weight: 5, arbitrary: fc.record({ t: fc.constant('deliver' as const), to: partyArb, pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('drop' as const), to: partyArb, pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('dup' as const), to: partyArb, pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('tamper' as const), to: partyArb, pick: fc.nat(), part: fc.constantFrom('header', 'ad', 'ct'), bit: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('persist' as const), who: partyArb }) }
)

for (const aliceCrypto of providers) {
  for (const bobCrypto of providers) {
    describe(`Double Ratchet (Alice ${aliceCrypto.name}, Bob ${bobCrypto.name})`, () => {
      test('random schedules: reordered, dropped, duplicated, tampered, persisted messages', () => {
        fc.assert(fc.property(
          // At most 50 commands keeps each side under MAX_PREVIOUS_CHAINS chains, so every
          // duplicate is recognised as a replay.
          fc.array(commandArb, { minLength: 10, maxLength: 50, size: 'max' }),
          fc.array(fc.nat(), { minLength: 0, maxLength: 200 }),
          (commands, finalOrder) => {
            const s = pair(aliceCrypto, bobCrypto)
            const sessions: Record<Party, RatchetSession> = { A: s.alice, B: s.bob }
            const cryptoOf: Record<Party, CryptoProvider> = { A: aliceCrypto, B: bobCrypto }
            const pending: InFlight[] = []
            const delivered: InFlight[] = []
            let nextId = 0
            let bobHeard = false

            const deliver = (m: InFlight): void => {
              const got = ratchetDecrypt(sessions[m.to], m.message, m.ad, cryptoOf[m.to])
              assert.deepEqual(got, m.plaintext)
              if (m.to === 'B') bobHeard = true
              delivered.push(m)
            }
            const take = (to: Party, pick: number): InFlight | undefined => {
              const mine = pending.filter((m) => m.to === to)
              const m = mine[pick % Math.max(1, mine.length)]
              if (m !== undefined) pending.splice(pending.indexOf(m), 1)
              return m
            }

            for (const c of commands) {
              if (c.t === 'send') {
                // The responder cannot send before it has heard from the initiator.
                if (c.from === 'B' && !bobHeard) continue
                for (let i = 0; i < c.count; i++) {
                  const id = nextId++
                  const plaintext = te.encode(`message ${id} from ${c.from}`)
                  const ad = te.encode(`conv:1|seq:${id}`)
                  const message = ratchetEncrypt(sessions[c.from], plaintext, ad, cryptoOf[c.from])
                  pending.push({ id, to: c.from === 'A' ? 'B' : 'A', message, ad, plaintext })
                }
              } else if (c.t === 'deliver') {
                const m = take(c.to, c.pick)
                if (m !== undefined) deliver(m)
              } else if (c.t === 'drop') {
                take(c.to, c.pick)
              } else if (c.t === 'dup') {
                const mine = delivered.filter((m) => m.to === c.to)
                const m = mine[c.pick % Math.max(1, mine.length)]
                if (m === undefined) continue
                const before = serializeSession(sessions[m.to])
                assert.throws(() => ratchetDecrypt(sessions[m.to], m.message, m.ad, cryptoOf[m.to]), { name: 'ProtocolError', code: 'ERR_REPLAY' })
                assert.deepEqual(serializeSession(sessions[m.to]), before)
              } else if (c.t === 'tamper') {
                const mine = pending.filter((m) => m.to === c.to)
                const m = mine[c.pick % Math.max(1, mine.length)]
                if (m === undefined) continue
                const flip = (bytes: Uint8Array): Uint8Array => {
                  const out = bytes.slice()
                  const bit = c.bit % (out.length * 8)
                  out[bit >> 3] = (out[bit >> 3] ?? 0) ^ (1 << (bit & 7))
                  return out
                }
                const header = c.part === 'header' ? flip(m.message.header) : m.message.header
                const ad = c.part === 'ad' ? flip(m.ad) : m.ad
                const ciphertext = c.part === 'ct' ? flip(m.message.ciphertext) : m.message.ciphertext
                const before = serializeSession(sessions[m.to])
                assert.throws(() => ratchetDecrypt(sessions[m.to], { header, ciphertext }, ad, cryptoOf[m.to]), ProtocolError)
                // Rejected without a trace: the session is byte-for-byte the same and the genuine
                // message still decrypts later.
                assert.deepEqual(serializeSession(sessions[m.to]), before)
              } else {
                sessions[c.who] = deserializeSession(serializeSession(sessions[c.who]))
              }
            }
            // Everything still in flight arrives at last, in an arbitrary order.
            for (const pick of finalOrder) {
              if (pending.length === 0) break
              const [m] = pending.splice(pick % pending.length, 1)
              if (m !== undefined) deliver(m)
            }
            while (pending.length > 0) deliver(pending.pop() as InFlight)
            assert.equal(new Set(delivered.map((m) => m.id)).size, delivered.length)
          }
        ), { numRuns: 60 })
      })
    })
  }
}

for (const crypto of providers) {
  describe(`Double Ratchet bounds (${crypto.name})`, () => {
    test('a gap of more than MAX_SKIP messages is refused, a gap of MAX_SKIP is not', () => {
      const { alice, bob } = pair(crypto, crypto)
      const pt = te.encode('x')
      const messages = Array.from({ length: MAX_SKIP + 2 }, () => ratchetEncrypt(alice, pt, undefined, crypto))
      const before = serializeSession(bob)
      assert.throws(() => ratchetDecrypt(bob, messages[MAX_SKIP + 1] as RatchetMessage, undefined, crypto), { name: 'ProtocolError', code: 'ERR_TOO_MANY_SKIPPED' })
      assert.deepEqual(serializeSession(bob), before)
      assert.deepEqual(ratchetDecrypt(bob, messages[MAX_SKIP] as RatchetMessage, undefined, crypto), pt)
      assert.equal(bob.skipped.size, MAX_SKIP)
      assert.deepEqual(ratchetDecrypt(bob, messages[0] as RatchetMessage, undefined, crypto), pt)
      assert.throws(() => ratchetDecrypt(bob, messages[0] as RatchetMessage, undefined, crypto), { name: 'ProtocolError', code: 'ERR_REPLAY' })
    })

    test('the total of skipped keys is capped, evicting the oldest first', () => {
      const { alice, bob } = pair(crypto, crypto)
      const pt = te.encode('y')
      // Three chains of Alice, each skipping MAX_SKIP keys at Bob: 3 * MAX_SKIP > MAX_SKIPPED_KEYS.
      const chainFirsts: RatchetMessage[] = []
      for (let chain = 0; chain < 3; chain++) {
        const msgs = Array.from({ length: MAX_SKIP + 1 }, () => ratchetEncrypt(alice, pt, undefined, crypto))
        chainFirsts.push(msgs[0] as RatchetMessage)
        ratchetDecrypt(bob, msgs[MAX_SKIP] as RatchetMessage, undefined, crypto)
        ratchetDecrypt(alice, ratchetEncrypt(bob, pt, undefined, crypto), undefined, crypto)
      }
      assert.equal(bob.skipped.size, MAX_SKIPPED_KEYS)
      // The earliest skipped key was evicted; a recent one is still there.
      assert.throws(() => ratchetDecrypt(bob, chainFirsts[0] as RatchetMessage, undefined, crypto), { name: 'ProtocolError', code: 'ERR_REPLAY' })
      assert.deepEqual(ratchetDecrypt(bob, chainFirsts[1] as RatchetMessage, undefined, crypto), pt)
      assert.deepEqual(ratchetDecrypt(bob, chainFirsts[2] as RatchetMessage, undefined, crypto), pt)
    })

    test('a replayed message of an ended chain is ERR_REPLAY, not a new ratchet step', () => {
      const { alice, bob } = pair(crypto, crypto)
      const pt = te.encode('z')
      const old = ratchetEncrypt(alice, pt, undefined, crypto)
      ratchetDecrypt(bob, old, undefined, crypto)
      for (let i = 0; i < 3; i++) {
        ratchetDecrypt(alice, ratchetEncrypt(bob, pt, undefined, crypto), undefined, crypto)
        ratchetDecrypt(bob, ratchetEncrypt(alice, pt, undefined, crypto), undefined, crypto)
      }
      const before = serializeSession(bob)
      assert.throws(() => ratchetDecrypt(bob, old, undefined, crypto), { name: 'ProtocolError', code: 'ERR_REPLAY' })
      assert.deepEqual(serializeSession(bob), before)
    })

    test('the responder cannot send before it has received', () => {
      const { bob } = pair(crypto, crypto)
      assert.throws(() => ratchetEncrypt(bob, te.encode('early'), undefined, crypto), { name: 'ProtocolError', code: 'ERR_BAD_KEY' })
    })
  })
}

describe('ratchet header and session codecs', () => {
  test('header round-trips and rejects bad lengths and versions', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.nat({ max: 0xffffffff }), fc.nat({ max: 0xffffffff }), (dh, pn, n) => {
      const bytes = encodeHeader({ dh, pn, n })
      assert.equal(bytes.length, HEADER_LENGTH)
      assert.deepEqual(decodeHeader(bytes), { dh, pn, n })
    }), { numRuns: 200 })
    const good = encodeHeader({ dh: new Uint8Array(32), pn: 1, n: 2 })
    assert.throws(() => decodeHeader(good.subarray(1)), { name: 'ProtocolError', code: 'ERR_MALFORMED' })
    assert.throws(() => decodeHeader(new Uint8Array(HEADER_LENGTH + 1)), { name: 'ProtocolError', code: 'ERR_TOO_LARGE' })
    const v2 = good.slice()
    v2[0] = 2
    assert.throws(() => decodeHeader(v2), { name: 'ProtocolError', code: 'ERR_UNSUPPORTED_VERSION' })
  })

  test('deserializeSession refuses oversized, truncated and ill-typed input with typed errors', () => {
    const { alice } = pair(nobleCrypto, nobleCrypto)
    const bytes = serializeSession(alice)
    assert.throws(() => deserializeSession(new Uint8Array(300 * 1024)), { name: 'ProtocolError', code: 'ERR_TOO_LARGE' })
    assert.throws(() => deserializeSession(bytes.subarray(0, bytes.length - 5)), { name: 'ProtocolError', code: 'ERR_MALFORMED' })
    assert.throws(() => deserializeSession(new Uint8Array([0x93, 0x01, 0x02, 0x03])), { name: 'ProtocolError', code: 'ERR_MALFORMED' })
    assert.throws(() => deserializeSession(new Uint8Array([0x91, 0x07])), { name: 'ProtocolError', code: 'ERR_UNSUPPORTED_VERSION' })
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (junk) => {
      try {
        deserializeSession(junk)
      } catch (err) {
        assert.ok(err instanceof ProtocolError)
      }
    }), { numRuns: 300 })
    assert.deepEqual(serializeSession(deserializeSession(bytes)), bytes)
  })
})
