import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { decodeEnvelope } from '../../protocol/envelopes.js'
import type { TalariaNode } from '../../node/index.js'
import { startMesh, type CloseAll } from '../helpers/mesh.js'
import { envelopes, heldBy, locationRecord, RecordingSink, sinkOf, testDevice } from './fixtures.js'

describe('1:1 delivery between real nodes', () => {
  let nodes: TalariaNode[] = []
  let closeAll: CloseAll = async () => {}

  before(async () => {
    [nodes, closeAll] = await startMesh(5)
  })
  after(async () => { await closeAll() })

  test('local delivery: both devices on one node; the sender hears delivered', async () => {
    const node = nodes[1] as TalariaNode
    const { delivery } = node.messaging()
    const alice = testDevice()
    const bob = testDevice()
    const bobSink = new RecordingSink()
    const aliceSink = new RecordingSink()
    const detachBob = delivery.attach(bob.ref, sinkOf(bobSink))
    const detachAlice = delivery.attach(alice.ref, sinkOf(aliceSink))
    try {
      const batch = envelopes(alice, bob, 10)
      const accepted = await delivery.submit(alice.ref, batch)
      assert.deepEqual(accepted, batch.map((b) => b.envelope.id))
      await bobSink.until(() => bobSink.pushed.length >= 10, '10 pushes')
      await aliceSink.until(() => aliceSink.delivered.size >= 10, '10 delivered')
      assert.deepEqual(bobSink.pushed.map((p) => p.id), batch.map((b) => b.envelope.id))
      assert.deepEqual(bobSink.pushed.map((p) => p.bytes), batch.map((b) => b.bytes))
      // acked envelopes leave the inbox: a new connection gets nothing
      assert.equal(await delivery.ack(bob.ref, bobSink.pushed.map((p) => p.id)), 10)
      const again = new RecordingSink()
      const detachAgain = delivery.attach(bob.ref, sinkOf(again))
      const probe = envelopes(alice, bob, 1, 11)
      await delivery.submit(alice.ref, probe)
      await again.until(() => again.pushed.length >= 1, 'the probe')
      assert.deepEqual(again.pushed.map((p) => p.id), [probe[0]?.envelope.id])
      detachAgain()
    } finally {
      detachBob()
      detachAlice()
    }
  })

  test('a resubmitted envelope id is accepted again and delivered once', async () => {
    const node = nodes[2] as TalariaNode
    const { delivery } = node.messaging()
    const alice = testDevice()
    const bob = testDevice()
    const bobSink = new RecordingSink()
    const detach = delivery.attach(bob.ref, sinkOf(bobSink))
    try {
      const batch = envelopes(alice, bob, 5)
      await Promise.all([delivery.submit(alice.ref, batch), delivery.submit(alice.ref, batch)])
      await bobSink.until(() => bobSink.pushed.length >= 5, '5 pushes')
      const probe = envelopes(alice, bob, 1, 6)
      await delivery.submit(alice.ref, probe)
      await bobSink.until(() => bobSink.pushed.length >= 6, 'the probe')
      assert.equal(bobSink.pushed.length, 6)
      assert.equal(new Set(bobSink.pushed.map((p) => p.id)).size, 6)
    } finally {
      detach()
    }
  })

  test('a sink with a push window of 8 gets 30 envelopes in order, 8 at a time as it acks', async () => {
    const { delivery } = (nodes[3] as TalariaNode).messaging()
    const alice = testDevice()
    const bob = testDevice()
    const sink = new RecordingSink(8)
    const detach = delivery.attach(bob.ref, sinkOf(sink))
    try {
      const all = envelopes(alice, bob, 30)
      await delivery.submit(alice.ref, all)
      // bounded: each round acks what the window holds, at most 30 / 8 + 1 rounds
      for (let round = 0; round < 5 && sink.pushed.length < 30; round++) {
        const expected = Math.min(30, (round + 1) * 8)
        await sink.until(() => sink.pushed.length >= expected, `${expected} pushes`)
        assert.equal(sink.unacked.size, 8 - (expected === 30 ? 2 : 0))
        const ids = [...sink.unacked]
        sink.acked(ids)
        await delivery.ack(bob.ref, ids)
      }
      assert.deepEqual(sink.pushed.map((p) => p.id), all.map((e) => e.envelope.id))
    } finally {
      detach()
    }
  })

  test('an envelope not from the submitting device is refused with ERR_NOT_SENDER', async () => {
    const { delivery } = (nodes[1] as TalariaNode).messaging()
    const alice = testDevice()
    const bob = testDevice()
    await assert.rejects(delivery.submit(bob.ref, envelopes(alice, bob, 1)), { code: 'ERR_NOT_SENDER' })
  })

  test('cross-node: 1,000 envelopes from node 1 to a device on node 5 arrive exactly once, in order', async (t) => {
    const sender = nodes[0] as TalariaNode
    const receiver = nodes[4] as TalariaNode
    const alice = testDevice()
    const bob = testDevice()
    const bobSink = new RecordingSink()
    const aliceSink = new RecordingSink()
    const detachBob = receiver.messaging().delivery.attach(bob.ref, sinkOf(bobSink))
    const detachAlice = sender.messaging().delivery.attach(alice.ref, sinkOf(aliceSink))
    try {
      const published = await receiver.messaging().directory.publish([locationRecord(bob, receiver)])
      assert.deepEqual(published.failures, [])
      const located = await sender.messaging().directory.locate(bob.device.deviceId)
      assert.equal(located?.node, receiver.peerId)

      const all = envelopes(alice, bob, 1000)
      const started = performance.now()
      for (let i = 0; i < all.length; i += 100) await sender.messaging().delivery.submit(alice.ref, all.slice(i, i + 100))
      await bobSink.until(() => bobSink.pushed.length >= 1000, '1000 pushes')
      const ms = performance.now() - started
      await aliceSink.until(() => aliceSink.delivered.size >= 1000, '1000 delivered')
      const ids = bobSink.pushed.map((p) => p.id)
      assert.equal(new Set(ids).size, 1000, 'exactly once')
      assert.deepEqual(bobSink.pushed.map((p) => decodeEnvelope(p.bytes).seq), all.map((e) => e.envelope.seq), 'in submission order')
      // the deliver stream carried them: no replica holds any
      for (const node of nodes) assert.equal(await heldBy(node, bob), 0)
      t.diagnostic(`1000 envelopes node 1 → node 5: ${ms.toFixed(0)} ms (${(1000 / ms * 1000).toFixed(0)}/s)`)
    } finally {
      detachBob()
      detachAlice()
    }
  })
})
