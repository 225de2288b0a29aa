/**
 * The client gateway: the WebSocket at `/v1` through which clients authenticate as a device,
 * publish their records, look up other users, send envelopes and receive pushed ones.
 *
 * It depends only on the HTTP server's upgrade hook and the delivery, directory and groups
 * contracts (node/messaging/contracts.ts, node/groups/contracts.ts), so it is built and tested
 * without libp2p or storage.
 */
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Logger } from 'pino'
import { WebSocketServer } from 'ws'
import { CLIENT_PATH, ClientProtocolError, encodeFrame, type ClientLimits, type FrameFormat } from '../../protocol/client-protocol.js'
import { defaultCrypto } from '../../protocol/crypto/index.js'
import { timeoutSignal } from '../abort.js'
import type { UpgradeHandler } from '../http.js'
import type { GroupService } from '../groups/contracts.js'
import type { DeliveryService } from '../messaging/contracts.js'
import { ClientConnection, CLOSE_GOING_AWAY, CLOSE_POLICY_VIOLATION, ConnectionLog, GatewaySocket, type ConnectionContext, type UserBucketLease } from './connection.js'
import { resolveGatewayConfig, type ClientGatewayConfig, type ClientGatewayInit } from './options.js'
import { RevocationChecker, type GatewayDirectory } from './revocation.js'
import { GatewayStats, type ClientGatewayStats } from './stats.js'
import { TokenBucket } from './token-bucket.js'

/** What the gateway uses from the node. */
export interface ClientGatewayComponents {
  /** The node's HTTP server (DefaultHttpServer), where the gateway attaches at `/v1`. */
  http: { onUpgrade(path: string, handler: UpgradeHandler): () => void }
  delivery: DeliveryService
  /** Users' device lists and records; with `cachedDeviceList`, auth answers from its cache when it can. */
  directory: GatewayDirectory
  /** Groups and rooms; without it the group operations answer ERR_UNKNOWN_OP. */
  groups?: GroupService
  /** The node's libp2p peer id, bound into every auth signature. */
  peerId: string
  /** The node's multiaddrs, announced in the challenge for the clients' location records. */
  getMultiaddrs(): string[]
  logger: Logger
}

/** The client gateway service. */
export interface ClientGateway {
  /** Attaches to the HTTP server and starts the keepalive. */
  start(opts?: { signal?: AbortSignal }): Promise<void>
  /** Detaches, closes every connection and waits for their onDisconnect publishes (bounded). */
  stop(opts?: { signal?: AbortSignal }): Promise<void>
  /** Open client connections. */
  connectionCount(): number
  /** Counters since start. */
  stats(): ClientGatewayStats
}

