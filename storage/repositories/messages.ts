/**
 * Message repositories: the inbox (messages delivered to a local user) and the mailbox (replicas
 * of offline users' messages that this node keeps for them, with a TTL). Both are partitioned by
 * user id: every record of a user, and every index entry pointing at it, sits on the user's shard,
 * and one record is written or removed with its index entries in a single atomic batch.
 */
import type { Bucket } from '../buckets.js'
import { asBytes, decodeValue, encodeValue } from '../codec.js'
import { StorageError } from '../errors.js'
import { checkString, checkTime, invalid, resolveLimit } from '../arguments.js'
import { encodeKey, KeyReader, prefixUpperBound } from '../keys.js'
import { KeyedLock } from '../keyed-lock.js'
import type { KvOp, KvRange } from '../engine.js'
import { delOp, putOp } from '../shard.js'
import type { Shard } from '../shard.js'

/** Default page size of list calls. */
export const DEFAULT_LIST_LIMIT = 100
/** Largest page size of list calls. */
export const MAX_LIST_LIMIT = 1000
/** Expired records removed per sweep batch. */
export const SWEEP_CHUNK = 500

/** Separator of a per-device owner key: `<user>/<device>`. */
export const OWNER_KEY_SEPARATOR = '/'

/**
 * The owner key of one device's messages: repositories take it where they take a user id, and
 * place it on the user's shard, so two devices of one user never share (or collide in) a box.
 */
export function deviceOwnerKey (userId: string, deviceId: string): string {
  return userId + OWNER_KEY_SEPARATOR + deviceId
}

/** The partition (user id) of an owner key: the part before the separator, or the whole key. */
export function partitionOfOwner (ownerKey: string): string {
  const i = ownerKey.indexOf(OWNER_KEY_SEPARATOR)
  return i < 0 ? ownerKey : ownerKey.slice(0, i)
}

/** A stored message: ciphertext plus what the node needs to order and expire it. */
export interface StoredMessage {
  /** Unique message id; a second put of the same id is a no-op. */
  id: string
  /** Conversation the message belongs to. */
  conversation: string
  /** Per-conversation counter; not unique across senders. */
  seq: number
  /** When this node received it, milliseconds since the epoch. */
  receivedAt: number
  /** When it may be deleted, milliseconds since the epoch; required in the mailbox. */
  expiresAt?: number
  /** The end-to-end encrypted envelope; opaque here. */
  body: Uint8Array
}

/** Result of a put. */
export interface PutResult {
  /** False when a message with this id was already stored (nothing was written). */
  created: boolean
}

/** A position in receive order; pass the last message of a page to get the next one. */
export interface ListCursor {
  receivedAt: number
  id: string
}

/** Options of {@link MessageRepository.list}. */
export interface ListOptions {
  /** Start after this position (exclusive); from the oldest when absent. */
  after?: ListCursor
  /** Page size, 1 to {@link MAX_LIST_LIMIT}; default {@link DEFAULT_LIST_LIMIT}. */
  limit?: number
}

/** Options of {@link MessageRepository.listByConversation}. */
export interface ConversationListOptions {
  /** First seq included; from 0 when absent. */
  fromSeq?: number
  /** Page size, 1 to {@link MAX_LIST_LIMIT}; default {@link DEFAULT_LIST_LIMIT}. */
  limit?: number
}

/** Messages per user, with conversation and receive-order indexes. */
export interface MessageRepository {
  /** Stores `msg` for `userId` with its indexes, durably; idempotent by `msg.id`. */
  put (userId: string, msg: StoredMessage): Promise<PutResult>
  /** The message `id` of `userId`, or undefined. */
  get (userId: string, id: string): Promise<StoredMessage | undefined>
  /** Messages of one conversation in (seq, id) order from `fromSeq`. */
  listByConversation (userId: string, conversation: string, options?: ConversationListOptions): Promise<StoredMessage[]>
  /** Messages of `userId` in (receivedAt, id) order. */
  list (userId: string, options?: ListOptions): Promise<StoredMessage[]>
  /** Removes the given messages and their index entries in one atomic batch; returns how many existed. */
  delete (userId: string, ids: readonly string[]): Promise<number>
  /**
   * Removes messages the caller holds exactly as they were stored (read or put by it), in one atomic
   * batch, without reading them first. Only for records the caller knows exist unchanged: a record
   * that is gone is deleted again (a no-op) and still counted. Returns `records.length`.
   */
  deleteKnown (userId: string, records: readonly StoredMessageRef[]): Promise<number>
}

