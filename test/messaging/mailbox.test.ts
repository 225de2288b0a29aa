import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { decodeEnvelope } from '../../protocol/envelopes.js'
import type { TalariaNode } from '../../node/index.js'
import { startMesh, waitUntil, type CloseAll } from '../helpers/mesh.js'
import { envelopes, heldBy as held, locationRecord, RecordingSink, sinkOf, testDevice } from './fixtures.js'

describe('offline delivery through mailbox replicas', () => {
  let nodes: TalariaNode[] = []
  let closeAll: CloseAll = async () => {}

  before(async () => {
    [nodes, closeAll] = await startMesh(6)
  })
  after(async () => { await closeAll() })

  test('offline recipient: 100 envelopes go to the replicas, arrive when it attaches on another node, and leave the replicas on ack', async () => {
    const sender = nodes[1] as TalariaNode
    const other = nodes[3] as TalariaNode
    const alice = testDevice()
    const bob = testDevice()
    const aliceSink = new RecordingSink()
    const detachAlice = sender.messaging().delivery.attach(alice.ref, sinkOf(aliceSink))
    try {
      const all = envelopes(alice, bob, 100)
      await sender.messaging().delivery.submit(alice.ref, all)
      // delivered means a write quorum of replicas holds them
      await aliceSink.until(() => aliceSink.delivered.size >= 100, '100 delivered')
      const counts = await Promise.all(nodes.map(async (n) => await held(n, bob)))
      assert.ok(counts.filter((c) => c === 100).length >= 2, `at least the write quorum holds all 100: ${counts.join(',')}`)
      assert.ok(counts.filter((c) => c > 0).length <= 3, `no more than k replicas: ${counts.join(',')}`)

      const bobSink = new RecordingSink()
      const detachBob = other.messaging().delivery.attach(bob.ref, sinkOf(bobSink))
      try {
        // like a client: attach at auth, then publish the location the replicas accept as proof
        await other.messaging().directory.publish([locationRecord(bob, other)])
        await bobSink.until(() => bobSink.pushed.length >= 100, '100 pushes')
        assert.equal(new Set(bobSink.pushed.map((p) => p.id)).size, 100)
        assert.deepEqual(bobSink.pushed.map((p) => decodeEnvelope(p.bytes).seq), all.map((e) => e.envelope.seq))
        assert.equal(await other.messaging().delivery.ack(bob.ref, bobSink.pushed.map((p) => p.id)), 100)
        await waitUntil(async () => (await Promise.all(nodes.map(async (n) => await held(n, bob)))).every((c) => c === 0), { what: 'every replica deleted the acked envelopes' })
      } finally {
        detachBob()
      }
    } finally {
      detachAlice()
    }
  })

  test('envelopes a device received but never acked follow it to another node when it disconnects', async () => {
    const [first, second] = [nodes[4] as TalariaNode, nodes[5] as TalariaNode]
    const alice = testDevice()
    const bob = testDevice()
    const sink = new RecordingSink()
    const detach = first.messaging().delivery.attach(bob.ref, sinkOf(sink))
    const all = envelopes(alice, bob, 5)
    await first.messaging().delivery.submit(alice.ref, all)
    await sink.until(() => sink.pushed.length >= 5, '5 pushes on the first node')
    // gone without acking: the node copies them to the replicas
    detach()
    await waitUntil(async () => (await Promise.all(nodes.map(async (n) => await held(n, bob)))).filter((c) => c === 5).length >= 2, { what: 'the unacked envelopes reached the replicas' })
    const later = new RecordingSink()
    const detachLater = second.messaging().delivery.attach(bob.ref, sinkOf(later))
    try {
      await second.messaging().directory.publish([locationRecord(bob, second)])
      await later.until(() => later.pushed.length >= 5, '5 pushes on the second node')
      assert.deepEqual(later.pushed.map((p) => p.id), all.map((e) => e.envelope.id))
    } finally {
      detachLater()
    }
  })

  test('a replica stops while the recipient is offline: everything still arrives', async () => {
    const sender = nodes[2] as TalariaNode
    const alice = testDevice()
    const bob = testDevice()
    const aliceSink = new RecordingSink()
    const detachAlice = sender.messaging().delivery.attach(alice.ref, sinkOf(aliceSink))
    try {
      const all = envelopes(alice, bob, 50)
      await sender.messaging().delivery.submit(alice.ref, all)
      await aliceSink.until(() => aliceSink.delivered.size >= 50, '50 delivered')
      // let the background writes finish so the replica we stop held a full copy
      const holders = async (): Promise<number[]> => (await Promise.all(nodes.map(async (n, i) => (await held(n, bob)) > 0 ? i : -1))).filter((i) => i >= 0)
      await waitUntil(async () => (await holders()).length >= 2, { what: 'two replicas hold the envelopes' })
      const victimIndex = (await holders()).find((i) => i !== 0 && i !== 2)
      assert.ok(victimIndex !== undefined, 'a replica other than the sender and the first node')
      const victim = nodes[victimIndex] as TalariaNode
      await victim.stop()

      const hostIndex = [5, 4, 3, 1].find((i) => i !== victimIndex) as number
      const host = nodes[hostIndex] as TalariaNode
      const bobSink = new RecordingSink()
      const detachBob = host.messaging().delivery.attach(bob.ref, sinkOf(bobSink))
      try {
        await host.messaging().directory.publish([locationRecord(bob, host)])
        await bobSink.until(() => new Set(bobSink.pushed.map((p) => p.id)).size >= 50, '50 distinct pushes')
        assert.deepEqual([...new Set(bobSink.pushed.map((p) => p.id))].sort(), all.map((e) => e.envelope.id).sort())
      } finally {
        detachBob()
      }
    } finally {
      detachAlice()
    }
  })
})
