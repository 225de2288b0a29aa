import '../../node/polyfills.js'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { after, before, describe, test } from 'node:test'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { noise } from '@chainsafe/libp2p-noise'
import type { Libp2p, Stream } from '@libp2p/interface'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { createLibp2p } from 'libp2p'
import { pino } from 'pino'
import { historyStreamHandler, requestHistory, type HistorySource } from '../../node/groups/history.js'
import { decodeHistoryRequest, encodeHistoryRequest, encodeHistoryResponse, HISTORY_PROTOCOL, type HistoryRequest } from '../../node/groups/wire.js'
import { readOneFrame, writeFrame } from '../../node/messaging/streams.js'
import { groupIdFromGenesis } from '../../protocol/ids.js'

// the deadlines must hold across a collection at a chosen moment (as in stream-end.test.ts)
setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

/** The history handler again, with a short deadline, for the tests that wait for it. */
const SHORT_DEADLINE_PROTOCOL = '/talaria-test/history-short-deadline/1.0.0'
/** A history server that answers and then keeps its side of the stream open. */
const NEVER_ENDS_PROTOCOL = '/talaria-test/history-never-ends/1.0.0'
const SHORT_DEADLINE_MS = 500
/** How long a test waits for a stream to end before failing instead of hanging: past every deadline here. */
const TEST_DEADLINE_MS = 20_000

const request: HistoryRequest = { op: 'ops', group: groupIdFromGenesis(new TextEncoder().encode('history deadline test')), from: 0, limit: 10 }

const source: HistorySource = {
  messages: async () => ({ items: [] }),
  ops: async () => ({ items: [] }),
  keep: async () => undefined
}

/** Resolves when `stream` is closed at both ends or reset; fails after TEST_DEADLINE_MS rather than hanging the suite. */
async function ended (stream: Stream): Promise<Stream['status']> {
  if (stream.status === 'open') await once(stream, 'close', { signal: AbortSignal.timeout(TEST_DEADLINE_MS) })
  return stream.status
}

describe('history streams end at their deadline, garbage collection or not', () => {
  let server: Libp2p
  let peer: Libp2p
  const shutdown = new AbortController()
  /** requestHistory from `peer`, keeping the stream it dialled. */
  const client = (streams: Stream[]): Parameters<typeof requestHistory>[0] => ({
    dialProtocol: async (id, protocol, opts) => {
      const stream = await peer.dialProtocol(server.getMultiaddrs(), protocol === HISTORY_PROTOCOL ? NEVER_ENDS_PROTOCOL : protocol, opts)
      streams.push(stream)
      return stream
    },
    shutdown: shutdown.signal
  })

  before(async () => {
    const transport = { transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()] }
    server = await createLibp2p({ addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] }, ...transport })
    peer = await createLibp2p(transport)
    const logger = pino({ level: 'silent' })
    await server.handle(HISTORY_PROTOCOL, historyStreamHandler(source, { logger, shutdown: shutdown.signal }))
    await server.handle(SHORT_DEADLINE_PROTOCOL, historyStreamHandler(source, { logger, shutdown: shutdown.signal }, { timeoutMs: SHORT_DEADLINE_MS }))
    await server.handle(NEVER_ENDS_PROTOCOL, async (stream) => {
      const body = await readOneFrame(stream)
      if (body === undefined) return
      await writeFrame(stream, encodeHistoryResponse({ ok: true, items: [] }))
      // neither closed nor reset: only the requester's deadline can end this stream
      assert.equal(decodeHistoryRequest(body).op, request.op)
    })
  })
  after(async () => {
    shutdown.abort()
    await peer?.stop()
    await server?.stop()
  })

  test('a request answered in time: both ends close the stream, none resets it', async () => {
    const stream = await peer.dialProtocol(server.getMultiaddrs(), HISTORY_PROTOCOL)
    stream.send(encodeHistoryRequest(request))
    const answer = await readOneFrame(stream)
    assert.notEqual(answer, undefined)
    await stream.close()
    assert.equal(await ended(stream), 'closed')
  })

  test('a peer that takes the answer but never ends its side has the stream reset at the deadline', async () => {
    const stream = await peer.dialProtocol(server.getMultiaddrs(), SHORT_DEADLINE_PROTOCOL)
    stream.send(encodeHistoryRequest(request))
    assert.notEqual(await readOneFrame(stream), undefined)
    // the handler has returned; only its deadline is left to end the stream
    gc()
    assert.equal(await ended(stream), 'reset')
  })

  test('requestHistory: a server that answers but never ends its side has the stream reset at the request deadline', async () => {
    const streams: Stream[] = []
    const res = await requestHistory(client(streams), peer.peerId, request, { timeoutMs: SHORT_DEADLINE_MS })
    assert.deepEqual(res, { ok: true, items: [] })
    const [stream] = streams
    assert.ok(stream !== undefined)
    gc()
    // aborted here, so reset at the server
    assert.equal(await ended(stream), 'aborted')
  })
})
