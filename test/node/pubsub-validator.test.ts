import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { PubSubMessage, TalariaNode, ValidatedMessage } from '../../node/index.js'
import { startMesh, waitFor, waitUntil, type CloseAll } from '../helpers/mesh.js'

describe('topic validators', () => {
  let nodes: TalariaNode[] = []
  let closeAll: CloseAll = async () => {}
  before(async () => {
    [nodes, closeAll] = await startMesh(2)
  })
  after(async () => { await closeAll() })

  it('deliver only accepted messages, unsigned, and lower the score of the peer that sent rejected ones', async () => {
    const [a, b] = nodes as [TalariaNode, TalariaNode]
    const topic = '/talaria/test/validated'
    const seen: ValidatedMessage[] = []
    b.setTopicValidator(topic, (msg) => {
      seen.push(msg)
      return msg.data[0] === 0xff ? 'reject' : msg.data[0] === 0xfe ? 'ignore' : 'accept'
    })
    const received: PubSubMessage[] = []
    const bSeesA = waitFor(b, 'topic:subscription-change', (c) => c.peerId === a.peerId && c.topic === topic && c.subscribed)
    const aSeesB = waitFor(a, 'topic:subscription-change', (c) => c.peerId === b.peerId && c.topic === topic && c.subscribed)
    b.subscribe(topic, (msg) => { received.push(msg) })
    a.subscribe(topic, () => {})
    await Promise.all([bSeesA, aSeesB])

    assert.equal(b.getPeerScore(a.peerId) >= 0, true)
    for (let i = 0; i < 5; i++) await a.publish(topic, Uint8Array.of(0xff, i))
    await a.publish(topic, Uint8Array.of(0xfe))
    await a.publish(topic, Uint8Array.of(1, 2, 3))
    await waitUntil(() => received.length === 1, { what: 'the accepted message arrived' })
    assert.deepEqual(received.map((m) => [...m.data]), [[1, 2, 3]])
    assert.equal(received[0]?.from, undefined, 'no gossipsub author: messages are unsigned')
    assert.equal(seen.every((m) => m.propagationSource === a.peerId), true)
    // gossipsub caches a score for up to a decay interval: poll until the rejections show
    await waitUntil(() => b.getPeerScore(a.peerId) < -10, { what: 'the score of the rejected peer fell below the gossip threshold' })
    b.removeTopicValidator(topic)
  })
})
