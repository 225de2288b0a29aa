/**
 * One WebSocket connection to a node: waits for the challenge, then carries requests (with ids and
 * timeouts) and events. It knows nothing of identities or messages; the client builds on it and
 * replaces it on reconnect.
 */
import {
  CLIENT_PROTOCOL_VERSION, ClientProtocolError, MAX_REQUEST_ID, decodeFrame, encodeFrame, parseResponseBody,
  type ChallengeFrame, type ClientOp, type ClientOps, type EventFrame
} from '../protocol/client-protocol.js'
import { ClientError, abortError } from './errors.js'

/** Largest frame this client reads, in bytes (an envelope is at most 256 KiB). */
export const DEFAULT_MAX_INCOMING_FRAME_BYTES = 1024 * 1024
/** How long to wait for the socket to open and the challenge to arrive, in milliseconds. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000
/** How long a request may wait for its response, in milliseconds. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 15_000
/** Requests in flight on one connection; more wait for a free slot. */
export const DEFAULT_MAX_IN_FLIGHT = 32

/** The part of the WebSocket API the client uses: the browser's class and `ws`'s both fit. */
export interface WebSocketLike {
  binaryType: string
  readonly readyState: number
  send(data: Uint8Array): void
  close(code?: number, reason?: string): void
  addEventListener(type: 'open' | 'message' | 'close' | 'error', listener: (event: { data?: unknown, code?: number, reason?: string }) => void): void
}

/** A WebSocket constructor: `globalThis.WebSocket` in browsers, `ws`'s `WebSocket` in Node. */
export type WebSocketConstructor = new (url: string) => WebSocketLike

/** Options of {@link openConnection}. */
export interface ConnectionInit {
  url: string
  WebSocket: WebSocketConstructor
  connectTimeoutMs?: number
  requestTimeoutMs?: number
  maxIncomingFrameBytes?: number
  maxInFlight?: number
  /** Called for every event frame. */
  onEvent: (frame: EventFrame) => void
  /** Called once when the connection is gone, whoever closed it. */
  onClose: (reason: string) => void
  signal?: AbortSignal
}

interface Pending {
  op: ClientOp
  resolve: (body: unknown) => void
  reject: (err: Error) => void
  timer: ReturnType<typeof setTimeout>
}

const OPEN = 1

function toBytes (data: unknown): Uint8Array | string | undefined {
  if (typeof data === 'string') return data
  if (data instanceof ArrayBuffer) return new Uint8Array(data)
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
  return undefined
}

/** An open, challenged connection. */
export class Connection {
  /** The node's challenge (nonce, peer id, addrs, limits). */
  readonly challenge: ChallengeFrame
  private readonly ws: WebSocketLike
  private readonly init: ConnectionInit
  private readonly pending = new Map<number, Pending>()
  private readonly waiting: Array<() => void> = []
  private nextId = 1
  private closed = false
  /** A mirror of the node's per-connection request bucket (its burst is not announced: one second's worth is assumed). */
  private tokens: number
  private refilledAt = performance.now()

  private constructor (ws: WebSocketLike, challenge: ChallengeFrame, init: ConnectionInit) {
    this.ws = ws
    this.challenge = challenge
    this.init = init
    this.tokens = Math.max(1, challenge.limits.maxRequestsPerSecond)
  }

  private refill (): void {
    const rate = Math.max(1, this.challenge.limits.maxRequestsPerSecond)
    const now = performance.now()
    this.tokens = Math.min(rate, this.tokens + (now - this.refilledAt) * rate / 1000)
    this.refilledAt = now
  }

  /**
   * Milliseconds until the node's per-connection rate limit admits another request, 0 for now.
   * Callers that can gather work (sends, acks) wait this long instead of drawing an
   * ERR_RATE_LIMITED answer, whose retry costs a round trip plus the node's hint.
   */
  rateWait (): number {
    this.refill()
    if (this.tokens >= 1) return 0
    return Math.max(1, Math.ceil((1 - this.tokens) * 1000 / Math.max(1, this.challenge.limits.maxRequestsPerSecond)))
  }

  /** True until the socket closed. */
  get open (): boolean {
    return !this.closed
  }

