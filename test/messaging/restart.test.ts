import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { decodeEnvelope } from '../../protocol/envelopes.js'
import { createNode, type TalariaNode } from '../../node/index.js'
import { openStorage } from '../../storage/index.js'
import { firstTcpAddr, loopbackInit, meshDataDir, startMesh, type CloseAll } from '../helpers/mesh.js'
import { envelopes, locationRecord, RecordingSink, sinkOf, testDevice } from './fixtures.js'

describe('outbox survives a restart of the sender node', () => {
  let nodes: TalariaNode[] = []
  let closeAll: CloseAll = async () => {}
  const extra: TalariaNode[] = []

  before(async () => {
    [nodes, closeAll] = await startMesh(3)
  })
  after(async () => {
    await Promise.allSettled(extra.map(async (n) => { await n.stop() }))
    await closeAll()
  })

  test('entries left in the outbox are delivered after the node starts again; so are envelopes submitted just before a stop', async () => {
    const receiver = nodes[2] as TalariaNode
    const sender = nodes[1] as TalariaNode
    const alice = testDevice()
    const bob = testDevice()
    const bobSink = new RecordingSink()
    const detachBob = receiver.messaging().delivery.attach(bob.ref, sinkOf(bobSink))
    try {
      assert.deepEqual((await receiver.messaging().directory.publish([locationRecord(bob, receiver)])).failures, [])
      const dir = meshDataDir(sender)
      await sender.stop()

      // what a node that died between accepting and delivering leaves behind
      const left = envelopes(alice, bob, 20)
      const storage = await openStorage({ dataDir: dir, sweepIntervalMs: 0 })
      try {
        await storage.outbox.put(left.map((e, i) => ({
          id: e.envelope.id,
          order: 1000 + i,
          senderUser: alice.ref.user,
          senderDevice: alice.ref.device,
          recipientUser: bob.ref.user,
          recipientDevice: bob.ref.device,
          createdAt: Date.now(),
          body: e.bytes
        })))
      } finally {
        await storage.close()
      }

      const init = { ...loopbackInit(dir), bootstrap: [firstTcpAddr(nodes[0] as TalariaNode)] }
      const restarted = await createNode(init)
      extra.push(restarted)
      await restarted.start()
      const t0 = performance.now()
      await bobSink.until(() => bobSink.pushed.length >= 20, 'the 20 resumed envelopes')
      process.stderr.write(`phase1 ${performance.now() - t0}\n`)
      assert.deepEqual(bobSink.pushed.map((p) => decodeEnvelope(p.bytes).seq), left.map((e) => e.envelope.seq))

      // submit and stop at once: whatever was not delivered yet stays in the outbox
      const more = envelopes(alice, bob, 200, 21)
      await restarted.messaging().delivery.submit(alice.ref, more)
      await restarted.stop()
      const again = await createNode(init)
      extra.push(again)
      await again.start()
      await bobSink.until(() => new Set(bobSink.pushed.map((p) => p.id)).size >= 220, 'all 220 distinct envelopes')
      assert.deepEqual(new Set(bobSink.pushed.map((p) => p.id)), new Set([...left, ...more].map((e) => e.envelope.id)))
    } finally {
      detachBob()
    }
  })
})
