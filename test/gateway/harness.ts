/**
 * Test harness of the client gateway: the gateway on the node's real HTTP server (127.0.0.1, free
 * port), recording in-test delivery and directory services, real WebSocket clients and real
 * identities. The services are stubs on purpose: these tests are unit tests of the gateway.
 */
import type { GroupService } from '../../node/groups/contracts.js'
import { pino } from 'pino'
import WebSocket from 'ws'
import {
  authSigningBytes, decodeFrame, encodeFrame, type ChallengeFrame, type ClientErrorBody, type ClientEvents, type ClientFrame,
  type ClientOp, type ClientOps, type EventFrame, type FrameFormat, type ResponseFrame
} from '../../protocol/client-protocol.js'
import { defaultCrypto } from '../../protocol/crypto/index.js'
import { encodeEnvelope, type DirectEnvelope } from '../../protocol/envelopes.js'
import {
  certifyDevice, createDevice, createDeviceList, createUserIdentity, encodeDeviceCertificate, encodeDeviceList,
  type DeviceCertificate, type DeviceIdentity, type DeviceList, type UserIdentity
} from '../../protocol/identity.js'
import { directConversationId, newMessageId, type MessageId, type UserId } from '../../protocol/ids.js'
import { encodeDevicesPayload, signRecord } from '../../protocol/records.js'
import { createClientGateway, type ClientGateway, type ClientGatewayInit } from '../../node/gateway/index.js'
import { DefaultHttpServer } from '../../node/http.js'
import type { CallOptions, DeliveryService, DeviceRef, DeviceSink, DirectoryService, SubmittedEnvelope } from '../../node/messaging/contracts.js'
import type { NodeStatus } from '../../node/types.js'

/** The peer id the test gateway claims. */
export const TEST_PEER_ID = '12D3KooWTestGatewayPeer'
/** Multiaddrs it announces. */
export const TEST_ADDRS = ['/ip4/127.0.0.1/tcp/7700/p2p/12D3KooWTestGatewayPeer']
/** Deadline of any single wait in these tests. */
export const WAIT_MS = 5000

/** A delivery service that records every call and lets tests push through the attached sinks. */
export class RecordingDelivery implements DeliveryService {
  readonly submitted: Array<{ sender: DeviceRef, envelopes: SubmittedEnvelope[] }> = []
  readonly acked: Array<{ device: DeviceRef, ids: MessageId[] }> = []
  readonly sinks: Array<{ device: DeviceRef, sink: DeviceSink, attached: boolean }> = []
  readonly drains: DeviceSink[] = []
  /** Replaces submit's behaviour (to throw, or to delay). */
  onSubmit: ((sender: DeviceRef, envelopes: SubmittedEnvelope[], opts?: CallOptions) => Promise<MessageId[]>) | undefined
  private drainWaiters: Array<() => void> = []

  async submit (sender: DeviceRef, envelopes: SubmittedEnvelope[], opts?: CallOptions): Promise<MessageId[]> {
    this.submitted.push({ sender, envelopes })
    if (this.onSubmit !== undefined) return await this.onSubmit(sender, envelopes, opts)
    return envelopes.map((e) => e.envelope.id)
  }

  attach (device: DeviceRef, sink: DeviceSink): () => void {
    const entry = { device, sink, attached: true }
    this.sinks.push(entry)
    return () => { entry.attached = false }
  }

  drain (_device: DeviceRef, sink: DeviceSink): void {
    this.drains.push(sink)
    for (const w of this.drainWaiters.splice(0)) w()
  }

  async ack (device: DeviceRef, ids: MessageId[], _opts?: CallOptions): Promise<number> {
    this.acked.push({ device, ids })
    return ids.length
  }

  /** Resolves at the next drain call. */
  async nextDrain (): Promise<void> {
    await withTimeout(new Promise<void>((resolve) => { this.drainWaiters.push(resolve) }), 'drain')
  }
}

/** A directory that records publishes and answers lookups from a map. */
export class RecordingDirectory implements DirectoryService {
  readonly published: Uint8Array[][] = []
  readonly deviceLists = new Map<string, DeviceList>()
  private publishWaiters: Array<() => void> = []

  async publish (records: Uint8Array[], _opts?: CallOptions): Promise<{ stored: number, failures: Array<{ index: number, code: string, message: string }> }> {
    this.published.push(records)
    for (const w of this.publishWaiters.splice(0)) w()
    return { stored: records.length, failures: [] }
  }

  /** When set, getDeviceList fails with it. */
  getDeviceListError: Error | undefined

