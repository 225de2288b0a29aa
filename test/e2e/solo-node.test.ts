/**
 * The quick start: one node on its own (no mesh, no DHT peers) serves two users end to end.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import WebSocket from 'ws'
import { MemoryStore, createClient, createIdentity, type TalariaClient, type WebSocketConstructor } from '../../client/index.js'
import type { TalariaNode } from '../../node/index.js'
import { collectMessages } from '../client/collect.js'
import { startMesh, type CloseAll } from '../helpers/mesh.js'

const WAIT_MS = 30_000

describe('e2e: a node on its own', () => {
  let node: TalariaNode
  let closeAll: CloseAll = async () => {}
  const clients: TalariaClient[] = []

  before(async () => {
    const [nodes, close] = await startMesh(1)
    closeAll = close
    node = nodes[0]!
  })

  /** A client of the node, closed after the suite. */
  const make = (): TalariaClient => {
    const url = node.httpUrl.replace(/^http/, 'ws') + '/v1'
    const c = createClient({ url, identity: createIdentity(), store: new MemoryStore(), WebSocket: WebSocket as unknown as WebSocketConstructor })
    clients.push(c)
    return c
  }

  after(async () => {
    await Promise.allSettled(clients.map(async (c) => { await c.close() }))
    await closeAll()
  })

  it('carries messages between two users with no DHT peers', async () => {
    assert.equal(node.status().dhtPeers, 0)
    const alice = make()
    const bob = make()
    await bob.connect()
    await alice.connect()
    const got = collectMessages(bob, 10, WAIT_MS)
    got.catch(() => {})
    const ids: string[] = []
    for (let i = 0; i < 10; i++) ids.push(await alice.send(bob.userId, `solo #${i}`))
    assert.deepEqual((await got).map((m) => m.id), ids)
  })

  it('splits queued sends into requests the node accepts: more envelope bytes than one frame holds, no disconnect', async () => {
    const alice = make()
    const bob = make()
    await bob.connect()
    await alice.connect()
    let drops = 0
    alice.on('disconnected', () => { drops++ })
    // 80 texts of 6,000 characters: ~500 KB of envelopes queued at once, twice the node's frame limit
    const count = 80
    const got = collectMessages(bob, count, WAIT_MS)
    got.catch(() => {})
    const ids = await Promise.all(Array.from({ length: count }, async (_, i) => await alice.send(bob.userId, `${i}:`.padEnd(6000, 'x'))))
    assert.equal(new Set((await got).map((m) => m.id)).size, count)
    assert.deepEqual(new Set((await got).map((m) => m.id)), new Set(ids))
    assert.equal(drops, 0, 'the node never closed the sender\'s connection')
  })
})
