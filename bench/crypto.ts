// E2E crypto benchmark: the native and the noble provider side by side, in one run.
// Run: node --import ./scripts/register.js bench/crypto.ts [--ms=1000] [--reps=3]
// Prints a markdown table and writes bench/results/crypto-<timestamp>.json.
import { mkdirSync, writeFileSync } from 'node:fs'
import { arch, cpus, platform } from 'node:os'
import { performance } from 'node:perf_hooks'
import { nativeCrypto, nobleCrypto } from '../protocol/crypto/index.js'
import type { CryptoProvider } from '../protocol/crypto/index.js'
import {
  createInitiatorSession, createPreKeyBundle, createReceiverSenderKey, createResponderSession, createSenderKey,
  generateDeviceIdentityKeys, generateSignedPreKey, groupDecrypt, groupEncrypt, ratchetDecrypt, ratchetEncrypt,
  senderKeyDistribution, x3dhInitiate, x3dhRespond
} from '../protocol/e2e/index.js'
import type { GroupMessage, RatchetSession } from '../protocol/e2e/index.js'
import { decodeEnvelope, encodeEnvelope, envelopeAssociatedData } from '../protocol/envelopes.js'
import type { DirectEnvelope } from '../protocol/envelopes.js'
import { createDevice, createUserIdentity } from '../protocol/identity.js'
import { directConversationId, newMessageId } from '../protocol/ids.js'

const MESSAGE_BYTES = 256
const GROUP_MESSAGE_POOL = 2000

