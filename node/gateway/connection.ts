/**
 * One client connection: the challenge, authentication, request dispatch with limits, and the
 * push window through which the delivery service reaches the device.
 *
 * Every handler runs inside one try/catch that turns any failure into an error response, and
 * every event listener is guarded the same way: a hostile or broken client can close at most its
 * own connection, never the node.
 */
import { setMaxListeners } from 'node:events'
import type { Logger } from 'pino'
import { WebSocket } from 'ws'
import {
  authSigningBytes, AUTH_NONCE_BYTES, CLIENT_PROTOCOL_VERSION, ClientProtocolError, decodeFrame, encodeFrame, isClientErrorCode,
  MAX_CHALLENGE_ADDRS, MAX_CLIENT_ERROR_MESSAGE_LENGTH,
  type ClientErrorCode, type ClientEvents, type ClientFrame, type ClientLimits, type ClientOp, type ClientOps, type FrameFormat, type RequestFrame
} from '../../protocol/client-protocol.js'
import type { CryptoProvider } from '../../protocol/crypto/provider.js'
import { decodeEnvelope } from '../../protocol/envelopes.js'
import { TalariaError } from '../../protocol/errors.js'
import { equalBytes } from '../../protocol/bytes.js'
import { decodeDeviceCertificate, decodeDeviceList, isDeviceActive, verifyDeviceCertificate, verifyDeviceList, type DeviceList } from '../../protocol/identity.js'
import type { MessageId } from '../../protocol/ids.js'
import { decodeRecord, recordKey, validateRecord } from '../../protocol/records.js'
import type { AuthenticatedDevice, GroupEventName, GroupService, GroupSink } from '../groups/contracts.js'
import type { DeliveryService, DeviceRef, DeviceSink, DirectoryService, SubmittedEnvelope } from '../messaging/contracts.js'
import type { ClientGatewayConfig } from './options.js'
import { newerListRevokes, type RevocationChecker, type RevocationCheckResult } from './revocation.js'
import type { GatewayStats } from './stats.js'
import type { TokenBucket } from './token-bucket.js'

/** WebSocket close codes the gateway uses (RFC 6455 section 7.4.1). */
export const CLOSE_GOING_AWAY = 1001
/** Policy violation: too many bad frames or failed auths, auth timeout, connection limits, a device found revoked after auth. */
export const CLOSE_POLICY_VIOLATION = 1008
/** A frame larger than the node accepts. */
export const CLOSE_TOO_LARGE = 1009

/**
 * The socket class the gateway's WebSocketServer creates. ws closes a connection with 1009 by
 * itself when a frame exceeds maxPayload, before any listener runs; this hook lets the gateway
 * send the ERR_FRAME_TOO_LARGE frame first, while the socket is still open.
 */
export class GatewaySocket extends WebSocket {
  /** Called once, just before ws closes the socket with 1009. */
  beforeTooLargeClose: (() => void) | undefined

  override close (code?: number, data?: string | Buffer): void {
    if (code === CLOSE_TOO_LARGE && this.readyState === WebSocket.OPEN) {
      const hook = this.beforeTooLargeClose
      this.beforeTooLargeClose = undefined
      hook?.()
    }
    super.close(code, data)
  }
}

/** What a connection needs from its gateway. */
export interface ConnectionContext {
  config: ClientGatewayConfig
  crypto: CryptoProvider
  delivery: DeliveryService
  directory: DirectoryService
  /** The node's background device-list lookups, shared by its connections. */
  revocation: RevocationChecker
  groups?: GroupService
  peerId: string
  getMultiaddrs(): string[]
  stats: GatewayStats
  limits: ClientLimits
  /** Takes a reference on the user's shared bucket, released once with `release()`. */
  acquireUserBucket(user: string): UserBucketLease
  /** Publishes a closed connection's onDisconnect records (tracked so stop() can wait). */
  publishOnDisconnect(records: Uint8Array[]): void
  /** Called when a connection's socket has closed (more than once is harmless). */
  connectionClosed(conn: ClientConnection): void
}

/** A connection's reference on its user's shared request bucket. */
export interface UserBucketLease {
  readonly bucket: TokenBucket
  release(): void
}

type LogLevel = 'debug' | 'warn' | 'error'