/** What {@link MessageRepository.deleteKnown} needs of a stored message: its keys. */
export type StoredMessageRef = Pick<StoredMessage, 'id' | 'conversation' | 'seq' | 'receivedAt' | 'expiresAt'>

/** The inbox: messages delivered to this node's users. */
export type InboxRepository = MessageRepository

/** The mailbox: replicas of offline users' messages, each with an expiry. */
export interface MailboxRepository extends MessageRepository {
  /** Deletes every record with `expiresAt <= now`, with its indexes, on every shard; returns how many. */
  sweepExpired (now: number): Promise<number>
}

/** Buckets one message repository uses; see buckets.ts. */
export interface MessageBuckets {
  primary: typeof Bucket[keyof typeof Bucket]
  byConversation: typeof Bucket[keyof typeof Bucket]
  byReceivedAt: typeof Bucket[keyof typeof Bucket]
  /** Expiry index, kept only by repositories that sweep. */
  byExpiry?: typeof Bucket[keyof typeof Bucket]
}

/** What a message repository is built from. */
export interface MessageRepositoryComponents {
  shards: readonly Shard[]
  shardFor: (partitionKey: string) => number
}

const EMPTY = new Uint8Array(0)

/** Decodes and shape-checks a stored record; anything unexpected is `ERR_CORRUPT`. */
function decodeMessage (bytes: Uint8Array, what: string): StoredMessage {
  const v = decodeValue(bytes, what) as Partial<Record<keyof StoredMessage, unknown>> | null
  const body = asBytes(v?.body)
  if (v === null || typeof v !== 'object' || typeof v.id !== 'string' || typeof v.conversation !== 'string' ||
    typeof v.seq !== 'number' || typeof v.receivedAt !== 'number' || body === undefined ||
    (v.expiresAt !== undefined && typeof v.expiresAt !== 'number')) {
    throw new StorageError('ERR_CORRUPT', `stored ${what} does not have the shape of a message`)
  }
  const msg: StoredMessage = { id: v.id, conversation: v.conversation, seq: v.seq, receivedAt: v.receivedAt, body }
  if (typeof v.expiresAt === 'number') msg.expiresAt = v.expiresAt
  return msg
}

/** The shared implementation of the inbox and the mailbox. */
export class DefaultMessageRepository implements MailboxRepository {
  private readonly lock = new KeyedLock()

  constructor (
    private readonly components: MessageRepositoryComponents,
    private readonly buckets: MessageBuckets,
    private readonly name: string
  ) {}

  private shard (userId: string): Shard {
    return this.components.shards[this.components.shardFor(userId)] as Shard
  }

  private static lockKey (userId: string, id: string): string {
    return `${userId}\u0000${id}`
  }

  /** Checks the fields a record's keys are made of. */
  private static validateKeys (msg: StoredMessageRef): void {
    if (msg === null || typeof msg !== 'object') throw invalid('message must be an object')
    checkString(msg.id, 'id')
    checkString(msg.conversation, 'conversation')
    checkTime(msg.seq, 'seq')
    checkTime(msg.receivedAt, 'receivedAt')
    if (msg.expiresAt !== undefined) checkTime(msg.expiresAt, 'expiresAt')
  }

  private validate (msg: StoredMessage): void {
    DefaultMessageRepository.validateKeys(msg)
    if (this.buckets.byExpiry !== undefined && msg.expiresAt === undefined) throw invalid(`${this.name} messages need expiresAt`)
    if (!(msg.body instanceof Uint8Array)) throw invalid('body must be a Uint8Array')
  }

