/**
 * Partitioning: which shard holds a partition key (user id for inbox and mailbox data, group id for
 * group data). The hash is part of the on-disk format: changing it would strand every record of an
 * existing data dir on the wrong shard, so it must never change.
 */
import { createHash } from 'node:crypto'

/**
 * Shard of `partitionKey` among `shardCount` shards: the first 4 bytes of SHA-256 over the key's
 * UTF-8 bytes, read as an unsigned big-endian integer, modulo `shardCount`.
 */
export function shardIndex (partitionKey: string, shardCount: number): number {
  const digest = createHash('sha256').update(partitionKey, 'utf8').digest()
  return digest.readUInt32BE(0) % shardCount
}
