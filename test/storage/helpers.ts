/** Shared fixtures of the storage tests: a temp dir removed after the file's tests. */
import { after } from 'node:test'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Bucket } from '../../storage/buckets.js'
import type { KvEngine } from '../../storage/engine.js'
import { openMemoryEngine } from '../../storage/level-engine.js'
import { shardIndex } from '../../storage/partition.js'
import { DefaultMessageRepository } from '../../storage/repositories/messages.js'
import { Shard } from '../../storage/shard.js'
import type { ShardInit } from '../../storage/shard.js'

/** Creates a temp dir for this test file and registers its removal; returns a fresh-subdir maker. */
export async function tempDirs (label: string): Promise<() => string> {
  const root = await mkdtemp(join(tmpdir(), `talaria-${label}-`))
  after(async () => { await rm(root, { recursive: true, force: true }) })
  let n = 0
  return () => join(root, `d${n++}`)
}

/** UTF-8 bytes of a string. */
export const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s)


/** A mailbox repository over bare shards, so tests can inspect every bucket directly. */
export interface RepoFixture {
  repo: DefaultMessageRepository
  shards: Shard[]
  /** Number of keys in `bucket`, all shards. */
  count: (bucket: number) => Promise<number>
  close: () => Promise<void>
}

/** Builds a mailbox-shaped repository (with the expiry index) over `n` shards. */
export async function mailboxFixture (n = 2, open: (i: number) => Promise<KvEngine> = async () => await openMemoryEngine(), init: ShardInit = {}): Promise<RepoFixture> {
  const shards = await Promise.all(Array.from({ length: n }, async (_, i) => new Shard(i, await open(i), init)))
  const repo = new DefaultMessageRepository({ shards, shardFor: (k) => shardIndex(k, n) }, {
    primary: Bucket.mailbox, byConversation: Bucket.mailboxByConversation, byReceivedAt: Bucket.mailboxByReceivedAt, byExpiry: Bucket.mailboxByExpiry
  }, 'mailbox')
  return {
    repo,
    shards,
    count: async (bucket) => {
      let c = 0
      for (const s of shards) for await (const _ of s.bucket(bucket).iterate()) c++
      return c
    },
    close: async () => { await Promise.all(shards.map(async (s) => { await s.queue.close(); await s.engine.close() })) }
  }
}

/** Every bucket a mailbox record touches. */
export const MAILBOX_BUCKETS = [Bucket.mailbox, Bucket.mailboxByConversation, Bucket.mailboxByReceivedAt, Bucket.mailboxByExpiry]