function arg (name: string, fallback: number): number {
  const hit = process.argv.find((a) => a.startsWith(`--${name}=`))
  const value = hit === undefined ? fallback : Number(hit.slice(name.length + 3))
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a positive number`)
  return value
}

const durationMs = arg('ms', 1000)
const reps = arg('reps', 3)

/** Ops per second of `op`, run for `durationMs` (checking the clock every few ops); best of `reps`. */
function measure (op: () => void): number {
  for (let i = 0; i < 20; i++) op() // warm-up: JIT and lazy tables
  let best = 0
  for (let r = 0; r < reps; r++) {
    let ops = 0
    const start = performance.now()
    let elapsed = 0
    while (elapsed < durationMs) {
      for (let i = 0; i < 16; i++) op()
      ops += 16
      elapsed = performance.now() - start
    }
    best = Math.max(best, (ops * 1000) / elapsed)
  }
  return best
}

function sessionPair (crypto: CryptoProvider): { alice: RatchetSession, bob: RatchetSession } {
  const aliceId = generateDeviceIdentityKeys(crypto)
  const bobId = generateDeviceIdentityKeys(crypto)
  const spk = generateSignedPreKey(bobId, 1, crypto)
  const init = x3dhInitiate(aliceId, createPreKeyBundle(bobId, spk), crypto)
  const resp = x3dhRespond({ identity: bobId, signedPreKey: spk }, init.initialMessage, crypto)
  const alice = createInitiatorSession(init, crypto)
  const bob = createResponderSession(resp, spk)
  // One round trip so that both sides have sending and receiving chains.
  ratchetDecrypt(bob, ratchetEncrypt(alice, new Uint8Array(1), undefined, crypto), undefined, crypto)
  ratchetDecrypt(alice, ratchetEncrypt(bob, new Uint8Array(1), undefined, crypto), undefined, crypto)
  return { alice, bob }
}

interface Case {
  name: string
  /** No crypto inside: measured once, shown under both providers. */
  providerIndependent?: boolean
  setup: (crypto: CryptoProvider) => () => void
}

/** A 1:1 envelope as a sender would build it around a 256 B ratchet message. */
function sampleEnvelope (crypto: CryptoProvider): DirectEnvelope {
  const alice = createUserIdentity(crypto)
  const bob = createUserIdentity(crypto)
  const { alice: session } = sessionPair(crypto)
  const head: Omit<DirectEnvelope, 'ciphertext'> = {
    kind: 'direct',
    id: newMessageId(crypto),
    from: { user: alice.userId, device: createDevice(crypto).deviceId },
    to: { user: bob.userId, device: createDevice(crypto).deviceId },
    conv: directConversationId(alice.userId, bob.userId, crypto),
    seq: 42,
    sentAt: Date.now(),
    type: 'message',
    header: new Uint8Array(0)
  }
  const message = ratchetEncrypt(session, plaintext, envelopeAssociatedData(head), crypto)
  return { ...head, header: message.header, ciphertext: message.ciphertext }
}

const plaintext = new Uint8Array(MESSAGE_BYTES).fill(0x61)
const callerAd = new TextEncoder().encode('conversation:0123456789abcdef|seq:42|from:a|to:b')

const cases: Case[] = [
  {
    name: '1:1 encrypt+decrypt 256 B, same direction (no DH step)',
    setup (crypto) {
      const { alice, bob } = sessionPair(crypto)
      return () => { ratchetDecrypt(bob, ratchetEncrypt(alice, plaintext, callerAd, crypto), callerAd, crypto) }
    }
  },
  {
    name: '1:1 encrypt+decrypt 256 B, alternating (DH step each)',
    setup (crypto) {
      const s = sessionPair(crypto)
      let aliceSends = true
      return () => {
        const [from, to] = aliceSends ? [s.alice, s.bob] : [s.bob, s.alice]
        ratchetDecrypt(to, ratchetEncrypt(from, plaintext, callerAd, crypto), callerAd, crypto)
        aliceSends = !aliceSends
      }
    }
  },
  {
    name: 'group encrypt 256 B (sender key + Ed25519 sign)',
    setup (crypto) {
      const sender = createSenderKey(crypto)
      return () => { groupEncrypt(sender, plaintext, callerAd, crypto) }
    }
  },
  {
    name: 'group decrypt 256 B (Ed25519 verify + sender key)',
    setup (crypto) {
      const sender = createSenderKey(crypto)
      const distribution = senderKeyDistribution(sender)
      const pool: GroupMessage[] = Array.from({ length: GROUP_MESSAGE_POOL }, () => groupEncrypt(sender, plaintext, callerAd, crypto))
      let receiver = createReceiverSenderKey(distribution)
      let next = 0
      return () => {
        // Replaying the pool against a fresh receiver state costs nothing measurable.
        if (next === pool.length) {
          receiver = createReceiverSenderKey(distribution)
          next = 0
        }
        groupDecrypt(receiver, pool[next++] as GroupMessage, callerAd, crypto)
      }
    }
  },
  {
    name: 'envelope encode+decode (1:1, 256 B message)',
    providerIndependent: true,
    setup (crypto) {
      const envelope = sampleEnvelope(crypto)
      return () => { decodeEnvelope(encodeEnvelope(envelope)) }
    }
  },
  {
    name: 'Ed25519 verify (256 B message)',
    setup (crypto) {
      const seed = crypto.randomBytes(32)
      const publicKey = crypto.ed25519PublicKey(seed)
      const signature = crypto.ed25519Sign(seed, plaintext)
      return () => {
        if (!crypto.ed25519Verify(publicKey, plaintext, signature)) throw new Error('verify failed')
      }
    }
  }
]

const providers: CryptoProvider[] = [nobleCrypto, ...(nativeCrypto === undefined ? [] : [nativeCrypto])]
const results: Array<{ case: string, provider: string, opsPerSec: number }> = []
const started = performance.now()
for (const c of cases) {
  if (c.providerIndependent === true) {
    const opsPerSec = Math.round(measure(c.setup(nobleCrypto)))
    for (const crypto of providers) results.push({ case: c.name, provider: crypto.name, opsPerSec })
    continue
  }
  for (const crypto of providers) {
    results.push({ case: c.name, provider: crypto.name, opsPerSec: Math.round(measure(c.setup(crypto))) })
  }
}

const fmt = (n: number | undefined): string => n === undefined ? 'n/a' : n.toLocaleString('en-US')
const lines = [
  `Node ${process.version}, ${platform()} ${arch()}, ${cpus()[0]?.model ?? 'unknown CPU'}; ` +
    `${durationMs} ms per run, best of ${reps}; 256 B plaintext.`,
  '',
  '| case | noble ops/s | native ops/s | native / noble |',
  '| --- | ---: | ---: | ---: |'
]
for (const c of cases) {
  const noble = results.find((r) => r.case === c.name && r.provider === 'noble')?.opsPerSec
  const native = results.find((r) => r.case === c.name && r.provider === 'native')?.opsPerSec
  const ratio = c.providerIndependent === true
    ? 'no crypto'
    : noble !== undefined && native !== undefined ? `${(native / noble).toFixed(1)}×` : 'n/a'
  lines.push(`| ${c.name} | ${fmt(noble)} | ${fmt(native)} | ${ratio} |`)
}
console.log(lines.join('\n'))

const timestamp = new Date().toISOString().replace(/[:.]/g, '-')
const dir = new URL('./results/', import.meta.url)
mkdirSync(dir, { recursive: true })
const file = new URL(`crypto-${timestamp}.json`, dir)
writeFileSync(file, JSON.stringify({
  benchmark: 'crypto',
  timestamp: new Date().toISOString(),
  node: process.version,
  platform: `${platform()} ${arch()}`,
  cpu: cpus()[0]?.model ?? 'unknown',
  durationMs,
  reps,
  messageBytes: MESSAGE_BYTES,
  totalSeconds: Math.round((performance.now() - started) / 100) / 10,
  results
}, null, 2) + '\n')
console.log(`\nwrote ${file.pathname}`)