/**
 * A connection's logger, made on the first line logged at an enabled level. Every connection
 * shares one context object and is its own sink, and its pino child logger is made only when
 * needed: per-connection closures and child loggers were several KB of heap per idle connection
 * (closures defined in TypeScript carry a `name` property added by the loader, 256 B each).
 */
export class ConnectionLog {
  private child: Logger | undefined

  constructor (private readonly parent: Logger, private readonly bindings: Record<string, unknown>) {}

  debug (obj: unknown, msg?: string): void { this.write('debug', obj, msg) }
  warn (obj: unknown, msg?: string): void { this.write('warn', obj, msg) }
  error (obj: unknown, msg?: string): void { this.write('error', obj, msg) }

  private write (level: LogLevel, obj: unknown, msg: string | undefined): void {
    if (!this.parent.isLevelEnabled(level)) return
    this.child ??= this.parent.child(this.bindings)
    if (msg === undefined) this.child[level](obj)
    else this.child[level](obj, msg)
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * Encoded group event frames by body object: the groups service hands the same body to every
 * connection it pushes a message to (hundreds in a busy room), so each format is encoded once.
 */
const encodedEvents = new WeakMap<object, Partial<Record<FrameFormat, Uint8Array | string>>>()

function encodeEvent<E extends GroupEventName> (ev: E, body: ClientEvents[E], format: FrameFormat): Uint8Array | string {
  let cached = encodedEvents.get(body)
  if (cached === undefined) {
    cached = {}
    encodedEvents.set(body, cached)
  }
  return cached[format] ??= encodeFrame({ t: 'evt', ev, body } as ClientFrame, format)
}

function clientError (code: ClientErrorCode, message: string, retryAfterMs?: number): ClientProtocolError {
  return new ClientProtocolError(code, message, retryAfterMs === undefined ? {} : { retryAfterMs })
}

function explain (err: unknown): string {
  const text = err instanceof TalariaError ? `${err.code}: ${err.message}` : err instanceof Error ? err.message : String(err)
  return text.slice(0, MAX_CLIENT_ERROR_MESSAGE_LENGTH)
}

/** One authenticated or not-yet-authenticated client connection. */
export class ClientConnection implements DeviceSink, GroupSink {
  private readonly ws: GatewaySocket
  private readonly ctx: ConnectionContext
  private readonly log: ConnectionLog
  /** This connection's request bucket. */
  private readonly bucket: TokenBucket
  private readonly nonce: Uint8Array
  /**
   * Requests in flight, each under its own deadline, all aborted when the connection closes; made on
   * the first request. Not `AbortSignal.any` with a per-connection signal: that left a set of weak
   * references and two listener maps on every connection and cost a combined signal per request.
   */
  private requests: Set<AbortController> | undefined
  private readonly unacked = new Set<MessageId>()
  private device: DeviceRef | undefined
  /** The device with the signing key its certificate proved, as the groups service takes it. */
  private groupDevice: AuthenticatedDevice | undefined
  private authenticating = false
  /** The auth response has gone out: pushes may follow it. */
  private authAnswered = false
  /** Set while this connection's background revocation check runs; cancels it. */
  private cancelRevocationCheck: (() => void) | undefined
  /** Called when the revocation check ends, however it ends. */
  private readonly revocationWaiters = new Set<() => void>()
  /** A newer device list dropped the device after auth: the connection is closing and serves nothing more. */
  private revoked = false
  private authFailures = 0
  private violations = 0
  private inFlight = 0
  private userBucket: UserBucketLease | undefined
  private detach: (() => void) | undefined
  private detachGroups: (() => void) | undefined
  /** A group event was dropped on a full send buffer: the groups service owes this connection a `groupLag`. */
  private groupsBehind = false
  private onDisconnect: Uint8Array[] = []
  private authTimer: ReturnType<typeof setTimeout> | undefined
  private windowFull = false
  private bufferFull = false
  private drainWanted = false
  private closed = false
  /** Format of events and of errors that answer no request: the client's last frame decides. */
  private format: FrameFormat
  /** Last time the client showed it is alive (a pong or any frame), in ms since the epoch. */
  lastSeen = Date.now()

  constructor (ws: GatewaySocket, ctx: ConnectionContext, format: FrameFormat, log: ConnectionLog, bucket: TokenBucket, readonly ip: string) {
    this.ws = ws
    this.ctx = ctx
    this.format = format
    this.log = log
    this.bucket = bucket
    this.nonce = ctx.crypto.randomBytes(AUTH_NONCE_BYTES)
  }

  /** The sink the delivery service pushes through while this connection is authenticated: the connection itself. */
  get sink (): DeviceSink {
    return this
  }

  /** The sink the groups service pushes group and room events through: the connection itself. */
  get groupSink (): GroupSink {
    return this
  }

  /** {@link DeviceSink}: envelopes this device sent have reached their recipients. */
  delivered (ids: MessageId[]): void {
    this.send({ t: 'evt', ev: 'delivered', body: { ids } }, this.format)
  }

  /** {@link GroupSink}: pushes one group or room event. */
  event<E extends GroupEventName> (ev: E, body: ClientEvents[E]): boolean {
    return this.pushGroupEvent(ev, body)
  }

  /** The authenticated device, if any. */
  get authenticated (): DeviceRef | undefined {
    return this.device
  }

  /** Registers the socket listeners, sends the challenge and arms the auth timeout. */
  start (): void {
    const ws = this.ws
    ws.beforeTooLargeClose = () => {
      this.ctx.stats.count('ERR_FRAME_TOO_LARGE')
      this.sendError(0, clientError('ERR_FRAME_TOO_LARGE', `frame exceeds ${this.ctx.config.maxFrameBytes} bytes`), this.format)
    }
    ws.on('message', (data, isBinary) => { this.guard(() => { this.onMessage(data as Buffer, isBinary) }) })
    ws.on('pong', () => { this.lastSeen = Date.now() })
    ws.on('error', (err) => { this.log.debug({ err }, 'client socket error') })
    ws.on('close', () => { this.guard(() => { this.onClose() }) })
    this.authTimer = setTimeout(() => {
      this.guard(() => {
        if (this.device !== undefined) return
        this.sendError(0, clientError('ERR_TIMEOUT', `not authenticated within ${this.ctx.config.authTimeoutMs} ms`), this.format)
        this.close(CLOSE_POLICY_VIOLATION, 'authentication timeout')
      })
    }, this.ctx.config.authTimeoutMs)
    this.send({
      t: 'challenge',
      v: CLIENT_PROTOCOL_VERSION,
      nonce: this.nonce,
      node: this.ctx.peerId,
      addrs: this.ctx.getMultiaddrs().slice(0, MAX_CHALLENGE_ADDRS),
      limits: this.ctx.limits,
      time: Date.now()
    }, this.format)
  }

  /** Starts the close handshake. */
  close (code: number, reason: string): void {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(code, reason)
  }

  /** Cuts the socket without a handshake (dead peers, stop past its grace). */
  terminate (): void {
    this.ws.terminate()
  }

  /** Keepalive tick: terminates a silent client, else pings it. */
  keepalive (now: number): void {
    if (now - this.lastSeen > this.ctx.config.pongTimeoutMs) {
      this.log.debug('no pong: terminating')
      this.ctx.stats.keepaliveTerminations++
      this.terminate()
      return
    }
    if (this.ws.readyState === WebSocket.OPEN) this.ws.ping()
  }

  private guard (fn: () => void): void {
    try {
      fn()
    } catch (err) {
      // a bug here must cost this connection at most, never the node
      this.log.error({ err }, 'client connection handler failed')
      this.close(CLOSE_POLICY_VIOLATION, 'internal error')
    }
  }

  // ---- output -------------------------------------------------------------------------------

  private send (frame: ClientFrame, format: FrameFormat): boolean {
    if (this.ws.readyState !== WebSocket.OPEN) return false
    const data = encodeFrame(frame, format)
    this.ctx.stats.framesOut++
    this.ws.send(data, { binary: format === 'binary' }, () => { this.onWritten() })
    if (this.ws.bufferedAmount > this.ctx.config.maxSendBufferBytes) {
      // the client stopped reading while frames keep coming: drop it rather than buffer without end
      this.log.debug({ buffered: this.ws.bufferedAmount }, 'client not reading: terminating')
      this.terminate()
      return false
    }
    return true
  }

  private sendError (id: number, err: ClientProtocolError, format: FrameFormat): void {
    this.send({ t: 'res', id, ok: false, error: err.toBody() }, format)
  }

  private onWritten (): void {
    if (this.bufferFull && this.ws.bufferedAmount < this.ctx.config.pushHighWaterBytes) {
      this.bufferFull = false
      this.maybeDrain()
    }
    if (this.groupsBehind && this.ws.bufferedAmount < this.ctx.config.pushHighWaterBytes) {
      this.groupsBehind = false
      try {
        this.ctx.groups?.drain(this.groupSink)
      } catch (err) {
        this.log.error({ err }, 'groups drain failed')
      }
    }
  }

  /** Sends a group event unless the send buffer is past its high-water mark (then the event is dropped and owed as a lag). */
  private pushGroupEvent<E extends GroupEventName> (ev: E, body: ClientEvents[E]): boolean {
    if (this.closed || this.device === undefined || this.ws.readyState !== WebSocket.OPEN) return false
    if (this.ws.bufferedAmount >= this.ctx.config.pushHighWaterBytes) {
      this.groupsBehind = true
      return false
    }
    this.ctx.stats.framesOut++
    this.ws.send(encodeEvent(ev, body, this.format), { binary: this.format === 'binary' }, () => { this.onWritten() })
    return true
  }

  private maybeDrain (): void {
    if (!this.drainWanted || this.windowFull || this.bufferFull || this.closed || this.device === undefined) return
    this.drainWanted = false
    try {
      this.ctx.delivery.drain(this.device, this.sink)
    } catch (err) {
      // runs from socket write callbacks too, where a throw would escape to the process
      this.log.error({ err }, 'delivery drain failed')
    }
  }

  /** {@link DeviceSink}: pushes one envelope; false when the push window or send buffer is full. */
  push (id: MessageId, envelope: Uint8Array): boolean {
    if (this.closed || this.device === undefined) return false
    if (this.unacked.size >= this.ctx.config.maxUnackedPushes) {
      this.windowFull = true
      this.drainWanted = true
      return false
    }
    if (this.ws.bufferedAmount >= this.ctx.config.pushHighWaterBytes) {
      this.bufferFull = true
      this.drainWanted = true
      return false
    }
    if (!this.send({ t: 'evt', ev: 'message', body: { envelope } }, this.format)) return false
    this.unacked.add(id)
    this.ctx.stats.pushes++
    return true
  }

  // ---- input --------------------------------------------------------------------------------

  private violation (err: ClientProtocolError, format: FrameFormat): void {
    this.ctx.stats.count(err.code)
    this.sendError(err.requestId, err, format)
    if (++this.violations >= this.ctx.config.maxProtocolViolations) {
      this.log.debug({ violations: this.violations }, 'too many protocol violations: closing')
      this.close(CLOSE_POLICY_VIOLATION, 'too many protocol violations')
    }
  }

  private onMessage (data: Buffer, isBinary: boolean): void {
    // frames that were on the way when the close for a revoked device started get no answer
    if (this.revoked) return
    this.ctx.stats.framesIn++
    this.lastSeen = Date.now()
    const format: FrameFormat = isBinary ? 'binary' : 'text'
    this.format = format
    let frame: ClientFrame
    try {
      frame = decodeFrame(isBinary ? data : utf8.decode(data), { maxBytes: this.ctx.config.maxFrameBytes })
    } catch (err) {
      const e = err instanceof ClientProtocolError ? err : new ClientProtocolError('ERR_BAD_FRAME', 'text frame is not valid UTF-8')
      if (e.code === 'ERR_FRAME_TOO_LARGE') {
        // the close hook sends the error frame, exactly as when ws itself refuses the frame
        this.close(CLOSE_TOO_LARGE, 'frame too large')
        return
      }
      this.violation(e, format)
      return
    }
    if (frame.t !== 'req') {
      this.violation(new ClientProtocolError('ERR_BAD_FRAME', 'a client sends only requests'), format)
      return
    }
    this.dispatch(frame, format)
  }

  private dispatch (frame: RequestFrame, format: FrameFormat): void {
    const wait = this.bucket.take()
    if (wait > 0) {
      this.ctx.stats.count('ERR_RATE_LIMITED')
      this.sendError(frame.id, clientError('ERR_RATE_LIMITED', 'too many requests on this connection', wait), format)
      return
    }
    if (this.device === undefined) {
      if (frame.op !== 'auth' && frame.op !== 'ping') {
        this.violation(new ClientProtocolError('ERR_NOT_AUTHENTICATED', `${frame.op} needs an authenticated connection`, { requestId: frame.id }), format)
        return
      }
    } else {
      if (frame.op === 'auth') {
        this.violation(new ClientProtocolError('ERR_ALREADY_AUTHENTICATED', 'this connection is already authenticated', { requestId: frame.id }), format)
        return
      }
      const userWait = this.userBucket?.bucket.take() ?? 0
      if (userWait > 0) {
        this.ctx.stats.count('ERR_USER_RATE_LIMITED')
        this.sendError(frame.id, clientError('ERR_USER_RATE_LIMITED', 'too many requests for this user', userWait), format)
        return
      }
    }
    if (this.inFlight >= this.ctx.config.maxInFlightRequests) {
      this.ctx.stats.count('ERR_UNAVAILABLE')
      this.sendError(frame.id, clientError('ERR_UNAVAILABLE', 'too many requests in flight on this connection'), format)
      return
    }
    this.inFlight++
    this.ctx.stats.requests++
    void this.run(frame, format)
      .catch((err: unknown) => { this.log.error({ err }, 'request handling failed') })
      .finally(() => { this.inFlight-- })
  }

  private async run (frame: RequestFrame, format: FrameFormat): Promise<void> {
    const controller = new AbortController()
    const signal = controller.signal
    // handlers hand the signal to libraries that add a listener per sub-request (kad-dht)
    setMaxListeners(Infinity, signal)
    const timer = setTimeout(() => { controller.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError')) }, this.ctx.config.requestTimeoutMs)
    timer.unref()
    if (this.closed) controller.abort()
    const requests = this.requests ??= new Set()
    requests.add(controller)
    let body: ClientOps[ClientOp]['res']
    try {
      // entering a room hands the groups service this connection's sink, which it takes only once
      // attached, after the revocation check
      if (frame.op === 'roomEnter') await this.revocationChecked(signal)
      body = await this.handle(frame, signal)
    } catch (err) {
      const e = this.toClientError(err, signal)
      this.ctx.stats.count(e.code)
      this.sendError(frame.id, e, format)
      if ((e.code === 'ERR_AUTH_FAILED' || e.code === 'ERR_DEVICE_REVOKED') && ++this.authFailures >= this.ctx.config.maxAuthFailures) {
        this.close(CLOSE_POLICY_VIOLATION, 'too many failed authentications')
      }
      return
    } finally {
      clearTimeout(timer)
      requests.delete(controller)
    }
    this.send({ t: 'res', id: frame.id, ok: true, body }, format)
    if (frame.op === 'auth') {
      this.authAnswered = true
      this.attach()
    }
  }

  private toClientError (err: unknown, signal: AbortSignal): ClientProtocolError {
    if (err instanceof ClientProtocolError) return err
    if (err instanceof TalariaError && isClientErrorCode(err.code)) return clientError(err.code, err.message.slice(0, MAX_CLIENT_ERROR_MESSAGE_LENGTH))
    if (signal.aborted && !this.closed) return clientError('ERR_TIMEOUT', 'the request did not finish in time')
    this.log.error({ err }, 'request failed')
    return clientError('ERR_INTERNAL', 'internal error')
  }

  private async handle (frame: RequestFrame, signal: AbortSignal): Promise<ClientOps[ClientOp]['res']> {
    switch (frame.op) {
      case 'ping': return { time: Date.now() }
      case 'auth': return this.auth(frame.body as ClientOps['auth']['req'])
      case 'publish': return await this.publish(frame.body as ClientOps['publish']['req'], signal)
      case 'lookup': return await this.ctx.directory.lookup((frame.body as ClientOps['lookup']['req']).user, { signal })
      case 'send': return await this.sendEnvelopes(frame.body as ClientOps['send']['req'], signal)
      case 'ack': return await this.ack(frame.body as ClientOps['ack']['req'], signal)
      case 'groupOps': return await this.groups().submitOps(this.groupDevice!, frame.body as ClientOps['groupOps']['req'], { signal })
      case 'groupGet': return await this.groups().getOps(this.groupDevice!, frame.body as ClientOps['groupGet']['req'], { signal })
      case 'groupSend': return await this.groups().send(this.groupDevice!, this.groupSink, frame.body as ClientOps['groupSend']['req'], { signal })
      case 'groupHistory': return await this.groups().history(this.groupDevice!, frame.body as ClientOps['groupHistory']['req'], { signal })
      case 'roomEnter': return await this.groups().enterRoom(this.groupDevice!, this.groupSink, frame.body as ClientOps['roomEnter']['req'], { signal })
      case 'roomLeave':
        this.groups().leaveRoom(this.groupDevice!, this.groupSink, (frame.body as ClientOps['roomLeave']['req']).room)
        return {}
    }
  }

  private groups (): GroupService {
    const groups = this.ctx.groups
    if (groups === undefined) throw clientError('ERR_UNKNOWN_OP', 'this node serves no groups')
    return groups
  }

  // ---- operations ---------------------------------------------------------------------------

  /** Checks the credentials without waiting on the network: nothing in it awaits (see the revocation check below). */
  private auth (req: ClientOps['auth']['req']): ClientOps['auth']['res'] {
    if (this.authenticating) throw clientError('ERR_BAD_REQUEST', 'an authentication is already in progress')
    this.authenticating = true
    try {
      const crypto = this.ctx.crypto
      const failed = (why: string, cause?: unknown): ClientProtocolError => new ClientProtocolError('ERR_AUTH_FAILED', why, cause === undefined ? {} : { cause })
      let list: DeviceList
      let signingKey: Uint8Array
      try {
        const cert = decodeDeviceCertificate(req.cert)
        verifyDeviceCertificate(cert, crypto)
        if (cert.userId !== req.user || cert.deviceId !== req.device) throw failed('the certificate is for another user or device')
        list = decodeDeviceList(req.deviceList)
        verifyDeviceList(list, crypto)
        if (list.userId !== req.user) throw failed('the device list is for another user')
        if (!isDeviceActive(list, req.device)) {
          if (list.revoked.some((r) => r.deviceId === req.device)) throw clientError('ERR_DEVICE_REVOKED', 'the device is revoked')
          throw failed('the device is not in the device list')
        }
        const entry = list.devices.find((d) => d.deviceId === req.device)
        signingKey = cert.signingKey
        if (entry === undefined || !equalBytes(entry.signingKey, cert.signingKey) || !equalBytes(entry.exchangeKey, cert.exchangeKey)) {
          throw failed('the device list and the certificate disagree on the device keys')
        }
        if (!crypto.ed25519Verify(cert.signingKey, authSigningBytes(this.nonce, this.ctx.peerId, req.user, req.device), req.sig)) {
          throw failed('bad signature')
        }
      } catch (err) {
        if (err instanceof ClientProtocolError) throw err
        throw failed(explain(err), err)
      }
      // A newer list elsewhere may have revoked the device since the client's copy was signed. The
      // directory's cache answers now (the same answer a lookup gives while it is fresh); on a miss
      // the DHT lookup runs in the background and the pushes wait for it (see attach).
      const cached = this.ctx.revocation.cached(req.user)
      if (cached !== undefined && newerListRevokes(cached.list, list, req.device)) {
        throw clientError('ERR_DEVICE_REVOKED', 'a newer device list no longer holds this device')
      }
      if (this.closed) throw clientError('ERR_UNAVAILABLE', 'connection closed')
      this.device = { user: req.user, device: req.device }
      this.groupDevice = { user: req.user, device: req.device, signingKey }
      clearTimeout(this.authTimer)
      this.userBucket = this.ctx.acquireUserBucket(req.user)
      if (cached === undefined) {
        const presented = list
        const device = req.device
        this.cancelRevocationCheck = this.ctx.revocation.check(req.user, (result) => {
          this.guard(() => { this.onRevocationChecked(result, presented, device) })
        })
      }
      this.ctx.stats.authenticated++
      this.log.debug({ user: req.user, device: req.device }, 'client authenticated')
      return { user: req.user, device: req.device, time: Date.now() }
    } finally {
      this.authenticating = false
    }
  }

  /**
   * Ends the background revocation check. Until it ends the device receives nothing: its mailbox,
   * its pushes and its group events stay detached, and `roomEnter` waits. Other requests run
   * meanwhile, and that is safe: what a device sends is verified end to end by its recipients
   * against the sender's newest device list; the reads (lookup, groupGet, groupHistory) serve
   * public records, ciphertext and logs open to any client that names the group; and a publish
   * carrying a device list waits (see publish), so a revoked device cannot put its older list
   * into the directory's cache before the check reads it.
   */
  private onRevocationChecked (result: RevocationCheckResult, presented: DeviceList, device: string): void {
    this.cancelRevocationCheck = undefined
    if (this.closed) return
    if (!result.ok) {
      // as on a failed lookup at auth before: the presented list is root-signed and verified, so
      // an unreachable DHT costs the check's freshness, not the device's connection
      this.log.warn({ err: result.error, user: this.device?.user }, 'device list lookup failed: using the presented list')
    } else if (newerListRevokes(result.list, presented, device)) {
      this.revoked = true
      this.ctx.stats.count('ERR_DEVICE_REVOKED')
      this.sendError(0, clientError('ERR_DEVICE_REVOKED', 'a newer device list no longer holds this device'), this.format)
      this.close(CLOSE_POLICY_VIOLATION, 'device revoked')
    }
    this.releaseRevocationWaiters()
    this.attach()
  }

  private releaseRevocationWaiters (): void {
    for (const w of [...this.revocationWaiters]) w()
  }

  /** Resolves once the revocation check has passed; rejects when it revoked the device, the connection closed or `signal` fired. */
  private async revocationChecked (signal: AbortSignal): Promise<void> {
    if (this.cancelRevocationCheck !== undefined && !signal.aborted) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          this.revocationWaiters.delete(done)
          signal.removeEventListener('abort', done)
          resolve()
        }
        this.revocationWaiters.add(done)
        signal.addEventListener('abort', done, { once: true })
      })
    }
    // the answer to a revoked device goes nowhere: its socket is closing
    if (this.revoked || this.closed) throw clientError('ERR_UNAVAILABLE', 'the connection is closing')
    signal.throwIfAborted()
  }

