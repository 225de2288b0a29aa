/**
 * An in-memory stand-in for a node's client gateway, for SDK unit tests only: it speaks the client
 * protocol v1 frames over a fake WebSocket, stores published records, answers lookups, routes
 * envelopes between connected fake sockets and keeps unacked ones until acked. It checks nothing a
 * real node checks (signatures, rates); the e2e tests run the SDK against real nodes.
 *
 * Groups: it keeps each group's op log (the real GroupLog, so ops are refused as a node would),
 * pushes new ops to the connected devices of members (and of those an op takes out), stores and
 * fans out group messages to member devices and room messages to the connections that entered the
 * room (masking with the room's word filter), and serves groupGet and groupHistory.
 */
import { CLIENT_PROTOCOL_VERSION, ClientProtocolError, decodeFrame, encodeFrame, type ClientFrame, type ClientOps, type RequestFrame } from '../../protocol/client-protocol.js'
import { decodeEnvelope, type DirectEnvelope, type GroupEnvelope } from '../../protocol/envelopes.js'
import { GroupLog, WordFilter, decodeGroupOp, decodeGroupTraffic, type RoomEnvelope } from '../../protocol/groups/index.js'
import { decodeRecord, decodeDevicesPayload } from '../../protocol/records.js'
import type { DeviceId, GroupId, MessageId, UserId } from '../../protocol/ids.js'
import type { WebSocketConstructor, WebSocketLike } from '../../client/connection.js'

type Listener = (event: { data?: unknown, code?: number, reason?: string }) => void

/** What a test may do to envelopes in transit. */
export type EnvelopeFilter = (env: DirectEnvelope, bytes: Uint8Array) => 'deliver' | 'drop' | 'duplicate' | 'hold'

/** What a test may do to a group or room message pushed to one device (it stays in the history either way). */
export type GroupPushFilter = (env: GroupEnvelope | RoomEnvelope, to: DeviceId) => 'deliver' | 'drop'

/** A group message the fake node holds. */
export interface HeldGroupMessage {
  id: MessageId
  sentAt: number
  bytes: Uint8Array
  text?: string
}

/** Messages per groupHistory page when the request names no limit. */
const HISTORY_PAGE = 500
/** Ops per groupGet page. */
const GET_PAGE = 100

/** The fake node. */
export class FakeNode {
  readonly peerId = '12D3KooWFakeNodeForClientUnitTests'
  readonly records = new Map<string, Uint8Array>()
  readonly sockets = new Set<FakeSocket>()
  readonly inbox = new Map<DeviceId, Map<MessageId, Uint8Array>>()
  readonly sent: DirectEnvelope[] = []
  filter: EnvelopeFilter = () => 'deliver'
  connectionsOpened = 0
  /** When each connection attempt reached the node (ms since the epoch). */
  readonly attempts: number[] = []
  /** Refuse new connections (their sockets close at once). */
  down = false
  readonly groupLogs = new Map<GroupId, GroupLog>()
  readonly history = new Map<GroupId, HeldGroupMessage[]>()
  /** Every group message and room message accepted, in order. */
  readonly groupSent: Array<GroupEnvelope | RoomEnvelope> = []
  groupFilter: GroupPushFilter = () => 'deliver'

  /** A WebSocket constructor bound to this fake node. */
  get WebSocket (): WebSocketConstructor {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const node = this
    return class extends FakeSocket {
      constructor (url: string) { super(node, url) }
    }
  }

  /** Drops every connection as a node restart would. */
  dropAll (): void {
    for (const s of [...this.sockets]) s.serverClose(1001, 'going away')
  }

  /** Pushes everything still unacked for `device` (envelopes a filter said to hold). */
  flushInbox (device: DeviceId): void {
    for (const [id, bytes] of this.inbox.get(device) ?? []) this.push(device, id, bytes)
  }

  /** Requests served per operation. */
  readonly requests = new Map<string, number>()
  /** Requests served per authenticated device, then per operation. */
  readonly requestsBy = new Map<string, Map<string, number>>()

  /** Requests of `op` that `device` made. */
  requestsOf (device: DeviceId, op: string): number {
    return this.requestsBy.get(device)?.get(op) ?? 0
  }

