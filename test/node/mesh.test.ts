import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { decodeProfilePayload } from '../../protocol/records.js'
import type { PubSubMessage, TalariaNode } from '../../node/index.js'
import { startMesh, waitFor, waitUntil, type CloseAll } from '../helpers/mesh.js'
import { expiredProfile, forge, testUser } from '../helpers/records.js'

const MESH_SIZE = 5

function rejectsWithCode (promise: Promise<unknown>, code: string): Promise<void> {
  return assert.rejects(promise, (err: unknown) => {
    assert.equal((err as { code?: unknown }).code, code)
    return true
  })
}

describe(`a ${MESH_SIZE}-node mesh on 127.0.0.1`, () => {
  let nodes: TalariaNode[] = []
  let closeAll: CloseAll = async () => {}

  before(async () => {
    [nodes, closeAll] = await startMesh(MESH_SIZE)
    // routing tables fill after identify; lookups are only meaningful once the hub knows everyone
    const hub = nodes[0]!
    await waitUntil(() => hub.status().dhtPeers >= MESH_SIZE - 1 && nodes.every((n) => n.status().dhtPeers >= 1),
      { what: 'every node is in the DHT routing tables' })
  })
  after(async () => { await closeAll() })

  it('finds every node from every node through the DHT, not the peer store', async () => {
    await Promise.all(nodes.map(async (from) => {
      for (const target of nodes) {
        if (target === from) continue
        const found = await from.findPeer(target.peerId, { useCache: false })
        assert.equal(found.peerId, target.peerId)
        // an answer from another node proves a DHT query ran; a cache hit names this node
        assert.notEqual(found.via, from.peerId)
        assert.ok(found.multiaddrs.some((addr) => target.getMultiaddrs().some((own) => own.startsWith(addr))),
          `${found.multiaddrs.join(',')} are not addresses of ${target.peerId}`)
      }
    }))
  })

  it('reads on one node a signed record put on another', async () => {
    const alice = testUser()
    await nodes[1]!.putRecord(alice.profile(1, 'Alice'))
    for (const reader of [nodes[3]!, nodes[4]!, nodes[0]!]) {
      const record = await reader.getRecord(alice.key)
      assert.equal(record.seq, 1)
      assert.equal(decodeProfilePayload(record.payload).displayName, 'Alice')
    }
  })

  it('returns the highest seq when a newer record replaces an older one', async () => {
    const bob = testUser()
    await nodes[2]!.putRecord(bob.profile(1, 'Bob'))
    await nodes[4]!.putRecord(bob.profile(2, 'Robert'))
    const record = await nodes[0]!.getRecord(bob.key)
    assert.equal(record.seq, 2)
    assert.equal(decodeProfilePayload(record.payload).displayName, 'Robert')
  })

  it('rejects a forged record on put and never returns it', async () => {
    const carol = testUser()
    await rejectsWithCode(nodes[1]!.putRecord(forge(carol.profile(1, 'Carol'))), 'ERR_BAD_SIGNATURE')
    await rejectsWithCode(nodes[3]!.getRecord(carol.key), 'ERR_RECORD_NOT_FOUND')
    // a valid record under the key stays the answer after a forged higher seq is refused
    await nodes[1]!.putRecord(carol.profile(1, 'Carol'))
    await rejectsWithCode(nodes[2]!.putRecord(forge(carol.profile(9, 'Mallory'))), 'ERR_BAD_SIGNATURE')
    const record = await nodes[3]!.getRecord(carol.key)
    assert.equal(record.seq, 1)
  })

  it('rejects an expired record on put, and stops returning a record once it expires', async () => {
    const dave = testUser()
    await rejectsWithCode(nodes[2]!.putRecord(expiredProfile(dave.user, 1)), 'ERR_EXPIRED')
    await rejectsWithCode(nodes[4]!.getRecord(dave.key), 'ERR_RECORD_NOT_FOUND')

    const erin = testUser()
    const ttlMs = 2_000
    const expiresAt = Date.now() + ttlMs
    await nodes[2]!.putRecord(erin.profile(1, 'Erin', ttlMs))
    assert.equal((await nodes[4]!.getRecord(erin.key)).seq, 1)
    // the copies stay in the peers' stores; only the clock makes them invalid
    await waitUntil(() => Date.now() > expiresAt, { timeoutMs: ttlMs + 1_000, what: 'the record expired' })
    await rejectsWithCode(nodes[4]!.getRecord(erin.key), 'ERR_RECORD_NOT_FOUND')
    await rejectsWithCode(nodes[2]!.getRecord(erin.key, { offline: true }), 'ERR_RECORD_NOT_FOUND')
  })

  it('delivers a gossipsub message published on one node to subscribers on all others', async () => {
    const topic = '/talaria/test/mesh'
    const hub = nodes[0]!
    const publisher = nodes[MESH_SIZE - 1]!
    const receivers = nodes.filter((n) => n !== publisher)
    // every leaf reaches the others through the hub: wait until the hub knows every subscriber
    // and the publisher knows the hub, each seen as a subscription-change event
    const hubSeesAll = Promise.all(nodes.slice(1).map(async (n) => {
      await waitFor(hub, 'topic:subscription-change', (c) => c.peerId === n.peerId && c.topic === topic && c.subscribed)
    }))
    const publisherSeesHub = waitFor(publisher, 'topic:subscription-change', (c) => c.peerId === hub.peerId && c.topic === topic && c.subscribed)
    const received = receivers.map(async (n) => await new Promise<PubSubMessage>((resolve) => {
      n.subscribe(topic, (msg) => { resolve(msg) })
    }))
    publisher.subscribe(topic, () => {})
    await Promise.all([hubSeesAll, publisherSeesHub])

    const data = new TextEncoder().encode('hello mesh')
    await publisher.publish(topic, data)
    const messages = await Promise.race([
      Promise.all(received),
      new Promise<never>((_resolve, reject) => setTimeout(() => { reject(new Error('not every subscriber received the message')) }, 15_000).unref())
    ])
    for (const msg of messages) {
      assert.deepEqual(msg.data, data)
      assert.equal(msg.from, undefined, "messages are unsigned at the gossipsub layer")
      assert.equal(msg.topic, topic)
    }
  })
})