  /**
   * Opens a socket and waits for the challenge. Rejects with ERR_TIMEOUT, ERR_PROTOCOL (another
   * protocol version or an unreadable first frame), ERR_DISCONNECTED or ERR_ABORTED.
   */
  static async open (init: ConnectionInit): Promise<Connection> {
    const maxBytes = init.maxIncomingFrameBytes ?? DEFAULT_MAX_INCOMING_FRAME_BYTES
    const ws = new init.WebSocket(init.url)
    ws.binaryType = 'arraybuffer'
    return await new Promise<Connection>((resolve, reject) => {
      let conn: Connection | undefined
      let settled = false
      const fail = (err: Error): void => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        init.signal?.removeEventListener('abort', onAbort)
        try { ws.close() } catch { /* already closing */ }
        reject(err)
      }
      const onAbort = (): void => { fail(abortError(init.signal!)) }
      const timer = setTimeout(() => { fail(new ClientError('ERR_TIMEOUT', `no challenge from ${init.url} within ${init.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS} ms`)) }, init.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS)
      if (init.signal?.aborted === true) { onAbort(); return }
      init.signal?.addEventListener('abort', onAbort, { once: true })
      ws.addEventListener('message', (event) => {
        const data = toBytes(event.data)
        if (conn !== undefined) { conn.onData(data, maxBytes); return }
        if (settled) return
        try {
          if (data === undefined) throw new ClientError('ERR_PROTOCOL', 'unreadable frame')
          const frame = decodeFrame(data, { maxBytes })
          if (frame.t !== 'challenge') throw new ClientError('ERR_PROTOCOL', `expected a challenge, got ${frame.t}`)
          if (frame.v !== CLIENT_PROTOCOL_VERSION) throw new ClientError('ERR_PROTOCOL', `node speaks client protocol v${frame.v}, this client v${CLIENT_PROTOCOL_VERSION}`)
          conn = new Connection(ws, frame, init)
          settled = true
          clearTimeout(timer)
          init.signal?.removeEventListener('abort', onAbort)
          resolve(conn)
        } catch (err) {
          fail(err instanceof ClientError ? err : new ClientError('ERR_PROTOCOL', 'bad challenge', { cause: err }))
        }
      })
      ws.addEventListener('close', (event) => {
        const reason = `closed (${event.code ?? 0}${event.reason !== undefined && event.reason !== '' ? ` ${event.reason}` : ''})`
        if (conn !== undefined) conn.onSocketClosed(reason)
        else fail(new ClientError('ERR_DISCONNECTED', `connection to ${init.url} ${reason}`))
      })
      ws.addEventListener('error', () => {
        // 'close' follows 'error'; before the challenge, fail now with a clearer message
        if (conn === undefined) fail(new ClientError('ERR_DISCONNECTED', `cannot connect to ${init.url}`))
      })
    })
  }

  private onData (data: Uint8Array | string | undefined, maxBytes: number): void {
    if (data === undefined) return
    let frame
    try {
      frame = decodeFrame(data, { maxBytes })
    } catch {
      // a frame this client cannot read says the node is broken or hostile: drop the connection,
      // the client reconnects (possibly elsewhere) instead of guessing
      this.close('unreadable frame')
      return
    }
    if (frame.t === 'evt') {
      this.init.onEvent(frame)
      return
    }
    if (frame.t !== 'res') return
    const p = this.pending.get(frame.id)
    if (p === undefined) return
    this.pending.delete(frame.id)
    clearTimeout(p.timer)
    this.release()
    if (!frame.ok) {
      const opts: { requestId: number, retryAfterMs?: number } = { requestId: frame.id }
      if (frame.error.retryAfterMs !== undefined) opts.retryAfterMs = frame.error.retryAfterMs
      p.reject(new ClientProtocolError(frame.error.code, frame.error.message, opts))
      return
    }
    try {
      p.resolve(parseResponseBody(p.op, frame.body, frame.id))
    } catch (err) {
      p.reject(err as Error)
    }
  }

  private onSocketClosed (reason: string): void {
    if (this.closed) return
    this.closed = true
    const err = new ClientError('ERR_DISCONNECTED', `connection ${reason}`)
    for (const p of this.pending.values()) {
      clearTimeout(p.timer)
      p.reject(err)
    }
    this.pending.clear()
    for (const w of this.waiting.splice(0)) w()
    this.init.onClose(reason)
  }

  private release (): void {
    this.waiting.shift()?.()
  }

  /**
   * Sends a request and resolves with the validated response body. Rejects with the node's error
   * (ClientProtocolError with its code), ERR_TIMEOUT, ERR_DISCONNECTED or ERR_ABORTED.
   */
  async request<Op extends ClientOp> (op: Op, body: ClientOps[Op]['req'], opts: { timeoutMs?: number, signal?: AbortSignal } = {}): Promise<ClientOps[Op]['res']> {
    const maxInFlight = this.init.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT
    while (!this.closed && this.pending.size >= maxInFlight) {
      await new Promise<void>((resolve) => { this.waiting.push(resolve) })
    }
    if (this.closed || this.ws.readyState !== OPEN) throw new ClientError('ERR_DISCONNECTED', 'not connected')
    if (opts.signal?.aborted === true) throw abortError(opts.signal)
    this.refill()
    this.tokens = Math.max(0, this.tokens - 1)
    const id = this.nextId
    this.nextId = this.nextId >= MAX_REQUEST_ID ? 1 : this.nextId + 1
    const timeoutMs = opts.timeoutMs ?? this.init.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS
    return await new Promise((resolve, reject) => {
      const onAbort = (): void => {
        if (this.pending.delete(id)) { clearTimeout(timer); this.release() }
        reject(abortError(opts.signal!))
      }
      const timer = setTimeout(() => {
        if (this.pending.delete(id)) this.release()
        opts.signal?.removeEventListener('abort', onAbort)
        reject(new ClientError('ERR_TIMEOUT', `${op} got no response within ${timeoutMs} ms`))
      }, timeoutMs)
      this.pending.set(id, {
        op,
        resolve: (b) => { opts.signal?.removeEventListener('abort', onAbort); resolve(b as ClientOps[Op]['res']) },
        reject: (e) => { opts.signal?.removeEventListener('abort', onAbort); reject(e) },
        timer
      })
      opts.signal?.addEventListener('abort', onAbort, { once: true })
      try {
        this.ws.send(encodeFrame({ t: 'req', id, op, body } as never, 'binary') as Uint8Array)
      } catch (err) {
        this.pending.delete(id)
        clearTimeout(timer)
        this.release()
        reject(new ClientError('ERR_DISCONNECTED', 'send failed', { cause: err }))
      }
    })
  }

  /** Closes the socket; pending requests fail with ERR_DISCONNECTED. */
  close (reason = 'closed by client'): void {
    try { this.ws.close(1000, reason.slice(0, 100)) } catch { /* already closed */ }
    this.onSocketClosed(reason)
  }
}