  /**
   * Attaches the sinks once the auth response went out, so the response precedes any push, and
   * the revocation check passed, so a revoked device receives nothing.
   */
  private attach (): void {
    const device = this.device
    if (device === undefined || this.closed || this.detach !== undefined) return
    if (!this.authAnswered || this.cancelRevocationCheck !== undefined || this.revoked) return
    try {
      this.detach = this.ctx.delivery.attach(device, this.sink)
      if (this.groupDevice !== undefined) this.detachGroups = this.ctx.groups?.attach(this.groupDevice, this.groupSink)
    } catch (err) {
      this.log.error({ err }, 'delivery attach failed')
      this.sendError(0, clientError('ERR_INTERNAL', 'internal error'), this.format)
      this.close(CLOSE_GOING_AWAY, 'internal error')
    }
  }

  /** Why a record may not be published on this connection, or undefined when it may. */
  private recordProblem (bytes: Uint8Array, device: DeviceRef): string | undefined {
    try {
      const head = decodeRecord(bytes)
      const r = validateRecord(recordKey(head.kind, head.id), bytes, { crypto: this.ctx.crypto })
      switch (r.kind) {
        case 'location':
        case 'prekeys':
          return r.id === device.device ? undefined : `a ${r.kind} record must be about the authenticated device`
        case 'devices':
        case 'profile':
          return r.id === device.user ? undefined : `a ${r.kind} record must be about the authenticated user`
        default:
          return `${r.kind} records are not published through the client gateway`
      }
    } catch (err) {
      return explain(err)
    }
  }