function refuseUpgrade (socket: Duplex, status: string): void {
  socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`)
}

/** The default client gateway. */
export class DefaultClientGateway implements ClientGateway {
  private readonly config: ClientGatewayConfig
  private readonly components: ClientGatewayComponents
  private readonly log: Logger
  private readonly limits: ClientLimits
  private readonly connections = new Set<ClientConnection>()
  private readonly perIp = new Map<string, number>()
  private readonly userBuckets = new Map<string, { bucket: TokenBucket, refs: number }>()
  private readonly pendingPublishes = new Set<Promise<void>>()
  private readonly statsCounters = new GatewayStats()
  private readonly closedWaiters = new Set<() => void>()
  private readonly revocation: RevocationChecker
  private wss: WebSocketServer | undefined
  private unregister: (() => void) | undefined
  private keepaliveTimer: ReturnType<typeof setInterval> | undefined
  private shutdown = new AbortController()
  private nextConnectionId = 1
  /** What every connection needs from the gateway: one object, shared. */
  private readonly connectionContext: ConnectionContext
  private readonly onUpgradeSocketError = (err: Error): void => { this.log.debug({ err }, 'client socket error during upgrade') }

  constructor (init: ClientGatewayInit, components: ClientGatewayComponents) {
    this.config = resolveGatewayConfig(init)
    this.components = components
    this.log = components.logger.child({ component: 'gateway' })
    this.limits = {
      maxFrameBytes: this.config.maxFrameBytes,
      maxRequestsPerSecond: this.config.maxRequestsPerSecond,
      maxUserRequestsPerSecond: this.config.maxUserRequestsPerSecond,
      maxEnvelopesPerSend: this.config.maxEnvelopesPerSend,
      maxUnackedPushes: this.config.maxUnackedPushes
    }
    this.revocation = new RevocationChecker(components.directory, {
      concurrency: this.config.maxRevocationChecks,
      timeoutMs: this.config.revocationCheckTimeoutMs,
      logger: this.log
    })
    this.connectionContext = {
      config: this.config,
      crypto: this.config.crypto ?? defaultCrypto,
      delivery: components.delivery,
      directory: components.directory,
      revocation: this.revocation,
      ...(components.groups !== undefined ? { groups: components.groups } : {}),
      peerId: components.peerId,
      getMultiaddrs: () => components.getMultiaddrs(),
      stats: this.statsCounters,
      limits: this.limits,
      acquireUserBucket: (user) => this.acquireUserBucket(user),
      publishOnDisconnect: (records) => { this.publishOnDisconnect(records) },
      connectionClosed: (conn) => { this.connectionClosed(conn) }
    }
  }

  async start (_opts: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.wss !== undefined) return
    this.shutdown = new AbortController()
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: this.config.maxFrameBytes,
      WebSocket: GatewaySocket,
      // compression would let a small frame inflate past the limits and costs CPU per message
      perMessageDeflate: false,
      clientTracking: false
    })
    this.unregister = this.components.http.onUpgrade(CLIENT_PATH, (req, socket, head) => { this.upgrade(req, socket, head) })
    this.keepaliveTimer = setInterval(() => { this.keepalive() }, this.config.pingIntervalMs)
    this.keepaliveTimer.unref()
    this.log.info({ path: CLIENT_PATH, limits: this.limits }, 'client gateway started')
  }

  async stop (opts: { signal?: AbortSignal } = {}): Promise<void> {
    const wss = this.wss
    if (wss === undefined) return
    this.wss = undefined
    this.unregister?.()
    this.unregister = undefined
    clearInterval(this.keepaliveTimer)
    for (const c of this.connections) c.close(CLOSE_GOING_AWAY, 'node stopping')
    await this.waitUntil(() => this.connections.size === 0, this.config.stopGraceMs, opts.signal)
    for (const c of this.connections) c.terminate()
    await this.waitUntil(() => this.connections.size === 0, this.config.stopGraceMs, opts.signal)
    // closed connections cancelled theirs; this ends any left by connections still closing
    this.revocation.stop()
    // onDisconnect publishes have their own deadline; the shutdown signal cuts them short on abort
    const onAbort = (): void => { this.shutdown.abort() }
    opts.signal?.addEventListener('abort', onAbort, { once: true })
    try {
      await Promise.allSettled([...this.pendingPublishes])
    } finally {
      opts.signal?.removeEventListener('abort', onAbort)
    }
    wss.close()
    this.log.info('client gateway stopped')
  }

  connectionCount (): number {
    return this.connections.size
  }

  stats (): ClientGatewayStats {
    let authenticated = 0
    for (const c of this.connections) if (c.authenticated !== undefined) authenticated++
    return this.statsCounters.snapshot(this.connections.size, authenticated)
  }

  private async waitUntil (done: () => boolean, ms: number, signal?: AbortSignal): Promise<void> {
    if (done()) return
    await new Promise<void>((resolve) => {
      const finish = (): void => {
        clearTimeout(timer)
        this.closedWaiters.delete(check)
        signal?.removeEventListener('abort', finish)
        resolve()
      }
      const check = (): void => { if (done()) finish() }
      const timer = setTimeout(finish, ms)
      this.closedWaiters.add(check)
      signal?.addEventListener('abort', finish, { once: true })
    })
  }

  private keepalive (): void {
    const now = Date.now()
    for (const c of this.connections) {
      try {
        c.keepalive(now)
      } catch (err) {
        // a timer callback that throws would take the process down
        this.log.error({ err }, 'keepalive failed')
        c.terminate()
      }
    }
  }

  private upgrade (req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const wss = this.wss
    const url = new URL(req.url ?? '/', 'http://localhost')
    if (url.pathname !== CLIENT_PATH) { refuseUpgrade(socket, '404 Not Found'); return }
    if (wss === undefined) { refuseUpgrade(socket, '503 Service Unavailable'); return }
    const format: FrameFormat = url.searchParams.get('format') === 'json' ? 'text' : 'binary'
    // one shared listener: a closure made here would share this scope, and so keep `req` (its
    // headers and strings, ~1.5 KB) alive for as long as the socket lives
    socket.on('error', this.onUpgradeSocketError)
    wss.handleUpgrade(req, socket, head, (ws) => {
      try {
        this.accept(ws as GatewaySocket, req, format)
      } catch (err) {
        this.log.error({ err }, 'accepting a client connection failed')
        ws.terminate()
      }
    })
  }

  private accept (ws: GatewaySocket, req: IncomingMessage, format: FrameFormat): void {
    const ip = req.socket.remoteAddress ?? 'unknown'
    const fromIp = this.perIp.get(ip) ?? 0
    if (fromIp >= this.config.maxConnectionsPerIp || this.connections.size >= this.config.maxConnections) {
      this.statsCounters.refused++
      this.statsCounters.count('ERR_TOO_MANY_CONNECTIONS')
      ws.on('error', () => {})
      const error = new ClientProtocolError('ERR_TOO_MANY_CONNECTIONS', fromIp >= this.config.maxConnectionsPerIp ? 'too many connections from this address' : 'too many connections to this node')
      ws.send(encodeFrame({ t: 'res', id: 0, ok: false, error: error.toBody() }, format), { binary: format === 'binary' })
      ws.close(CLOSE_POLICY_VIOLATION, 'too many connections')
      return
    }
    this.perIp.set(ip, fromIp + 1)
    this.statsCounters.accepted++
    const id = this.nextConnectionId++
    const bucket = new TokenBucket(this.config.maxRequestsPerSecond, this.config.requestBurst)
    const conn = new ClientConnection(ws, this.connectionContext, format, new ConnectionLog(this.log, { conn: id, ip }), bucket, ip)
    this.connections.add(conn)
    conn.start()
  }

  private acquireUserBucket (user: string): UserBucketLease {
    let entry = this.userBuckets.get(user)
    if (entry === undefined) {
      entry = { bucket: new TokenBucket(this.config.maxUserRequestsPerSecond, this.config.userRequestBurst), refs: 0 }
      this.userBuckets.set(user, entry)
    }
    entry.refs++
    return new UserBucketRef(this.userBuckets, user, entry)
  }

  /** A connection's socket closed: it stops counting against its address and the node. */
  private connectionClosed (conn: ClientConnection): void {
    if (!this.connections.delete(conn)) return
    const left = (this.perIp.get(conn.ip) ?? 1) - 1
    if (left <= 0) this.perIp.delete(conn.ip)
    else this.perIp.set(conn.ip, left)
    for (const check of [...this.closedWaiters]) check()
  }

  private publishOnDisconnect (records: Uint8Array[]): void {
    const signal = timeoutSignal(this.config.disconnectPublishTimeoutMs, this.shutdown.signal)
    const task = this.components.directory.publish(records, { signal }).then((result) => {
      if (result.failures.length > 0) this.log.debug({ failures: result.failures }, 'onDisconnect records refused')
    }, (err: unknown) => {
      this.log.warn({ err }, 'onDisconnect publish failed')
    }).finally(signal.clear)
    this.pendingPublishes.add(task)
    void task.finally(() => { this.pendingPublishes.delete(task) })
  }
}

/** A reference on a user's shared request bucket; the last release removes the bucket. */
class UserBucketRef implements UserBucketLease {
  private released = false

  constructor (
    private readonly buckets: Map<string, { bucket: TokenBucket, refs: number }>,
    private readonly user: string,
    private readonly entry: { bucket: TokenBucket, refs: number }
  ) {}

  get bucket (): TokenBucket {
    return this.entry.bucket
  }

  release (): void {
    if (this.released) return
    this.released = true
    // the bucket lives while any connection of the user is open, so reconnecting cannot reset it
    if (--this.entry.refs === 0 && this.buckets.get(this.user) === this.entry) this.buckets.delete(this.user)
  }
}

/** Builds the client gateway; `start()` attaches it to the HTTP server. */
export function createClientGateway (init: ClientGatewayInit, components: ClientGatewayComponents): ClientGateway {
  return new DefaultClientGateway(init, components)
}
