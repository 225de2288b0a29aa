/**
 * Opening a data dir: the meta file, the shards, the repositories and the TTL sweeper, and closing
 * them again in reverse order.
 */
import { mkdir, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { Logger } from 'pino'
import type { CommitQueueInit, CommitQueueStats } from './commit-queue.js'
import type { KvEngine } from './engine.js'
import { StorageError } from './errors.js'
import { openLevelEngine, openMemoryEngine } from './level-engine.js'
import { checkSchema, MAX_SHARDS, readMeta, STORAGE_SCHEMA_VERSION, writeMeta } from './meta.js'
import type { StorageMeta } from './meta.js'
import { shardIndex } from './partition.js'
import { DefaultDhtRepository } from './repositories/dht.js'
import type { DhtRepository } from './repositories/dht.js'
import { DefaultKvRepository } from './repositories/kv.js'
import type { KvRepository } from './repositories/kv.js'
import { DefaultMessageRepository, partitionOfOwner } from './repositories/messages.js'
import type { InboxRepository, MailboxRepository } from './repositories/messages.js'
import { DefaultGroupRepository } from './repositories/groups.js'
import type { GroupRepository } from './repositories/groups.js'
import { DefaultOutboxRepository } from './repositories/outbox.js'
import type { OutboxRepository } from './repositories/outbox.js'
import { Bucket } from './buckets.js'
import { Shard } from './shard.js'
import type { ShardInit } from './shard.js'

/** Default number of shards of a new data dir. */
export const DEFAULT_SHARDS = 8
/** Default storage engine. */
export const DEFAULT_ENGINE = 'level'
/** Default period of the mailbox TTL sweeper. */
export const DEFAULT_SWEEP_INTERVAL_MS = 60_000
/** Name of the folder holding one LevelDB per shard. */
export const SHARDS_DIR = 'shards'

/** Options of {@link openStorage}. */
export interface StorageInit extends CommitQueueInit, ShardInit {
  /** The node's data dir; created if missing. Ignored by the memory engine, which touches no disk. */
  dataDir: string
  /**
   * Shard count of a new data dir. An existing data dir keeps the count recorded in its meta file;
   * a different value here is ignored with a warning, because moving records between shards would
   * need a migration.
   */
  shards?: number
  /** 'level' (LevelDB on disk) or 'memory' (nothing persisted). */
  engine?: 'level' | 'memory'
  /** Structured logger; none by default. */
  logger?: Logger
  /** Period of the mailbox TTL sweeper; 0 disables it (call `mailbox.sweepExpired` yourself). */
  sweepIntervalMs?: number
  /** Clock of the sweeper, milliseconds since the epoch; `Date.now` by default. */
  now?: () => number
}

/** Counters of the storage, summed over shards and per shard. */
export interface StorageStats {
  /** Batches flushed, all shards. */
  batches: number
  /** Write calls accepted, all shards. */
  writes: number
  /** Operations flushed, all shards. */
  ops: number
  /** Failed batches, all shards. */
  failedBatches: number
  /** Per-shard commit-queue counters, by shard index. */
  shards: CommitQueueStats[]
}

/** An open data dir and its repositories. */
export interface Storage {
  /** The data dir (as given). */
  readonly dataDir: string
  /** Number of shards, as recorded in the meta file. */
  readonly shardCount: number
  /** The meta record of this data dir. */
  readonly meta: Readonly<StorageMeta>
  /** Shard that holds `partitionKey` (a user id or a group id). */
  shardFor (partitionKey: string): number
  /** Records of the libp2p DHT datastore. */
  readonly dht: DhtRepository
  /** Node-local settings. */
  readonly kv: KvRepository
  /** Messages delivered to this node's users, partitioned by user id. */
  readonly inbox: InboxRepository
  /** Replicas of offline users' messages held here, with a TTL; partitioned by user id. */
  readonly mailbox: MailboxRepository
  /** Envelopes accepted from local senders and not yet delivered, partitioned by sender user id. */
  readonly outbox: OutboxRepository
  /** Group logs, group and room history and per-group meta, partitioned by group id. */
  readonly groups: GroupRepository
  /** Commit counters. */
  stats (): StorageStats
  /** Stops the sweeper, flushes every commit queue, then closes every shard. Idempotent. */
  close (): Promise<void>
}

/** Closes engines, ignoring failures: used on a failed open, where the first error is what matters. */
async function closeQuietly (engines: readonly KvEngine[]): Promise<void> {
  await Promise.allSettled(engines.map(async (e) => { await e.close() }))
}

/** Reads or creates the meta record of a LevelDB data dir. */
async function prepareDataDir (init: StorageInit): Promise<StorageMeta> {
  const dataDir = init.dataDir
  await mkdir(dataDir, { recursive: true })
  const existing = await readMeta(dataDir)
  if (existing !== undefined) {
    checkSchema(existing, dataDir)
    if (init.shards !== undefined && init.shards !== existing.shards) {
      init.logger?.warn({ dataDir, recorded: existing.shards, requested: init.shards },
        'requested shard count ignored: the data dir keeps the count it was created with')
    }
    return existing
  }
  const shardEntries = await readdir(join(dataDir, SHARDS_DIR)).catch(() => [])
  if (shardEntries.length > 0) {
    throw new StorageError('ERR_DATA_DIR_CORRUPT',
      `data dir ${dataDir} has shards but no storage.json: the shard count is unknown, refusing to guess`)
  }
  const meta: StorageMeta = { schemaVersion: STORAGE_SCHEMA_VERSION, shards: resolveShardCount(init.shards), createdAt: Date.now() }
  await writeMeta(dataDir, meta)
  init.logger?.info({ dataDir, shards: meta.shards, schemaVersion: meta.schemaVersion }, 'created storage data dir')
  return meta
}

function resolveShardCount (requested: number | undefined): number {
  const n = requested ?? DEFAULT_SHARDS
  if (!Number.isSafeInteger(n) || n < 1 || n > MAX_SHARDS) {
    throw new StorageError('ERR_INVALID_ARGUMENT', `shards must be an integer from 1 to ${MAX_SHARDS}, got ${n}`)
  }
  return n
}

/** Directory name of shard `i`: two digits at least ('00', '01', …). */
export function shardDirName (i: number): string {
  return String(i).padStart(2, '0')
}

/**
 * Opens (creating if needed) the data dir at `init.dataDir`: checks the meta file and schema
 * version, opens every shard, and returns the repositories over them.
 */
export async function openStorage (init: StorageInit): Promise<Storage> {
  const engineKind = init.engine ?? DEFAULT_ENGINE
  let meta: StorageMeta
  let engines: KvEngine[]
  if (engineKind === 'memory') {
    meta = { schemaVersion: STORAGE_SCHEMA_VERSION, shards: resolveShardCount(init.shards), createdAt: Date.now() }
    engines = await Promise.all(Array.from({ length: meta.shards }, async (_, i) => await openMemoryEngine(`memory shard ${i}`)))
  } else {
    meta = await prepareDataDir(init)
    const results = await Promise.allSettled(Array.from({ length: meta.shards },
      async (_, i) => await openLevelEngine(join(init.dataDir, SHARDS_DIR, shardDirName(i)))))
    engines = results.flatMap((r) => r.status === 'fulfilled' ? [r.value] : [])
    const failures = results.flatMap((r) => r.status === 'rejected' ? [r.reason as unknown] : [])
    if (failures.length > 0) {
      await closeQuietly(engines)
      throw failures.find((e) => e instanceof StorageError && e.code === 'ERR_LOCKED') ?? failures[0]
    }
  }
  return new DefaultStorage(init, meta, engines)
}

class DefaultStorage implements Storage {
  readonly dataDir: string
  readonly shardCount: number
  readonly meta: Readonly<StorageMeta>
  readonly dht: DhtRepository
  readonly kv: KvRepository
  readonly inbox: InboxRepository
  readonly mailbox: MailboxRepository
  readonly outbox: OutboxRepository
  readonly groups: GroupRepository
  private readonly shards: Shard[]
  private readonly logger: Logger | undefined
  private readonly now: () => number
  private sweeper: ReturnType<typeof setInterval> | undefined
  private sweeping: Promise<void> | undefined
  private closing: Promise<void> | undefined

  constructor (init: StorageInit, meta: StorageMeta, engines: KvEngine[]) {
    this.dataDir = init.dataDir
    this.meta = Object.freeze({ ...meta })
    this.shardCount = meta.shards
    this.shards = engines.map((engine, i) => new Shard(i, engine, init))
    const first = this.shards[0] as Shard
    this.dht = new DefaultDhtRepository(first)
    this.kv = new DefaultKvRepository(first)
    // A message owner key is a user id, or `<user>/<device>` for per-device boxes: either way the
    // records sit on the user's shard.
    const components = { shards: this.shards, shardFor: (key: string) => this.shardFor(partitionOfOwner(key)) }
    this.inbox = new DefaultMessageRepository(components, {
      primary: Bucket.inbox, byConversation: Bucket.inboxByConversation, byReceivedAt: Bucket.inboxByReceivedAt
    }, 'inbox')
    this.mailbox = new DefaultMessageRepository(components, {
      primary: Bucket.mailbox, byConversation: Bucket.mailboxByConversation, byReceivedAt: Bucket.mailboxByReceivedAt, byExpiry: Bucket.mailboxByExpiry
    }, 'mailbox')
    this.outbox = new DefaultOutboxRepository({ shards: this.shards, shardFor: (key: string) => this.shardFor(key) })
    this.groups = new DefaultGroupRepository({ shards: this.shards, shardFor: (group: string) => this.shardFor(group) })
    this.logger = init.logger
    this.now = init.now ?? Date.now
    const interval = init.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS
    if (interval > 0) {
      this.sweeper = setInterval(() => { this.sweepInBackground() }, interval)
      // The sweeper must never keep the process alive on its own.
      this.sweeper.unref()
    }
  }

  /** One sweeper tick; skipped while the previous one still runs, failures logged, never thrown. */
  private sweepInBackground (): void {
    if (this.sweeping !== undefined || this.closing !== undefined) return
    this.sweeping = (async () => {
      try {
        const removed = await this.mailbox.sweepExpired(this.now())
        if (removed > 0) this.logger?.debug({ removed }, 'mailbox TTL sweep')
      } catch (err) {
        this.logger?.warn({ err }, 'mailbox TTL sweep failed; retrying at the next tick')
      } finally {
        this.sweeping = undefined
      }
    })()
  }

  shardFor (partitionKey: string): number {
    return shardIndex(partitionKey, this.shardCount)
  }

  stats (): StorageStats {
    const shards = this.shards.map((s) => s.queue.stats())
    const sum = (k: 'batches' | 'writes' | 'ops' | 'failedBatches'): number => shards.reduce((a, s) => a + s[k], 0)
    return { batches: sum('batches'), writes: sum('writes'), ops: sum('ops'), failedBatches: sum('failedBatches'), shards }
  }

  async close (): Promise<void> {
    this.closing ??= (async () => {
      clearInterval(this.sweeper)
      await this.sweeping
      await Promise.all(this.shards.map(async (s) => { await s.queue.close() }))
      await Promise.all(this.shards.map(async (s) => { await s.engine.close() }))
    })()
    await this.closing
  }
}
