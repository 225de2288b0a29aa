import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { createNode, type TalariaNode } from '../../node/index.js'
import { decodeGroupTraffic } from '../../protocol/groups/index.js'
import { firstTcpAddr, loopbackInit, startMesh, tempDataDir, waitUntil, type CloseAll } from '../helpers/mesh.js'
import { groupMessage, member, publishDevices, RecordingGroupSink, TestGroup } from './fixtures.js'

describe('group replicas near the group id', () => {
  let nodes: TalariaNode[] = []
  let closeMesh: CloseAll = async () => {}
  let late: TalariaNode | undefined
  before(async () => {
    [nodes, closeMesh] = await startMesh(4)
  })
  after(async () => {
    await late?.stop()
    await closeMesh()
  })

  it('keep a group\'s log and history, so a member coming back finds it after every member\'s node is gone', async () => {
    const home = nodes[1]!
    const alice = member()
    const erin = member()
    await publishDevices(home, alice)
    const g = new TestGroup(alice)
    g.op(alice, { type: 'add', users: [erin.ref.user] })
    const sink = new RecordingGroupSink()
    home.groups().attach(alice.auth, sink)
    await home.groups().submitOps(alice.auth, { group: g.id, ops: g.bytes() })
    const sent: string[] = []
    for (let i = 0; i < 3; i++) {
      const m = groupMessage(alice, g.id, `kept ${i}`)
      await home.groups().send(alice.auth, sink, { envelope: m.bytes })
      sent.push(m.id)
    }
    const others = nodes.filter((n) => n !== home)
    const holding = async (): Promise<TalariaNode[]> => {
      const out: TalariaNode[] = []
      for (const n of others) {
        const page = await n.groups().historySource.messages(g.id, 0, undefined, 10)
        if (page?.items.length === 3) out.push(n)
      }
      return out
    }
    await waitUntil(async () => (await holding()).length >= 2, { what: 'two replicas hold the history', timeoutMs: 30_000 })
    for (const n of await holding()) assert.ok(n.groups().replicaOf().includes(g.id))
    await home.stop()

    late = await createNode({ ...loopbackInit(await tempDataDir()), bootstrap: [firstTcpAddr(nodes[0]!)] })
    await late.start()
    await waitUntil(() => late!.getPeers().includes(nodes[0]!.peerId), { what: 'the late node connected' })
    // the replicas are found through the DHT: a routing table still holding only the bootstrap
    // node would name the wrong ones
    await waitUntil(() => late!.status().dhtPeers >= others.length, { what: 'the late node knows the surviving nodes' })
    late.groups().attach(erin.auth, new RecordingGroupSink())
    await late.groups().submitOps(erin.auth, { group: g.id, ops: g.bytes() })
    const res = await late.groups().history(erin.auth, { group: g.id, since: 0 })
    assert.deepEqual(res.messages.map((b) => decodeGroupTraffic(b).id).sort(), [...sent].sort())
  })
})
