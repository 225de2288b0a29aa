/**
 * A shard: one engine, its commit queue, and the size limits checked before anything is queued.
 */
import { CommitQueue } from './commit-queue.js'
import type { CommitQueueInit } from './commit-queue.js'
import type { KvEngine, KvOp } from './engine.js'
import { StorageError } from './errors.js'
import { concatBytes } from '../protocol/bytes.js'

/** Default largest full key (bucket prefix included), in bytes. */
export const DEFAULT_MAX_KEY_BYTES = 2048
/** Default largest stored value, in bytes. */
export const DEFAULT_MAX_VALUE_BYTES = 1024 * 1024

/** Options of {@link Shard}. */
export interface ShardInit extends CommitQueueInit {
  /** Largest full key accepted, in bytes. */
  maxKeyBytes?: number
  /** Largest value accepted, in bytes. */
  maxValueBytes?: number
}

/** One partition of the data: reads go to `engine`, writes through `write`. */
export class Shard {
  /** The group-commit queue every write of this shard goes through. */
  readonly queue: CommitQueue
  private readonly maxKeyBytes: number
  private readonly maxValueBytes: number
  private readonly views = new Map<number, KvEngine>()

  constructor (readonly index: number, readonly engine: KvEngine, init: ShardInit = {}) {
    this.queue = new CommitQueue(engine, init)
    this.maxKeyBytes = init.maxKeyBytes ?? DEFAULT_MAX_KEY_BYTES
    this.maxValueBytes = init.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES
  }

  /** A read view of one bucket of this shard (keys without the bucket byte). */
  bucket (bucket: number): KvEngine {
    let view = this.views.get(bucket)
    if (view === undefined) {
      view = this.engine.prefixed(Uint8Array.of(bucket))
      this.views.set(bucket, view)
    }
    return view
  }

  /**
   * Writes `ops` atomically and durably through the commit queue. Every key and value is checked
   * first: one oversized entry rejects the whole write with `ERR_TOO_LARGE` and nothing is written.
   */
  async write (ops: readonly KvOp[]): Promise<void> {
    for (const op of ops) {
      if (op.key.length > this.maxKeyBytes) {
        throw new StorageError('ERR_TOO_LARGE', `key of ${op.key.length} bytes exceeds the limit of ${this.maxKeyBytes}`)
      }
      if (op.type === 'put' && op.value.length > this.maxValueBytes) {
        throw new StorageError('ERR_TOO_LARGE', `value of ${op.value.length} bytes exceeds the limit of ${this.maxValueBytes}`)
      }
    }
    await this.queue.write(ops)
  }
}

/** A put of `value` under `key` in `bucket`, as a full-key operation. */
export function putOp (bucket: number, key: Uint8Array, value: Uint8Array): KvOp {
  return { type: 'put', key: concatBytes(Uint8Array.of(bucket), key), value }
}

/** A delete of `key` in `bucket`, as a full-key operation. */
export function delOp (bucket: number, key: Uint8Array): KvOp {
  return { type: 'del', key: concatBytes(Uint8Array.of(bucket), key) }
}