  async getDeviceList (user: UserId, _opts?: CallOptions): Promise<DeviceList | undefined> {
    if (this.getDeviceListError !== undefined) throw this.getDeviceListError
    return this.deviceLists.get(user)
  }

  async lookup (user: UserId, _opts?: CallOptions): Promise<{ deviceList?: Uint8Array, prekeys: Uint8Array[] }> {
    const list = this.deviceLists.get(user)
    return list === undefined ? { prekeys: [] } : { deviceList: encodeDeviceList(list), prekeys: [] }
  }

  /** Resolves at the next publish call. */
  async nextPublish (): Promise<void> {
    await withTimeout(new Promise<void>((resolve) => { this.publishWaiters.push(resolve) }), 'publish')
  }
}

/** Rejects when `p` does not settle within WAIT_MS. */
export async function withTimeout<T> (p: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  try {
    return await Promise.race([p, new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => { reject(new Error(`timed out waiting for ${what}`)) }, ms)
    })])
  } finally {
    clearTimeout(timer)
  }
}

/** A gateway on a real HTTP server, with its recording services. */
export interface TestGateway {
  url: string
  gateway: ClientGateway
  delivery: RecordingDelivery
  directory: RecordingDirectory
  close(): Promise<void>
}

/** Starts a gateway with `init` on 127.0.0.1 and a free port. */
export async function startGateway (init: ClientGatewayInit = {}, services: { groups?: GroupService } = {}): Promise<TestGateway> {
  const logger = pino({ level: 'silent' })
  const http = new DefaultHttpServer({ logger, state: () => 'started', status: () => ({}) as NodeStatus }, { host: '127.0.0.1', port: 0 })
  await http.start()
  const delivery = new RecordingDelivery()
  const directory = new RecordingDirectory()
  const gateway = createClientGateway(init, { http, delivery, directory, ...services, peerId: TEST_PEER_ID, getMultiaddrs: () => TEST_ADDRS, logger })
  await gateway.start()
  return {
    url: `ws://127.0.0.1:${http.port}/v1`,
    gateway,
    delivery,
    directory,
    close: async () => {
      await gateway.stop()
      await http.stop()
    }
  }
}

/** A user with one certified device and a device list holding it. */
export interface TestDevice {
  user: UserIdentity
  device: DeviceIdentity
  cert: DeviceCertificate
  list: DeviceList
  ref: DeviceRef
}

/** A fresh user and device; pass `user` to add a second device of the same user. */
export function testDevice (user: UserIdentity = createUserIdentity()): TestDevice {
  const device = createDevice()
  const cert = certifyDevice(user, device)
  device.cert = cert
  const list = createDeviceList(user, [cert])
  return { user, device, cert, list, ref: { user: user.userId, device: device.deviceId } }
}

/** The root-signed devices record carrying `list` (default the device's own list). */
export function devicesRecord (d: TestDevice, list: DeviceList = d.list): Uint8Array {
  return signRecord(
    { kind: 'devices', id: d.user.userId, seq: list.seq, expiresAt: Date.now() + 3600_000, payload: encodeDevicesPayload(list) },
    { seed: d.user.rootSeed, publicKey: d.user.rootPublicKey }
  )
}

/** A valid encoded envelope from `from` to `to`. */
export function testEnvelope (from: DeviceRef, to: DeviceRef, seq = 1): { id: MessageId, bytes: Uint8Array, envelope: DirectEnvelope } {
  const envelope: DirectEnvelope = {
    kind: 'direct',
    id: newMessageId(),
    from,
    to,
    conv: directConversationId(from.user, to.user),
    seq,
    sentAt: Date.now(),
    type: 'message',
    header: new Uint8Array(40),
    ciphertext: new Uint8Array(64).fill(7)
  }
  return { id: envelope.id, bytes: encodeEnvelope(envelope), envelope }
}

/** A WebSocket client that speaks frames and keeps what arrives in order. */
export class TestClient {
  readonly ws: WebSocket
  readonly format: FrameFormat
  readonly frames: ClientFrame[] = []
  /** Whether each received frame was binary, in arrival order. */
  readonly binary: boolean[] = []
  readonly closed: Promise<{ code: number, reason: string }>
  challenge!: ChallengeFrame
  private nextId = 1
  private waiters: Array<() => void> = []

