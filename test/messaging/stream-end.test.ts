import '../../node/polyfills.js'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { after, before, describe, test } from 'node:test'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { noise } from '@chainsafe/libp2p-noise'
import type { Libp2p, Stream, StreamMiddleware } from '@libp2p/interface'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { createLibp2p } from 'libp2p'
import { pino } from 'pino'
import { ArrivalClock } from '../../node/messaging/clock.js'
import { deliverStreamHandler } from '../../node/messaging/deliver-link.js'
import { MailboxService } from '../../node/messaging/mailbox.js'
import { chunkBytes, DELIVER_PROTOCOL, encodeMailboxRequest, MAILBOX_PROTOCOL } from '../../node/messaging/wire.js'
import { openStorage, type Storage } from '../../storage/index.js'
import { envelope, testDevice } from './fixtures.js'

// the deadline test needs a collection at a chosen moment
setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

/** The mailbox handler again, with a short deadline, for the tests that wait for it. */
const SHORT_DEADLINE_PROTOCOL = '/talaria-test/mailbox-short-deadline/1.0.0'
const SHORT_DEADLINE_MS = 500

const u32 = (n: number): Uint8Array => {
  const b = new Uint8Array(4)
  new DataView(b.buffer).setUint32(0, n)
  return b
}

/**
 * Calls the handler only once the peer's bytes and its end are in. libp2p 3 does the same on its
 * own whenever the peer store update it runs between negotiation and the handler is slower than the
 * peer: this makes that ordering certain instead of a race.
 */
const afterPeerEnds: StreamMiddleware = (stream, connection, next) => {
  if (stream.remoteWriteStatus === 'closed') next(stream, connection)
  else stream.addEventListener('remoteCloseWrite', () => { next(stream, connection) }, { once: true })
}

/** How long a test waits for the node before giving up on it: past every deadline of the node. */
const TEST_DEADLINE_MS = 20_000

/** Reads `stream` until it ends, a reset included, or until the test gives up and aborts it; the bytes read. */
async function readUntilEnd (stream: Stream): Promise<Uint8Array> {
  const chunks: Uint8Array[] = []
  const timer = setTimeout(() => { stream.abort(new Error('test deadline: the node did not end the stream')) }, TEST_DEADLINE_MS)
  try {
    for await (const chunk of stream) chunks.push(chunkBytes(chunk))
  } catch {
    // a reset ends it too, and the test deadline aborts it: the caller reads `stream.status`
  } finally {
    clearTimeout(timer)
  }
  return Buffer.concat(chunks)
}

/** Resolves when `stream` is closed at both ends or reset; fails after `ms` rather than hanging the suite. */
async function closedWithin (stream: Stream, ms: number): Promise<void> {
  if (stream.status !== 'open') return
  await once(stream, 'close', { signal: AbortSignal.timeout(ms) })
}

describe('mailbox and deliver handlers see the peer\'s end, and the mailbox deadline outlives the handler', () => {
  let server: Libp2p
  let attacker: Libp2p
  let storage: Storage
  const shutdown = new AbortController()
  const handlerStarted = new EventTarget()

  before(async () => {
    storage = await openStorage({ dataDir: '/nonexistent/memory-only', engine: 'memory', shards: 1, sweepIntervalMs: 0 })
    const transport = { transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()] }
    server = await createLibp2p({ addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] }, ...transport })
    attacker = await createLibp2p(transport)
    const logger = pino({ level: 'silent' })
    const mailbox = (requestTimeoutMs?: number): MailboxService => new MailboxService({
      peerId: server.peerId,
      mailbox: storage.mailbox,
      clock: new ArrivalClock(),
      dialProtocol: async (peer, protocol, opts) => await server.dialProtocol(peer, protocol, opts),
      getClosestPeers: async function * () {},
      connectedPeers: () => [],
      peerProtocols: async () => undefined,
      logger,
      shutdown: shutdown.signal
    }, requestTimeoutMs !== undefined ? { requestTimeoutMs } : {})
    await server.handle(MAILBOX_PROTOCOL, mailbox().handleStream)
    await server.handle(DELIVER_PROTOCOL, deliverStreamHandler(async () => [], { logger, shutdown: shutdown.signal }))
    const short = mailbox(SHORT_DEADLINE_MS)
    await server.handle(SHORT_DEADLINE_PROTOCOL, async (stream, connection) => {
      const handling = short.handleStream(stream, connection)
      handlerStarted.dispatchEvent(new Event('started'))
      await handling
    })
    server.use(MAILBOX_PROTOCOL, afterPeerEnds)
    server.use(DELIVER_PROTOCOL, afterPeerEnds)
  })
  after(async () => {
    shutdown.abort()
    await attacker?.stop()
    await server?.stop()
    await storage?.close()
  })

  for (const protocol of [MAILBOX_PROTOCOL, DELIVER_PROTOCOL]) {
    for (const [what, bytes] of [['a truncated frame', u32(100)], ['nothing', undefined]] as const) {
      test(`${protocol}: ${what} then the end, all in before the handler reads → the node closes the stream itself`, async () => {
        const stream = await attacker.dialProtocol(server.getMultiaddrs(), protocol)
        const reading = readUntilEnd(stream)
        if (bytes !== undefined) stream.send(bytes)
        await stream.close()
        await reading
        // a deadline or the partial-frame timer would have reset it instead
        assert.equal(stream.status, 'closed')
      })
    }
  }

  test('a peer that takes the answer but never ends its side has the mailbox stream reset at the request deadline', async () => {
    const alice = testDevice()
    const stream = await attacker.dialProtocol(server.getMultiaddrs(), SHORT_DEADLINE_PROTOCOL)
    const reading = readUntilEnd(stream)
    stream.send(encodeMailboxRequest({ op: 'put', user: alice.ref.user, device: alice.ref.device, ttlMs: 1000, envelopes: [envelope(alice, testDevice(), 1).bytes] }))
    // the node answers and ends its side; the stream stays half open for as long as the peer wants
    assert.match(Buffer.from(await reading).subarray(4).toString('latin1'), /ERR_BAD_REQUEST/)
    await closedWithin(stream, TEST_DEADLINE_MS)
    assert.equal(stream.status, 'reset')
  })

  test('a request that never completes has the mailbox stream reset at the request deadline, garbage collection or not', async () => {
    const started = once(handlerStarted, 'started')
    const stream = await attacker.dialProtocol(server.getMultiaddrs(), SHORT_DEADLINE_PROTOCOL)
    stream.send(u32(100))
    await started
    // a deadline held only weakly (AbortSignal.any over AbortSignal.timeout, on Node 20) is lost here
    gc()
    await closedWithin(stream, TEST_DEADLINE_MS)
    assert.equal(stream.status, 'reset')
  })
})
