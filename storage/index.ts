/**
 * Talaria's storage layer: typed repositories over hash-partitioned LevelDB shards, with
 * group-committed durable writes and a schema version checked at open. See docs/STORAGE.md.
 */
export { openStorage, DEFAULT_SHARDS, DEFAULT_ENGINE, DEFAULT_SWEEP_INTERVAL_MS, SHARDS_DIR, shardDirName } from './storage.js'
export type { Storage, StorageInit, StorageStats } from './storage.js'
export { STORAGE_SCHEMA_VERSION, META_FILE, MAX_SHARDS } from './meta.js'
export type { StorageMeta } from './meta.js'
export { StorageError, STORAGE_ERROR_CODES } from './errors.js'
export type { StorageErrorCode } from './errors.js'
export { shardIndex } from './partition.js'
export { Bucket } from './buckets.js'
export type { BucketName } from './buckets.js'
export { DEFAULT_COMMIT_WINDOW_MS, DEFAULT_MAX_BATCH, DEFAULT_MAX_PENDING } from './commit-queue.js'
export type { CommitQueueInit, CommitQueueStats } from './commit-queue.js'
export { DEFAULT_MAX_KEY_BYTES, DEFAULT_MAX_VALUE_BYTES } from './shard.js'
export type { DhtRepository, DhtEntry, DhtBatchOp, DhtEntriesOptions } from './repositories/dht.js'
export type { KvRepository } from './repositories/kv.js'
export { DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT, SWEEP_CHUNK, OWNER_KEY_SEPARATOR, deviceOwnerKey, partitionOfOwner } from './repositories/messages.js'
export { DefaultOutboxRepository } from './repositories/outbox.js'
export type { OutboxEntry, OutboxRepository, OutboxRepositoryComponents } from './repositories/outbox.js'
export type {
  StoredMessage, StoredMessageRef, PutResult, ListCursor, ListOptions, ConversationListOptions,
  MessageRepository, InboxRepository, MailboxRepository
} from './repositories/messages.js'
export { DefaultGroupRepository, DEFAULT_GROUP_PAGE, MAX_GROUP_PAGE, GROUP_TRIM_CHUNK } from './repositories/groups.js'
export type {
  GroupRepository, GroupRepositoryComponents, StoredGroupOp, OrderedGroupOp, StoredGroupMessage, GroupHistoryCursor, GroupMeta, GroupHistoryOptions
} from './repositories/groups.js'
