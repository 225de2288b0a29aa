/**
 * The group repository: per group, the signed ops of its log (by op id, and in the order this node
 * learnt them, so the log reloads by replaying them), its messages (encoded envelopes, indexed by
 * (sentAt, id) for history pages) and a small meta record. Everything of a group sits on the group
 * id's shard; a record, its index entries and the meta counters change in one atomic batch.
 *
 * Retention: messages are kept at most `limit` per group (the oldest by (sentAt, id) go first) and
 * {@link GroupRepository.sweepMessages} removes those sent before a time. The repository knows no
 * policy; the groups service passes its limits.
 */
import { Bucket } from '../buckets.js'
import { asBytes, decodeValue, encodeValue } from '../codec.js'
import type { KvOp } from '../engine.js'
import { StorageError } from '../errors.js'
import { checkString, checkTime, invalid, resolveLimit } from '../arguments.js'
import { encodeKey, KeyReader, prefixUpperBound } from '../keys.js'
import { KeyedLock } from '../keyed-lock.js'
import { delOp, putOp } from '../shard.js'
import type { Shard } from '../shard.js'

/** Default page size of the list calls. */
export const DEFAULT_GROUP_PAGE = 100
/** Largest page size of the list calls. */
export const MAX_GROUP_PAGE = 1000
/** Messages removed per batch by trimming and sweeping. */
export const GROUP_TRIM_CHUNK = 500

/** One stored op of a group log. */
export interface StoredGroupOp {
  /** Op id (content hash); a second put of an id is a no-op. */
  id: string
  /** The encoded, signed op. */
  bytes: Uint8Array
}

/** A stored op with its position in this node's insertion order. */
export interface OrderedGroupOp extends StoredGroupOp {
  /** Insertion order within the group, from 1. */
  seq: number
}

/** A stored group or room message. */
export interface StoredGroupMessage {
  /** Envelope id; a second put of an id is a no-op. */
  id: string
  /** The sender's clock (the history order). */
  sentAt: number
  /** When this node stored it. */
  receivedAt: number
  /** The encoded envelope, exactly as signed. */
  body: Uint8Array
}

/** A position in a group's history order: pass the last message of a page. */
export interface GroupHistoryCursor {
  sentAt: number
  id: string
}

/** Per-group bookkeeping. */
export interface GroupMeta {
  /** Ops stored. */
  ops: number
  /** Messages stored. */
  messages: number
  /**
   * Since when (ms since the epoch) this node has held the group's history without a gap: set
   * when it starts following the group, cleared when it stops (unsubscribes or shuts down), moved
   * back when a history fetch filled the gap. Absent: no continuous coverage now.
   */
  coveredSince?: number
  /** This node keeps the group as one of the replicas nearest its id (not for a local member). */
  replica?: boolean
  /** Last time the group had traffic or a keep request here, ms since the epoch. */
  touchedAt?: number
}

/** Options of {@link GroupRepository.listMessages}. */
export interface GroupHistoryOptions {
  /** First sentAt included (when `after` is absent). */
  since?: number
  /** Start after this position (exclusive). */
  after?: GroupHistoryCursor
  /** Page size, 1 to {@link MAX_GROUP_PAGE}; default {@link DEFAULT_GROUP_PAGE}. */
  limit?: number
}

/** Groups: logs, history and meta, partitioned by group id. */
export interface GroupRepository {
  /** Stores ops not stored yet, in the given order, durably; returns the ids that were new. */
  putOps (group: string, ops: readonly StoredGroupOp[]): Promise<string[]>
  /** True when op `id` of `group` is stored. */
  hasOp (group: string, id: string): Promise<boolean>
  /** Ops of `group` in insertion order, after insertion position `afterSeq` (0: from the start). */
  listOps (group: string, options?: { afterSeq?: number, limit?: number }): Promise<OrderedGroupOp[]>
  /**
   * Stores messages not stored yet, durably, then trims the group to its newest `limit` messages.
   * Returns the ids that were new (and survived the trim).
   */
  putMessages (group: string, messages: readonly StoredGroupMessage[], options: { limit: number }): Promise<string[]>
  /** Message `id` of `group`, or undefined. */
  getMessage (group: string, id: string): Promise<StoredGroupMessage | undefined>
  /** Messages of `group` in (sentAt, id) order. */
  listMessages (group: string, options?: GroupHistoryOptions): Promise<StoredGroupMessage[]>
  /** Removes messages of `group` sent before `before`; returns how many. */
  sweepMessages (group: string, before: number): Promise<number>
  /** The meta record of `group`, or undefined when nothing of it is stored. */
  getMeta (group: string): Promise<GroupMeta | undefined>
  /** Changes the coverage and replica fields of the meta record (counters are the repository's). */
  updateMeta (group: string, patch: Partial<Pick<GroupMeta, 'coveredSince' | 'replica' | 'touchedAt'>> & { clearCoverage?: boolean }): Promise<GroupMeta>
  /** Every group with a meta record, all shards. */
  groups (): AsyncIterable<string>
}