  /** Every key (primary and indexes) of one record, as full-key operations. */
  private recordOps (userId: string, msg: StoredMessageRef & { body?: Uint8Array }, kind: 'put' | 'del'): KvOp[] {
    const b = this.buckets
    const keys: Array<[number, Uint8Array]> = [
      [b.byConversation, encodeKey(userId, msg.conversation, msg.seq, msg.id)],
      [b.byReceivedAt, encodeKey(userId, msg.receivedAt, msg.id)]
    ]
    if (b.byExpiry !== undefined && msg.expiresAt !== undefined) keys.push([b.byExpiry, encodeKey(msg.expiresAt, userId, msg.id)])
    const primary = encodeKey(userId, msg.id)
    if (kind === 'del') return [delOp(b.primary, primary), ...keys.map(([bucket, key]) => delOp(bucket, key))]
    if (msg.body === undefined) throw invalid('body must be a Uint8Array')
    const stored: StoredMessage = { id: msg.id, conversation: msg.conversation, seq: msg.seq, receivedAt: msg.receivedAt, body: msg.body }
    if (msg.expiresAt !== undefined) stored.expiresAt = msg.expiresAt
    return [putOp(b.primary, primary, encodeValue(stored)), ...keys.map(([bucket, key]) => putOp(bucket, key, EMPTY))]
  }

  async put (userId: string, msg: StoredMessage): Promise<PutResult> {
    checkString(userId, 'userId')
    this.validate(msg)
    const shard = this.shard(userId)
    const ops = this.recordOps(userId, msg, 'put')
    return await this.lock.with([DefaultMessageRepository.lockKey(userId, msg.id)], async () => {
      if (await shard.bucket(this.buckets.primary).get(encodeKey(userId, msg.id)) !== undefined) return { created: false }
      await shard.write(ops)
      return { created: true }
    })
  }

  async get (userId: string, id: string): Promise<StoredMessage | undefined> {
    checkString(userId, 'userId')
    checkString(id, 'id')
    const bytes = await this.shard(userId).bucket(this.buckets.primary).get(encodeKey(userId, id))
    return bytes === undefined ? undefined : decodeMessage(bytes, `${this.name} message ${id} of ${userId}`)
  }

  /** Reads the primaries of `ids` (in that order), skipping index entries whose record is gone. */
  private async load (shard: Shard, userId: string, ids: readonly string[]): Promise<StoredMessage[]> {
    const values = await shard.bucket(this.buckets.primary).getMany(ids.map((id) => encodeKey(userId, id)))
    const out: StoredMessage[] = []
    values.forEach((bytes, i) => {
      if (bytes !== undefined) out.push(decodeMessage(bytes, `${this.name} message ${ids[i] ?? ''} of ${userId}`))
    })
    return out
  }

  /** Scans an index of `userId` and returns the ids its keys end with. */
  private async scanIds (shard: Shard, bucket: number, range: KvRange, skip: (r: KeyReader) => void): Promise<string[]> {
    const ids: string[] = []
    for await (const [key] of shard.bucket(bucket).iterate(range)) {
      const reader = new KeyReader(key)
      skip(reader)
      ids.push(reader.string())
    }
    return ids
  }

  async listByConversation (userId: string, conversation: string, options: ConversationListOptions = {}): Promise<StoredMessage[]> {
    checkString(userId, 'userId')
    checkString(conversation, 'conversation')
    const limit = resolveLimit(options.limit, DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT)
    const fromSeq = options.fromSeq ?? 0
    checkTime(fromSeq, 'fromSeq')
    const shard = this.shard(userId)
    const ids = await this.scanIds(shard, this.buckets.byConversation, {
      gte: encodeKey(userId, conversation, fromSeq),
      lt: prefixUpperBound(encodeKey(userId, conversation)),
      limit
    }, (r) => { r.string(); r.string(); r.number() })
    return await this.load(shard, userId, ids)
  }

