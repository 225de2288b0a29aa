/**
 * In-order delivery per (sender device, conversation): envelopes carry a per-stream `seq`, the
 * buffer hands messages to the application in seq order, holds back those that arrive early, and
 * asks the sender to resend what is missing when a gap outlives a timeout.
 *
 * Pure state machine with injected timers and callbacks, so it is tested without a network.
 */

/** How long a gap may stay open before the sender is asked to resend, in milliseconds. */
export const DEFAULT_GAP_TIMEOUT_MS = 2000
/** Resend requests per gap before the buffer gives up and delivers what it holds. */
export const DEFAULT_GAP_MAX_REQUESTS = 3
/** Most messages held back per stream; beyond it the buffer gives up on the gap at once. */
export const DEFAULT_MAX_BUFFERED_PER_STREAM = 1000

/** A message waiting for its turn. */
export interface Sequenced {
  /** Stream key: sender device and conversation. */
  stream: string
  seq: number
  /** Where the stream starts, when the sender says so; used only for a stream not seen before. */
  base?: number
}

/** Timer functions (injectable for tests). */
export interface OrderingTimers {
  setTimeout(fn: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
}

/** Options of {@link OrderingBuffer}. */
export interface OrderingBufferInit<M extends Sequenced> {
  gapTimeoutMs?: number
  gapMaxRequests?: number
  maxBufferedPerStream?: number
  /** Hands one message to the application; called in seq order per stream. */
  deliver: (message: M) => void
  /** Asks the sender of `stream` to resend `fromSeq..toSeq`. */
  requestGap: (stream: string, fromSeq: number, toSeq: number, sample: M) => void
  /** A gap was abandoned: `fromSeq..toSeq` will not be waited for any more. */
  skipped?: (stream: string, fromSeq: number, toSeq: number) => void
  timers?: OrderingTimers
}

interface StreamState<M> {
  /** The next seq to deliver; undefined until the first message fixes the baseline. */
  next: number | undefined
  held: Map<number, M>
  timer: unknown
  requests: number
}

const defaultTimers: OrderingTimers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => { clearTimeout(h as ReturnType<typeof setTimeout>) }
}

/**
 * Per-stream ordering. An unknown stream starts at the sender's `base` when the message carries
 * one, else at its first message (a device added later starts mid-stream); a message below the
 * expected seq that was never delivered (it lost a race with that first message) is delivered at
 * once rather than dropped.
 */
export class OrderingBuffer<M extends Sequenced> {
  private readonly streams = new Map<string, StreamState<M>>()
  private readonly init: OrderingBufferInit<M>
  private readonly timers: OrderingTimers
  private readonly gapTimeoutMs: number
  private readonly gapMaxRequests: number
  private readonly maxBuffered: number

  constructor (init: OrderingBufferInit<M>) {
    this.init = init
    this.timers = init.timers ?? defaultTimers
    this.gapTimeoutMs = init.gapTimeoutMs ?? DEFAULT_GAP_TIMEOUT_MS
    this.gapMaxRequests = init.gapMaxRequests ?? DEFAULT_GAP_MAX_REQUESTS
    this.maxBuffered = init.maxBufferedPerStream ?? DEFAULT_MAX_BUFFERED_PER_STREAM
  }

  private state (stream: string): StreamState<M> {
    let s = this.streams.get(stream)
    if (s === undefined) {
      s = { next: undefined, held: new Map(), timer: undefined, requests: 0 }
      this.streams.set(stream, s)
    }
    return s
  }

  /** Restores a stream's position (the seq after the last one delivered), e.g. after a restart. */
  setNext (stream: string, next: number): void {
    const s = this.state(stream)
    if (s.next === undefined || next > s.next) s.next = next
  }

  /** The next seq expected on `stream`, or undefined when the stream is unknown. */
  nextSeq (stream: string): number | undefined {
    return this.streams.get(stream)?.next
  }

  /** Messages held back across all streams. */
  heldCount (): number {
    let n = 0
    for (const s of this.streams.values()) n += s.held.size
    return n
  }

  /** Offers a message (already deduplicated by the caller). */
  offer (m: M): void {
    const s = this.state(m.stream)
    if (s.next === undefined) s.next = m.base !== undefined && m.base <= m.seq ? m.base : m.seq
    if (m.seq < s.next) {
      this.init.deliver(m)
      return
    }
    if (m.seq > s.next) {
      if (s.held.has(m.seq)) return
      s.held.set(m.seq, m)
      if (s.held.size > this.maxBuffered) {
        this.giveUp(m.stream, s)
        return
      }
      this.arm(m.stream, s)
      return
    }
    this.init.deliver(m)
    s.next = m.seq + 1
    this.drain(m.stream, s)
  }

  private drain (stream: string, s: StreamState<M>): void {
    for (;;) {
      const m = s.next === undefined ? undefined : s.held.get(s.next)
      if (m === undefined) break
      s.held.delete(m.seq)
      this.init.deliver(m)
      s.next = m.seq + 1
    }
    if (s.held.size === 0) {
      this.disarm(s)
      s.requests = 0
    }
  }

  private arm (stream: string, s: StreamState<M>): void {
    if (s.timer !== undefined) return
    s.timer = this.timers.setTimeout(() => {
      s.timer = undefined
      this.onTimeout(stream, s)
    }, this.gapTimeoutMs)
  }

  private disarm (s: StreamState<M>): void {
    if (s.timer !== undefined) this.timers.clearTimeout(s.timer)
    s.timer = undefined
  }

  private lowestHeld (s: StreamState<M>): M | undefined {
    let low: M | undefined
    for (const m of s.held.values()) if (low === undefined || m.seq < low.seq) low = m
    return low
  }

  private onTimeout (stream: string, s: StreamState<M>): void {
    const low = this.lowestHeld(s)
    if (low === undefined || s.next === undefined) return
    if (s.requests >= this.gapMaxRequests) {
      this.giveUp(stream, s)
      return
    }
    s.requests++
    this.init.requestGap(stream, s.next, low.seq - 1, low)
    this.arm(stream, s)
  }

  /** Stops waiting for the current gap: skips to the lowest held message and delivers onwards. */
  private giveUp (stream: string, s: StreamState<M>): void {
    const low = this.lowestHeld(s)
    if (low === undefined || s.next === undefined) return
    this.disarm(s)
    this.init.skipped?.(stream, s.next, low.seq - 1)
    s.next = low.seq
    s.requests = 0
    this.drain(stream, s)
    if (s.held.size > 0) this.arm(stream, s)
  }

  /** Cancels every timer (the buffer may be dropped afterwards). */
  close (): void {
    for (const s of this.streams.values()) this.disarm(s)
  }
}