/** What the repository is built from. */
export interface GroupRepositoryComponents {
  shards: readonly Shard[]
  shardFor: (group: string) => number
}

const EMPTY = new Uint8Array(0)

function corrupt (what: string): StorageError {
  return new StorageError('ERR_CORRUPT', `stored ${what} does not have the expected shape`)
}

function decodeMessage (bytes: Uint8Array, what: string): StoredGroupMessage {
  const v = decodeValue(bytes, what) as Partial<Record<keyof StoredGroupMessage, unknown>> | null
  const body = asBytes(v?.body)
  if (v === null || typeof v !== 'object' || typeof v.id !== 'string' || typeof v.sentAt !== 'number' ||
    typeof v.receivedAt !== 'number' || body === undefined) throw corrupt(what)
  return { id: v.id, sentAt: v.sentAt, receivedAt: v.receivedAt, body }
}

function decodeMeta (bytes: Uint8Array, what: string): GroupMeta {
  const v = decodeValue(bytes, what) as Partial<Record<keyof GroupMeta, unknown>> | null
  if (v === null || typeof v !== 'object' || typeof v.ops !== 'number' || typeof v.messages !== 'number') throw corrupt(what)
  const meta: GroupMeta = { ops: v.ops, messages: v.messages }
  if (typeof v.coveredSince === 'number') meta.coveredSince = v.coveredSince
  if (v.replica === true) meta.replica = true
  if (typeof v.touchedAt === 'number') meta.touchedAt = v.touchedAt
  return meta
}

function encodeMeta (m: GroupMeta): Uint8Array {
  const out: Record<string, unknown> = { ops: m.ops, messages: m.messages }
  if (m.coveredSince !== undefined) out.coveredSince = m.coveredSince
  if (m.replica === true) out.replica = true
  if (m.touchedAt !== undefined) out.touchedAt = m.touchedAt
  return encodeValue(out)
}

/** The group repository over the storage shards. */
export class DefaultGroupRepository implements GroupRepository {
  // one writer per group: writes read the meta counters and the last op position first
  private readonly lock = new KeyedLock()

  constructor (private readonly components: GroupRepositoryComponents) {}

  private shard (group: string): Shard {
    return this.components.shards[this.components.shardFor(group)] as Shard
  }

  private async readMeta (shard: Shard, group: string): Promise<GroupMeta | undefined> {
    const bytes = await shard.bucket(Bucket.groupMeta).get(encodeKey(group))
    return bytes === undefined ? undefined : decodeMeta(bytes, `group meta of ${group}`)
  }

  private async lastOpSeq (shard: Shard, group: string): Promise<number> {
    for await (const [key] of shard.bucket(Bucket.groupOpsByOrder).iterate({ gte: encodeKey(group), lt: prefixUpperBound(encodeKey(group)), reverse: true, limit: 1 })) {
      const r = new KeyReader(key)
      r.string()
      return r.number()
    }
    return 0
  }

  async putOps (group: string, ops: readonly StoredGroupOp[]): Promise<string[]> {
    checkString(group, 'group')
    for (const op of ops) {
      checkString(op.id, 'op id')
      if (!(op.bytes instanceof Uint8Array)) throw invalid('op bytes must be a Uint8Array')
    }
    if (ops.length === 0) return []
    const shard = this.shard(group)
    return await this.lock.with([group], async () => {
      const existing = await shard.bucket(Bucket.groupOps).getMany(ops.map((op) => encodeKey(group, op.id)))
      const meta = await this.readMeta(shard, group) ?? { ops: 0, messages: 0 }
      let seq = await this.lastOpSeq(shard, group)
      const writes: KvOp[] = []
      const created: string[] = []
      const seen = new Set<string>()
      ops.forEach((op, i) => {
        if (existing[i] !== undefined || seen.has(op.id)) return
        seen.add(op.id)
        seq++
        writes.push(putOp(Bucket.groupOps, encodeKey(group, op.id), encodeValue({ seq })))
        writes.push(putOp(Bucket.groupOpsByOrder, encodeKey(group, seq), encodeValue({ id: op.id, bytes: op.bytes })))
        created.push(op.id)
      })
      if (created.length === 0) return []
      meta.ops += created.length
      writes.push(putOp(Bucket.groupMeta, encodeKey(group), encodeMeta(meta)))
      await shard.write(writes)
      return created
    })
  }

