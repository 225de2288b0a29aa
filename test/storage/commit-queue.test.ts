import assert from 'node:assert/strict'
import { test } from 'node:test'
import { isErrorCode } from '../../protocol/errors.js'
import { CommitQueue } from '../../storage/commit-queue.js'
import type { KvBatchOptions, KvEngine, KvOp } from '../../storage/engine.js'
import { openMemoryEngine } from '../../storage/level-engine.js'
import { openStorage } from '../../storage/index.js'
import { tempDirs, utf8 } from './helpers.js'

const newDir = await tempDirs('commit')

/** Controls of an engine whose batches each wait for an outcome handed out by the test. */
interface Gated {
  engine: KvEngine
  /** Operations of every batch the engine was asked to write, in order. */
  batches: KvOp[][]
  /** Lets the next waiting (or future) batch succeed. */
  release: () => void
  /** Makes the next waiting (or future) batch fail with `err`. */
  fail: (err: Error) => void
  /** Resolves once the engine has been asked for at least `n` batches. */
  batchStarted: (n: number) => Promise<void>
}

async function gatedEngine (): Promise<Gated> {
  const inner = await openMemoryEngine()
  const batches: KvOp[][] = []
  const outcomes: Array<Error | undefined> = []
  let wakeBatch: Array<() => void> = []
  let wakeStarted: Array<() => void> = []
  const wake = (list: Array<() => void>): Array<() => void> => { for (const f of list) f(); return [] }
  const engine: KvEngine = {
    get: async (k) => await inner.get(k),
    getMany: async (k) => await inner.getMany(k),
    iterate: (r) => inner.iterate(r),
    prefixed: (p) => inner.prefixed(p),
    close: async () => { await inner.close() },
    batch: async (ops: readonly KvOp[], options?: KvBatchOptions) => {
      batches.push([...ops])
      wakeStarted = wake(wakeStarted)
      while (outcomes.length === 0) await new Promise<void>((resolve) => { wakeBatch.push(resolve) })
      const outcome = outcomes.shift()
      if (outcome !== undefined) throw outcome
      await inner.batch(ops, options)
    }
  }
  return {
    engine,
    batches,
    release: () => { outcomes.push(undefined); wakeBatch = wake(wakeBatch) },
    fail: (err) => { outcomes.push(err); wakeBatch = wake(wakeBatch) },
    batchStarted: async (n) => {
      while (batches.length < n) await new Promise<void>((resolve) => { wakeStarted.push(resolve) })
    }
  }
}

const put = (i: number): KvOp => ({ type: 'put', key: utf8(`k${String(i).padStart(4, '0')}`), value: utf8(String(i)) })

test('writes arriving during a flush are coalesced into the next single batch', async () => {
  const g = await gatedEngine()
  const q = new CommitQueue(g.engine)
  const first = q.write([put(0)])
  await g.batchStarted(1)
  const rest = Array.from({ length: 99 }, async (_, i) => { await q.write([put(i + 1)]) })
  let firstAcked = false
  void first.then(() => { firstAcked = true })
  await new Promise<void>((resolve) => setImmediate(resolve))
  assert.equal(firstAcked, false, 'no ack before the batch is written')
  g.release()
  await first
  await g.batchStarted(2)
  g.release()
  await Promise.all(rest)
  assert.equal(g.batches.length, 2)
  assert.equal(g.batches[1]?.length, 99)
  assert.deepEqual(q.stats(), { writes: 100, batches: 2, ops: 100, failedBatches: 0, pendingOps: 0 })
  await q.close()
  await g.engine.close()
})

test('a failed batch rejects every caller in it and the queue keeps working', async () => {
  const g = await gatedEngine()
  const q = new CommitQueue(g.engine, { commitWindowMs: 1 })
  const writes = Array.from({ length: 5 }, async (_, i) => await q.write([put(i)]))
  await g.batchStarted(1)
  g.fail(new Error('disk full'))
  const results = await Promise.allSettled(writes)
  assert.equal(g.batches.length, 1, 'the window gathered all five writes into one batch')
  for (const r of results) {
    assert.equal(r.status, 'rejected')
    assert.ok(isErrorCode(r.reason, 'ERR_IO'))
  }
  assert.equal(q.stats().failedBatches, 1)
  g.release()
  await q.write([put(9)])
  assert.equal(q.stats().batches, 1)
  await q.close()
  await g.engine.close()
})

test('one write is never split across batches, and maxBatch bounds batches of several writes', async () => {
  const g = await gatedEngine()
  const q = new CommitQueue(g.engine, { maxBatch: 10 })
  const first = q.write([put(0)])
  await g.batchStarted(1)
  const big = q.write(Array.from({ length: 25 }, (_, i) => put(100 + i)))
  const smalls = Array.from({ length: 12 }, async (_, i) => { await q.write([put(200 + i)]) })
  for (let i = 0; i < 4; i++) g.release()
  await Promise.all([first, big, ...smalls])
  assert.deepEqual(g.batches.map((b) => b.length), [1, 25, 10, 2])
  await q.close()
  await g.engine.close()
})

test('a full queue makes writers wait (backpressure) instead of growing', async () => {
  const g = await gatedEngine()
  const q = new CommitQueue(g.engine, { maxPending: 3 })
  const first = q.write([put(0)])
  await g.batchStarted(1)
  const queued = [q.write([put(1)]), q.write([put(2)]), q.write([put(3)])]
  let blockedQueued = false
  const blocked = q.write([put(4)]).then(() => { blockedQueued = true })
  await new Promise<void>((resolve) => setImmediate(resolve))
  assert.equal(q.stats().pendingOps, 3, 'the fourth waiting write is held back, not queued')
  assert.equal(blockedQueued, false)
  for (let i = 0; i < 3; i++) g.release()
  await Promise.all([first, ...queued, blocked])
  assert.deepEqual(g.batches.map((b) => b.length), [1, 3, 1])
  assert.equal(q.stats().writes, 5)
  await q.close()
  await g.engine.close()
})

test('close flushes accepted writes, then rejects new ones with ERR_CLOSED', async () => {
  const g = await gatedEngine()
  const q = new CommitQueue(g.engine)
  const w = q.write([put(1)])
  await g.batchStarted(1)
  const closed = q.close()
  await assert.rejects(q.write([put(2)]), (err) => isErrorCode(err, 'ERR_CLOSED'))
  g.release()
  await w
  await closed
  assert.deepEqual(await g.engine.get(put(1).key), utf8('1'))
  await g.engine.close()
})

test('concurrent durable writes to LevelDB take far fewer flushes than writes', async () => {
  const s = await openStorage({ dataDir: newDir(), shards: 1, sweepIntervalMs: 0 })
  try {
    const n = 200
    await Promise.all(Array.from({ length: n }, async (_, i) => { await s.dht.put(utf8(`/k/${i}`), utf8('v')) }))
    const stats = s.stats()
    assert.equal(stats.writes, n)
    assert.equal(stats.ops, n)
    assert.ok(stats.batches <= n / 10, `${stats.batches} flushes for ${n} writes`)
  } finally { await s.close() }
})