  async list (userId: string, options: ListOptions = {}): Promise<StoredMessage[]> {
    checkString(userId, 'userId')
    const limit = resolveLimit(options.limit, DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT)
    const after = options.after
    if (after !== undefined) {
      checkTime(after.receivedAt, 'after.receivedAt')
      checkString(after.id, 'after.id')
    }
    const shard = this.shard(userId)
    const prefix = encodeKey(userId)
    const range: KvRange = { lt: prefixUpperBound(prefix), limit }
    if (after === undefined) range.gte = prefix
    else range.gt = encodeKey(userId, after.receivedAt, after.id)
    const ids = await this.scanIds(shard, this.buckets.byReceivedAt, range, (r) => { r.string(); r.number() })
    return await this.load(shard, userId, ids)
  }

  async delete (userId: string, ids: readonly string[]): Promise<number> {
    checkString(userId, 'userId')
    for (const id of ids) checkString(id, 'id')
    if (ids.length === 0) return 0
    return await this.deleteOnShard(this.shard(userId), ids.map((id) => ({ userId, id })))
  }

  async deleteKnown (userId: string, records: readonly StoredMessageRef[]): Promise<number> {
    checkString(userId, 'userId')
    for (const r of records) DefaultMessageRepository.validateKeys(r)
    if (records.length === 0) return 0
    const shard = this.shard(userId)
    const ops = records.flatMap((r) => this.recordOps(userId, r, 'del'))
    await this.lock.with(records.map((r) => DefaultMessageRepository.lockKey(userId, r.id)), async () => {
      await shard.write(ops)
    })
    return records.length
  }

  /**
   * Removes records and their index entries in one batch, under their locks. With `expiredBy`,
   * only records still expired at that time go (one may have been replaced since the scan), and a
   * stale expiry entry is removed with them.
   */
  private async deleteOnShard (shard: Shard, refs: ReadonlyArray<{ userId: string, id: string, staleExpiryKey?: Uint8Array }>, expiredBy?: number): Promise<number> {
    return await this.lock.with(refs.map((r) => DefaultMessageRepository.lockKey(r.userId, r.id)), async () => {
      const values = await shard.bucket(this.buckets.primary).getMany(refs.map((r) => encodeKey(r.userId, r.id)))
      const ops: KvOp[] = []
      const seen = new Set<string>()
      let removed = 0
      values.forEach((bytes, i) => {
        const ref = refs[i] as { userId: string, id: string, staleExpiryKey?: Uint8Array }
        if (ref.staleExpiryKey !== undefined && this.buckets.byExpiry !== undefined) ops.push(delOp(this.buckets.byExpiry, ref.staleExpiryKey))
        const lockKey = DefaultMessageRepository.lockKey(ref.userId, ref.id)
        if (bytes === undefined || seen.has(lockKey)) return
        seen.add(lockKey)
        const msg = decodeMessage(bytes, `${this.name} message ${ref.id} of ${ref.userId}`)
        if (expiredBy !== undefined && (msg.expiresAt === undefined || msg.expiresAt > expiredBy)) return
        ops.push(...this.recordOps(ref.userId, msg, 'del'))
        removed++
      })
      await shard.write(ops)
      return removed
    })
  }

  async sweepExpired (now: number): Promise<number> {
    const byExpiry = this.buckets.byExpiry
    if (byExpiry === undefined) return 0
    checkTime(now, 'now')
    let total = 0
    // An explicit all-shards pass: expiry is a property of the node, not of one user.
    for (const shard of this.components.shards) {
      for (;;) {
        const refs: Array<{ userId: string, id: string, staleExpiryKey: Uint8Array }> = []
        for await (const [key] of shard.bucket(byExpiry).iterate({ lt: encodeKey(now + 1), limit: SWEEP_CHUNK })) {
          const r = new KeyReader(key)
          r.number()
          refs.push({ userId: r.string(), id: r.string(), staleExpiryKey: key.slice() })
        }
        if (refs.length === 0) break
        total += await this.deleteOnShard(shard, refs, now)
        if (refs.length < SWEEP_CHUNK) break
      }
    }
    return total
  }
}
