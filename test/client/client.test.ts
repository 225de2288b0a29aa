import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { LevelStore, addDevice, createClient, createIdentity, decodeIdentity, encodeIdentity, type ClientInit, type TalariaClient } from '../../client/index.js'
import { decodeDeviceList } from '../../protocol/identity.js'
import { encodeDeviceList } from '../../protocol/identity.js'
import { directConversationId } from '../../protocol/ids.js'
import { decodeLocationPayload, decodeRecord } from '../../protocol/records.js'
import { collectMessages, nextEvent } from './collect.js'
import { FakeNode } from './fake-node.js'

const WAIT = 10_000

async function withClients (node: FakeNode, inits: Array<Omit<ClientInit, 'url'>>, fn: (clients: TalariaClient[]) => Promise<void>): Promise<void> {
  const clients = inits.map((init) => createClient({ url: 'ws://fake/v1', WebSocket: node.WebSocket, ...init }))
  try {
    for (const c of clients) await c.connect()
    await fn(clients)
  } finally {
    await Promise.allSettled(clients.map(async (c) => { await c.close() }))
  }
}

describe('client identity', () => {
  it('round-trips through its encoding and refuses a tampered one', () => {
    const id = createIdentity()
    const back = decodeIdentity(encodeIdentity(id))
    assert.equal(back.user.userId, id.user.userId)
    assert.equal(back.device.deviceId, id.device.deviceId)
    assert.deepEqual(back.signedPreKey, id.signedPreKey)
    assert.deepEqual(encodeDeviceList(back.deviceList), encodeDeviceList(id.deviceList))
    const other = createIdentity()
    assert.throws(() => decodeIdentity(encodeIdentity({ ...id, deviceList: other.deviceList })), { code: 'ERR_BAD_IDENTITY' })
    assert.throws(() => decodeIdentity(new Uint8Array([1, 2, 3])), { code: 'ERR_BAD_IDENTITY' })
  })

  it('adds a device: both identities carry a list with both devices', () => {
    const { identity, added } = addDevice(createIdentity())
    assert.equal(identity.deviceList.seq, 2)
    assert.deepEqual(identity.deviceList.devices.map((d) => d.deviceId).sort(), [identity.device.deviceId, added.device.deviceId].sort())
    assert.equal(added.user.userId, identity.user.userId)
    assert.equal(decodeDeviceList(encodeDeviceList(added.deviceList)).seq, 2)
  })
})

