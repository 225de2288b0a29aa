/**
 * Acceptance tests of groups: REAL nodes (five, on 127.0.0.1), REAL SDK clients over real
 * WebSockets, and raw gateway connections where a test must sign an op the SDK would refuse to
 * send. One mesh and one 20-member group serve the cases, in order.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import WebSocket from 'ws'
import { MemoryStore, createClient, createIdentity, type ClientEvents, type ClientIdentity, type TalariaClient, type WebSocketConstructor } from '../../client/index.js'
import type { TalariaNode } from '../../node/index.js'
import { decodeGroupEnvelope, type GroupEnvelope } from '../../protocol/envelopes.js'
import { deserializeReceiverSenderKey } from '../../protocol/e2e/index.js'
import { GroupLog, decodeGroupOp, groupTopic, openGroupEnvelope, signGroupOp, type GroupOp, type GroupState } from '../../protocol/groups/index.js'
import { decodeValue } from '../../protocol/codec.js'
import type { GroupId, MessageId } from '../../protocol/ids.js'
import { decodeTopicFrame } from '../../node/groups/wire.js'
import { TestClient, type TestDevice } from '../gateway/harness.js'
import { startMesh, waitUntil, type CloseAll } from '../helpers/mesh.js'

const WAIT_MS = 90_000
const USERS = 20
const NODES = 5

function wsUrl (node: TalariaNode): string {
  return node.httpUrl.replace(/^http/, 'ws') + '/v1'
}

/** Resolves once `predicate` holds, checking now and on every `event` of `client`; rejects at the deadline. */
async function until<E extends keyof ClientEvents> (client: TalariaClient, event: E, predicate: () => boolean, what: string, ms = WAIT_MS): Promise<void> {
  if (predicate()) return
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { off(); reject(new Error(`timed out waiting for ${what}`)) }, ms)
    const off = client.on(event, () => {
      if (!predicate()) return
      clearTimeout(timer)
      off()
      resolve()
    })
  })
}

/** The gateway test harness's view of an SDK identity, for raw connections. */
function asTestDevice (id: ClientIdentity): TestDevice {
  return { user: id.user, device: id.device, cert: id.device.cert, list: id.deviceList, ref: { user: id.user.userId, device: id.device.deviceId } }
}

/** The group state a node holds, replayed from its log (`groupGet`) into a fresh GroupLog. */
async function nodeState (node: TalariaNode, as: ClientIdentity, group: GroupId): Promise<GroupState> {
  return (await nodeLog(node, as, group)).state
}

/** The log a node holds (`groupGet`), replayed into a fresh GroupLog. */
async function nodeLog (node: TalariaNode, as: ClientIdentity, group: GroupId): Promise<GroupLog> {
  const c = await TestClient.connect(wsUrl(node))
  try {
    await c.auth(asTestDevice(as))
    const ops: GroupOp[] = []
    let after: number | undefined = 0
    while (after !== undefined) {
      const page: { ops: Uint8Array[], next?: number } = await c.ok('groupGet', { group, after })
      ops.push(...page.ops.map((b) => decodeGroupOp(b)))
      after = page.next
    }
    const [genesis, ...rest] = ops
    assert.ok(genesis !== undefined, 'the node holds the log')
    const log = GroupLog.create(genesis)
    for (const op of rest) log.add(op)
    return log
  } finally {
    await c.close()
  }
}

function members (state: GroupState | undefined): string[] {
  return [...(state?.members.keys() ?? [])].sort()
}