  push (device: DeviceId, id: MessageId, bytes: Uint8Array): void {
    for (const s of this.sockets) if (s.device === device) s.event('message', { envelope: bytes })
    void id
  }

  handle (s: FakeSocket, req: RequestFrame): ClientOps[keyof ClientOps]['res'] {
    this.requests.set(req.op, (this.requests.get(req.op) ?? 0) + 1)
    if (s.device !== undefined) {
      const by = this.requestsBy.get(s.device) ?? new Map<string, number>()
      by.set(req.op, (by.get(req.op) ?? 0) + 1)
      this.requestsBy.set(s.device, by)
    }
    switch (req.op) {
      case 'auth': {
        const b = req.body as ClientOps['auth']['req']
        s.device = b.device
        s.user = b.user
        setTimeout(() => { for (const [id, bytes] of this.inbox.get(b.device) ?? []) this.push(b.device, id, bytes) }, 0)
        return { user: b.user, device: b.device, time: Date.now() }
      }
      case 'publish': {
        const b = req.body as ClientOps['publish']['req']
        for (const r of b.records) {
          const d = decodeRecord(r)
          const key = `${d.kind}/${d.id}`
          const old = this.records.get(key)
          if (old === undefined || decodeRecord(old).seq <= d.seq) this.records.set(key, r)
        }
        s.onDisconnect = b.onDisconnect ?? []
        return { stored: b.records.length, failures: [] }
      }
      case 'lookup': {
        const user = (req.body as ClientOps['lookup']['req']).user
        const list = this.records.get(`devices/${user}`)
        if (list === undefined) return { prekeys: [] }
        const devices = decodeDevicesPayload(decodeRecord(list).payload).devices
        const prekeys = devices.map((d) => this.records.get(`prekeys/${d.deviceId}`)).filter((r): r is Uint8Array => r !== undefined)
        return { deviceList: list, prekeys }
      }
      case 'send': {
        const accepted: MessageId[] = []
        for (const bytes of (req.body as ClientOps['send']['req']).envelopes) {
          const env = decodeEnvelope(bytes)
          accepted.push(env.id)
          this.sent.push(env)
          const verdict = this.filter(env, bytes)
          if (verdict === 'drop') continue
          let box = this.inbox.get(env.to.device)
          if (box === undefined) { box = new Map(); this.inbox.set(env.to.device, box) }
          if (box.has(env.id)) continue
          box.set(env.id, bytes)
          if (verdict === 'hold') continue
          this.push(env.to.device, env.id, bytes)
          if (verdict === 'duplicate') this.push(env.to.device, env.id, bytes)
        }
        return { accepted }
      }
      case 'ack': {
        let removed = 0
        const box = s.device === undefined ? undefined : this.inbox.get(s.device)
        for (const id of (req.body as ClientOps['ack']['req']).ids) if (box?.delete(id) === true) removed++
        return { removed }
      }
      case 'ping':
        return { time: Date.now() }
      case 'groupOps':
        return this.groupOps(req.body as ClientOps['groupOps']['req'])
      case 'groupGet': {
        const b = req.body as ClientOps['groupGet']['req']
        const log = this.groupLogs.get(b.group)
        if (log === undefined) throw new ClientProtocolError('ERR_NOT_FOUND', 'unknown group')
        const ops = log.ops()
        const after = b.after ?? 0
        const res: ClientOps['groupGet']['res'] = { ops: ops.slice(after, after + GET_PAGE).map((o) => o.bytes) }
        if (after + GET_PAGE < ops.length) res.next = after + GET_PAGE
        return res
      }
      case 'groupSend':
        return this.groupSend(s, (req.body as ClientOps['groupSend']['req']).envelope)
      case 'groupHistory': {
        const b = req.body as ClientOps['groupHistory']['req']
        const log = this.groupLogs.get(b.group)
        if (log === undefined) throw new ClientProtocolError('ERR_NOT_FOUND', 'unknown group')
        if (log.state.kind === 'group' && (s.user === undefined || !log.isMember(s.user))) throw new ClientProtocolError('ERR_NOT_MEMBER', 'not a member')
        const all = (this.history.get(b.group) ?? []).filter((m) => m.sentAt >= b.since)
          .sort((x, y) => x.sentAt - y.sentAt || (x.id < y.id ? -1 : x.id > y.id ? 1 : 0))
        const from = b.cursor === undefined ? 0 : Number(new TextDecoder().decode(b.cursor))
        const limit = b.limit ?? HISTORY_PAGE
        const res: ClientOps['groupHistory']['res'] = { messages: all.slice(from, from + limit).map((m) => m.bytes) }
        if (from + limit < all.length) res.cursor = new TextEncoder().encode(String(from + limit))
        this.historyReads++
        return res
      }
      case 'roomEnter': {
        const b = req.body as ClientOps['roomEnter']['req']
        if (!this.groupLogs.has(b.room) && b.ops !== undefined) this.groupOps({ group: b.room, ops: b.ops })
        const log = this.groupLogs.get(b.room)
        if (log === undefined) throw new ClientProtocolError('ERR_NOT_FOUND', 'unknown room')
        if (log.state.kind !== 'room') throw new ClientProtocolError('ERR_BAD_REQUEST', 'not a room')
        if (s.user !== undefined && log.state.banned.has(s.user)) throw new ClientProtocolError('ERR_BANNED', 'banned')
        s.rooms.add(b.room)
        return { heads: log.state.heads }
      }
      case 'roomLeave':
        s.rooms.delete((req.body as ClientOps['roomLeave']['req']).room)
        return {}
      default:
        throw new Error(`the fake node does not serve ${req.op}`)
    }
  }

