/**
 * The gateway's group and room operations: each is handed to the groups service with the
 * authenticated device, its answer or typed error goes back unchanged, and the service's events
 * reach the connection — encoded once, dropped (and owed as a lag) when the client stops reading.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { AuthenticatedDevice, GroupEventName, GroupService, GroupSink } from '../../node/groups/contracts.js'
import { ClientProtocolError, type ClientEvents, type ClientOps } from '../../protocol/client-protocol.js'
import { equalBytes } from '../../protocol/bytes.js'
import { TalariaError } from '../../protocol/errors.js'
import { newMessageId, type GroupId } from '../../protocol/ids.js'
import { startGateway, testDevice, TestClient, withTimeout, type TestGateway } from './harness.js'

const GROUP = 'gaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' as GroupId

/** A groups service that records calls and lets the test push through the attached sinks. */
class RecordingGroups implements GroupService {
  readonly calls: Array<{ op: string, device: AuthenticatedDevice, body?: unknown }> = []
  readonly sinks = new Set<GroupSink>()
  detached = 0
  drained = 0
  fail: Error | undefined
  private drainWaiters: Array<() => void> = []

  attach (device: AuthenticatedDevice, sink: GroupSink): () => void {
    this.calls.push({ op: 'attach', device })
    this.sinks.add(sink)
    return () => { this.detached++; this.sinks.delete(sink) }
  }

  drain (): void {
    this.drained++
    for (const w of this.drainWaiters.splice(0)) w()
  }

  async drainCalled (): Promise<void> {
    await new Promise<void>((resolve) => { this.drainWaiters.push(resolve) })
  }

  push<E extends GroupEventName> (ev: E, body: ClientEvents[E]): boolean[] {
    return [...this.sinks].map((s) => s.event(ev, body))
  }

  private record (op: string, device: AuthenticatedDevice, body: unknown): void {
    this.calls.push({ op, device, body })
    if (this.fail !== undefined) throw this.fail
  }

  async submitOps (device: AuthenticatedDevice, req: ClientOps['groupOps']['req']): Promise<ClientOps['groupOps']['res']> {
    this.record('groupOps', device, req)
    return { results: req.ops.map(() => ({ status: 'rejected' as const, code: 'ERR_FORBIDDEN', message: 'members cannot remove the owner' })), heads: ['oabc'] }
  }

  async getOps (device: AuthenticatedDevice, req: ClientOps['groupGet']['req']): Promise<ClientOps['groupGet']['res']> {
    this.record('groupGet', device, req)
    return { ops: [new Uint8Array([1, 2, 3])], next: 1 }
  }

  async send (device: AuthenticatedDevice, _sink: GroupSink, req: ClientOps['groupSend']['req']): Promise<ClientOps['groupSend']['res']> {
    this.record('groupSend', device, req)
    return { id: newMessageId(), at: 42 }
  }

  async history (device: AuthenticatedDevice, req: ClientOps['groupHistory']['req']): Promise<ClientOps['groupHistory']['res']> {
    this.record('groupHistory', device, req)
    return { messages: [new Uint8Array([9])], cursor: new Uint8Array([7]) }
  }

  async enterRoom (device: AuthenticatedDevice, _sink: GroupSink, req: ClientOps['roomEnter']['req']): Promise<ClientOps['roomEnter']['res']> {
    this.record('roomEnter', device, req)
    return { heads: [] }
  }

  leaveRoom (device: AuthenticatedDevice, _sink: GroupSink, room: GroupId): void {
    this.record('roomLeave', device, { room })
  }
}

