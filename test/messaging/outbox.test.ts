import assert from 'node:assert/strict'
import { rm } from 'node:fs/promises'
import { describe, test } from 'node:test'
import { Bucket, DefaultOutboxRepository, openStorage, deviceOwnerKey, shardIndex, type OutboxEntry } from '../../storage/index.js'
import { openMemoryEngine } from '../../storage/level-engine.js'
import { Shard } from '../../storage/shard.js'
import { tempDataDir } from '../helpers/mesh.js'

function entry (senderUser: string, id: string, order: number): OutboxEntry {
  return { id, order, senderUser, senderDevice: 'd1', recipientUser: 'u9', recipientDevice: 'd9', createdAt: 1, body: new Uint8Array([order & 0xff]) }
}

describe('storage: outbox and per-device boxes', () => {
  test('outbox put is idempotent by (sender, id); list merges shards in order; delete removes entries and index', async () => {
    const dir = await tempDataDir()
    const storage = await openStorage({ dataDir: dir, shards: 4, sweepIntervalMs: 0 })
    try {
      const senders = ['ua', 'ub', 'uc', 'ud', 'ue']
      const entries = Array.from({ length: 50 }, (_, i) => entry(senders[i % senders.length] as string, `m${i}`, 100 + i))
      assert.deepEqual(await storage.outbox.put(entries), entries.map(() => true))
      assert.deepEqual(await storage.outbox.put([entries[3] as OutboxEntry, entries[3] as OutboxEntry, entry('ua', 'new', 500)]), [false, false, true])
      const all = await storage.outbox.list()
      assert.deepEqual(all.map((e) => e.order), [...entries.map((e) => e.order), 500])
      assert.deepEqual((await storage.outbox.list({ afterOrder: 140, limit: 5 })).map((e) => e.order), [141, 142, 143, 144, 145])
      assert.equal(await storage.outbox.delete([{ senderUser: 'ua', id: 'm0' }, { senderUser: 'ua', id: 'm0' }, { senderUser: 'zz', id: 'none' }]), 1)
      assert.equal((await storage.outbox.list()).length, 50)
    } finally {
      await storage.close()
      await rm(dir, { recursive: true, force: true })
    }
  })

  test('outbox deleteKnown removes entries and their order index by the order the caller holds', async () => {
    const shards = await Promise.all([0, 1, 2].map(async (i) => new Shard(i, await openMemoryEngine())))
    const outbox = new DefaultOutboxRepository({ shards, shardFor: (k) => shardIndex(k, shards.length) })
    const count = async (bucket: number): Promise<number> => {
      let c = 0
      for (const shard of shards) for await (const _ of shard.bucket(bucket).iterate()) c++
      return c
    }
    try {
      const entries = Array.from({ length: 12 }, (_, i) => entry(`u${i % 3}`, `m${i}`, 10 + i))
      await outbox.put(entries)
      await outbox.deleteKnown(entries.filter((_, i) => i % 2 === 0))
      assert.deepEqual((await outbox.list()).map((e) => e.order), [11, 13, 15, 17, 19, 21])
      assert.equal(await count(Bucket.outbox), 6)
      assert.equal(await count(Bucket.outboxByOrder), 6, 'no order index entry is left behind')
      // a deleted id is new again
      assert.deepEqual(await outbox.put([entry('u0', 'm0', 100)]), [true])
      await assert.rejects(outbox.deleteKnown([{ senderUser: 'u0', id: 'm1', order: -1 }]), /order/)
    } finally {
      await Promise.all(shards.map(async (shard) => { await shard.queue.close(); await shard.engine.close() }))
    }
  })

  test('two devices of one user have separate inboxes', async () => {
    const dir = await tempDataDir()
    const storage = await openStorage({ dataDir: dir, shards: 8, sweepIntervalMs: 0 })
    try {
      const a = deviceOwnerKey('uuser', 'dphone')
      const b = deviceOwnerKey('uuser', 'dlaptop')
      await storage.inbox.put(a, { id: 'm1', conversation: 'c', seq: 1, receivedAt: 1, body: new Uint8Array([1]) })
      await storage.inbox.put(b, { id: 'm1', conversation: 'c', seq: 1, receivedAt: 1, body: new Uint8Array([2]) })
      assert.deepEqual((await storage.inbox.list(a)).map((m) => m.body[0]), [1])
      assert.deepEqual((await storage.inbox.list(b)).map((m) => m.body[0]), [2])
      assert.equal(await storage.inbox.delete(a, ['m1']), 1)
      assert.equal((await storage.inbox.list(b)).length, 1)
    } finally {
      await storage.close()
      await rm(dir, { recursive: true, force: true })
    }
  })
})
