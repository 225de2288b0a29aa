/**
 * An in-memory stand-in for a node's client gateway, for SDK unit tests only: it speaks the client
 * protocol v1 frames over a fake WebSocket, stores published records, answers lookups, routes
 * envelopes between connected fake sockets and keeps unacked ones until acked. It checks nothing a
 * real node checks (signatures, rates); the e2e tests run the SDK against real nodes.
 */
import { CLIENT_PROTOCOL_VERSION, decodeFrame, encodeFrame, type ClientFrame, type ClientOps, type RequestFrame } from '../../protocol/client-protocol.js'
import { decodeEnvelope, type DirectEnvelope } from '../../protocol/envelopes.js'
import { decodeRecord, decodeDevicesPayload } from '../../protocol/records.js'
import type { DeviceId, MessageId } from '../../protocol/ids.js'
import type { WebSocketConstructor, WebSocketLike } from '../../client/connection.js'

type Listener = (event: { data?: unknown, code?: number, reason?: string }) => void

/** What a test may do to envelopes in transit. */
export type EnvelopeFilter = (env: DirectEnvelope, bytes: Uint8Array) => 'deliver' | 'drop' | 'duplicate'

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

  push (device: DeviceId, id: MessageId, bytes: Uint8Array): void {
    for (const s of this.sockets) if (s.device === device) s.event('message', { envelope: bytes })
    void id
  }

  handle (s: FakeSocket, req: RequestFrame): ClientOps[keyof ClientOps]['res'] {
    switch (req.op) {
      case 'auth': {
        const b = req.body as ClientOps['auth']['req']
        s.device = b.device
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
      default:
        throw new Error(`the fake node does not serve ${req.op}`)
    }
  }
}

/** The fake socket a client holds. */
export class FakeSocket implements WebSocketLike {
  binaryType = 'arraybuffer'
  readyState = 0
  device: DeviceId | undefined
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

  event (ev: 'message' | 'delivered', body: unknown): void {
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
        this.frame({ t: 'res', id: f.id, ok: false, error: { code: 'ERR_INTERNAL', message: String(err) } })
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
