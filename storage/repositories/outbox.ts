/**
 * The outbox: envelopes this node accepted from its connected senders and has not yet handed to
 * the recipient's node or mailbox replicas. Partitioned by sender user id; an order index keeps
 * submission order across restarts, so resumed delivery keeps each conversation in order.
 */
import { Bucket } from '../buckets.js'
import { asBytes, decodeValue, encodeValue } from '../codec.js'
import type { KvOp } from '../engine.js'
import { StorageError } from '../errors.js'
import { encodeKey, KeyReader } from '../keys.js'
import { KeyedLock } from '../keyed-lock.js'
import { delOp, putOp, type Shard } from '../shard.js'
import { MAX_LIST_LIMIT } from './messages.js'

/** One envelope waiting for delivery. */
export interface OutboxEntry {
  /** Envelope id; unique, a second put of the same id (same sender) is a no-op. */
  id: string
  /** Node-local submission order: higher was submitted later. */
  order: number
  /** Sending user (the partition key) and device. */
  senderUser: string
  senderDevice: string
  /** Recipient user and device. */
  recipientUser: string
  recipientDevice: string
  /** When the node accepted it, ms since the epoch. */
  createdAt: number
  /** The encoded envelope; opaque here. */
  body: Uint8Array
}

/** Outbox entries by sender, with a submission-order index. */
export interface OutboxRepository {
  /**
   * Stores entries durably, one atomic batch per shard; idempotent by (senderUser, id). Returns,
   * per entry, whether it was newly written.
   */
  put (entries: readonly OutboxEntry[]): Promise<boolean[]>
  /** Removes entries (with their index entries); returns how many existed. */
  delete (refs: ReadonlyArray<{ senderUser: string, id: string }>): Promise<number>
  /**
   * Removes entries the caller holds exactly as stored (put or listed by it), without reading them
   * first: the order index key comes from `order`. An entry that is gone is deleted again, a no-op.
   */
  deleteKnown (entries: ReadonlyArray<Pick<OutboxEntry, 'senderUser' | 'id' | 'order'>>): Promise<void>
  /** Entries in submission order after `afterOrder` (exclusive), across every shard. */
  list (options?: { afterOrder?: number, limit?: number }): Promise<OutboxEntry[]>
}

/** What the outbox is built from. */
export interface OutboxRepositoryComponents {
  shards: readonly Shard[]
  shardFor: (partitionKey: string) => number
}

function invalid (message: string): StorageError {
  return new StorageError('ERR_INVALID_ARGUMENT', message)
}

function checkStrings<T> (e: T, keys: ReadonlyArray<keyof T & string>): void {
  for (const k of keys) {
    const v = e[k]
    if (typeof v !== 'string' || v.length === 0) throw invalid(`outbox ${k} must be a non-empty string`)
  }
}

function checkCounts<T> (e: T, keys: ReadonlyArray<keyof T & string>): void {
  for (const k of keys) {
    const v = e[k]
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw invalid(`outbox ${k} must be a non-negative safe integer`)
  }
}

function checkEntry (e: OutboxEntry): void {
  checkStrings(e, ['id', 'senderUser', 'senderDevice', 'recipientUser', 'recipientDevice'])
  checkCounts(e, ['order', 'createdAt'])
  if (!(e.body instanceof Uint8Array)) throw invalid('outbox body must be a Uint8Array')
}

function decodeEntry (bytes: Uint8Array): OutboxEntry {
  const v = decodeValue(bytes, 'outbox entry') as Partial<Record<keyof OutboxEntry, unknown>> | null
  const body = asBytes(v?.body)
  if (v === null || typeof v !== 'object' || body === undefined || typeof v.id !== 'string' || typeof v.order !== 'number' ||
    typeof v.senderUser !== 'string' || typeof v.senderDevice !== 'string' || typeof v.recipientUser !== 'string' ||
    typeof v.recipientDevice !== 'string' || typeof v.createdAt !== 'number') {
    throw new StorageError('ERR_CORRUPT', 'stored outbox entry does not have the expected shape')
  }
  return {
    id: v.id, order: v.order, senderUser: v.senderUser, senderDevice: v.senderDevice,
    recipientUser: v.recipientUser, recipientDevice: v.recipientDevice, createdAt: v.createdAt, body
  }
}

/** The default outbox over the storage's shards. */
export class DefaultOutboxRepository implements OutboxRepository {
  private readonly lock = new KeyedLock()

  constructor (private readonly components: OutboxRepositoryComponents) {}

  private shardOf (senderUser: string): Shard {
    return this.components.shards[this.components.shardFor(senderUser)] as Shard
  }