  private async publish (req: ClientOps['publish']['req'], signal: AbortSignal): Promise<ClientOps['publish']['res']> {
    const device = this.device!
    const failures: ClientOps['publish']['res']['failures'] = []
    const valid: Uint8Array[] = []
    const validIndex: number[] = []
    req.records.forEach((bytes, i) => {
      const problem = this.recordProblem(bytes, device)
      if (problem === undefined) {
        valid.push(bytes)
        validIndex.push(i)
      } else {
        failures.push({ index: i, code: 'ERR_INVALID_RECORD', message: problem })
      }
    })
    let keep: Uint8Array[] | undefined
    if (req.onDisconnect !== undefined) {
      if (req.onDisconnect.length > this.ctx.config.maxOnDisconnectRecords) {
        throw clientError('ERR_BAD_REQUEST', `at most ${this.ctx.config.maxOnDisconnectRecords} onDisconnect records`)
      }
      keep = []
      req.onDisconnect.forEach((bytes, j) => {
        const problem = this.recordProblem(bytes, device)
        // onDisconnect records are numbered after the records, in one index space
        if (problem === undefined) keep!.push(bytes)
        else failures.push({ index: req.records.length + j, code: 'ERR_INVALID_RECORD', message: problem })
      })
    }
    if ([...valid, ...(keep ?? [])].some((bytes) => decodeRecord(bytes).kind === 'devices')) {
      // the directory caches what is published here, and the revocation check may read that
      // cache: a device list waits until the check is done, or a revoked device could plant its
      // older, still validly signed list there and pass
      await this.revocationChecked(signal)
    }
    let stored = 0
    if (valid.length > 0) {
      const result = await this.ctx.directory.publish(valid, { signal })
      stored = result.stored
      for (const f of result.failures) failures.push({ index: validIndex[f.index] ?? f.index, code: f.code, message: f.message.slice(0, MAX_CLIENT_ERROR_MESSAGE_LENGTH) })
    }
    if (keep !== undefined) this.onDisconnect = keep
    failures.sort((a, b) => a.index - b.index)
    return { stored, failures }
  }

