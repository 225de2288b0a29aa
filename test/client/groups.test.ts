import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { LevelStore, MemoryStore, createClient, createIdentity, type ClientEvents, type ClientIdentity, type ClientInit, type TalariaClient } from '../../client/index.js'
import { decodeValue, expectObject, expectBytes } from '../../protocol/codec.js'
import { createSenderKey, deserializeReceiverSenderKey, encodeSenderKeyDistribution, senderKeyDistribution } from '../../protocol/e2e/sender-keys.js'
import { decodeGroupTraffic, openGroupEnvelope } from '../../protocol/groups/index.js'
import type { GroupEnvelope } from '../../protocol/envelopes.js'
import type { GroupId } from '../../protocol/ids.js'
import { nextEvent } from './collect.js'
import { FakeNode } from './fake-node.js'

const WAIT = 10_000

type GroupMessage = ClientEvents['groupMessage']

function client (node: FakeNode, identity: ClientIdentity, extra: Partial<ClientInit> = {}): TalariaClient {
  return createClient({ url: 'ws://fake/v1', WebSocket: node.WebSocket, identity, ...extra })
}

async function withClients (node: FakeNode, inits: Array<Omit<ClientInit, 'url'>>, fn: (clients: TalariaClient[]) => Promise<void>): Promise<void> {
  const clients = inits.map((init) => client(node, init.identity, init))
  try {
    for (const c of clients) await c.connect()
    await fn(clients)
  } finally {
    await Promise.allSettled(clients.map(async (c) => { await c.close() }))
  }
}

/** Collects `groupMessage` events of one group until `count` arrived. */
async function collectGroup (c: TalariaClient, group: GroupId, count: number, timeoutMs = WAIT, into: GroupMessage[] = []): Promise<GroupMessage[]> {
  return await new Promise((resolve, reject) => {
    if (into.length >= count) { resolve(into); return }
    const timer = setTimeout(() => { off(); reject(new Error(`timed out with ${into.length} of ${count} group messages`)) }, timeoutMs)
    const off = c.on('groupMessage', (m) => {
      if (m.group !== group) return
      into.push(m)
      if (into.length >= count) { clearTimeout(timer); off(); resolve(into) }
    })
  })
}

/** Waits until `predicate` holds, polling; fails at the deadline. */
async function until (predicate: () => boolean | Promise<boolean>, what: string, timeoutMs = WAIT): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await predicate())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

/** Waits until the node has been idle for a moment: every push in flight has been handled. */
async function settle (ms = 100): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms))
}

function assertPerSenderOrder (msgs: GroupMessage[]): void {
  const last = new Map<string, number>()
  for (const m of msgs) {
    const prev = last.get(m.fromDevice) ?? 0
    assert.ok(m.seq > prev, `seq ${m.seq} from ${m.fromDevice} after ${prev}`)
    last.set(m.fromDevice, m.seq)
  }
}