describe('gateway: group and room operations', () => {
  let gw: TestGateway
  let groups: RecordingGroups
  before(async () => {
    groups = new RecordingGroups()
    gw = await startGateway({ pushHighWaterBytes: 64 * 1024 }, { groups })
  })
  after(async () => { await gw.close() })

  it('hands each operation to the service with the authenticated device and its signing key', async () => {
    const d = testDevice()
    const c = await TestClient.connect(gw.url)
    await c.auth(d)
    const ops = await c.ok('groupOps', { group: GROUP, ops: [new Uint8Array([1])] })
    assert.deepEqual(ops, { results: [{ status: 'rejected', code: 'ERR_FORBIDDEN', message: 'members cannot remove the owner' }], heads: ['oabc'] })
    assert.deepEqual(await c.ok('groupGet', { group: GROUP, after: 0 }), { ops: [new Uint8Array([1, 2, 3])], next: 1 })
    assert.equal((await c.ok('groupSend', { envelope: new Uint8Array([5]) })).at, 42)
    assert.deepEqual(await c.ok('groupHistory', { group: GROUP, since: 10, limit: 5 }), { messages: [new Uint8Array([9])], cursor: new Uint8Array([7]) })
    assert.deepEqual(await c.ok('roomEnter', { room: GROUP }), { heads: [] })
    assert.deepEqual(await c.ok('roomLeave', { room: GROUP }), {})
    const mine = groups.calls.filter((x) => x.device.device === d.device.deviceId)
    assert.deepEqual(mine.map((x) => x.op), ['attach', 'groupOps', 'groupGet', 'groupSend', 'groupHistory', 'roomEnter', 'roomLeave'])
    for (const call of mine) {
      assert.equal(call.device.user, d.user.userId)
      assert.ok(equalBytes(call.device.signingKey, d.device.signingPublicKey), 'the signing key proved at auth')
    }
    await c.close()
    assert.ok(groups.detached >= 1, 'detached on close')
  })

  it('needs authentication', async () => {
    const c = await TestClient.connect(gw.url)
    assert.equal((await c.fails('groupSend', { envelope: new Uint8Array([5]) })).code, 'ERR_NOT_AUTHENTICATED')
    await c.close()
  })

  it('passes the service\'s typed errors through, with retryAfterMs', async () => {
    const c = await TestClient.connect(gw.url)
    await c.auth(testDevice())
    groups.fail = new ClientProtocolError('ERR_ROOM_RATE_LIMITED', 'slow down', { retryAfterMs: 1500 })
    const limited = await c.fails('groupSend', { envelope: new Uint8Array([5]) })
    assert.equal(limited.code, 'ERR_ROOM_RATE_LIMITED')
    assert.equal(limited.retryAfterMs, 1500)
    groups.fail = new TalariaError('ERR_NOT_MEMBER', 'not a member of this group')
    assert.equal((await c.fails('groupHistory', { group: GROUP, since: 0 })).code, 'ERR_NOT_MEMBER')
    groups.fail = new Error('boom')
    assert.equal((await c.fails('groupGet', { group: GROUP })).code, 'ERR_INTERNAL')
    groups.fail = undefined
    await c.close()
  })

  it('pushes the service\'s events to the connection', async () => {
    const c = await TestClient.connect(gw.url)
    await c.auth(testDevice())
    const envelope = new Uint8Array([1, 2, 3, 4])
    assert.ok(groups.push('group', { envelope, text: 'h***o' }).every((ok) => ok))
    assert.deepEqual(await c.event('group'), { envelope, text: 'h***o' })
    groups.push('groupLag', { group: GROUP })
    assert.deepEqual(await c.event('groupLag'), { group: GROUP })
    await c.close()
  })

  it('drops events while the client is not reading, then calls drain once it catches up', async () => {
    const c = await TestClient.connect(gw.url)
    await c.auth(testDevice())
    const socket = (c.ws as unknown as { _socket: { pause(): void, resume(): void } })._socket
    socket.pause()
    const big = new Uint8Array(200 * 1024).fill(1)
    let dropped = false
    for (let i = 0; i < 2000 && !dropped; i++) {
      // each push is a fresh body, as the service makes one per message
      dropped = groups.push('group', { envelope: big.slice(i % 2) }).some((ok) => !ok)
    }
    assert.ok(dropped, 'a push was refused once the send buffer passed its high-water mark')
    const drained = groups.drainCalled()
    socket.resume()
    await withTimeout(drained, 'drain')
    assert.ok(groups.drained >= 1)
    await c.close()
  })

  it('answers ERR_UNKNOWN_OP when the node serves no groups', async () => {
    const plain = await startGateway()
    try {
      const c = await TestClient.connect(plain.url)
      await c.auth(testDevice())
      assert.equal((await c.fails('groupSend', { envelope: new Uint8Array([5]) })).code, 'ERR_UNKNOWN_OP')
      await c.close()
    } finally {
      await plain.close()
    }
  })
})
