/**
 * The node's HTTP server: `GET /health`, `GET /status`, and an upgrade hook where the client
 * WebSocket gateway attaches at `/v1`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import type { Logger } from 'pino'
import { NodeError } from './errors.js'
import type { NodeState, NodeStatus } from './types.js'

/** Deadline for a client to send its request headers, in milliseconds. */
export const HTTP_HEADERS_TIMEOUT_MS = 10_000
/** Deadline for a whole request, in milliseconds. */
export const HTTP_REQUEST_TIMEOUT_MS = 15_000
/** Idle keep-alive connections are closed after this many milliseconds. */
export const HTTP_KEEP_ALIVE_TIMEOUT_MS = 5_000
/** Largest request header block accepted, in bytes. */
export const HTTP_MAX_HEADER_BYTES = 16 * 1024

/** Handles an HTTP upgrade request (a WebSocket handshake) for a path it registered. */
export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => void

/** Options of the HTTP server. */
export interface HttpServerInit {
  host: string
  /** 0 picks a free port. */
  port: number
}

/** What the HTTP server reads from the node. */
export interface HttpServerComponents {
  logger: Logger
  state(): NodeState
  status(): NodeStatus
}

function sendJson (res: ServerResponse, statusCode: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body)
  res.writeHead(statusCode, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers
  })
  res.end(res.req.method === 'HEAD' ? undefined : text)
}

function hasBody (req: IncomingMessage): boolean {
  const length = req.headers['content-length']
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')
}

/** The HTTP server of a node. Routes are fixed; gateways attach through {@link onUpgrade}. */
export class DefaultHttpServer {
  private readonly init: HttpServerInit
  private readonly components: HttpServerComponents
  private readonly upgradeHandlers = new Map<string, UpgradeHandler>()
  private server: Server | undefined
  private boundPort: number | undefined

  constructor (components: HttpServerComponents, init: HttpServerInit) {
    this.components = components
    this.init = init
  }

  /** The bound port; throws ERR_NOT_STARTED before start. */
  get port (): number {
    if (this.boundPort === undefined) throw new NodeError('ERR_NOT_STARTED', 'the HTTP server is not listening')
    return this.boundPort
  }

  /** `http://host:port`, with a wildcard bind address shown as loopback so the URL is usable. */
  get url (): string {
    const host = this.init.host === '0.0.0.0' || this.init.host === '' ? '127.0.0.1' : this.init.host === '::' ? '::1' : this.init.host
    return `http://${host.includes(':') ? `[${host}]` : host}:${this.port}`
  }

  /**
   * Routes upgrade requests whose path is `path` or below it to `handler`. Returns a function
   * that removes the route. Upgrades to any other path are refused with 404.
   */
  onUpgrade (path: string, handler: UpgradeHandler): () => void {
    this.upgradeHandlers.set(path, handler)
    return () => {
      if (this.upgradeHandlers.get(path) === handler) this.upgradeHandlers.delete(path)
    }
  }

  /** Binds the server; throws NodeError('ERR_HTTP_LISTEN') when the address is taken. */
  async start (opts: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.server !== undefined) return
    const server = createServer({ maxHeaderSize: HTTP_MAX_HEADER_BYTES }, (req, res) => { this.handle(req, res) })
    server.headersTimeout = HTTP_HEADERS_TIMEOUT_MS
    server.requestTimeout = HTTP_REQUEST_TIMEOUT_MS
    server.keepAliveTimeout = HTTP_KEEP_ALIVE_TIMEOUT_MS
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => { this.upgrade(req, socket, head) })
    server.on('clientError', (err, socket) => {
      this.components.logger.debug({ err }, 'bad HTTP request')
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n')
      else socket.destroy()
    })
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => {
        reject(new NodeError('ERR_HTTP_LISTEN', `cannot listen on ${this.init.host}:${this.init.port}: ${err.message}`, { cause: err }))
      }
      server.once('error', onError)
      server.listen({ host: this.init.host, port: this.init.port, ...(opts.signal !== undefined ? { signal: opts.signal } : {}) }, () => {
        server.off('error', onError)
        resolve()
      })
    })
    server.on('error', (err) => { this.components.logger.error({ err }, 'HTTP server error') })
    this.server = server
    this.boundPort = (server.address() as AddressInfo).port
    this.components.logger.info({ host: this.init.host, port: this.boundPort }, 'HTTP server listening')
  }

  /** Closes the listener and every open connection (idle keep-alives would hold close open). */
  async stop (): Promise<void> {
    const server = this.server
    if (server === undefined) return
    this.server = undefined
    this.boundPort = undefined
    await new Promise<void>((resolve) => {
      server.close(() => { resolve() })
      server.closeAllConnections()
    })
  }

  private handle (req: IncomingMessage, res: ServerResponse): void {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendJson(res, 405, { error: 'ERR_METHOD_NOT_ALLOWED', message: 'only GET and HEAD' }, { allow: 'GET, HEAD' })
      return
    }
    if (hasBody(req)) {
      // nothing here reads a body: refuse it rather than leave it unread on the connection
      sendJson(res, 400, { error: 'ERR_BODY_NOT_ACCEPTED', message: 'request bodies are not accepted' }, { connection: 'close' })
      return
    }
    switch (path) {
      case '/health': {
        const state = this.components.state()
        sendJson(res, state === 'started' ? 200 : 503, { status: state === 'started' ? 'ok' : state })
        return
      }
      case '/status':
        sendJson(res, 200, this.components.status())
        return
      default:
        sendJson(res, 404, { error: 'ERR_NOT_FOUND', message: `no route ${path}` })
    }
  }

  private upgrade (req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname
    for (const [prefix, handler] of this.upgradeHandlers) {
      if (path === prefix || path.startsWith(prefix + '/')) {
        handler(req, socket, head)
        return
      }
    }
    socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n')
  }
}