  /** groupHistory requests served so far. */
  historyReads = 0

  private groupOps (b: ClientOps['groupOps']['req']): ClientOps['groupOps']['res'] {
    let ops
    try {
      ops = b.ops.map((bytes) => decodeGroupOp(bytes))
    } catch (err) {
      throw new ClientProtocolError('ERR_INVALID_OP', (err as Error).message)
    }
    const results: ClientOps['groupOps']['res']['results'] = []
    for (const op of ops) {
      if (op.group !== b.group) throw new ClientProtocolError('ERR_INVALID_OP', 'op of another group')
      let log = this.groupLogs.get(b.group)
      if (log === undefined) {
        if (op.body.type !== 'create') { results.push({ status: 'pending' }); continue }
        log = GroupLog.create(op)
        this.groupLogs.set(b.group, log)
        results.push({ status: 'applied' })
        this.pushOp(log, op.bytes, [])
        continue
      }
      const before = log.memberUsers()
      const r = log.add(op)
      const out: ClientOps['groupOps']['res']['results'][number] = { status: r.status }
      if (r.code !== undefined) out.code = r.code
      if (r.reason !== undefined) out.message = r.reason
      results.push(out)
      for (const changed of r.changed) if (log.status(changed.id) === 'applied') this.pushOp(log, changed.bytes, before)
    }
    const log = this.groupLogs.get(b.group)
    return { results, heads: log === undefined ? [] : log.state.heads }
  }

  /** Pushes an op to the members' devices and to those it took out. */
  private pushOp (log: GroupLog, op: Uint8Array, before: UserId[]): void {
    const users = new Set([...before, ...log.memberUsers()])
    for (const s of this.sockets) if (s.user !== undefined && users.has(s.user)) s.event('groupOp', { group: log.id, op })
  }