  private static lockKey (senderUser: string, id: string): string {
    return `${senderUser}\u0000${id}`
  }

  /** Groups items by the shard of their sender, keeping their positions. */
  private byShard<T extends { senderUser: string }> (items: readonly T[]): Map<Shard, Array<{ item: T, index: number }>> {
    const groups = new Map<Shard, Array<{ item: T, index: number }>>()
    items.forEach((item, index) => {
      const shard = this.shardOf(item.senderUser)
      let group = groups.get(shard)
      if (group === undefined) groups.set(shard, group = [])
      group.push({ item, index })
    })
    return groups
  }

  async put (entries: readonly OutboxEntry[]): Promise<boolean[]> {
    for (const e of entries) checkEntry(e)
    const created = entries.map(() => false)
    await Promise.all([...this.byShard(entries)].map(async ([shard, group]) => {
      const keys = group.map(({ item }) => DefaultOutboxRepository.lockKey(item.senderUser, item.id))
      await this.lock.with(keys, async () => {
        const existing = await shard.bucket(Bucket.outbox).getMany(group.map(({ item }) => encodeKey(item.senderUser, item.id)))
        const ops: KvOp[] = []
        const seen = new Set<string>()
        group.forEach(({ item, index }, i) => {
          const key = keys[i] as string
          if (existing[i] !== undefined || seen.has(key)) return
          seen.add(key)
          created[index] = true
          ops.push(
            putOp(Bucket.outbox, encodeKey(item.senderUser, item.id), encodeValue({ ...item })),
            putOp(Bucket.outboxByOrder, encodeKey(item.order, item.senderUser, item.id), new Uint8Array(0))
          )
        })
        if (ops.length > 0) await shard.write(ops)
      })
    }))
    return created
  }

  async delete (refs: ReadonlyArray<{ senderUser: string, id: string }>): Promise<number> {
    let removed = 0
    await Promise.all([...this.byShard(refs)].map(async ([shard, group]) => {
      const keys = group.map(({ item }) => DefaultOutboxRepository.lockKey(item.senderUser, item.id))
      await this.lock.with(keys, async () => {
        const existing = await shard.bucket(Bucket.outbox).getMany(group.map(({ item }) => encodeKey(item.senderUser, item.id)))
        const ops: KvOp[] = []
        const seen = new Set<string>()
        existing.forEach((bytes, i) => {
          const key = keys[i] as string
          if (bytes === undefined || seen.has(key)) return
          seen.add(key)
          const e = decodeEntry(bytes)
          ops.push(delOp(Bucket.outbox, encodeKey(e.senderUser, e.id)), delOp(Bucket.outboxByOrder, encodeKey(e.order, e.senderUser, e.id)))
          removed++
        })
        if (ops.length > 0) await shard.write(ops)
      })
    }))
    return removed
  }

  async deleteKnown (entries: ReadonlyArray<Pick<OutboxEntry, 'senderUser' | 'id' | 'order'>>): Promise<void> {
    for (const e of entries) {
      checkStrings(e, ['id', 'senderUser'])
      checkCounts(e, ['order'])
    }
    await Promise.all([...this.byShard(entries)].map(async ([shard, group]) => {
      const ops = group.flatMap(({ item }) => [
        delOp(Bucket.outbox, encodeKey(item.senderUser, item.id)),
        delOp(Bucket.outboxByOrder, encodeKey(item.order, item.senderUser, item.id))
      ])
      await this.lock.with(group.map(({ item }) => DefaultOutboxRepository.lockKey(item.senderUser, item.id)), async () => {
        await shard.write(ops)
      })
    }))
  }

  async list (options: { afterOrder?: number, limit?: number } = {}): Promise<OutboxEntry[]> {
    const limit = options.limit ?? MAX_LIST_LIMIT
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) throw invalid(`limit must be an integer from 1 to ${MAX_LIST_LIMIT}`)
    const perShard = await Promise.all(this.components.shards.map(async (shard) => {
      const refs: Array<{ senderUser: string, id: string }> = []
      const range = options.afterOrder === undefined ? { limit } : { gte: encodeKey(options.afterOrder + 1), limit }
      for await (const [key] of shard.bucket(Bucket.outboxByOrder).iterate(range)) {
        const r = new KeyReader(key)
        r.number()
        refs.push({ senderUser: r.string(), id: r.string() })
      }
      const values = await shard.bucket(Bucket.outbox).getMany(refs.map((ref) => encodeKey(ref.senderUser, ref.id)))
      return values.flatMap((bytes) => bytes === undefined ? [] : [decodeEntry(bytes)])
    }))
    return perShard.flat().sort((a, b) => a.order - b.order).slice(0, limit)
  }
}
