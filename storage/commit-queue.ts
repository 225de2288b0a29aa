/**
 * Group commit. Every write to a shard goes through its commit queue: the writes that arrive while
 * a batch is being flushed are coalesced into the next single `batch(ops, { sync })`, so durability
 * costs one flush per batch, not one per write. A caller's promise settles only after the batch
 * holding its operations is durable ("an ack means durable"); a failed batch rejects every caller
 * in it. One caller's operations are never split across batches, so each write stays atomic.
 */
import type { KvEngine, KvOp } from './engine.js'
import { asStorageError, StorageError } from './errors.js'

/** Default wait after the first queued write before flushing; 0 flushes as soon as possible. */
export const DEFAULT_COMMIT_WINDOW_MS = 0
/** Default most operations in one flushed batch (a single larger write is flushed alone). */
export const DEFAULT_MAX_BATCH = 4096
/** Default most operations waiting in the queue before writers wait (backpressure). */
export const DEFAULT_MAX_PENDING = 65536

/** Options of {@link CommitQueue}. */
export interface CommitQueueInit {
  /** fsync every batch; default true. Off only for benchmarks and ephemeral data. */
  sync?: boolean
  /** Wait this long after the first write of an idle queue before flushing, to gather more. */
  commitWindowMs?: number
  /** Most operations per flushed batch. */
  maxBatch?: number
  /** Most operations queued and not yet taken into a batch; further writers wait. */
  maxPending?: number
}

/** Counters of a commit queue, for metrics and tests. */
export interface CommitQueueStats {
  /** Calls to `write` that were accepted. */
  writes: number
  /** Batches flushed successfully. */
  batches: number
  /** Operations flushed successfully. */
  ops: number
  /** Batches that failed (every caller in them was rejected). */
  failedBatches: number
  /** Operations queued and not yet taken into a batch. */
  pendingOps: number
}

interface Entry {
  ops: readonly KvOp[]
  resolve: () => void
  reject: (err: unknown) => void
}

/** The per-shard group-commit queue. */
export class CommitQueue {
  private readonly sync: boolean
  private readonly windowMs: number
  private readonly maxBatch: number
  private readonly maxPending: number
  private pending: Entry[] = []
  private pendingOps = 0
  private readonly waiters: Array<() => void> = []
  private running = false
  private closed = false
  private active = 0
  private readonly drained: Array<() => void> = []
  private readonly counters = { writes: 0, batches: 0, ops: 0, failedBatches: 0 }

  constructor (private readonly engine: KvEngine, init: CommitQueueInit = {}) {
    this.sync = init.sync ?? true
    this.windowMs = init.commitWindowMs ?? DEFAULT_COMMIT_WINDOW_MS
    this.maxBatch = Math.max(1, init.maxBatch ?? DEFAULT_MAX_BATCH)
    this.maxPending = Math.max(1, init.maxPending ?? DEFAULT_MAX_PENDING)
  }

  /**
   * Queues `ops` as one atomic unit and resolves once they are durable. When the queue already
   * holds `maxPending` operations the caller waits for room (backpressure) instead of failing.
   */
  async write (ops: readonly KvOp[]): Promise<void> {
    if (this.closed) throw new StorageError('ERR_CLOSED', 'storage is closed')
    if (ops.length === 0) return
    this.active++
    try {
      while (this.pendingOps > 0 && this.pendingOps + ops.length > this.maxPending) {
        await new Promise<void>((resolve) => { this.waiters.push(resolve) })
      }
      this.counters.writes++
      await new Promise<void>((resolve, reject) => {
        this.pending.push({ ops, resolve, reject })
        this.pendingOps += ops.length
        if (!this.running) {
          this.running = true
          void this.run()
        }
      })
    } finally {
      this.active--
      if (this.active === 0) for (const done of this.drained.splice(0)) done()
    }
  }

  private async run (): Promise<void> {
    // Yield once (or for the window) so that writes issued in the same burst join the first batch.
    if (this.windowMs > 0) await new Promise((resolve) => setTimeout(resolve, this.windowMs))
    else await Promise.resolve()
    while (this.pending.length > 0) {
      const taken: Entry[] = []
      let count = 0
      while (this.pending.length > 0) {
        const next = this.pending[0] as Entry
        if (taken.length > 0 && count + next.ops.length > this.maxBatch) break
        taken.push(next)
        count += next.ops.length
        this.pending.shift()
      }
      this.pendingOps -= count
      for (const wake of this.waiters.splice(0)) wake()
      const ops = taken.length === 1 ? (taken[0] as Entry).ops : taken.flatMap((e) => e.ops)
      try {
        await this.engine.batch(ops, { sync: this.sync })
        this.counters.batches++
        this.counters.ops += count
        for (const e of taken) e.resolve()
      } catch (err) {
        this.counters.failedBatches++
        const failure = asStorageError(err, 'batch write')
        for (const e of taken) e.reject(failure)
      }
    }
    this.running = false
  }

  /** Counters since creation. */
  stats (): CommitQueueStats {
    return { ...this.counters, pendingOps: this.pendingOps }
  }

  /**
   * Stops accepting writes and resolves once every accepted write has settled. Does not close the
   * engine. Idempotent.
   */
  async close (): Promise<void> {
    this.closed = true
    if (this.active === 0) return
    await new Promise<void>((resolve) => { this.drained.push(resolve) })
  }
}
