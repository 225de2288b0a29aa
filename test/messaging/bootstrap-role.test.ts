import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import type { TalariaNode } from '../../node/index.js'
import { startMesh, waitUntil, type CloseAll } from '../helpers/mesh.js'
import { envelopes, locationRecord, RecordingSink, sinkOf, testDevice } from './fixtures.js'

describe('bootstrap nodes carry no messaging', () => {
  let nodes: TalariaNode[] = []
  let closeAll: CloseAll = async () => {}

  before(async () => {
    [nodes, closeAll] = await startMesh(4, { perNode: (i) => i === 0 ? { role: 'bootstrap' } : {} })
  })
  after(async () => { await closeAll() })

  test('a bootstrap node has no messaging services and is never a mailbox replica', async () => {
    const [bootstrap, sender, , host] = nodes as [TalariaNode, TalariaNode, TalariaNode, TalariaNode]
    assert.throws(() => bootstrap.messaging(), { code: 'ERR_ROLE' })
    const alice = testDevice()
    const bob = testDevice()
    // the replica set is taken from the peers the sender knows: wait until the mesh reached it
    await waitUntil(() => nodes.slice(2).every((n) => sender.getPeers().includes(n.peerId)), { what: 'the sender connected to the other messaging nodes' })
    const replicas = await sender.messaging().mailbox.replicas(bob.ref.user)
    assert.ok(!replicas.some((p) => p.toString() === bootstrap.peerId), 'the bootstrap node is not a replica')
    assert.ok(replicas.length >= 2)

    const senderSink = new RecordingSink()
    const detach = sender.messaging().delivery.attach(alice.ref, sinkOf(senderSink))
    try {
      const all = envelopes(alice, bob, 10)
      await sender.messaging().delivery.submit(alice.ref, all)
      await senderSink.until(() => senderSink.delivered.size >= 10, '10 delivered to the replicas')
      const sink = new RecordingSink()
      const detachBob = host.messaging().delivery.attach(bob.ref, sinkOf(sink))
      // the location record is the proof the replicas ask for before they hand the mailbox over
      await host.messaging().directory.publish([locationRecord(bob, host)])
      await sink.until(() => sink.pushed.length >= 10, '10 pushes')
      detachBob()
    } finally {
      detach()
    }
  })
})
