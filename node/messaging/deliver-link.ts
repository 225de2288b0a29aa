/**
 * The `/talaria/deliver/1.0.0` protocol. The sender keeps one long-lived stream per peer and
 * pipelines batches on it (bounded in flight); the receiver handles batches in order and acks
 * each only once its envelopes are durable, with one result per envelope.
 */
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import type { Logger } from 'pino'
import { TalariaError } from '../../protocol/errors.js'
import { timeoutSignal } from '../abort.js'
import { DEFAULT_PARTIAL_FRAME_TIMEOUT_MS, readFrames, writeFrame } from './streams.js'
import { decodeDeliverFrame, DELIVER_PROTOCOL, encodeDeliverFrame, MAX_ENVELOPES_PER_FRAME, type DeliverResult } from './wire.js'

/** Batches in flight (sent, not yet acked) per peer stream. */
export const DEFAULT_MAX_IN_FLIGHT_BATCHES = 16
/** Deadline of one batch, from send to ack, in milliseconds. */
export const DEFAULT_BATCH_TIMEOUT_MS = 15_000
/** Deadline of opening a deliver stream (dial included), in milliseconds. */
export const DEFAULT_DELIVER_DIAL_TIMEOUT_MS = 10_000
/** Inbound deliver streams per connection at once (one is the norm). */
export const MAX_INBOUND_DELIVER_STREAMS = 8

/** What the deliver client uses from libp2p. */
export interface DeliverLinkComponents {
  dialProtocol: (peer: PeerId, protocol: string, opts: { signal: AbortSignal }) => Promise<Stream>
  logger: Logger
  shutdown: AbortSignal
}

/** Options of the deliver client. */
export interface DeliverLinkInit {
  maxInFlightBatches?: number
  batchTimeoutMs?: number
  dialTimeoutMs?: number
}

interface Pending {
  count: number
  resolve: (results: DeliverResult[]) => void
  reject: (err: unknown) => void
  timer: ReturnType<typeof setTimeout>
}

/** One peer's stream and the batches in flight on it. */
class PeerLink {
  private stream: Promise<Stream> | undefined
  private nextId = 1
  private readonly pending = new Map<number, Pending>()
  private readonly waiters: Array<() => void> = []

  constructor (private readonly peer: PeerId, private readonly components: DeliverLinkComponents, private readonly init: Required<DeliverLinkInit>) {}

  get idle (): boolean {
    return this.pending.size === 0
  }

  private async open (): Promise<Stream> {
    this.stream ??= (async () => {
      const signal = timeoutSignal(this.init.dialTimeoutMs, this.components.shutdown)
      try {
        const stream = await this.components.dialProtocol(this.peer, DELIVER_PROTOCOL, { signal })
        void this.readAcks(stream)
        return stream
      } finally {
        signal.clear()
      }
    })()
    try {
      return await this.stream
    } catch (err) {
      this.stream = undefined
      throw err
    }
  }

  private async readAcks (stream: Stream): Promise<void> {
    let failure: unknown = new TalariaError('ERR_UNAVAILABLE', 'deliver stream closed')
    try {
      for await (const body of readFrames(stream)) {
        const f = decodeDeliverFrame(body)
        const p = this.pending.get(f.id)
        if (f.t !== 'ack' || p === undefined || f.results.length !== p.count) throw new TalariaError('ERR_BAD_FRAME', 'unexpected deliver ack')
        this.pending.delete(f.id)
        clearTimeout(p.timer)
        p.resolve(f.results)
        this.waiters.shift()?.()
      }
    } catch (err) {
      failure = err
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    }
    this.fail(stream, failure)
  }

