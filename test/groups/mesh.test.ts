import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { createNode, encodeTopicFrame, type TalariaNode } from '../../node/index.js'
import { decodeGroupTraffic, decodeRoomEnvelope, encodeRoomEnvelope, groupTopic } from '../../protocol/groups/index.js'
import { certifyDevice, createDeviceList, revokeDeviceFromList } from '../../protocol/index.js'
import { devicesRecord } from '../gateway/harness.js'
import { firstTcpAddr, loopbackInit, meshDataDir, startMesh, tempDataDir, waitUntil, type CloseAll } from '../helpers/mesh.js'
import { groupMessage, member, publishDevices, RecordingGroupSink, roomMessage, TestGroup, type Member } from './fixtures.js'

const idOf = (bytes: Uint8Array): string => decodeGroupTraffic(bytes).id

describe('groups across nodes', () => {
  let nodes: TalariaNode[] = []
  let closeMesh: CloseAll = async () => {}
  const extra: TalariaNode[] = []
  const alice = member()
  const bob = member()
  const carol = member()
  const sinks = { alice: new RecordingGroupSink(), bob: new RecordingGroupSink(), carol: new RecordingGroupSink() }
  let g: TestGroup
  let a: TalariaNode
  let b: TalariaNode
  let c: TalariaNode

  /** Starts one more node bootstrapping from the first. */
  async function startNode (dataDir?: string): Promise<TalariaNode> {
    const node = await createNode({ ...loopbackInit(dataDir ?? await tempDataDir()), bootstrap: [firstTcpAddr(a)] })
    extra.push(node)
    await node.start()
    await waitUntil(() => node.getPeers().includes(a.peerId), { what: 'the new node connected to the first' })
    return node
  }

  async function meshed (topic: string, pairs: Array<[TalariaNode, TalariaNode]>): Promise<void> {
    await waitUntil(() => pairs.every(([x, y]) => x.getSubscribers(topic).includes(y.peerId)), { what: `subscriptions to ${topic} known` })
  }

  before(async () => {
    [nodes, closeMesh] = await startMesh(3)
    ;[a, b, c] = nodes as [TalariaNode, TalariaNode, TalariaNode]
    await publishDevices(a, alice)
    await publishDevices(b, bob)
    await publishDevices(c, carol)
    g = new TestGroup(alice)
    g.op(alice, { type: 'add', users: [bob.ref.user, carol.ref.user] })
    a.groups().attach(alice.auth, sinks.alice)
    b.groups().attach(bob.auth, sinks.bob)
    c.groups().attach(carol.auth, sinks.carol)
  })
  after(async () => {
    await Promise.allSettled(extra.map(async (n) => { await n.stop() }))
    await closeMesh()
  })

  it('propagates ops so that every node reaches the same state', async () => {
    // the owner's node learns the group from its client; members' nodes from their invitations
    await a.groups().submitOps(alice.auth, { group: g.id, ops: g.bytes() })
    await b.groups().submitOps(bob.auth, { group: g.id, ops: g.bytes() })
    await c.groups().submitOps(carol.auth, { group: g.id, ops: g.bytes() })
    const topic = groupTopic(g.id)
    await meshed(topic, [[a, b], [a, c], [b, a], [c, a]])
    const dave = member()
    const add = g.op(alice, { type: 'add', users: [dave.ref.user] })
    const res = await a.groups().submitOps(alice.auth, { group: g.id, ops: [add.bytes] })
    assert.equal(res.results[0]?.status, 'applied')
    await sinks.bob.until(() => sinks.bob.ops().some((o) => o.op.length === add.bytes.length && Buffer.compare(o.op, add.bytes) === 0), 'bob learns the op')
    await sinks.carol.until(() => sinks.carol.ops().some((o) => Buffer.compare(o.op, add.bytes) === 0), 'carol learns the op')
    const states = await Promise.all(nodes.map(async (n) => await n.groups().state(g.id)))
    for (const s of states) {
      assert.deepEqual(s?.heads, [add.id])
      assert.deepEqual([...(s?.members.keys() ?? [])].sort(), [alice, bob, carol, dave].map((m) => m.ref.user).sort())
    }
  })

  it('pushes a message to the members on other nodes exactly once and stores it everywhere', async () => {
    const m1 = groupMessage(alice, g.id, 'one')
    const m2 = groupMessage(bob, g.id, 'two')
    await a.groups().send(alice.auth, sinks.alice, { envelope: m1.bytes })
    await b.groups().send(bob.auth, sinks.bob, { envelope: m2.bytes })
    await sinks.carol.until(() => sinks.carol.messages().some((e) => idOf(e.envelope) === m2.id) && sinks.carol.messages().some((e) => idOf(e.envelope) === m1.id), 'carol gets both')
    await sinks.bob.until(() => sinks.bob.messages().some((e) => idOf(e.envelope) === m1.id), 'bob gets alice\'s')
    await sinks.alice.until(() => sinks.alice.messages().some((e) => idOf(e.envelope) === m2.id), 'alice gets bob\'s')
    // one more round trip so a duplicate would have arrived by now
    const m3 = groupMessage(carol, g.id, 'three')
    await c.groups().send(carol.auth, sinks.carol, { envelope: m3.bytes })
    await sinks.alice.until(() => sinks.alice.messages().some((e) => idOf(e.envelope) === m3.id), 'alice gets carol\'s')
    await sinks.bob.until(() => sinks.bob.messages().some((e) => idOf(e.envelope) === m3.id), 'bob gets carol\'s')
    const count = (s: RecordingGroupSink, id: string): number => s.messages().filter((e) => idOf(e.envelope) === id).length
    assert.equal(count(sinks.bob, m1.id), 1)
    assert.equal(count(sinks.carol, m1.id), 1)
    assert.equal(count(sinks.carol, m2.id), 1)
    assert.equal(count(sinks.alice, m1.id), 0, 'the sender\'s own connection gets nothing back')
    for (const [node, who] of [[a, alice], [b, bob], [c, carol]] as Array<[TalariaNode, Member]>) {
      await waitUntil(async () => (await node.groups().history(who.auth, { group: g.id, since: 0 })).messages.length === 3, { what: `${who.ref.user} history holds the three messages` })
    }
  })

  it('holds a message whose sender device it cannot find yet, and delivers it once the device list appears', async () => {
    const frank = member()
    const add = g.op(alice, { type: 'add', users: [frank.ref.user] })
    await a.groups().submitOps(alice.auth, { group: g.id, ops: [add.bytes] })
    await waitUntil(async () => (await b.groups().state(g.id))?.members.has(frank.ref.user) === true, { what: 'node B knows frank is a member' })
    // frank's device list is nowhere yet: node A cannot check the signature when the message arrives
    const m = groupMessage(frank, g.id, 'early')
    await b.groups().send(frank.auth, new RecordingGroupSink(), { envelope: m.bytes })
    await waitUntil(() => a.groups().heldMessages() > 0, { what: 'node A holds the message it cannot judge yet' })
    await publishDevices(b, frank)
    await sinks.alice.until(() => sinks.alice.messages().some((e) => idOf(e.envelope) === m.id), 'alice gets frank\'s message', 40_000)
  })

  it('drops garbage, forged and non-member messages from a hostile peer, lowering its score', async () => {
    const hostile = await startNode()
    const topic = groupTopic(g.id)
    hostile.subscribe(topic, () => {})
    await meshed(topic, [[hostile, a], [a, hostile]])
    const eve = member()
    await publishDevices(hostile, eve)
    const forged = groupMessage(alice, g.id, 'forged')
    const tampered = forged.bytes.slice()
    tampered[tampered.length - 70] = (tampered[tampered.length - 70] ?? 0) ^ 0xff
    const outsider = groupMessage(eve, g.id, 'not a member')
    const junk = [
      new Uint8Array([0x01, 0xc1, 0xff]),
      new Uint8Array([0x07, 1, 2, 3]),
      encodeTopicFrame({ kind: 'op', bytes: new Uint8Array([0x80]) }),
      encodeTopicFrame({ kind: 'message', bytes: tampered }),
      encodeTopicFrame({ kind: 'message', bytes: outsider.bytes })
    ]
    for (const data of junk) await hostile.publish(topic, data)
    await waitUntil(() => a.getPeerScore(hostile.peerId) < 0, { what: 'the hostile peer\'s score drops' })
    // an honest message still flows, and nothing of the hostile peer's got through
    const honest = groupMessage(bob, g.id, 'still here')
    await b.groups().send(bob.auth, sinks.bob, { envelope: honest.bytes })
    await sinks.alice.until(() => sinks.alice.messages().some((e) => idOf(e.envelope) === honest.id), 'the honest message arrives')
    const ids = new Set(sinks.alice.messages().map((e) => idOf(e.envelope)))
    assert.equal(ids.has(outsider.id), false)
    assert.equal(ids.has(forged.id), false)
    const stored = (await a.groups().history(alice.auth, { group: g.id, since: 0 })).messages.map(idOf)
    assert.equal(stored.includes(outsider.id), false)
    assert.equal(stored.includes(forged.id), false)
    assert.equal(a.state, 'started')
    await hostile.stop()
  })

  it('lets a node that joins later fetch the history it missed from topic peers, in (sentAt, id) order', async () => {
    const late = await startNode()
    const erin = member()
    await publishDevices(late, erin)
    const base = Date.now() - 30_000
    for (let i = 0; i < 4; i++) {
      await a.groups().send(alice.auth, sinks.alice, { envelope: groupMessage(alice, g.id, `old ${i}`, base + (i % 2) * 10).bytes })
    }
    const add = g.op(alice, { type: 'add', users: [erin.ref.user] })
    await a.groups().submitOps(alice.auth, { group: g.id, ops: [add.bytes] })
    const erinSink = new RecordingGroupSink()
    late.groups().attach(erin.auth, erinSink)
    await late.groups().submitOps(erin.auth, { group: g.id, ops: g.bytes() })
    const theirs = (await a.groups().history(alice.auth, { group: g.id, since: 0 })).messages
    const mine = await late.groups().history(erin.auth, { group: g.id, since: 0 })
    assert.deepEqual(mine.messages.map(idOf), theirs.map(idOf))
    const sentAt = mine.messages.map((m) => decodeGroupTraffic(m).sentAt)
    assert.deepEqual(sentAt, [...sentAt].sort((x, y) => x - y))
    assert.ok(mine.messages.length >= 8)
    await late.stop()
  })

  it('lets a visitor on another node enter a room it only knows by id, and get its messages', async () => {
    const owner = member()
    const visitor = member()
    await publishDevices(a, owner)
    const room = new TestGroup(owner, { joinPolicy: 'open' }, 'room')
    const ownerSink = new RecordingGroupSink()
    const visitorSink = new RecordingGroupSink()
    a.groups().attach(owner.auth, ownerSink)
    b.groups().attach(visitor.auth, visitorSink)
    await a.groups().enterRoom(owner.auth, ownerSink, { room: room.id, ops: room.bytes() })
    const topic = groupTopic(room.id)
    await meshed(topic, [[b, a]])
    const entered = await b.groups().enterRoom(visitor.auth, visitorSink, { room: room.id })
    assert.deepEqual(entered.heads, [room.ops[0]!.id])
    await meshed(topic, [[a, b]])
    const m = roomMessage(owner, room.id, 'welcome')
    await a.groups().send(owner.auth, ownerSink, { envelope: m.bytes })
    await visitorSink.until(() => visitorSink.messages().length === 1, 'the visitor gets the room message')
    assert.equal(decodeRoomEnvelope(visitorSink.messages()[0]!.envelope).text, 'welcome')
  })

  it('keeps a new room on its nearest nodes before answering its creator: a visitor on a node nobody shares finds it by id', async () => {
    // more nodes than replicas, so the creating node is outside some rooms' replica sets
    const more = [await startNode(), await startNode(), await startNode()]
    const entering = more[2]!
    await waitUntil(() => [...nodes, ...more].every((n) => n.status().dhtPeers >= 3), { what: 'routing tables hold the new nodes' })
    const owner = member()
    const visitor = member()
    await publishDevices(a, owner)
    // nobody enters these rooms on the creating node: it never subscribes to their topics
    const rooms = Array.from({ length: 6 }, (_, i) => new TestGroup(owner, { name: `lobby ${i}`, joinPolicy: 'open' }, 'room'))
    for (const room of rooms) {
      const res = await a.groups().submitOps(owner.auth, { group: room.id, ops: room.bytes() })
      assert.deepEqual(res.results.map((r) => r.status), ['applied'])
    }
    const sink = new RecordingGroupSink()
    entering.groups().attach(visitor.auth, sink)
    const entered = await Promise.allSettled(rooms.map(async (room) => await entering.groups().enterRoom(visitor.auth, sink, { room: room.id })))
    assert.deepEqual(entered.map((r) => r.status === 'fulfilled' ? 'entered' : String((r.reason as { code?: unknown }).code)), rooms.map(() => 'entered'))
  })

  it('checks a room sender by the certificate its message carries: no published keys needed, forged or revoked refused', async () => {
    const owner = member()
    const visitor = member()
    const quiet = member()
    const revoked = member()
    const room = new TestGroup(owner, { joinPolicy: 'open' }, 'room')
    const visitorSink = new RecordingGroupSink()
    const ownerSink = new RecordingGroupSink()
    const quietSink = new RecordingGroupSink()
    a.groups().attach(owner.auth, ownerSink)
    a.groups().attach(quiet.auth, quietSink)
    b.groups().attach(visitor.auth, visitorSink)
    await a.groups().enterRoom(owner.auth, ownerSink, { room: room.id, ops: room.bytes() })
    const topic = groupTopic(room.id)
    await meshed(topic, [[b, a]])
    await b.groups().enterRoom(visitor.auth, visitorSink, { room: room.id })
    await meshed(topic, [[a, b]])
    // a sender whose device list is nowhere in the DHT: its certificate is enough
    const fine = roomMessage(quiet, room.id, 'no keys published')
    await a.groups().send(quiet.auth, quietSink, { envelope: fine.bytes })
    await visitorSink.until(() => visitorSink.messages().some((e) => idOf(e.envelope) === fine.id), 'the visitor gets a message from a sender with no published keys')

    // a device its user's list revokes, known to node B (the list was published through it)
    const list = revokeDeviceFromList(createDeviceList(revoked.user, [revoked.cert]), revoked.user, revoked.device.deviceId)
    await b.messaging().directory.publish([devicesRecord({ ...revoked, list })])
    const hostile = await startNode()
    hostile.subscribe(topic, () => {})
    await meshed(topic, [[hostile, b], [b, hostile]])
    const fromRevoked = roomMessage(revoked, room.id, 'still me')
    // quiet's message under another device's valid certificate of the same user
    const other = member()
    const swapped = decodeRoomEnvelope(roomMessage(quiet, room.id, 'swapped').bytes)
    const forged = encodeRoomEnvelope({ ...swapped, cert: certifyDevice(quiet.user, other.device) })
    for (const bytes of [fromRevoked.bytes, forged]) await hostile.publish(topic, encodeTopicFrame({ kind: 'message', bytes }))
    await waitUntil(() => b.getPeerScore(hostile.peerId) < 0, { what: 'node B penalises the peer that relayed them' })
    const last = roomMessage(owner, room.id, 'after')
    await a.groups().send(owner.auth, ownerSink, { envelope: last.bytes })
    await visitorSink.until(() => visitorSink.messages().some((e) => idOf(e.envelope) === last.id), 'an honest message still arrives')
    const ids = visitorSink.messages().map((e) => idOf(e.envelope))
    assert.equal(ids.includes(fromRevoked.id), false, 'a revoked device\'s message is refused')
    assert.equal(ids.includes(swapped.id), false, 'a message under another device\'s certificate is refused')
    await hostile.stop()
  })

  it('keeps logs and history across a restart', async () => {
    const before = await b.groups().state(g.id)
    const history = (await b.groups().history(bob.auth, { group: g.id, since: 0 })).messages.map(idOf)
    const dir = meshDataDir(b)
    await b.stop()
    const again = await startNode(dir)
    const after = await again.groups().state(g.id)
    assert.deepEqual(after?.heads, before?.heads)
    assert.equal(after?.version, before?.version)
    const stored = (await again.groups().history(bob.auth, { group: g.id, since: 0 })).messages.map(idOf)
    for (const id of history) assert.ok(stored.includes(id), `message ${id} kept`)
  })
})
