/**
 * Tests of public rooms: REAL nodes (five, on 127.0.0.1) and 2,000 REAL SDK clients over real
 * WebSockets, 400 per node. Room clients skip publishing 1:1 keys (`publishKeys: false`): rooms
 * are not end-to-end encrypted, so they need nothing but `auth`, and nodes check a room message's
 * sender by the certificate it carries.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import WebSocket from 'ws'
import { createClient, createIdentity, type ClientEvents, type TalariaClient, type WebSocketConstructor } from '../../client/index.js'
import type { TalariaNode } from '../../node/index.js'
import type { GroupId, MessageId } from '../../protocol/ids.js'
import { startMesh, type CloseAll } from '../helpers/mesh.js'

const NODES = 5
const CLIENTS = 2000
const CONNECT_CONCURRENCY = 50
const WAIT_MS = 60_000

function wsUrl (node: TalariaNode): string {
  return node.httpUrl.replace(/^http/, 'ws') + '/v1'
}

/** Runs `fn` over `items` with at most `limit` in flight. */
async function pool<T> (items: T[], limit: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++
      await fn(items[i]!, i)
    }
  }))
}

describe('e2e: a room with 2,000 clients over five real nodes', () => {
  let nodes: TalariaNode[] = []
  let closeAll: CloseAll = async () => {}
  const clients: TalariaClient[] = []
  /** Room messages each client received, by message id. */
  const received: Array<Map<MessageId, ClientEvents['roomMessage']>> = []
  const waiters = new Set<() => void>()
  let room: GroupId
  let owner: TalariaClient

  /**
   * Resolves once every client but the sender (whose own message is not echoed back to it)
   * received `id`; rejects at the deadline naming how many did.
   */
  async function everyoneReceives (id: MessageId, sender: number): Promise<Array<ClientEvents['roomMessage']>> {
    const others = received.filter((_, i) => i !== sender)
    const count = (): number => others.filter((m) => m.has(id)).length
    if (count() < others.length) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => { waiters.delete(check); reject(new Error(`${count()} of ${others.length} clients received ${id}`)) }, WAIT_MS)
        const check = (): void => {
          if (count() < others.length) return
          clearTimeout(timer)
          waiters.delete(check)
          resolve()
        }
        waiters.add(check)
      })
    }
    return others.map((m) => m.get(id)!)
  }

  before(async () => {
    [nodes, closeAll] = await startMesh(NODES, { init: { gateway: { maxConnectionsPerIp: CLIENTS, maxConnections: CLIENTS + 100 } } })
    owner = createClient({ url: wsUrl(nodes[0]!), identity: createIdentity(), WebSocket: WebSocket as unknown as WebSocketConstructor })
    await owner.connect()
    room = await owner.createRoom({ name: 'lobby', filter: { words: ['badword', 'worse'], mode: 'mask' }, rateLimit: { messages: 5, windowMs: 60_000 } })
    const slots = Array.from({ length: CLIENTS }, (_, i) => i)
    await pool(slots, CONNECT_CONCURRENCY, async (i) => {
      const client = createClient({ url: wsUrl(nodes[i % NODES]!), identity: createIdentity(), publishKeys: false, WebSocket: WebSocket as unknown as WebSocketConstructor })
      const box = new Map<MessageId, ClientEvents['roomMessage']>()
      received[i] = box
      clients[i] = client
      client.on('roomMessage', (m) => {
        box.set(m.id, m)
        for (const w of [...waiters]) w()
      })
      await client.connect()
      await client.enterRoom(room)
    })
  })

  after(async () => {
    await pool(clients.filter((c) => c !== undefined), CONNECT_CONCURRENCY, async (c) => { await c.close() })
    await owner?.close()
    await closeAll()
  })

  it('delivers a message to all 2,000 clients', async () => {
    const started = Date.now()
    const id = await clients[7]!.sendRoom(room, 'hello, room')
    const got = await everyoneReceives(id, 7)
    assert.ok(got.every((m) => m.text === 'hello, room' && m.room === room))
    process.stderr.write(`# room fan-out to ${CLIENTS} clients on ${NODES} nodes: ${Date.now() - started} ms\n`)
  })

  it('masks a filtered word when the room masks', async () => {
    const sender = Math.floor(CLIENTS / 3)
    const id = await clients[sender]!.sendRoom(room, 'this BadWord is worse')
    const got = await everyoneReceives(id, sender)
    assert.ok(got.every((m) => m.text === 'this ******* is *****'), `got ${got[0]?.text}`)
  })

  it('refuses a filtered word with ERR_CONTENT_BLOCKED once the room blocks, and delivers clean text', async () => {
    const index = Math.floor(CLIENTS / 2) + 1
    const sender = clients[index]!
    // the settings op reaches the sender's node by gossip, and the node passes it to the sender
    let stop = (): void => {}
    const blocking = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { stop(); reject(new Error('the block setting never reached the sender')) }, WAIT_MS)
      stop = sender.on('groupChange', (c) => {
        if (c.group !== room || c.op !== 'settings' || c.state.settings.filter?.mode !== 'block') return
        clearTimeout(timer)
        stop()
        resolve()
      })
    })
    await owner.updateGroupSettings(room, { filter: { words: ['badword', 'worse'], mode: 'block' } })
    await blocking
    await assert.rejects(sender.sendRoom(room, 'badword again'), (err: Error & { code?: string }) => err.code === 'ERR_CONTENT_BLOCKED')
    const id = await sender.sendRoom(room, 'clean words')
    assert.ok((await everyoneReceives(id, index)).every((m) => m.text === 'clean words'))
  })

  it('answers ERR_ROOM_RATE_LIMITED to a member over the room\'s rate limit', async () => {
    const chatty = clients[CLIENTS - 1]!
    const results: Array<string | undefined> = []
    for (let k = 0; k < 6; k++) {
      results.push(await chatty.sendRoom(room, `chatter ${k}`).then(() => undefined, (e: Error & { code?: string }) => e.code))
    }
    assert.deepEqual(results.slice(0, 5), [undefined, undefined, undefined, undefined, undefined])
    assert.equal(results[5], 'ERR_ROOM_RATE_LIMITED')
  })
})