describe('groups over a fake node', () => {
  it('creates a group with members: every member learns it, and every member gets every message once, in per-sender order', async () => {
    const node = new FakeNode()
    const [alice, bob, carol] = [createIdentity(), createIdentity(), createIdentity()]
    await withClients(node, [{ identity: alice }, { identity: bob }, { identity: carol }], async ([a, b, c]) => {
      const bobLearns = nextEvent(b!, 'groupChange', WAIT, (ch) => ch.op === 'add')
      const group = await a!.createGroup({ name: 'friends', members: [bob.user.userId, carol.user.userId] })
      const change = await bobLearns
      assert.equal(change.group, group)
      assert.equal(change.author, alice.user.userId)
      await until(() => c!.group(group) !== undefined, 'carol learns the group')
      for (const x of [a!, b!, c!]) {
        const st = x.group(group)!
        assert.equal(st.settings.name, 'friends')
        assert.equal(st.members.get(alice.user.userId)?.role, 'owner')
        assert.deepEqual([...st.members.keys()].sort(), [alice.user.userId, bob.user.userId, carol.user.userId].sort())
        assert.deepEqual(x.groups(), [group])
      }

      const atCarol = collectGroup(c!, group, 30)
      const atBob = collectGroup(b!, group, 20)
      const seenAtCarol: string[] = []
      c!.on('groupMessage', (m) => { seenAtCarol.push(m.id) })
      const sends: Array<Promise<string>> = []
      for (let i = 0; i < 20; i++) sends.push(a!.sendGroup(group, `a${i}`))
      for (let i = 0; i < 10; i++) sends.push(b!.sendGroup(group, `b${i}`))
      const ids = await Promise.all(sends)
      const got = await atCarol
      assert.deepEqual(got.filter((m) => m.from === alice.user.userId).map((m) => m.text), Array.from({ length: 20 }, (_, i) => `a${i}`))
      assert.deepEqual(got.filter((m) => m.from === bob.user.userId).map((m) => m.text), Array.from({ length: 10 }, (_, i) => `b${i}`))
      assert.deepEqual(got.filter((m) => m.from === alice.user.userId).map((m) => m.seq), Array.from({ length: 20 }, (_, i) => i + 1))
      assertPerSenderOrder(got)
      assert.deepEqual(new Set(got.map((m) => m.id)), new Set(ids))
      const bobGot = await atBob
      assert.ok(bobGot.every((m) => m.from === alice.user.userId), 'bob does not get his own messages back')
      // pushed again: still once
      for (const m of node.history.get(group)!.slice(0, 5)) node.pushGroup(carol.device.deviceId, m.bytes)
      await settle()
      assert.equal(seenAtCarol.length, 30)
      assert.equal(new Set(seenAtCarol).size, 30)
      // the node saw ciphertext only
      // (a marker long enough that random ciphertext does not contain it by chance)
      const marker = 'plaintext-marker-'
      await a!.sendGroup(group, `${marker}1`)
      const last = node.groupSent.at(-1)!
      assert.ok(last.kind === 'group' && !new TextDecoder().decode(last.ciphertext).includes(marker), 'the node sees no plaintext')
    })
  })

  it('looks up the members\' devices when it distributes its sender key, not again on every later send', async () => {
    const node = new FakeNode()
    const ids = [createIdentity(), createIdentity(), createIdentity(), createIdentity()]
    // no client-side lookup cache: every devices lookup the groups layer makes reaches the node
    await withClients(node, ids.map((identity) => ({ identity, lookupCacheMs: 0 })), async ([a, ...others]) => {
      const group = await a!.createGroup({ name: 'quiet', members: ids.slice(1).map((i) => i.user.userId) })
      const got = others.map((o) => collectGroup(o, group, 11))
      await a!.sendGroup(group, 'first')
      const afterFirst = node.requests.get('lookup') ?? 0
      for (let i = 0; i < 10; i++) await a!.sendGroup(group, `more ${i}`)
      assert.equal(node.requests.get('lookup') ?? 0, afterFirst, 'ten more sends made no lookup')
      for (const g of got) assert.equal((await g).length, 11)
    })
  })

  it('gives its sender key with the invitation: the first send after createGroup makes no lookup and no 1:1 send, and every member reads it', async () => {
    const node = new FakeNode()
    const ids = [createIdentity(), createIdentity(), createIdentity(), createIdentity()]
    await withClients(node, ids.map((identity) => ({ identity, lookupCacheMs: 0 })), async ([a, ...others]) => {
      const got = others.map((o) => nextEvent(o, 'groupMessage', WAIT))
      const group = await a!.createGroup({ name: 'one trip', members: ids.slice(1).map((i) => i.user.userId) })
      const me = ids[0]!.device.deviceId
      const lookups = node.requestsOf(me, 'lookup')
      const sends = node.requestsOf(me, 'send')
      assert.ok(lookups >= 3, 'createGroup looked the members up')
      await a!.sendGroup(group, 'first')
      assert.equal(node.requestsOf(me, 'lookup'), lookups, 'the first send looked nobody up')
      assert.equal(node.requestsOf(me, 'send'), sends, 'the first send sent no sender key over 1:1')
      for (const g of got) {
        const m = await g
        assert.equal(m.group, group)
        assert.equal(m.text, 'first')
      }
    })
  })

  it('gives its sender key with the invitation to members only: an invitee who has not joined gets the ops and no key', async () => {
    const node = new FakeNode()
    const [alice, bob, dave] = [createIdentity(), createIdentity(), createIdentity()]
    const stores = [new MemoryStore(), new MemoryStore()]
    await withClients(node, [{ identity: alice }, { identity: bob, store: stores[0]! }, { identity: dave, store: stores[1]! }], async ([a, _b, d]) => {
      const group = await a!.createGroup({ name: 'closed', members: [bob.user.userId] })
      const daveLearns = nextEvent(d!, 'groupChange', WAIT, (ch) => ch.group === group && ch.op === 'invite')
      await a!.invite(group, [dave.user.userId])
      await daveLearns
      await until(async () => (await stores[0]!.list('group-recv')).length === 1, 'bob, a member, holds alice\'s key from the invitation')
      // dave's invitation is handled once its inbox entry is gone (the event fired while it was there)
      await until(async () => (await stores[1]!.list('group-inbox')).length === 0, 'dave\'s invitation handled')
      assert.equal(d!.group(group)?.members.has(dave.user.userId), false)
      assert.deepEqual(await stores[1]!.list('group-recv'), [], 'dave, invited only, holds no key')
    })
  })

  it('takes the key of an invitation it drops like any sender key: a group it has not heard of is learned from the node', async () => {
    const node = new FakeNode()
    const [alice, bob] = [createIdentity(), createIdentity()]
    const bobStore = new MemoryStore()
    await withClients(node, [{ identity: alice }], async ([a]) => {
      // bob is away while the group is made, and his invitation is lost on the way
      node.filter = (env) => env.to.device === bob.device.deviceId ? 'drop' : 'deliver'
      const group = await a!.createGroup({ name: 'lost', members: [bob.user.userId] })
      await withClients(node, [{ identity: bob, store: bobStore }], async ([b]) => {
        assert.equal(b!.group(group), undefined)
        // an invitation carrying only the genesis (which does not name bob) is dropped, but its key is
        // taken as a senderKey content is: for a group bob has not heard of, he asks his node for the log
        const genesis = node.groupLogs.get(group)!.ops()[0]!.bytes
        const content = { type: 'groupInvite' as const, group, ops: [genesis], senderKey: { epoch: 0, distribution: encodeSenderKeyDistribution(senderKeyDistribution(createSenderKey())) } }
        const layer = (b as unknown as { groupsLayer: { handleDirect: (u: string, d: string, c: unknown, k: string) => Promise<void> } }).groupsLayer
        await layer.handleDirect(alice.user.userId, alice.device.deviceId, content, 'test-inbox-key')
        assert.equal((await bobStore.list('group-recv')).length, 1, 'the key was kept')
        await until(() => b!.group(group)?.members.has(bob.user.userId) === true, 'bob learns the group from his node')
      })
    })
  })

  it('orders what arrives out of order, first messages included, and holds messages whose sender key has not arrived yet', async () => {
    const node = new FakeNode()
    const [alice, bob, carol] = [createIdentity(), createIdentity(), createIdentity()]
    await withClients(node, [{ identity: alice }, { identity: bob }, { identity: carol, gapTimeoutMs: 5000 }], async ([a, b, c]) => {
      const group = await a!.createGroup({ name: 'ordered', members: [bob.user.userId, carol.user.userId] })
      await until(() => c!.group(group) !== undefined && b!.group(group) !== undefined, 'members learn the group')
      node.groupFilter = (_env, to) => to === carol.device.deviceId ? 'drop' : 'deliver'
      const seen: GroupMessage[] = []
      c!.on('groupMessage', (m) => { seen.push(m) })

      // the key is there, the group messages come in reverse: the first one is waited for
      const fromAlice = collectGroup(c!, group, 3)
      for (let i = 1; i <= 3; i++) await a!.sendGroup(group, `a${i}`)
      await settle()
      for (const m of [...node.history.get(group)!].reverse()) node.pushGroup(carol.device.deviceId, m.bytes)
      assert.deepEqual((await fromAlice).map((m) => m.text), ['a1', 'a2', 'a3'])

      // bob's sender key travels 1:1 and is held back; his messages are pushed in reverse
      node.filter = (env) => env.to.device === carol.device.deviceId ? 'hold' : 'deliver'
      const fromBob = collectGroup(c!, group, 6)
      for (let i = 1; i <= 6; i++) await b!.sendGroup(group, `b${i}`)
      const bobs = node.history.get(group)!.slice(3)
      assert.equal(bobs.length, 6)
      for (const m of [...bobs].reverse()) node.pushGroup(carol.device.deviceId, m.bytes)
      await settle()
      assert.equal(seen.length, 3, 'nothing of bob opens before his sender key arrives')
      node.filter = () => 'deliver'
      node.flushInbox(carol.device.deviceId)
      assert.deepEqual((await fromBob).map((m) => m.text), ['b1', 'b2', 'b3', 'b4', 'b5', 'b6'])
      await settle()
      assert.equal(seen.length, 9)
    })
  })

  it('rotates the sender key when a member is removed: the removed member cannot open later messages, even given the raw envelope', async () => {
    const node = new FakeNode()
    const [alice, bob, carol] = [createIdentity(), createIdentity(), createIdentity()]
    const bobStore = new MemoryStore()
    await withClients(node, [{ identity: alice }, { identity: bob, store: bobStore }, { identity: carol }], async ([a, b, c]) => {
      const group = await a!.createGroup({ name: 'rotating', members: [bob.user.userId, carol.user.userId] })
      await until(() => b!.group(group) !== undefined && c!.group(group) !== undefined, 'members learn the group')
      const first = Promise.all([collectGroup(b!, group, 1), collectGroup(c!, group, 1)])
      await a!.sendGroup(group, 'before')
      await first
      const epoch = a!.group(group)!.epoch
      const bobRemoved = nextEvent(b!, 'groupChange', WAIT, (ch) => ch.op === 'remove')
      await a!.removeMembers(group, [bob.user.userId])
      assert.equal(a!.group(group)!.epoch, epoch + 1)
      await bobRemoved
      assert.equal(b!.group(group)!.members.has(bob.user.userId), false)

      const bobAfter: GroupMessage[] = []
      b!.on('groupMessage', (m) => { bobAfter.push(m) })
      const atCarol = collectGroup(c!, group, 1)
      await a!.sendGroup(group, 'after')
      assert.equal((await atCarol)[0]!.text, 'after')
      const raw = node.history.get(group)!.at(-1)!.bytes
      const env = decodeGroupTraffic(raw) as GroupEnvelope
      // the envelope reaches bob anyway (a node that ignores the removal)
      node.pushGroup(bob.device.deviceId, raw)
      await settle()
      assert.equal(bobAfter.length, 0)
      // and no sender key bob ever received opens it
      const states = await bobStore.list('group-recv')
      assert.ok(states.length > 0, 'bob holds the old sender key')
      for (const [, value] of states) {
        const o = expectObject(decodeValue(value, 1 << 20), 'receiver')
        const state = deserializeReceiverSenderKey(expectBytes(o.state, 'state', 1, 1 << 20))
        assert.throws(() => openGroupEnvelope(env, state))
      }
      // the key that went to carol after the removal never went to bob
      const sentToBob = node.sent.filter((e) => e.to.device === bob.device.deviceId && e.from.device === alice.device.deviceId)
      const beforeCount = sentToBob.length
      await a!.sendGroup(group, 'again')
      assert.equal(node.sent.filter((e) => e.to.device === bob.device.deviceId && e.from.device === alice.device.deviceId).length, beforeCount)
    })
  })

  it('refuses locally, without a request, a member removing the owner (ERR_FORBIDDEN)', async () => {
    const node = new FakeNode()
    const [alice, bob] = [createIdentity(), createIdentity()]
    await withClients(node, [{ identity: alice }, { identity: bob }], async ([a, b]) => {
      const group = await a!.createGroup({ name: 'ranks', members: [bob.user.userId] })
      await until(() => b!.group(group) !== undefined, 'bob learns the group')
      const before = node.requests.get('groupOps') ?? 0
      await assert.rejects(b!.removeMembers(group, [alice.user.userId]), { code: 'ERR_FORBIDDEN', name: 'ClientProtocolError' })
      await assert.rejects(b!.dismissGroup(group), { code: 'ERR_FORBIDDEN' })
      assert.equal(node.requests.get('groupOps') ?? 0, before)
      // a stranger may not send
      await assert.rejects(b!.sendGroup('g' + 'a'.repeat(32) as GroupId, 'x'), { code: 'ERR_NOT_FOUND' })
      await assert.rejects(b!.addMembers(group, ['not a user' as never]), { code: 'ERR_BAD_ARGUMENT' })
    })
  })

  it('pulls what it missed while offline from the history when it reconnects: all 50, in order', async () => {
    const node = new FakeNode()
    const [alice, carol] = [createIdentity(), createIdentity()]
    const carolStore = new MemoryStore()
    await withClients(node, [{ identity: alice }], async ([a]) => {
      let c = client(node, carol, { store: carolStore })
      await c.connect()
      const group = await a!.createGroup({ name: 'offline', members: [carol.user.userId] })
      await until(() => c.group(group) !== undefined, 'carol learns the group')
      const first = collectGroup(c, group, 1)
      await a!.sendGroup(group, 'm0')
      await first
      await c.close()
      for (let i = 1; i <= 50; i++) await a!.sendGroup(group, `m${i}`)
      const reads = node.historyReads
      c = client(node, carol, { store: carolStore })
      const got = collectGroup(c, group, 50)
      try {
        await c.connect()
        const msgs = await got
        assert.deepEqual(msgs.map((m) => m.text), Array.from({ length: 50 }, (_, i) => `m${i + 1}`))
        assert.ok(node.historyReads > reads, 'read from the history')
      } finally {
        await c.close()
      }
    })
  })

  it('rooms: sends and receives plaintext, shows the masked text, and a client that publishes no keys can take part', async () => {
    const node = new FakeNode()
    const [alice, bob, dave] = [createIdentity(), createIdentity(), createIdentity()]
    await withClients(node, [{ identity: alice }, { identity: bob }, { identity: dave, publishKeys: false }], async ([a, b, d]) => {
      assert.equal(node.records.has(`devices/${dave.user.userId}`), false, 'dave published nothing')
      const room = await a!.createRoom({ name: 'lobby', filter: { words: ['darn'], mode: 'mask' } })
      await a!.enterRoom(room)
      await b!.enterRoom(room)
      await d!.enterRoom(room)
      const atAlice = nextEvent(a!, 'roomMessage', WAIT)
      const atDave = nextEvent(d!, 'roomMessage', WAIT)
      const id = await b!.sendRoom(room, 'well darn it')
      const m = await atAlice
      assert.equal(m.id, id)
      assert.equal(m.room, room)
      assert.equal(m.from, bob.user.userId)
      assert.equal(m.text, 'well **** it')
      assert.equal((await atDave).text, 'well **** it')
      const fromDave = nextEvent(b!, 'roomMessage', WAIT)
      await d!.sendRoom(room, 'hello from dave')
      assert.equal((await fromDave).text, 'hello from dave')
      await b!.leaveRoom(room)
      const later: string[] = []
      b!.on('roomMessage', (x) => { later.push(x.text) })
      const stillAlice = nextEvent(a!, 'roomMessage', WAIT)
      await d!.sendRoom(room, 'after bob left')
      await stillAlice
      await settle()
      assert.deepEqual(later, [])
      await assert.rejects(a!.sendGroup(room, 'x'), { code: 'ERR_BAD_ARGUMENT' })
    })
  })

  it('keeps groups, sender keys and counters across a restart with a LevelStore', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'talaria-groups-'))
    const node = new FakeNode()
    const [alice, bob] = [createIdentity(), createIdentity()]
    try {
      await withClients(node, [{ identity: alice, store: new LevelStore(join(dir, 'alice')) }], async ([a]) => {
        let b = client(node, bob, { store: new LevelStore(join(dir, 'bob')) })
        await b.connect()
        const group = await a!.createGroup({ name: 'durable', members: [bob.user.userId] })
        await until(() => b.group(group) !== undefined, 'bob learns the group')
        const one = collectGroup(b, group, 1)
        await a!.sendGroup(group, 'first')
        await one
        const back = collectGroup(a!, group, 1)
        await b.sendGroup(group, 'reply 1')
        assert.equal((await back)[0]!.seq, 1)
        await b.close()

        b = client(node, bob, { store: new LevelStore(join(dir, 'bob')) })
        try {
          await b.connect()
          assert.equal(b.group(group)?.settings.name, 'durable')
          const keysBefore = node.sent.filter((e) => e.from.device === alice.device.deviceId && e.to.device === bob.device.deviceId).length
          const two = collectGroup(b, group, 1)
          await a!.sendGroup(group, 'second')
          assert.equal((await two)[0]!.text, 'second')
          assert.equal(node.sent.filter((e) => e.from.device === alice.device.deviceId && e.to.device === bob.device.deviceId).length, keysBefore, 'no new sender key was needed')
          const again = collectGroup(a!, group, 1)
          await b.sendGroup(group, 'reply 2')
          const m = (await again)[0]!
          assert.equal(m.text, 'reply 2')
          assert.equal(m.seq, 2, 'the send counter survived the restart')
        } finally {
          await b.close()
        }
      })
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