  async hasOp (group: string, id: string): Promise<boolean> {
    checkString(group, 'group')
    checkString(id, 'op id')
    return await this.shard(group).bucket(Bucket.groupOps).get(encodeKey(group, id)) !== undefined
  }

  async listOps (group: string, options: { afterSeq?: number, limit?: number } = {}): Promise<OrderedGroupOp[]> {
    checkString(group, 'group')
    const limit = resolveLimit(options.limit, DEFAULT_GROUP_PAGE, MAX_GROUP_PAGE)
    const afterSeq = options.afterSeq ?? 0
    checkTime(afterSeq, 'afterSeq')
    const out: OrderedGroupOp[] = []
    for await (const [key, value] of this.shard(group).bucket(Bucket.groupOpsByOrder).iterate({ gt: encodeKey(group, afterSeq), lt: prefixUpperBound(encodeKey(group)), limit })) {
      const r = new KeyReader(key)
      r.string()
      const seq = r.number()
      const v = decodeValue(value, `group op ${seq} of ${group}`) as { id?: unknown, bytes?: unknown } | null
      const bytes = asBytes(v?.bytes)
      if (v === null || typeof v.id !== 'string' || bytes === undefined) throw corrupt(`group op ${seq} of ${group}`)
      out.push({ seq, id: v.id, bytes })
    }
    return out
  }

  private static messageOps (group: string, msg: StoredGroupMessage, kind: 'put' | 'del'): KvOp[] {
    const primary = encodeKey(group, msg.id)
    const index = encodeKey(group, msg.sentAt, msg.id)
    if (kind === 'del') return [delOp(Bucket.groupMessages, primary), delOp(Bucket.groupMessagesBySentAt, index)]
    const stored = encodeValue({ id: msg.id, sentAt: msg.sentAt, receivedAt: msg.receivedAt, body: msg.body })
    return [putOp(Bucket.groupMessages, primary, stored), putOp(Bucket.groupMessagesBySentAt, index, EMPTY)]
  }

  async putMessages (group: string, messages: readonly StoredGroupMessage[], options: { limit: number }): Promise<string[]> {
    checkString(group, 'group')
    for (const m of messages) {
      checkString(m.id, 'message id')
      checkTime(m.sentAt, 'sentAt')
      checkTime(m.receivedAt, 'receivedAt')
      if (!(m.body instanceof Uint8Array)) throw invalid('message body must be a Uint8Array')
    }
    if (!Number.isSafeInteger(options.limit) || options.limit < 1) throw invalid('limit must be a positive integer')
    if (messages.length === 0) return []
    const shard = this.shard(group)
    return await this.lock.with([group], async () => {
      const existing = await shard.bucket(Bucket.groupMessages).getMany(messages.map((m) => encodeKey(group, m.id)))
      const meta = await this.readMeta(shard, group) ?? { ops: 0, messages: 0 }
      const writes: KvOp[] = []
      const created = new Set<string>()
      messages.forEach((m, i) => {
        if (existing[i] !== undefined || created.has(m.id)) return
        created.add(m.id)
        writes.push(...DefaultGroupRepository.messageOps(group, m, 'put'))
      })
      if (created.size === 0) return []
      meta.messages += created.size
      writes.push(putOp(Bucket.groupMeta, encodeKey(group), encodeMeta(meta)))
      await shard.write(writes)
      // newest win: drop the oldest beyond the limit (possibly some just written, when they are older)
      while (meta.messages > options.limit) {
        const excess = Math.min(meta.messages - options.limit, GROUP_TRIM_CHUNK)
        const victims = await this.scanMessageRefs(shard, group, { gte: encodeKey(group), lt: prefixUpperBound(encodeKey(group)), limit: excess })
        if (victims.length === 0) break
        for (const v of victims) created.delete(v.id)
        await this.deleteRefs(shard, group, meta, victims)
      }
      return [...created]
    })
  }

  private async scanMessageRefs (shard: Shard, group: string, range: { gte?: Uint8Array, gt?: Uint8Array, lt?: Uint8Array, limit: number }): Promise<GroupHistoryCursor[]> {
    const refs: GroupHistoryCursor[] = []
    for await (const [key] of shard.bucket(Bucket.groupMessagesBySentAt).iterate(range)) {
      const r = new KeyReader(key)
      r.string()
      const sentAt = r.number()
      refs.push({ sentAt, id: r.string() })
    }
    return refs
  }

