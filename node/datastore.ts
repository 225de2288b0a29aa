/**
 * A libp2p `Datastore` kept in Talaria's storage, so what libp2p persists (DHT records this node
 * holds, the peer book) survives restarts.
 *
 * The peer book ('/peers/…') is held in memory once `open` has loaded it and written back in
 * batches: libp2p's peer store reads and rewrites a peer's entry for every peer named in every
 * DHT response, and a durable storage write each time cost a fifth of a busy node's CPU. A crash
 * loses at most the last flush interval of address updates, which peers and the DHT re-teach.
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

/** Options of {@link StorageDatastore}. */
export interface StorageDatastoreInit {
  /** How often changes to the peer book are written to storage, in ms. Default {@link DEFAULT_PEER_BOOK_FLUSH_MS}. */
  peerBookFlushMs?: number
}

/** Default interval of peer-book write-back, in milliseconds. */
export const DEFAULT_PEER_BOOK_FLUSH_MS = 10_000
/** Key prefix of libp2p's peer store. */
const PEERS_PREFIX = '/peers/'

const encoder = new TextEncoder()
const decoder = new TextDecoder()

interface Abortable { signal?: AbortSignal }

/**
 * libp2p datastore over a {@link DhtKeyValueStore}. Keys are stored as the UTF-8 bytes of their
 * string form ('/dht/record/…', '/peers/…'), so a prefix query is a range scan in the store.
 */
export class StorageDatastore extends BaseDatastore {
  private readonly store: DhtKeyValueStore
  private readonly flushMs: number
  /** The peer book, by key string, once `open` loaded it; undefined before (reads go to storage). */
  private peers?: Map<string, Uint8Array>
  /** Peer-book keys changed since the last flush: the new value, or undefined when deleted. */
  private readonly dirty = new Map<string, Uint8Array | undefined>()
  private flushing: Promise<void> = Promise.resolve()
  private timer?: ReturnType<typeof setInterval>

  constructor (components: StorageDatastoreComponents, init: StorageDatastoreInit = {}) {
    super()
    this.store = components.store
    this.flushMs = init.peerBookFlushMs ?? DEFAULT_PEER_BOOK_FLUSH_MS
  }

  /** Loads the peer book into memory and starts writing its changes back every flush interval. */
  async open (): Promise<void> {
    if (this.peers !== undefined) return
    const peers = new Map<string, Uint8Array>()
    for await (const { key, value } of this.store.entries({ prefix: encoder.encode(PEERS_PREFIX) })) peers.set(decoder.decode(key), value)
    this.peers = peers
    this.timer = setInterval(() => { void this.flush().catch(() => {}) }, this.flushMs)
    this.timer.unref()
  }

  /** Writes the peer book's pending changes to storage (one batch). */
  async flush (): Promise<void> {
    const run = async (): Promise<void> => {
      if (this.dirty.size === 0) return
      const ops = [...this.dirty].map(([k, v]) => v === undefined
        ? { type: 'del' as const, key: encoder.encode(k) }
        : { type: 'put' as const, key: encoder.encode(k), value: v })
      this.dirty.clear()
      await this.store.batch(ops)
    }
    this.flushing = this.flushing.then(run, run)
    await this.flushing
  }

  /** Stops the write-back and flushes what is pending; reads and writes go to storage again. */
  async close (): Promise<void> {
    clearInterval(this.timer)
    this.timer = undefined
    await this.flush()
    this.peers = undefined
  }

  /** The in-memory peer book when `key` belongs to it. */
  private book (key: string): Map<string, Uint8Array> | undefined {
    return this.peers !== undefined && key.startsWith(PEERS_PREFIX) ? this.peers : undefined
  }

  override async put (key: Key, val: Uint8Array, options?: Abortable): Promise<Key> {
    options?.signal?.throwIfAborted()
    const k = key.toString()
    const book = this.book(k)
    if (book !== undefined) {
      book.set(k, val)
      this.dirty.set(k, val)
      return key
    }
    await this.store.put(encoder.encode(k), val)
    return key
  }

  override async get (key: Key, options?: Abortable): Promise<Uint8Array> {
    options?.signal?.throwIfAborted()
    const k = key.toString()
    const book = this.book(k)
    const value = book !== undefined ? book.get(k) : await this.store.get(encoder.encode(k))
    // libp2p tells "absent" from "broken" by this error's name
    if (value === undefined) throw new NotFoundError(`no value for ${k}`)
    return value
  }

  override async has (key: Key, options?: Abortable): Promise<boolean> {
    options?.signal?.throwIfAborted()
    const k = key.toString()
    const book = this.book(k)
    return book !== undefined ? book.has(k) : await this.store.has(encoder.encode(k))
  }

  override async delete (key: Key, options?: Abortable): Promise<void> {
    options?.signal?.throwIfAborted()
    const k = key.toString()
    const book = this.book(k)
    if (book !== undefined) {
      book.delete(k)
      this.dirty.set(k, undefined)
      return
    }
    await this.store.delete(encoder.encode(k))
  }

  /** A batch that commits as one atomic write of the store (the base class writes one by one). */
  override batch (): Batch {
    const ops: Array<{ type: 'put', key: string, value: Uint8Array } | { type: 'del', key: string }> = []
    return {
      put: (key: Key, value: Uint8Array) => { ops.push({ type: 'put', key: key.toString(), value }) },
      delete: (key: Key) => { ops.push({ type: 'del', key: key.toString() }) },
      commit: async (options?: Abortable) => {
        options?.signal?.throwIfAborted()
        const stored: Array<{ type: 'put', key: Uint8Array, value: Uint8Array } | { type: 'del', key: Uint8Array }> = []
        for (const op of ops.splice(0)) {
          const book = this.book(op.key)
          if (book === undefined) {
            stored.push(op.type === 'put' ? { type: 'put', key: encoder.encode(op.key), value: op.value } : { type: 'del', key: encoder.encode(op.key) })
          } else if (op.type === 'put') {
            book.set(op.key, op.value)
            this.dirty.set(op.key, op.value)
          } else {
            book.delete(op.key)
            this.dirty.set(op.key, undefined)
          }
        }
        if (stored.length > 0) await this.store.batch(stored)
      }
    }
  }

  override async * _all (q: Query, options?: Abortable): AsyncGenerator<Pair> {
    for await (const { key, value } of this.scan(q.prefix)) {
      options?.signal?.throwIfAborted()
      yield { key: new Key(key, false), value }
    }
  }

  override async * _allKeys (q: KeyQuery, options?: Abortable): AsyncGenerator<Key> {
    for await (const { key } of this.scan(q.prefix)) {
      options?.signal?.throwIfAborted()
      yield new Key(key, false)
    }
  }

  /** Entries under `prefix`: the peer book from memory once loaded, everything else from storage. */
  private async * scan (prefix: string | undefined): AsyncIterable<{ key: string, value: Uint8Array }> {
    const p = prefix ?? ''
    const peers = this.peers
    // the base class still filters by the string prefix; pushing it down only saves the scan
    if (peers === undefined || !p.startsWith(PEERS_PREFIX)) {
      for await (const { key, value } of this.store.entries(p !== '' ? { prefix: encoder.encode(p) } : {})) {
        const k = decoder.decode(key)
        if (peers === undefined || !k.startsWith(PEERS_PREFIX)) yield { key: k, value }
      }
    }
    if (peers !== undefined && (PEERS_PREFIX.startsWith(p) || p.startsWith(PEERS_PREFIX))) {
      for (const [key, value] of [...peers]) if (key.startsWith(p)) yield { key, value }
    }
  }
}
