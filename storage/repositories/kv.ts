/**
 * A tiny node-local settings store (string key → msgpack value) on shard 0, for things like the
 * node's own metadata. Not for bulk data.
 */
import { Bucket } from '../buckets.js'
import { decodeValue, encodeValue } from '../codec.js'
import type { KvEngine } from '../engine.js'
import { encodeKey } from '../keys.js'
import { delOp, putOp } from '../shard.js'
import type { Shard } from '../shard.js'

/** Node-local settings. */
export interface KvRepository {
  /** The value stored under `key`, or undefined. Undecodable bytes: `ERR_CORRUPT`. */
  get<T = unknown> (key: string): Promise<T | undefined>
  /** Stores `value` (anything msgpack encodes) under `key`, durably. */
  put (key: string, value: unknown): Promise<void>
  /** Removes `key`, durably. */
  delete (key: string): Promise<void>
}

/** The settings store over `shard` (shard 0 of the storage). */
export class DefaultKvRepository implements KvRepository {
  private readonly view: KvEngine

  constructor (private readonly shard: Shard) {
    this.view = shard.bucket(Bucket.kv)
  }

  async get<T = unknown> (key: string): Promise<T | undefined> {
    const bytes = await this.view.get(encodeKey(key))
    return bytes === undefined ? undefined : decodeValue(bytes, `setting '${key}'`) as T
  }

  async put (key: string, value: unknown): Promise<void> {
    await this.shard.write([putOp(Bucket.kv, encodeKey(key), encodeValue(value))])
  }

  async delete (key: string): Promise<void> {
    await this.shard.write([delOp(Bucket.kv, encodeKey(key))])
  }
}