  private constructor (ws: WebSocket, format: FrameFormat) {
    this.ws = ws
    this.format = format
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      this.binary.push(isBinary)
      this.frames.push(decodeFrame(isBinary ? new Uint8Array(data) : data.toString('utf8'), { maxBytes: 64 * 1024 * 1024 }))
      for (const w of this.waiters.splice(0)) w()
    })
    ws.on('error', () => {})
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        resolve({ code, reason: reason.toString() })
        for (const w of this.waiters.splice(0)) w()
      })
    })
  }

  /** Connects and waits for the challenge. */
  static async connect (url: string, opts: { format?: FrameFormat, autoPong?: boolean } = {}): Promise<TestClient> {
    const format = opts.format ?? 'binary'
    const ws = new WebSocket(format === 'text' ? `${url}?format=json` : url, { autoPong: opts.autoPong ?? true })
    const client = new TestClient(ws, format)
    const first = await client.waitFor((f) => f.t === 'challenge' || f.t === 'res', 'challenge')
    if (first.t === 'challenge') client.challenge = first
    else client.frames.unshift(first)
    return client
  }

  /** Waits for the first received frame matching `match`, removing it from the queue. */
  async waitFor<F extends ClientFrame> (match: (f: ClientFrame) => f is F, what: string): Promise<F>
  async waitFor (match: (f: ClientFrame) => boolean, what: string): Promise<ClientFrame>
  async waitFor (match: (f: ClientFrame) => boolean, what: string): Promise<ClientFrame> {
    const deadline = Date.now() + WAIT_MS
    for (;;) {
      const i = this.frames.findIndex(match)
      if (i >= 0) return this.frames.splice(i, 1)[0]!
      if (this.ws.readyState === WebSocket.CLOSED) throw new Error(`connection closed while waiting for ${what}`)
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`timed out waiting for ${what}`)
      await withTimeout(new Promise<void>((resolve) => { this.waiters.push(resolve) }), what, left)
    }
  }

  /** Sends raw data as a frame. */
  sendRaw (data: Uint8Array | string): void {
    this.ws.send(data, { binary: typeof data !== 'string' })
  }

  /** Sends a request and returns its id without waiting. */
  sendRequest<Op extends ClientOp> (op: Op, body: ClientOps[Op]['req']): number {
    const id = this.nextId++
    this.sendRaw(encodeFrame({ t: 'req', id, op, body }, this.format))
    return id
  }

  /** Waits for the response to request `id`. */
  async response (id: number): Promise<ResponseFrame> {
    return await this.waitFor((f): f is ResponseFrame => f.t === 'res' && f.id === id, `response ${id}`)
  }

  /** Sends a request and waits for its response. */
  async request<Op extends ClientOp> (op: Op, body: ClientOps[Op]['req']): Promise<ResponseFrame> {
    return await this.response(this.sendRequest(op, body))
  }

  /** Sends a request, expects an ok response and returns its body. */
  async ok<Op extends ClientOp> (op: Op, body: ClientOps[Op]['req']): Promise<ClientOps[Op]['res']> {
    const res = await this.request(op, body)
    if (!res.ok) throw new Error(`${op} failed: ${res.error.code} ${res.error.message}`)
    return res.body as ClientOps[Op]['res']
  }

  /** Sends a request, expects an error response and returns the error. */
  async fails<Op extends ClientOp> (op: Op, body: ClientOps[Op]['req']): Promise<ClientErrorBody> {
    const res = await this.request(op, body)
    if (res.ok) throw new Error(`${op} unexpectedly succeeded`)
    return res.error
  }

  /** Waits for the next event named `ev`. */
  async event<Ev extends keyof ClientEvents> (ev: Ev): Promise<ClientEvents[Ev]> {
    const f = await this.waitFor((x): x is EventFrame => x.t === 'evt' && x.ev === ev, `event ${ev}`)
    return f.body as ClientEvents[Ev]
  }

  /** The auth request body for `d`, signed over this connection's challenge. */
  authBody (d: TestDevice, overrides: Partial<ClientOps['auth']['req']> = {}): ClientOps['auth']['req'] {
    const sig = defaultCrypto.ed25519Sign(d.device.signingSeed, authSigningBytes(this.challenge.nonce, this.challenge.node, d.user.userId, d.device.deviceId))
    return {
      user: d.user.userId,
      device: d.device.deviceId,
      cert: encodeDeviceCertificate(d.cert),
      deviceList: encodeDeviceList(d.list),
      sig,
      ...overrides
    }
  }

  /** Authenticates as `d`, expecting success. */
  async auth (d: TestDevice): Promise<void> {
    await this.ok('auth', this.authBody(d))
  }

  /** Closes the connection and waits for the close. */
  async close (): Promise<void> {
    if (this.ws.readyState !== WebSocket.CLOSED) this.ws.close()
    await withTimeout(this.closed, 'close')
  }
}
