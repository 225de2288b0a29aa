/**
 * Opaque records of the libp2p DHT datastore. They all live on shard 0 in the `dht` bucket: DHT
 * traffic is small next to message traffic, and one ordered key space keeps prefix queries (which
 * the datastore interface needs) a single range scan. Keys are the datastore's key bytes (for
 * example UTF-8 of '/dht/record/…'); values are stored as given, without msgpack.
 */
import { Bucket } from '../buckets.js'
import type { KvEngine } from '../engine.js'
import { StorageError } from '../errors.js'
import { prefixUpperBound } from '../keys.js'
import { delOp, putOp } from '../shard.js'
import type { Shard } from '../shard.js'

/** A DHT datastore entry. */
export interface DhtEntry {
  key: Uint8Array
  value: Uint8Array
}

/** One operation of {@link DhtRepository.batch}. */
export type DhtBatchOp =
  | { type: 'put', key: Uint8Array, value: Uint8Array }
  | { type: 'del', key: Uint8Array }

/** Options of {@link DhtRepository.entries}. */
export interface DhtEntriesOptions {
  /** Only keys starting with these bytes. */
  prefix?: Uint8Array
  /** Stop after this many entries. */
  limit?: number
}

/** The DHT datastore's records. */
export interface DhtRepository {
  /** The value under `key`, or undefined. */
  get (key: Uint8Array): Promise<Uint8Array | undefined>
  /** True when `key` has a value. */
  has (key: Uint8Array): Promise<boolean>
  /** Stores `value` under `key`, durably. */
  put (key: Uint8Array, value: Uint8Array): Promise<void>
  /** Removes `key`, durably; removing a missing key is not an error. */
  delete (key: Uint8Array): Promise<void>
  /** Applies several puts and deletes atomically and durably. */
  batch (ops: readonly DhtBatchOp[]): Promise<void>
  /** Entries in key byte order, optionally under a prefix. */
  entries (options?: DhtEntriesOptions): AsyncIterable<DhtEntry>
}

/** The DHT repository over `shard` (shard 0 of the storage). */
export class DefaultDhtRepository implements DhtRepository {
  private readonly view: KvEngine

  constructor (private readonly shard: Shard) {
    this.view = shard.bucket(Bucket.dht)
  }

  private static checkKey (key: Uint8Array): void {
    if (!(key instanceof Uint8Array) || key.length === 0) {
      throw new StorageError('ERR_INVALID_ARGUMENT', 'DHT key must be a non-empty Uint8Array')
    }
  }

  async get (key: Uint8Array): Promise<Uint8Array | undefined> {
    DefaultDhtRepository.checkKey(key)
    return await this.view.get(key)
  }

  async has (key: Uint8Array): Promise<boolean> {
    return (await this.get(key)) !== undefined
  }

  async put (key: Uint8Array, value: Uint8Array): Promise<void> {
    await this.batch([{ type: 'put', key, value }])
  }

  async delete (key: Uint8Array): Promise<void> {
    await this.batch([{ type: 'del', key }])
  }

  async batch (ops: readonly DhtBatchOp[]): Promise<void> {
    for (const op of ops) DefaultDhtRepository.checkKey(op.key)
    await this.shard.write(ops.map((op) => op.type === 'put'
      ? putOp(Bucket.dht, op.key, op.value)
      : delOp(Bucket.dht, op.key)))
  }

  async * entries (options: DhtEntriesOptions = {}): AsyncIterable<DhtEntry> {
    const prefix = options.prefix
    const range = prefix === undefined || prefix.length === 0
      ? { limit: options.limit }
      : { gte: prefix, lt: prefixUpperBound(prefix), limit: options.limit }
    for await (const [key, value] of this.view.iterate(range)) {
      // Copies, so callers may keep them beyond the iteration.
      yield { key: key.slice(), value: value.slice() }
    }
  }
}