describe('e2e: a 20-member group over five real nodes', () => {
  let nodes: TalariaNode[] = []
  let closeAll: CloseAll = async () => {}
  const identities: ClientIdentity[] = []
  const stores: MemoryStore[] = []
  const clients: TalariaClient[] = []
  /** Every group message each user's client received, in arrival order. */
  const inbox: Array<Array<ClientEvents['groupMessage']>> = []
  let group: GroupId

  function nodeOf (i: number): TalariaNode {
    return nodes[i % NODES]!
  }

  async function connect (i: number, node: TalariaNode): Promise<TalariaClient> {
    const client = createClient({ url: wsUrl(node), identity: identities[i]!, store: stores[i]!, WebSocket: WebSocket as unknown as WebSocketConstructor })
    client.on('groupMessage', (m) => { inbox[i]!.push(m) })
    clients[i] = client
    await client.connect()
    return client
  }

  /** Resolves once user `i` has received every id in `ids`. */
  async function receives (i: number, ids: MessageId[]): Promise<void> {
    const want = new Set(ids)
    const has = (): boolean => { let n = 0; for (const m of inbox[i]!) if (want.has(m.id)) n++; return n >= want.size }
    try {
      await until(clients[i]!, 'groupMessage', has, `user ${i} to receive ${ids.length} messages`)
    } catch (err) {
      const got = new Set(inbox[i]!.map((m) => m.id))
      const missing = ids.map((id, k) => got.has(id) ? undefined : k).filter((k) => k !== undefined)
      const others = inbox.map((box, u) => {
        const seen = new Set(box.map((m) => m.id))
        return `${u}:${ids.filter((id) => !seen.has(id)).length}`
      })
      throw new Error(`${(err as Error).message}: missing positions ${missing.join(',')}; missing per user ${others.join(' ')}`, { cause: err })
    }
  }

  /** Asserts per-sender order and no duplicates in user `i`'s inbox. */
  function checkInbox (i: number): void {
    const got = inbox[i]!
    assert.equal(new Set(got.map((m) => m.id)).size, got.length, `user ${i} received a message twice`)
    const last = new Map<string, number>()
    for (const m of got) {
      const prev = last.get(m.fromDevice) ?? 0
      assert.ok(m.seq > prev, `user ${i}: ${m.fromDevice} seq ${m.seq} after ${prev}`)
      last.set(m.fromDevice, m.seq)
    }
  }

  before(async () => {
    [nodes, closeAll] = await startMesh(NODES)
    for (let i = 0; i < USERS; i++) {
      identities.push(createIdentity())
      stores.push(new MemoryStore())
      inbox.push([])
    }
    // one at a time: twenty first publishes at once, on a mesh whose routing tables are still filling, can find no DHT peer
    for (let i = 0; i < USERS; i++) await connect(i, nodeOf(i))
  })

  after(async () => {
    await Promise.allSettled(clients.map(async (c) => { await c.close() }))
    await closeAll()
  })

  it('creates a group of 20 users whose every member learns the whole membership', async () => {
    const owner = clients[0]!
    group = await owner.createGroup({ name: 'twenty', members: identities.slice(1).map((id) => id.user.userId) })
    await Promise.all(clients.map(async (c, i) => {
      await until(c, 'groupChange', () => c.group(group)?.members.size === USERS, `user ${i} to see ${USERS} members`)
    }))
    assert.equal(owner.group(group)?.members.get(identities[0]!.user.userId)?.role, 'owner')
  })

  it('delivers every message to every member exactly once, in per-sender order', async () => {
    const senders = [1, 6, 12, 18]
    const ids: MessageId[][] = await Promise.all(senders.map(async (s) => {
      const mine: MessageId[] = []
      for (let k = 0; k < 10; k++) mine.push(await clients[s]!.sendGroup(group, `from ${s} #${k}`))
      return mine
    }))
    for (let i = 0; i < USERS; i++) {
      const expected = senders.flatMap((s, j) => s === i ? [] : ids[j]!)
      await receives(i, expected)
      checkInbox(i)
    }
    for (let j = 0; j < senders.length; j++) {
      const texts = inbox[0]!.filter((m) => m.from === identities[senders[j]!]!.user.userId).map((m) => m.text)
      assert.deepEqual(texts, ids[j]!.map((_, k) => `from ${senders[j]!} #${k}`))
    }
  })

  it('a member offline during 50 messages gets all 50, in order, on reconnecting to a different node', async () => {
    const away = 7
    await clients[away]!.close()
    const ids: MessageId[] = []
    for (let k = 0; k < 25; k++) {
      ids.push(await clients[3]!.sendGroup(group, `while away a#${k}`))
      ids.push(await clients[9]!.sendGroup(group, `while away b#${k}`))
    }
    // every online member has them before the absent one comes back
    await receives(0, ids)
    const before = inbox[away]!.length
    await connect(away, nodeOf(away + 1))
    await receives(away, ids)
    const got = inbox[away]!.slice(before).filter((m) => ids.includes(m.id))
    assert.equal(got.length, 50)
    assert.deepEqual(got.filter((m) => m.from === identities[3]!.user.userId).map((m) => m.text), Array.from({ length: 25 }, (_, k) => `while away a#${k}`))
    assert.deepEqual(got.filter((m) => m.from === identities[9]!.user.userId).map((m) => m.text), Array.from({ length: 25 }, (_, k) => `while away b#${k}`))
    checkInbox(away)
  })

  it('a removed member receives nothing sent after removal and cannot open it from the raw gossip bytes', async () => {
    const removed = 5
    const removedUser = identities[removed]!.user.userId
    const raw: GroupEnvelope[] = []
    const handler = (msg: { data: Uint8Array }): void => {
      const frame = decodeTopicFrame(msg.data)
      if (frame.kind !== 'message') return
      try {
        raw.push(decodeGroupEnvelope(frame.bytes))
      } catch {
        // a room envelope or garbage: not what this test captures
      }
    }
    // a node that carries the group's traffic anyway: capture what travels on the topic
    const spy = nodeOf(2)
    spy.subscribe(groupTopic(group), handler)
    try {
      await clients[0]!.removeMembers(group, [removedUser])
      await Promise.all(clients.map(async (c, i) => {
        if (i === removed) return
        await until(c, 'groupChange', () => c.group(group)?.members.has(removedUser) === false, `user ${i} to see the removal`)
      }))
      const before = inbox[removed]!.length
      const ids: MessageId[] = []
      for (let k = 0; k < 5; k++) ids.push(await clients[11]!.sendGroup(group, `after removal #${k}`))
      ids.push(await clients[0]!.sendGroup(group, 'owner after removal'))
      for (let i = 0; i < USERS; i++) if (i !== removed && i !== 11) await receives(i, ids.filter((_, k) => k < 5 || i !== 0))
      assert.equal(inbox[removed]!.slice(before).filter((m) => ids.includes(m.id)).length, 0, 'the removed member got nothing')
      const after = raw.filter((e) => ids.includes(e.id))
      assert.ok(after.length > 0, 'the post-removal messages were captured on the topic')
      const states = (await stores[removed]!.list('group-recv')).map(([, v]) => decodeReceiverEntry(v))
      assert.ok(states.length > 0, 'the removed member holds sender keys from before')
      for (const env of after) {
        assert.ok(!states.some((s) => s.keyId === env.senderKeyId), 'post-removal messages use sender keys the removed member never got')
        for (const s of states) assert.throws(() => openGroupEnvelope(env, s))
      }
    } finally {
      spy.unsubscribe(groupTopic(group), handler)
    }
  })

  it('an ordinary member\'s removal of the owner is refused by its client and, signed anyway, rejected by every node and client', async () => {
    const rogue = 13
    const ownerUser = identities[0]!.user.userId
    await assert.rejects(clients[rogue]!.removeMembers(group, [ownerUser]), (err: Error & { code?: string }) => err.code === 'ERR_FORBIDDEN')
    const heads = clients[rogue]!.group(group)!.heads
    const op = signGroupOp({ group, parents: heads, body: { type: 'remove', users: [ownerUser] } }, { user: identities[rogue]!.user.userId, device: identities[rogue]!.device })
    const c = await TestClient.connect(wsUrl(nodeOf(rogue)))
    try {
      await c.auth(asTestDevice(identities[rogue]!))
      const res = await c.ok('groupOps', { group, ops: [op.bytes] })
      assert.equal(res.results[0]?.status, 'rejected')
      assert.equal(res.results[0]?.code, 'ERR_FORBIDDEN')
    } finally {
      await c.close()
    }
    for (let n = 0; n < NODES; n++) {
      const state = await nodeState(nodes[n]!, identities[n]!, group)
      assert.equal(state.members.get(ownerUser)?.role, 'owner', `node ${n} keeps the owner`)
    }
    for (const c of clients) if (c.group(group) !== undefined) assert.equal(c.group(group)!.members.get(ownerUser)?.role, 'owner')
  })

  it('two admins removing each other at once end in the same membership on every node and client', async () => {
    const [a1, a2] = [2, 4]
    await clients[0]!.setRole(group, identities[a1]!.user.userId, 'admin')
    await clients[0]!.setRole(group, identities[a2]!.user.userId, 'admin')
    for (const i of [a1, a2]) {
      await until(clients[i]!, 'groupChange', () => clients[i]!.group(group)?.members.get(identities[a1]!.user.userId)?.role === 'admin' &&
        clients[i]!.group(group)?.members.get(identities[a2]!.user.userId)?.role === 'admin', `admin ${i} to see both promotions`)
    }
    const parents = clients[0]!.group(group)!.heads
    assert.deepEqual(clients[a1]!.group(group)!.heads, parents)
    assert.deepEqual(clients[a2]!.group(group)!.heads, parents)
    const op1 = signGroupOp({ group, parents, body: { type: 'remove', users: [identities[a2]!.user.userId] } }, { user: identities[a1]!.user.userId, device: identities[a1]!.device })
    const op2 = signGroupOp({ group, parents, body: { type: 'remove', users: [identities[a1]!.user.userId] } }, { user: identities[a2]!.user.userId, device: identities[a2]!.device })
    const [c1, c2] = await Promise.all([TestClient.connect(wsUrl(nodeOf(a1))), TestClient.connect(wsUrl(nodeOf(a2)))])
    try {
      await Promise.all([c1.auth(asTestDevice(identities[a1]!)), c2.auth(asTestDevice(identities[a2]!))])
      // both nodes take their op before either hears of the other
      await Promise.all([c1.ok('groupOps', { group, ops: [op1.bytes] }), c2.ok('groupOps', { group, ops: [op2.bytes] })])
    } finally {
      await Promise.all([c1.close(), c2.close()])
    }
    // what every party must reach: the log both admins started from, plus both ops, in any order
    const expectedLog = await nodeLog(nodeOf(a1), identities[a1]!, group)
    expectedLog.add(op1)
    expectedLog.add(op2)
    const expected = members(expectedLog.state)
    const kept = [a1, a2].filter((i) => expected.includes(identities[i]!.user.userId))
    assert.equal(kept.length, 1, 'exactly one of the two admins remains')
    const watching = clients.filter((c, i) => i !== 5 && i !== kept[0] && c.group(group) !== undefined)
    await Promise.all(watching.map(async (c) => {
      await until(c, 'groupChange', () => JSON.stringify(members(c.group(group))) === JSON.stringify(expected), `${c.userId} to reach the resolved membership`)
    }))
    for (let n = 0; n < NODES; n++) {
      const viewer = identities[[0, 1, 3, 6, 9][n]!]!
      await waitUntil(async () => JSON.stringify(members(await nodeState(nodes[n]!, viewer, group))) === JSON.stringify(expected), { what: `node ${n} to reach the resolved membership`, timeoutMs: WAIT_MS })
    }
  })
})

/**
 * A receiver sender key as the client stores it (namespace `group-recv`, see client/groups.ts):
 * a map whose `state` is the serialized ReceiverSenderKeyState.
 */
function decodeReceiverEntry (bytes: Uint8Array): ReturnType<typeof deserializeReceiverSenderKey> {
  const o = decodeValue(bytes, 256 * 1024) as { state: Uint8Array }
  return deserializeReceiverSenderKey(o.state)
}
