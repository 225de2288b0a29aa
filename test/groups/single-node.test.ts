import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { TalariaNode } from '../../node/index.js'
import type { ClientProtocolError } from '../../protocol/client-protocol.js'
import { decodeGroupTraffic, decodeRoomEnvelope } from '../../protocol/groups/index.js'
import { isErrorCode } from '../../protocol/errors.js'
import { startMesh, type CloseAll } from '../helpers/mesh.js'
import { groupMessage, member, RecordingGroupSink, roomMessage, TestGroup } from './fixtures.js'

const code = (c: string) => (err: unknown): boolean => {
  assert.ok(isErrorCode(err, c), `expected ${c}, got ${String((err as { code?: unknown }).code ?? err)}`)
  return true
}

describe('groups on one node', () => {
  let node: TalariaNode
  let closeAll: CloseAll = async () => {}
  before(async () => {
    const [nodes, close] = await startMesh(1)
    node = nodes[0]!
    closeAll = close
  })
  after(async () => { await closeAll() })

  it('applies ops, answers per op, and refuses an op that does not decode as a whole', async () => {
    const groups = node.groups()
    const alice = member()
    const bob = member()
    const g = new TestGroup(alice)
    g.op(alice, { type: 'add', users: [bob.ref.user] })
    const res = await groups.submitOps(alice.auth, { group: g.id, ops: g.bytes() })
    assert.deepEqual(res.results.map((r) => r.status), ['applied', 'applied'])
    assert.deepEqual(res.heads, [g.ops[1]!.id])
    const again = await groups.submitOps(alice.auth, { group: g.id, ops: g.bytes() })
    assert.deepEqual(again.results.map((r) => r.status), ['duplicate', 'duplicate'])
    // bob may not add anyone under the invite policy
    const carol = member()
    const bad = g.op(bob, { type: 'add', users: [carol.ref.user] })
    const r = await groups.submitOps(bob.auth, { group: g.id, ops: [bad.bytes] })
    assert.equal(r.results[0]?.status, 'rejected')
    assert.equal(r.results[0]?.code, 'ERR_FORBIDDEN')
    const garbage = new Uint8Array([1, 2, 3])
    await assert.rejects(groups.submitOps(alice.auth, { group: g.id, ops: [g.ops[0]!.bytes, garbage] }), (err) => {
      code('ERR_INVALID_OP')(err)
      assert.match((err as Error).message, /^op 1:/)
      return true
    })
    const got = await groups.getOps(alice.auth, { group: g.id })
    assert.equal(got.ops.length, 3)
    assert.equal(got.next, undefined)
  })

  it('takes a new group\'s ops while a read of the same group is still loading it', async () => {
    const groups = node.groups()
    const alice = member()
    const g = new TestGroup(alice)
    g.op(alice, { type: 'add', users: [member().ref.user] })
    // a read (a peer's history request, a replica check) starts a load that finds nothing stored
    const reading = groups.historySource.messages(g.id, 0, undefined, 10)
    const res = await groups.submitOps(alice.auth, { group: g.id, ops: g.bytes() })
    await reading
    assert.deepEqual(res.results.map((r) => r.status), ['applied', 'applied'])
    const page = await groups.historySource.ops(g.id, 0, 10)
    assert.equal(page?.items.length, 2)
  })

  it('refuses non-members, muted, banned and dismissed senders with their codes, and forged senders', async () => {
    const groups = node.groups()
    const alice = member()
    const bob = member()
    const eve = member()
    const g = new TestGroup(alice)
    g.op(alice, { type: 'add', users: [bob.ref.user] })
    await groups.submitOps(alice.auth, { group: g.id, ops: g.bytes() })
    const sink = new RecordingGroupSink()
    const bobSink = new RecordingGroupSink()
    const detach = groups.attach(alice.auth, sink)
    try {
      await assert.rejects(groups.send(eve.auth, bobSink, { envelope: groupMessage(eve, g.id).bytes }), code('ERR_NOT_MEMBER'))
      await assert.rejects(groups.send(eve.auth, sink, { envelope: groupMessage(bob, g.id).bytes }), code('ERR_NOT_SENDER'))
      await assert.rejects(groups.send(bob.auth, sink, { envelope: new Uint8Array([0x80]) }), code('ERR_INVALID_ENVELOPE'))
      // signed by another key than the authenticated device's
      await assert.rejects(groups.send({ ...bob.auth, signingKey: eve.auth.signingKey }, sink, { envelope: groupMessage(bob, g.id).bytes }), code('ERR_INVALID_ENVELOPE'))
      await assert.rejects(groups.send(bob.auth, sink, { envelope: groupMessage(bob, g.id, 'late', Date.now() - 3_600_000).bytes }), code('ERR_INVALID_ENVELOPE'))
      const ok = groupMessage(bob, g.id, 'hi')
      const sent = await groups.send(bob.auth, bobSink, { envelope: ok.bytes })
      assert.equal(sent.id, ok.id)
      assert.deepEqual(await groups.send(bob.auth, bobSink, { envelope: ok.bytes }), sent, 'idempotent by id')

      const mute = g.op(alice, { type: 'mute', users: [bob.ref.user], until: Date.now() + 3_600_000 })
      await groups.submitOps(alice.auth, { group: g.id, ops: [mute.bytes] })
      await assert.rejects(groups.send(bob.auth, sink, { envelope: groupMessage(bob, g.id).bytes }), code('ERR_MUTED'))
      const ban = g.op(alice, { type: 'ban', users: [bob.ref.user] })
      await groups.submitOps(alice.auth, { group: g.id, ops: [ban.bytes] })
      await assert.rejects(groups.send(bob.auth, sink, { envelope: groupMessage(bob, g.id).bytes }), code('ERR_BANNED'))
      await assert.rejects(groups.history(bob.auth, { group: g.id, since: 0 }), code('ERR_NOT_MEMBER'))
      const dismiss = g.op(alice, { type: 'dismiss' })
      await groups.submitOps(alice.auth, { group: g.id, ops: [dismiss.bytes] })
      await assert.rejects(groups.send(alice.auth, sink, { envelope: groupMessage(alice, g.id).bytes }), code('ERR_GROUP_DISMISSED'))
      // alice's connection saw bob's message (not its own) and every op
      assert.deepEqual(sink.messages().map((m) => m.envelope), [ok.bytes])
      assert.equal(sink.ops().length, 3)
    } finally { detach() }
  })

  it('moderates a room: blocked words, rate limit with retryAfterMs, masked text, bans, and wrong kinds', async () => {
    const groups = node.groups()
    const owner = member()
    const visitor = member()
    const watcher = member()
    const banned = member()
    const room = new TestGroup(owner, { joinPolicy: 'open', filter: { words: ['spam'], mode: 'block' }, rateLimit: { messages: 2, windowMs: 60_000 } }, 'room')
    room.op(owner, { type: 'ban', users: [banned.ref.user] })
    const visitorSink = new RecordingGroupSink()
    const watcherSink = new RecordingGroupSink()
    const bannedSink = new RecordingGroupSink()
    const detaches = [groups.attach(visitor.auth, visitorSink), groups.attach(watcher.auth, watcherSink), groups.attach(banned.auth, bannedSink)]
    try {
      const entered = await groups.enterRoom(visitor.auth, visitorSink, { room: room.id, ops: room.bytes() })
      assert.deepEqual(entered.heads, [room.ops[1]!.id])
      await groups.enterRoom(watcher.auth, watcherSink, { room: room.id })
      await assert.rejects(groups.enterRoom(banned.auth, bannedSink, { room: room.id }), code('ERR_BANNED'))
      await assert.rejects(groups.send(visitor.auth, visitorSink, { envelope: roomMessage(visitor, room.id, 'buy SPAM now').bytes }), code('ERR_CONTENT_BLOCKED'))
      await groups.send(visitor.auth, visitorSink, { envelope: roomMessage(visitor, room.id, 'one').bytes })
      await groups.send(visitor.auth, visitorSink, { envelope: roomMessage(visitor, room.id, 'two').bytes })
      await assert.rejects(groups.send(visitor.auth, visitorSink, { envelope: roomMessage(visitor, room.id, 'three').bytes }), (err) => {
        code('ERR_ROOM_RATE_LIMITED')(err)
        const retry = (err as ClientProtocolError).retryAfterMs
        assert.ok(retry !== undefined && retry > 0 && retry <= 60_000, `retryAfterMs ${String(retry)}`)
        return true
      })
      assert.deepEqual(watcherSink.messages().map((m) => decodeRoomEnvelope(m.envelope).text), ['one', 'two'])
      assert.equal(visitorSink.messages().length, 0, 'the sender does not get its own message')
      groups.leaveRoom(watcher.auth, watcherSink, room.id)

      const masked = new TestGroup(owner, { joinPolicy: 'open', filter: { words: ['darn'], mode: 'mask' } }, 'room')
      await groups.enterRoom(watcher.auth, watcherSink, { room: masked.id, ops: masked.bytes() })
      await groups.enterRoom(visitor.auth, visitorSink, { room: masked.id })
      const m = roomMessage(visitor, masked.id, 'oh darn it')
      await groups.send(visitor.auth, visitorSink, { envelope: m.bytes })
      const pushed = watcherSink.messages().at(-1)
      assert.deepEqual(pushed?.envelope, m.bytes, 'the envelope is unchanged (its signature covers the text)')
      assert.equal(pushed?.text, 'oh **** it')
      const clean = roomMessage(visitor, masked.id, 'all fine')
      await groups.send(visitor.auth, visitorSink, { envelope: clean.bytes })
      const history = await groups.history(watcher.auth, { group: masked.id, since: 0 })
      assert.deepEqual(history.messages, [m.bytes, clean.bytes])
      // history shows a masked room's messages as its pushes do
      assert.deepEqual(history.masked, [{ i: 0, text: 'oh **** it' }])

      const plain = new TestGroup(owner)
      await groups.submitOps(owner.auth, { group: plain.id, ops: plain.bytes() })
      await assert.rejects(groups.enterRoom(visitor.auth, visitorSink, { room: plain.id }), code('ERR_BAD_REQUEST'))
      const unknown = new TestGroup(owner, {}, 'room')
      await assert.rejects(groups.enterRoom(visitor.auth, visitorSink, { room: unknown.id }), code('ERR_NOT_FOUND'))
      await assert.rejects(groups.send(visitor.auth, visitorSink, { envelope: groupMessage(visitor, masked.id).bytes }), code('ERR_BAD_REQUEST'))
    } finally { for (const d of detaches) d() }
  })

  it('pages history in (sentAt, id) order and owes a lag to a backed-up connection', async () => {
    const groups = node.groups()
    const alice = member()
    const bob = member()
    const g = new TestGroup(alice)
    g.op(alice, { type: 'add', users: [bob.ref.user] })
    await groups.submitOps(alice.auth, { group: g.id, ops: g.bytes() })
    const slow = new RecordingGroupSink()
    const aliceSink = new RecordingGroupSink()
    const detachBob = groups.attach(bob.auth, slow)
    const detachAlice = groups.attach(alice.auth, aliceSink)
    try {
      const base = Date.now() - 60_000
      const sent: Array<{ id: string, sentAt: number }> = []
      slow.accepting = false
      for (let i = 0; i < 7; i++) {
        const sentAt = base + (i % 3) * 1000
        const m = groupMessage(alice, g.id, `m${i}`, sentAt)
        await groups.send(alice.auth, aliceSink, { envelope: m.bytes })
        sent.push({ id: m.id, sentAt })
      }
      assert.equal(slow.events.length, 0)
      slow.accepting = true
      groups.drain(slow)
      assert.deepEqual(slow.events, [{ ev: 'groupLag', body: { group: g.id } }])
      const expected = [...sent].sort((a, b) => a.sentAt - b.sentAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).map((m) => m.id)
      const seen: string[] = []
      let cursor: Uint8Array | undefined
      for (let page = 0; page < 10; page++) {
        const res = await groups.history(bob.auth, { group: g.id, since: 0, limit: 3, ...(cursor !== undefined ? { cursor } : {}) })
        for (const bytes of res.messages) seen.push(groupIdOf(bytes))
        cursor = res.cursor
        if (cursor === undefined) break
      }
      assert.deepEqual(seen, expected)
      const later = await groups.history(bob.auth, { group: g.id, since: base + 2000 })
      assert.equal(later.messages.length, 2)
    } finally {
      detachBob()
      detachAlice()
    }
  })
})

