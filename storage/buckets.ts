/**
 * The key-space table. Every record kind and every index lives under its own one-byte prefix in a
 * shard. A prefix is never reused, even after a record kind is retired: old data dirs may still
 * hold keys under it, and reading them as another kind would be silent corruption. Add new kinds
 * with fresh numbers; mark retired ones as such and leave them here.
 */
export const Bucket = {
  /** libp2p DHT datastore records (opaque bytes), shard 0. */
  dht: 0x01,
  /** Node-local settings (string key → msgpack value), shard 0. */
  kv: 0x02,
  /** Inbox primary records: (user, id) → message. */
  inbox: 0x10,
  /** Inbox index: (user, conversation, seq, id) → empty. */
  inboxByConversation: 0x11,
  /** Inbox index: (user, receivedAt, id) → empty. */
  inboxByReceivedAt: 0x12,
  /** Mailbox replica primary records: (user, id) → message. */
  mailbox: 0x20,
  /** Mailbox index: (user, conversation, seq, id) → empty. */
  mailboxByConversation: 0x21,
  /** Mailbox index: (user, receivedAt, id) → empty. */
  mailboxByReceivedAt: 0x22,
  /** Mailbox index: (expiresAt, user, id) → empty; scanned by the TTL sweeper. */
  mailboxByExpiry: 0x23,
  /** Outbox primary records: (sender user, id) → entry. */
  outbox: 0x30,
  /** Outbox index: (order, sender user, id) → empty; scanned to resume delivery after a restart. */
  outboxByOrder: 0x31,
  /** Group ops: (group, op id) → { seq }. */
  groupOps: 0x40,
  /** Group ops in insertion order: (group, seq) → { id, bytes }; replayed to reload a log. */
  groupOpsByOrder: 0x41,
  /** Group messages: (group, id) → { id, sentAt, receivedAt, body }. */
  groupMessages: 0x42,
  /** Group message index: (group, sentAt, id) → empty; history pages and trimming. */
  groupMessagesBySentAt: 0x43,
  /** Group meta: (group) → { ops, messages, coveredSince?, replica?, touchedAt? }. */
  groupMeta: 0x44
} as const

/** Name of a bucket in {@link Bucket}. */
export type BucketName = keyof typeof Bucket