  /** Deletes messages by their index positions and updates the count; caller holds the group lock. */
  private async deleteRefs (shard: Shard, group: string, meta: GroupMeta, refs: readonly GroupHistoryCursor[]): Promise<void> {
    const writes: KvOp[] = []
    for (const ref of refs) writes.push(...DefaultGroupRepository.messageOps(group, { ...ref, receivedAt: 0, body: EMPTY }, 'del'))
    meta.messages = Math.max(0, meta.messages - refs.length)
    writes.push(putOp(Bucket.groupMeta, encodeKey(group), encodeMeta(meta)))
    await shard.write(writes)
  }

  async getMessage (group: string, id: string): Promise<StoredGroupMessage | undefined> {
    checkString(group, 'group')
    checkString(id, 'message id')
    const bytes = await this.shard(group).bucket(Bucket.groupMessages).get(encodeKey(group, id))
    return bytes === undefined ? undefined : decodeMessage(bytes, `group message ${id} of ${group}`)
  }

  async listMessages (group: string, options: GroupHistoryOptions = {}): Promise<StoredGroupMessage[]> {
    checkString(group, 'group')
    const limit = resolveLimit(options.limit, DEFAULT_GROUP_PAGE, MAX_GROUP_PAGE)
    const shard = this.shard(group)
    const range: { gte?: Uint8Array, gt?: Uint8Array, lt?: Uint8Array, limit: number } = { lt: prefixUpperBound(encodeKey(group)), limit }
    if (options.after !== undefined) {
      checkTime(options.after.sentAt, 'after.sentAt')
      checkString(options.after.id, 'after.id')
      range.gt = encodeKey(group, options.after.sentAt, options.after.id)
    } else {
      const since = options.since ?? 0
      checkTime(since, 'since')
      range.gte = encodeKey(group, since)
    }
    const refs = await this.scanMessageRefs(shard, group, range)
    const values = await shard.bucket(Bucket.groupMessages).getMany(refs.map((r) => encodeKey(group, r.id)))
    const out: StoredGroupMessage[] = []
    values.forEach((bytes, i) => {
      if (bytes !== undefined) out.push(decodeMessage(bytes, `group message ${refs[i]?.id ?? ''} of ${group}`))
    })
    return out
  }

  async sweepMessages (group: string, before: number): Promise<number> {
    checkString(group, 'group')
    checkTime(before, 'before')
    const shard = this.shard(group)
    let removed = 0
    for (;;) {
      const n = await this.lock.with([group], async () => {
        const refs = await this.scanMessageRefs(shard, group, { gte: encodeKey(group), lt: encodeKey(group, before), limit: GROUP_TRIM_CHUNK })
        if (refs.length === 0) return 0
        const meta = await this.readMeta(shard, group) ?? { ops: 0, messages: refs.length }
        await this.deleteRefs(shard, group, meta, refs)
        return refs.length
      })
      removed += n
      if (n < GROUP_TRIM_CHUNK) return removed
    }
  }

  async getMeta (group: string): Promise<GroupMeta | undefined> {
    checkString(group, 'group')
    return await this.readMeta(this.shard(group), group)
  }

  async updateMeta (group: string, patch: Partial<Pick<GroupMeta, 'coveredSince' | 'replica' | 'touchedAt'>> & { clearCoverage?: boolean }): Promise<GroupMeta> {
    checkString(group, 'group')
    if (patch.coveredSince !== undefined) checkTime(patch.coveredSince, 'coveredSince')
    if (patch.touchedAt !== undefined) checkTime(patch.touchedAt, 'touchedAt')
    const shard = this.shard(group)
    return await this.lock.with([group], async () => {
      const meta = await this.readMeta(shard, group) ?? { ops: 0, messages: 0 }
      if (patch.clearCoverage === true) delete meta.coveredSince
      else if (patch.coveredSince !== undefined) meta.coveredSince = patch.coveredSince
      if (patch.replica !== undefined) {
        if (patch.replica) meta.replica = true
        else delete meta.replica
      }
      if (patch.touchedAt !== undefined) meta.touchedAt = patch.touchedAt
      await shard.write([putOp(Bucket.groupMeta, encodeKey(group), encodeMeta(meta))])
      return meta
    })
  }

  async * groups (): AsyncIterable<string> {
    for (const shard of this.components.shards) {
      for await (const [key] of shard.bucket(Bucket.groupMeta).iterate()) yield new KeyReader(key).string()
    }
  }
}
