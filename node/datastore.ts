/**
 * A libp2p `Datastore` kept in Talaria's storage, so what libp2p persists (DHT records this node
 * holds, the peer book) survives restarts.
 */
import { NotFoundError } from '@libp2p/interface'
import { BaseDatastore } from 'datastore-core/base'
import { Key, type Batch, type KeyQuery, type Pair, type Query } from 'interface-datastore'

/** The slice of `storage.dht` the datastore needs: a persistent byte-keyed map. */
export interface DhtKeyValueStore {
  get(key: Uint8Array): Promise<Uint8Array | undefined>
  put(key: Uint8Array, value: Uint8Array): Promise<void>
  delete(key: Uint8Array): Promise<void>
  has(key: Uint8Array): Promise<boolean>
  entries(opts?: { prefix?: Uint8Array }): AsyncIterable<{ key: Uint8Array, value: Uint8Array }>
  /** Applies puts and deletes atomically. */
  batch(ops: ReadonlyArray<{ type: 'put', key: Uint8Array, value: Uint8Array } | { type: 'del', key: Uint8Array }>): Promise<void>
}

/** Dependencies of {@link StorageDatastore}. */
export interface StorageDatastoreComponents {
  store: DhtKeyValueStore
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()

interface Abortable { signal?: AbortSignal }

/**
 * libp2p datastore over a {@link DhtKeyValueStore}. Keys are stored as the UTF-8 bytes of their
 * string form ('/dht/record/…', '/peers/…'), so a prefix query is a range scan in the store.
 */
export class StorageDatastore extends BaseDatastore {
  private readonly store: DhtKeyValueStore

  constructor (components: StorageDatastoreComponents) {
    super()
    this.store = components.store
  }

  override async put (key: Key, val: Uint8Array, options?: Abortable): Promise<Key> {
    options?.signal?.throwIfAborted()
    await this.store.put(encoder.encode(key.toString()), val)
    return key
  }

  override async get (key: Key, options?: Abortable): Promise<Uint8Array> {
    options?.signal?.throwIfAborted()
    const value = await this.store.get(encoder.encode(key.toString()))
    // libp2p tells "absent" from "broken" by this error's name
    if (value === undefined) throw new NotFoundError(`no value for ${key.toString()}`)
    return value
  }

  override async has (key: Key, options?: Abortable): Promise<boolean> {
    options?.signal?.throwIfAborted()
    return await this.store.has(encoder.encode(key.toString()))
  }

  override async delete (key: Key, options?: Abortable): Promise<void> {
    options?.signal?.throwIfAborted()
    await this.store.delete(encoder.encode(key.toString()))
  }

  /** A batch that commits as one atomic write of the store (the base class writes one by one). */
  override batch (): Batch {
    const ops: Array<{ type: 'put', key: Uint8Array, value: Uint8Array } | { type: 'del', key: Uint8Array }> = []
    return {
      put: (key: Key, value: Uint8Array) => { ops.push({ type: 'put', key: encoder.encode(key.toString()), value }) },
      delete: (key: Key) => { ops.push({ type: 'del', key: encoder.encode(key.toString()) }) },
      commit: async (options?: Abortable) => {
        options?.signal?.throwIfAborted()
        await this.store.batch(ops.splice(0))
      }
    }
  }

  override async * _all (q: Query, options?: Abortable): AsyncGenerator<Pair> {
    for await (const { key, value } of this.scan(q.prefix)) {
      options?.signal?.throwIfAborted()
      yield { key: new Key(decoder.decode(key), false), value }
    }
  }

  override async * _allKeys (q: KeyQuery, options?: Abortable): AsyncGenerator<Key> {
    for await (const { key } of this.scan(q.prefix)) {
      options?.signal?.throwIfAborted()
      yield new Key(decoder.decode(key), false)
    }
  }

  private scan (prefix: string | undefined): AsyncIterable<{ key: Uint8Array, value: Uint8Array }> {
    // the base class still filters by the string prefix; pushing it down only saves the scan
    return this.store.entries(prefix !== undefined && prefix !== '' ? { prefix: encoder.encode(prefix) } : {})
  }
}