  private groupSend (s: FakeSocket, bytes: Uint8Array): ClientOps['groupSend']['res'] {
    const env = decodeGroupTraffic(bytes)
    const group = env.kind === 'group' ? env.group : env.room
    const log = this.groupLogs.get(group)
    if (log === undefined) throw new ClientProtocolError('ERR_NOT_FOUND', 'unknown group')
    if (env.from.device !== s.device) throw new ClientProtocolError('ERR_NOT_SENDER', 'not the sender')
    const refusal = log.canSend(env.from.user, Date.now())
    if (refusal !== null) throw new ClientProtocolError(refusal.code, refusal.reason)
    let list = this.history.get(group)
    if (list === undefined) { list = []; this.history.set(group, list) }
    if (list.some((m) => m.id === env.id)) return { id: env.id, at: Date.now() }
    const held: HeldGroupMessage = { id: env.id, sentAt: env.sentAt, bytes }
    if (env.kind === 'room') {
      const f = log.state.settings.filter
      if (f !== undefined && f.words.length > 0) {
        const wf = new WordFilter(f.words)
        if (wf.test(env.text)) {
          if (f.mode === 'block') throw new ClientProtocolError('ERR_CONTENT_BLOCKED', 'blocked by the room filter')
          held.text = wf.mask(env.text)
        }
      }
    }
    list.push(held)
    this.groupSent.push(env)
    for (const t of this.sockets) {
      if (t === s || t.device === undefined || t.user === undefined) continue
      const wants = env.kind === 'room' ? t.rooms.has(group) : log.isMember(t.user)
      if (!wants || this.groupFilter(env, t.device) === 'drop') continue
      t.event('group', held.text !== undefined ? { envelope: bytes, text: held.text } : { envelope: bytes })
    }
    return { id: env.id, at: Date.now() }
  }

  /** Pushes a held group message to one device again (tests of duplicates and late arrivals). */
  pushGroup (device: DeviceId, bytes: Uint8Array): void {
    for (const t of this.sockets) if (t.device === device) t.event('group', { envelope: bytes })
  }
}

/** The fake socket a client holds. */
export class FakeSocket implements WebSocketLike {
  binaryType = 'arraybuffer'
  readyState = 0
  device: DeviceId | undefined
  user: UserId | undefined
  readonly rooms = new Set<GroupId>()
  onDisconnect: Uint8Array[] = []
  private readonly listeners = new Map<string, Listener[]>()
  private readonly node: FakeNode

  constructor (node: FakeNode, _url: string) {
    this.node = node
    node.connectionsOpened++
    node.attempts.push(Date.now())
    setTimeout(() => {
      if (node.down) { this.serverClose(1006, 'refused'); return }
      this.readyState = 1
      node.sockets.add(this)
      this.emit('open', {})
      this.frame({ t: 'challenge', v: CLIENT_PROTOCOL_VERSION, nonce: new Uint8Array(32), node: node.peerId, addrs: ['/ip4/127.0.0.1/tcp/1'], limits: { maxFrameBytes: 262144, maxRequestsPerSecond: 1000, maxUserRequestsPerSecond: 1000, maxEnvelopesPerSend: 64, maxUnackedPushes: 1000 }, time: Date.now() })
    }, 0)
  }

  addEventListener (type: string, listener: Listener): void {
    const l = this.listeners.get(type) ?? []
    l.push(listener)
    this.listeners.set(type, l)
  }

  private emit (type: string, event: { data?: unknown, code?: number, reason?: string }): void {
    for (const l of this.listeners.get(type) ?? []) l(event)
  }

  private frame (f: ClientFrame): void {
    const bytes = encodeFrame(f, 'binary') as Uint8Array
    const copy = bytes.slice()
    this.emit('message', { data: copy.buffer })
  }

  event (ev: 'message' | 'delivered' | 'group' | 'groupOp' | 'groupLag', body: unknown): void {
    if (this.readyState !== 1) return
    this.frame({ t: 'evt', ev, body } as ClientFrame)
  }

  send (data: Uint8Array): void {
    if (this.readyState !== 1) throw new Error('not open')
    const f = decodeFrame(data, { maxBytes: 1 << 20 })
    if (f.t !== 'req') return
    setTimeout(() => {
      if (this.readyState !== 1) return
      try {
        this.frame({ t: 'res', id: f.id, ok: true, body: this.node.handle(this, f) } as ClientFrame)
      } catch (err) {
        this.frame({ t: 'res', id: f.id, ok: false, error: err instanceof ClientProtocolError ? err.toBody() : { code: 'ERR_INTERNAL', message: String(err) } })
      }
    }, 0)
  }

  close (): void {
    this.serverClose(1000, 'client closed')
  }

  serverClose (code: number, reason: string): void {
    if (this.readyState === 3) return
    this.readyState = 3
    this.node.sockets.delete(this)
    setTimeout(() => { this.emit('close', { code, reason }) }, 0)
  }
}
