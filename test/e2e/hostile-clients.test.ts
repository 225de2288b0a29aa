/**
 * Hostile clients against a real node: malformed frames, an oversized frame, a bad signature and a
 * request flood each get their own error code, while honest clients on the same node keep being
 * served and nothing already acked is lost.
 */
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { after, before, describe, it } from 'node:test'
import WebSocket from 'ws'
import { MemoryStore, createClient, createIdentity, type TalariaClient, type WebSocketConstructor } from '../../client/index.js'
import type { TalariaNode } from '../../node/index.js'
import { authSigningBytes, decodeFrame, encodeFrame, type ChallengeFrame, type ClientFrame } from '../../protocol/client-protocol.js'
import { defaultCrypto } from '../../protocol/crypto/index.js'
import { encodeDeviceCertificate, encodeDeviceList } from '../../protocol/identity.js'
import { collectMessages } from '../client/collect.js'
import { startMesh, type CloseAll } from '../helpers/mesh.js'

const WAIT_MS = 60_000
const MAX_FRAME = 64 * 1024

function wsUrl (node: TalariaNode): string {
  return node.httpUrl.replace(/^http/, 'ws') + '/v1'
}

/** A raw WebSocket that records every decoded frame the node sends. */
class RawClient {
  readonly ws: WebSocket
  readonly frames: ClientFrame[] = []
  private readonly waiters: Array<() => void> = []
  closeCode: number | undefined

  constructor (url: string) {
    this.ws = new WebSocket(url)
    this.ws.on('message', (data: Buffer, isBinary: boolean) => {
      // the node answers a text frame in text (JSON), a binary one in binary (MessagePack)
      this.frames.push(decodeFrame(isBinary ? new Uint8Array(data) : data.toString('utf8'), { maxBytes: 1 << 20 }))
      for (const w of this.waiters.splice(0)) w()
    })
    this.ws.on('close', (code) => {
      this.closeCode = code
      for (const w of this.waiters.splice(0)) w()
    })
    this.ws.on('error', () => {})
  }

  /** Resolves with the first frame matching `predicate`, waiting for it if needed. */
  async next (predicate: (f: ClientFrame) => boolean, timeoutMs = WAIT_MS): Promise<ClientFrame> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const hit = this.frames.find(predicate)
      if (hit !== undefined) return hit
      if (this.closeCode !== undefined) throw new Error(`closed (${this.closeCode}) before the frame arrived`)
      if (Date.now() > deadline) throw new Error('frame did not arrive in time')
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, deadline - Date.now())
        this.waiters.push(() => { clearTimeout(t); resolve() })
      })
    }
  }

  async challenge (): Promise<ChallengeFrame> {
    return await this.next((f) => f.t === 'challenge') as ChallengeFrame
  }

  send (data: Uint8Array | string): void {
    this.ws.send(data)
  }
}

function errorCodeOf (f: ClientFrame): string | undefined {
  return f.t === 'res' && !f.ok ? f.error.code : undefined
}

describe('e2e: hostile clients do not disturb honest ones', () => {
  let nodes: TalariaNode[] = []
  let closeAll: CloseAll = async () => {}
  const clients: TalariaClient[] = []
  const raws: RawClient[] = []

  before(async () => {
    [nodes, closeAll] = await startMesh(2, { init: { gateway: { maxFrameBytes: MAX_FRAME, maxRequestsPerSecond: 50, requestBurst: 50 } } })
  })

  after(async () => {
    for (const r of raws) r.ws.terminate()
    await Promise.allSettled(clients.map(async (c) => { await c.close() }))
    await closeAll()
  })

  it('answers each attack with its code while honest traffic on the same node is delivered in full', async () => {
    const target = nodes[0]!
    const alice = createIdentity()
    const bob = createIdentity()
    const a = createClient({ url: wsUrl(target), identity: alice, store: new MemoryStore(), WebSocket: WebSocket as unknown as WebSocketConstructor })
    const b = createClient({ url: wsUrl(nodes[1]!), identity: bob, store: new MemoryStore(), WebSocket: WebSocket as unknown as WebSocketConstructor })
    clients.push(a, b)
    await b.connect()
    await a.connect()
    const deadline = Date.now() + WAIT_MS
    while ((await a.devices(bob.user.userId, { refresh: true }).catch(() => [])).length < 1) {
      assert.ok(Date.now() < deadline, 'bob became visible through the DHT')
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
    const total = 60
    const got = collectMessages(b, total, WAIT_MS)
    got.catch(() => {})
    const ids: string[] = []
    for (let i = 0; i < 20; i++) ids.push(await a.send(bob.user.userId, `honest #${i}`))

    // 1. malformed frames: ERR_BAD_FRAME, and the same connection still answers a valid request
    const junk = new RawClient(wsUrl(target))
    raws.push(junk)
    await junk.challenge()
    junk.send(new Uint8Array([0xc1, 0xff, 0x00, 0x13]))
    junk.send('{"t":"req","id":')
    assert.equal(errorCodeOf(await junk.next((f) => errorCodeOf(f) === 'ERR_BAD_FRAME')), 'ERR_BAD_FRAME')
    junk.send(encodeFrame({ t: 'req', id: 7, op: 'ping', body: {} }, 'binary'))
    const pong = await junk.next((f) => f.t === 'res' && f.id === 7)
    assert.ok(pong.t === 'res' && pong.ok, 'ping answered after malformed frames')

    // 2. an oversized frame: ERR_FRAME_TOO_LARGE, and only that connection closes
    const big = new RawClient(wsUrl(target))
    raws.push(big)
    await big.challenge()
    big.send(new Uint8Array(MAX_FRAME + 1))
    assert.equal(errorCodeOf(await big.next((f) => errorCodeOf(f) === 'ERR_FRAME_TOO_LARGE')), 'ERR_FRAME_TOO_LARGE')
    if (big.closeCode === undefined) await once(big.ws, 'close')
    assert.equal(big.closeCode, 1009)

    // 3. a bad signature: ERR_AUTH_FAILED
    const forger = new RawClient(wsUrl(target))
    raws.push(forger)
    const ch = await forger.challenge()
    const mallory = createIdentity()
    const sig = defaultCrypto.ed25519Sign(mallory.device.signingSeed, authSigningBytes(ch.nonce, ch.node, mallory.user.userId, mallory.device.deviceId))
    sig[0] = (sig[0] ?? 0) ^ 1
    forger.send(encodeFrame({
      t: 'req',
      id: 1,
      op: 'auth',
      body: { user: mallory.user.userId, device: mallory.device.deviceId, cert: encodeDeviceCertificate(mallory.device.cert), deviceList: encodeDeviceList(mallory.deviceList), sig }
    }, 'binary'))
    assert.equal(errorCodeOf(await forger.next((f) => f.t === 'res' && f.id === 1)), 'ERR_AUTH_FAILED')

    // 4. a flood: ERR_RATE_LIMITED on that connection
    const flood = new RawClient(wsUrl(target))
    raws.push(flood)
    await flood.challenge()
    for (let i = 1; i <= 200; i++) flood.send(encodeFrame({ t: 'req', id: i, op: 'ping', body: {} }, 'binary'))
    assert.equal(errorCodeOf(await flood.next((f) => errorCodeOf(f) === 'ERR_RATE_LIMITED')), 'ERR_RATE_LIMITED')

    // honest traffic goes on, and everything acked before, during and after arrives
    for (let i = 20; i < total; i++) ids.push(await a.send(bob.user.userId, `honest #${i}`))
    const msgs = await got
    assert.deepEqual(msgs.map((m) => m.id), ids)
    assert.equal(target.state, 'started')
  })
})