describe('client over a fake node', () => {
  it('sends and receives in order with the right plaintext, and the sender gets delivered receipts', async () => {
    const node = new FakeNode()
    const alice = createIdentity()
    const bob = createIdentity()
    await withClients(node, [{ identity: alice, receiptDelayMs: 10 }, { identity: bob, receiptDelayMs: 10 }], async ([a, b]) => {
      const receipt = nextEvent(a!, 'receipt', WAIT, (r) => r.ids.length > 0)
      const got = collectMessages(b!, 20, WAIT)
      const ids: string[] = []
      for (let i = 0; i < 20; i++) ids.push(await a!.send(bob.user.userId, `hello ${i}`))
      const msgs = await got
      assert.deepEqual(msgs.map((m) => m.text), ids.map((_, i) => `hello ${i}`))
      assert.deepEqual(msgs.map((m) => m.id), ids)
      assert.deepEqual(msgs.map((m) => m.seq), ids.map((_, i) => i + 1))
      assert.ok(msgs.every((m) => m.from === alice.user.userId && m.conv === directConversationId(alice.user.userId, bob.user.userId)))
      const r = await receipt
      assert.equal(r.receipt, 'delivered')
      assert.equal(r.from, bob.user.userId)
      assert.ok(r.ids.every((id) => ids.includes(id)))
      // and back: the responder session can answer
      const back = collectMessages(a!, 1, WAIT)
      await b!.send(alice.user.userId, 'hi alice')
      assert.equal((await back)[0]!.text, 'hi alice')
    })
  })

  it('delivers exactly once when the node pushes duplicates and when a resend repeats a logical id', async () => {
    const node = new FakeNode()
    node.filter = () => 'duplicate'
    const alice = createIdentity()
    const bob = createIdentity()
    await withClients(node, [{ identity: alice }, { identity: bob }], async ([a, b]) => {
      const seen: string[] = []
      b!.on('message', (m) => { seen.push(m.id) })
      const got = collectMessages(b!, 10, WAIT)
      for (let i = 0; i < 10; i++) await a!.send(bob.user.userId, `m${i}`)
      await got
      // a resend carries the same logical id in a new envelope: answer a gap request for 1..10
      const bobConv = directConversationId(alice.user.userId, bob.user.userId)
      const before = node.sent.length
      await (a as unknown as { resend: (u: string, d: string, c: string, f: number, t: number) => Promise<void> }).resend(bob.user.userId, bob.device.deviceId, bobConv, 1, 10)
      assert.equal(node.sent.length - before, 10)
      // a ping round trip after the pushes: everything pushed before has been processed
      await waitIdle(node, bob.device.deviceId)
      assert.equal(seen.length, 10)
      assert.equal(new Set(seen).size, 10)
    })
  })

  it('asks the sender to resend a missing message and delivers everything in order', async () => {
    const node = new FakeNode()
    const alice = createIdentity()
    const bob = createIdentity()
    let dropped = 0
    node.filter = (env) => {
      if (env.to.device === bob.device.deviceId && env.seq === 3 && dropped === 0) { dropped++; return 'drop' }
      return 'deliver'
    }
    await withClients(node, [{ identity: alice }, { identity: bob, gapTimeoutMs: 100 }], async ([a, b]) => {
      const got = collectMessages(b!, 5, WAIT)
      for (let i = 1; i <= 5; i++) await a!.send(bob.user.userId, `n${i}`)
      const msgs = await got
      assert.equal(dropped, 1)
      assert.deepEqual(msgs.map((m) => m.text), ['n1', 'n2', 'n3', 'n4', 'n5'])
      assert.deepEqual(msgs.map((m) => m.seq), [1, 2, 3, 4, 5])
      const gapRequests = node.sent.filter((e) => e.from.device === bob.device.deviceId && e.to.device === alice.device.deviceId)
      assert.ok(gapRequests.length >= 1, 'bob sent a gap request to alice')
    })
  })

  it('waits for a first message that arrives after the second instead of showing them out of order', async () => {
    const node = new FakeNode()
    const alice = createIdentity()
    const bob = createIdentity()
    let held = 0
    node.filter = (env) => {
      if (env.to.device === bob.device.deviceId && env.seq === 1 && held === 0) { held++; return 'drop' }
      return 'deliver'
    }
    await withClients(node, [{ identity: alice }, { identity: bob, gapTimeoutMs: 100 }], async ([a, b]) => {
      const got = collectMessages(b!, 2, WAIT)
      await a!.send(bob.user.userId, 'one')
      await a!.send(bob.user.userId, 'two')
      assert.deepEqual((await got).map((m) => m.text), ['one', 'two'])
    })
  })

  it('copies what a device sends to the user\'s other devices, with peer set', async () => {
    const node = new FakeNode()
    const { identity: alice1, added: alice2 } = addDevice(createIdentity())
    const bob = createIdentity()
    await withClients(node, [{ identity: alice1 }, { identity: alice2 }, { identity: bob }], async ([a1, a2, b]) => {
      const copy = collectMessages(a2!, 1, WAIT)
      const got = collectMessages(b!, 1, WAIT)
      const id = await a1!.send(bob.user.userId, 'to bob')
      const [c] = await copy
      const [m] = await got
      assert.equal(m!.id, id)
      assert.equal(c!.id, id)
      assert.equal(c!.peer, bob.user.userId)
      assert.equal(c!.from, alice1.user.userId)
      assert.equal(c!.conv, m!.conv)
      assert.equal(c!.seq, m!.seq)
    })
  })

  it('reconnects after the node drops the connection, and sends queued during the outage go out', async () => {
    const node = new FakeNode()
    const alice = createIdentity()
    const bob = createIdentity()
    await withClients(node, [{ identity: alice, reconnectBaseMs: 20, reconnectMaxMs: 100 }, { identity: bob, reconnectBaseMs: 20, reconnectMaxMs: 100 }], async ([a, b]) => {
      const down = nextEvent(a!, 'disconnected', WAIT)
      const up = nextEvent(a!, 'connected', WAIT)
      node.dropAll()
      await down
      const got = collectMessages(b!, 1, WAIT)
      const sending = a!.send(bob.user.userId, 'after the outage')
      await up
      await sending
      assert.equal((await got)[0]!.text, 'after the outage')
      assert.ok(node.connectionsOpened >= 4)
    })
  })

  it('spaces reconnect attempts by the jittered exponential backoff, bounded by its maximum', async () => {
    const node = new FakeNode()
    const base = 40
    const max = 160
    await withClients(node, [{ identity: createIdentity(), reconnectBaseMs: base, reconnectMaxMs: max }], async ([a]) => {
      node.down = true
      const first = node.attempts.length
      const droppedAt = Date.now()
      node.dropAll()
      const deadline = Date.now() + WAIT
      while (node.attempts.length < first + 6) {
        if (Date.now() > deadline) throw new Error('too few reconnect attempts')
        await new Promise((resolve) => setTimeout(resolve, 10))
      }
      const times = [droppedAt, ...node.attempts.slice(first, first + 6)]
      const gaps = times.slice(1).map((t, i) => t - times[i]!)
      // attempt n waits in [cap/2, cap], cap = min(max, base * 2^n); timers add a little slack
      gaps.forEach((gap, n) => {
        const cap = Math.min(max, base * 2 ** n)
        assert.ok(gap >= cap / 2 - 5, `attempt ${n}: ${gap} ms < ${cap / 2}`)
        // timers fire late on a loaded machine (the suites beside this one run five-node meshes)
        assert.ok(gap <= cap + 400, `attempt ${n}: ${gap} ms > ${cap}`)
      })
      node.down = false
      await nextEvent(a!, 'connected', WAIT)
    })
  })

  it('keeps sessions, counters and seen ids in LevelStores across client restarts', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'talaria-client-'))
    try {
      const node = new FakeNode()
      const alice = createIdentity()
      const bob = createIdentity()
      const stores = (): Array<Omit<ClientInit, 'url'>> => [
        { identity: alice, store: new LevelStore(join(dir, 'alice')) },
        { identity: bob, store: new LevelStore(join(dir, 'bob')) }
      ]
      await withClients(node, stores(), async ([a, b]) => {
        const got = collectMessages(b!, 1, WAIT)
        await a!.send(bob.user.userId, 'first')
        await got
      })
      const sentBefore = node.sent.length
      await withClients(node, stores(), async ([a, b]) => {
        const got = collectMessages(b!, 1, WAIT)
        await a!.send(bob.user.userId, 'second')
        const [m] = await got
        assert.equal(m!.text, 'second')
        assert.equal(m!.seq, 2, 'the conversation counter survived the restart')
      })
      const first = node.sent.find((e) => e.seq === 1 && e.to.device === bob.device.deviceId)
      const second = node.sent.slice(sentBefore).find((e) => e.seq === 2 && e.to.device === bob.device.deviceId)
      // bob has not answered yet, so alice still sends the X3DH fields: of the SAME session
      assert.ok(second !== undefined && first?.init !== undefined)
      assert.ok(second.type === 'message' || Buffer.from(second.init!.ephemeralKey).equals(first.init.ephemeralKey), 'the ratchet session survived: no new X3DH')
      // the store belongs to bob's device: another identity may not use it
      const other = createClient({ url: 'ws://fake/v1', WebSocket: node.WebSocket, identity: createIdentity(), store: new LevelStore(join(dir, 'bob')) })
      await assert.rejects(other.connect(), { code: 'ERR_STORE_MISMATCH' })
      await other.close()
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('sends read receipts for received messages to the device they came from', async () => {
    const node = new FakeNode()
    const alice = createIdentity()
    const bob = createIdentity()
    await withClients(node, [{ identity: alice }, { identity: bob, autoDeliveredReceipts: false }], async ([a, b]) => {
      const got = collectMessages(b!, 2, WAIT)
      const ids = [await a!.send(bob.user.userId, 'r1'), await a!.send(bob.user.userId, 'r2')]
      await got
      const read = nextEvent(a!, 'receipt', WAIT)
      await b!.markRead(ids)
      const r = await read
      assert.equal(r.receipt, 'read')
      assert.deepEqual(r.ids, ids)
      assert.equal(r.fromDevice, bob.device.deviceId)
    })
  })

  it('republishes its location on the refresh interval, each time with a newer withdrawal for disconnect', async () => {
    const node = new FakeNode()
    const alice = createIdentity()
    await withClients(node, [{ identity: alice, locationRefreshMs: 50 }], async () => {
      const key = `location/${alice.device.deviceId}`
      const first = decodeRecord(node.records.get(key)!).seq
      const deadline = Date.now() + WAIT
      while (decodeRecord(node.records.get(key)!).seq === first) {
        if (Date.now() > deadline) throw new Error('location never refreshed')
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
      const socket = [...node.sockets][0]!
      const withdraw = decodeRecord(socket.onDisconnect[0]!)
      const current = decodeRecord(node.records.get(key)!)
      assert.equal(withdraw.seq, current.seq + 1, 'the withdrawal beats the current record')
      assert.deepEqual(decodeLocationPayload(withdraw.payload), [])
      assert.equal(decodeLocationPayload(current.payload)[0]!.node, node.peerId)
    })
  })

  it('remembers seen ids across restarts: a resend of an old message (new envelope, same logical id) is not shown again', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'talaria-client-'))
    try {
      const node = new FakeNode()
      const alice = createIdentity()
      const bob = createIdentity()
      const inits = (): Array<Omit<ClientInit, 'url'>> => [
        { identity: alice, store: new LevelStore(join(dir, 'alice')) },
        { identity: bob, store: new LevelStore(join(dir, 'bob')) }
      ]
      await withClients(node, inits(), async ([a, b]) => {
        const got = collectMessages(b!, 1, WAIT)
        await a!.send(bob.user.userId, 'once')
        await got
      })
      await withClients(node, inits(), async ([a, b]) => {
        const seen: string[] = []
        b!.on('message', (m) => { seen.push(m.text) })
        const conv = directConversationId(alice.user.userId, bob.user.userId)
        const before = node.sent.length
        await (a as unknown as { resend: (u: string, d: string, c: string, f: number, t: number) => Promise<void> }).resend(bob.user.userId, bob.device.deviceId, conv, 1, 1)
        assert.equal(node.sent.length - before, 1, 'alice resent from her persisted log')
        await waitIdle(node, bob.device.deviceId)
        assert.deepEqual(seen, [])
      })
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('fails clearly: unknown recipient, bad arguments, unreachable node', async () => {
    const node = new FakeNode()
    const alice = createIdentity()
    await withClients(node, [{ identity: alice }], async ([a]) => {
      await assert.rejects(a!.send(createIdentity().user.userId, 'x'), { code: 'ERR_NO_DEVICES' })
      await assert.rejects(a!.send('nope' as never, 'x'), { code: 'ERR_BAD_ARGUMENT' })
    })
    node.down = true
    const c = createClient({ url: 'ws://fake/v1', WebSocket: node.WebSocket, identity: alice })
    await assert.rejects(c.connect(), { code: 'ERR_DISCONNECTED' })
    await c.close()
  })
})

/** Waits until the fake node holds nothing unacked for `device`. */
async function waitIdle (node: FakeNode, device: string): Promise<void> {
  const deadline = Date.now() + WAIT
  while ((node.inbox.get(device as never)?.size ?? 0) > 0) {
    if (Date.now() > deadline) throw new Error('device never acked everything')
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}