function groupIdOf (bytes: Uint8Array): string {
  return decodeGroupTraffic(bytes).id
}

describe('group retention on one node', () => {
  let node: TalariaNode
  let closeAll: CloseAll = async () => {}
  before(async () => {
    const [nodes, close] = await startMesh(1, { init: { groupRetentionMs: 60_000, roomHistoryLimit: 3 } })
    node = nodes[0]!
    closeAll = close
  })
  after(async () => { await closeAll() })

  it('sweeps messages past the retention and keeps a room\'s newest messages within its limit', async () => {
    const groups = node.groups()
    const alice = member()
    const g = new TestGroup(alice)
    await groups.submitOps(alice.auth, { group: g.id, ops: g.bytes() })
    const sink = new RecordingGroupSink()
    const detach = groups.attach(alice.auth, sink)
    try {
      const old = groupMessage(alice, g.id, 'old', Date.now() - 120_000)
      const recent = groupMessage(alice, g.id, 'recent')
      await groups.send(alice.auth, sink, { envelope: old.bytes })
      await groups.send(alice.auth, sink, { envelope: recent.bytes })
      assert.equal(await groups.sweep(), 1)
      assert.deepEqual((await groups.history(alice.auth, { group: g.id, since: 0 })).messages, [recent.bytes])

      const room = new TestGroup(alice, { joinPolicy: 'open' }, 'room')
      await groups.enterRoom(alice.auth, sink, { room: room.id, ops: room.bytes() })
      const sent = []
      for (let i = 0; i < 5; i++) {
        const m = roomMessage(alice, room.id, `r${i}`, Date.now() - 10_000 + i)
        await groups.send(alice.auth, sink, { envelope: m.bytes })
        sent.push(m.bytes)
      }
      assert.deepEqual((await groups.history(alice.auth, { group: room.id, since: 0 })).messages, sent.slice(2))
    } finally { detach() }
  })
})