  /** Rejects everything in flight on `stream` and forgets it, so the next send opens a new one. */
  private fail (stream: Stream | undefined, err: unknown): void {
    void this.stream?.then((s) => {
      if (stream === undefined || s === stream) this.stream = undefined
    }, () => {})
    if (stream !== undefined && stream.status === 'open') stream.abort(err instanceof Error ? err : new Error(String(err)))
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer)
      p.reject(err)
      this.pending.delete(id)
    }
    for (const w of this.waiters.splice(0)) w()
  }

  async send (envelopes: Uint8Array[]): Promise<DeliverResult[]> {
    if (envelopes.length === 0) return []
    if (envelopes.length > MAX_ENVELOPES_PER_FRAME) throw new TalariaError('ERR_BAD_REQUEST', 'too many envelopes for one batch')
    // bounded in flight: wait for an ack (or a failure) to free a slot
    let guard = 0
    while (this.pending.size >= this.init.maxInFlightBatches && guard++ < 1000) {
      await new Promise<void>((resolve) => this.waiters.push(resolve))
    }
    const stream = await this.open()
    const id = this.nextId++
    return await new Promise<DeliverResult[]>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.fail(stream, new TalariaError('ERR_TIMEOUT', 'deliver batch not acked in time'))
      }, this.init.batchTimeoutMs)
      this.pending.set(id, { count: envelopes.length, resolve, reject, timer })
      writeFrame(stream, encodeDeliverFrame({ t: 'batch', id, envelopes }), { signal: this.components.shutdown }).catch((err: unknown) => {
        this.fail(stream, err)
      })
    })
  }

  close (): void {
    this.fail(undefined, new TalariaError('ERR_UNAVAILABLE', 'deliver client stopped'))
    void this.stream?.then(async (s) => { await s.close().catch(() => {}) }, () => {})
  }
}

/** The sending side: one reused, pipelined stream per peer. */
export class DeliverClient {
  private readonly links = new Map<string, PeerLink>()
  private readonly init: Required<DeliverLinkInit>

  constructor (private readonly components: DeliverLinkComponents, init: DeliverLinkInit = {}) {
    this.init = {
      maxInFlightBatches: init.maxInFlightBatches ?? DEFAULT_MAX_IN_FLIGHT_BATCHES,
      batchTimeoutMs: init.batchTimeoutMs ?? DEFAULT_BATCH_TIMEOUT_MS,
      dialTimeoutMs: init.dialTimeoutMs ?? DEFAULT_DELIVER_DIAL_TIMEOUT_MS
    }
  }

  /** Sends a batch to `peer`; resolves with one result per envelope once the peer acked it. */
  async send (peer: PeerId, envelopes: Uint8Array[]): Promise<DeliverResult[]> {
    const key = peer.toString()
    let link = this.links.get(key)
    if (link === undefined) {
      link = new PeerLink(peer, this.components, this.init)
      this.links.set(key, link)
    }
    return await link.send(envelopes)
  }

  /** Closes every stream and rejects what is in flight. */
  stop (): void {
    for (const link of this.links.values()) link.close()
    this.links.clear()
  }
}

/** Handles batches from one peer; resolves with one result per envelope once they are durable. */
export type BatchHandler = (envelopes: Uint8Array[], from: PeerId) => Promise<DeliverResult[]>

/**
 * The receiving side: a handler for inbound deliver streams. Batches are handled one at a time,
 * in order; a bad frame aborts this stream only.
 */
export function deliverStreamHandler (onBatch: BatchHandler, components: { logger: Logger, shutdown: AbortSignal }) {
  return async (stream: Stream, connection: Connection): Promise<void> => {
    const from = connection.remotePeer
    try {
      for await (const body of readFrames(stream, undefined, DEFAULT_PARTIAL_FRAME_TIMEOUT_MS)) {
        const f = decodeDeliverFrame(body)
        if (f.t !== 'batch') throw new TalariaError('ERR_BAD_FRAME', 'only batches travel this way')
        const results = await onBatch(f.envelopes, from)
        await writeFrame(stream, encodeDeliverFrame({ t: 'ack', id: f.id, results }), { signal: components.shutdown })
      }
      await stream.close().catch(() => {})
    } catch (err) {
      components.logger.debug({ err, peer: from.toString() }, 'deliver stream closed on bad input or failure')
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    }
  }
}
