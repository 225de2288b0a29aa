/**
 * The internal key-value engine interface every shard is built on, and the prefixing wrapper that
 * gives each record kind its own key space. Keys and values are bytes; keys are ordered bytewise.
 */
import { StorageError } from './errors.js'
import { concatBytes } from '../protocol/bytes.js'
import { hasPrefix, prefixUpperBound } from './keys.js'

/** One operation of an atomic batch. */
export type KvOp =
  | { type: 'put', key: Uint8Array, value: Uint8Array }
  | { type: 'del', key: Uint8Array }

/** Options of {@link KvEngine.batch}. */
export interface KvBatchOptions {
  /** Flush to stable storage before resolving (fsync). */
  sync?: boolean
}

/** A key range for ordered iteration; bounds left undefined are open. */
export interface KvRange {
  gt?: Uint8Array
  gte?: Uint8Array
  lt?: Uint8Array
  lte?: Uint8Array
  /** Maximum number of entries; undefined or negative means no limit. */
  limit?: number
  /** Iterate from the highest key down. */
  reverse?: boolean
}

/** A key-value entry yielded by {@link KvEngine.iterate}. */
export type KvEntry = [key: Uint8Array, value: Uint8Array]

/** The small engine contract every storage backend satisfies. */
export interface KvEngine {
  /** The value stored under `key`, or undefined. */
  get (key: Uint8Array): Promise<Uint8Array | undefined>
  /** Values for several keys, in the order asked. */
  getMany (keys: readonly Uint8Array[]): Promise<Array<Uint8Array | undefined>>
  /** Applies every operation or none. */
  batch (ops: readonly KvOp[], options?: KvBatchOptions): Promise<void>
  /** Entries in key order within `range`; breaking out of the loop releases the iterator. */
  iterate (range?: KvRange): AsyncIterable<KvEntry>
  /** A view of this engine whose keys are all under `prefix`, with the prefix stripped. */
  prefixed (prefix: Uint8Array): KvEngine
  /** Releases the engine; later operations fail with `ERR_CLOSED`. Idempotent. */
  close (): Promise<void>
}

/**
 * A view of an engine under a key prefix. Ranges are translated into the prefix's key space and
 * clamped to it, so an open range never escapes into another record kind.
 */
export class PrefixedEngine implements KvEngine {
  constructor (private readonly inner: KvEngine, private readonly prefix: Uint8Array) {}

  private full (key: Uint8Array): Uint8Array {
    return concatBytes(this.prefix, key)
  }

  async get (key: Uint8Array): Promise<Uint8Array | undefined> {
    return await this.inner.get(this.full(key))
  }

  async getMany (keys: readonly Uint8Array[]): Promise<Array<Uint8Array | undefined>> {
    return await this.inner.getMany(keys.map((k) => this.full(k)))
  }

  async batch (ops: readonly KvOp[], options?: KvBatchOptions): Promise<void> {
    await this.inner.batch(this.mapOps(ops), options)
  }

  /** The same operations with keys in the parent's key space. */
  mapOps (ops: readonly KvOp[]): KvOp[] {
    return ops.map((op) => op.type === 'put'
      ? { type: 'put', key: this.full(op.key), value: op.value }
      : { type: 'del', key: this.full(op.key) })
  }

  async * iterate (range: KvRange = {}): AsyncIterable<KvEntry> {
    const inner: KvRange = { limit: range.limit, reverse: range.reverse }
    if (range.gt !== undefined) inner.gt = this.full(range.gt)
    else if (range.gte !== undefined) inner.gte = this.full(range.gte)
    else inner.gte = this.prefix
    if (range.lt !== undefined) inner.lt = this.full(range.lt)
    else if (range.lte !== undefined) inner.lte = this.full(range.lte)
    else {
      const upper = prefixUpperBound(this.prefix)
      if (upper !== undefined) inner.lt = upper
    }
    const n = this.prefix.length
    for await (const [key, value] of this.inner.iterate(inner)) {
      // Defensive: a bound outside the prefix (impossible through this API) must not leak keys.
      if (!hasPrefix(key, this.prefix)) break
      yield [key.subarray(n), value]
    }
  }

  prefixed (prefix: Uint8Array): KvEngine {
    return new PrefixedEngine(this.inner, this.full(prefix))
  }

  async close (): Promise<void> {
    await this.inner.close()
  }
}

/** Throws `ERR_INVALID_ARGUMENT` when a range sets both bounds of one side. */
export function checkRange (range: KvRange): void {
  if (range.gt !== undefined && range.gte !== undefined) {
    throw new StorageError('ERR_INVALID_ARGUMENT', 'range sets both gt and gte')
  }
  if (range.lt !== undefined && range.lte !== undefined) {
    throw new StorageError('ERR_INVALID_ARGUMENT', 'range sets both lt and lte')
  }
}