  private async sendEnvelopes (req: ClientOps['send']['req'], signal: AbortSignal): Promise<ClientOps['send']['res']> {
    const device = this.device!
    if (req.envelopes.length > this.ctx.config.maxEnvelopesPerSend) {
      throw clientError('ERR_TOO_MANY_ENVELOPES', `at most ${this.ctx.config.maxEnvelopesPerSend} envelopes per send`)
    }
    const submitted: SubmittedEnvelope[] = req.envelopes.map((bytes, i) => {
      let envelope
      try {
        envelope = decodeEnvelope(bytes)
      } catch (err) {
        throw clientError('ERR_INVALID_ENVELOPE', `envelope ${i}: ${explain(err)}`)
      }
      if (envelope.from.user !== device.user || envelope.from.device !== device.device) {
        throw clientError('ERR_NOT_SENDER', `envelope ${i} is not from the authenticated device`)
      }
      return { envelope, bytes }
    })
    if (submitted.length === 0) return { accepted: [] }
    return { accepted: await this.ctx.delivery.submit(device, submitted, { signal }) }
  }

  private async ack (req: ClientOps['ack']['req'], signal: AbortSignal): Promise<ClientOps['ack']['res']> {
    const device = this.device!
    try {
      return { removed: await this.ctx.delivery.ack(device, req.ids, { signal }) }
    } finally {
      // the client has these envelopes either way: they leave the window, so pushing resumes
      for (const id of req.ids) this.unacked.delete(id)
      if (this.windowFull && this.unacked.size < this.ctx.config.maxUnackedPushes) {
        this.windowFull = false
        this.maybeDrain()
      }
    }
  }

  // ---- close --------------------------------------------------------------------------------

  private onClose (): void {
    if (this.closed) return
    this.closed = true
    clearTimeout(this.authTimer)
    this.cancelRevocationCheck?.()
    this.cancelRevocationCheck = undefined
    this.releaseRevocationWaiters()
    for (const request of this.requests ?? []) request.abort()
    try {
      this.detach?.()
    } catch (err) {
      this.log.error({ err }, 'delivery detach failed')
    }
    try {
      this.detachGroups?.()
    } catch (err) {
      this.log.error({ err }, 'groups detach failed')
    }
    this.userBucket?.release()
    if (this.device !== undefined && !this.revoked && this.onDisconnect.length > 0) this.ctx.publishOnDisconnect(this.onDisconnect)
    this.ctx.connectionClosed(this)
  }
}
