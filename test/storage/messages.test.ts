import assert from 'node:assert/strict'
import { test } from 'node:test'
import { join } from 'node:path'
import { isErrorCode } from '../../protocol/errors.js'
import { Bucket } from '../../storage/buckets.js'
import { encodeKey } from '../../storage/keys.js'
import { openLevelEngine } from '../../storage/level-engine.js'
import { openStorage } from '../../storage/index.js'
import type { StoredMessage } from '../../storage/index.js'
import { putOp } from '../../storage/shard.js'
import { MAILBOX_BUCKETS, mailboxFixture, tempDirs, utf8 } from './helpers.js'

const newDir = await tempDirs('messages')

function msg (id: string, over: Partial<StoredMessage> = {}): StoredMessage {
  return { id, conversation: 'c1', seq: 1, receivedAt: 1000, expiresAt: 5000, body: utf8(`body-${id}`), ...over }
}

test('put stores a record with its indexes; a second put of the same id is a no-op', async () => {
  const f = await mailboxFixture()
  try {
    assert.deepEqual(await f.repo.put('alice', msg('m1')), { created: true })
    assert.deepEqual(await f.repo.put('alice', msg('m1', { body: utf8('other'), seq: 9 })), { created: false })
    assert.deepEqual(await f.repo.get('alice', 'm1'), msg('m1'))
    for (const b of MAILBOX_BUCKETS) assert.equal(await f.count(b), 1, `bucket ${b}`)
    assert.equal(await f.repo.get('bob', 'm1'), undefined)
  } finally { await f.close() }
})

test('concurrent puts of one id create it exactly once', async () => {
  const f = await mailboxFixture()
  try {
    const results = await Promise.all(Array.from({ length: 10 }, async (_, i) => await f.repo.put('alice', msg('same', { seq: i }))))
    assert.equal(results.filter((r) => r.created).length, 1)
    for (const b of MAILBOX_BUCKETS) assert.equal(await f.count(b), 1, `bucket ${b}`)
  } finally { await f.close() }
})

test('delete removes the records and every index entry, and reports how many existed', async () => {
  const f = await mailboxFixture()
  try {
    await f.repo.put('alice', msg('a', { seq: 1 }))
    await f.repo.put('alice', msg('b', { seq: 2 }))
    await f.repo.put('bob', msg('a', { seq: 1 }))
    assert.equal(await f.repo.delete('alice', ['a', 'b', 'missing', 'a']), 2)
    for (const b of MAILBOX_BUCKETS) assert.equal(await f.count(b), 1, `only bob's record remains in bucket ${b}`)
    assert.deepEqual(await f.repo.get('bob', 'a'), msg('a', { seq: 1 }))
    assert.equal(await f.repo.delete('alice', []), 0)
  } finally { await f.close() }
})

test('deleteKnown removes records by the keys the caller holds, every index entry with them, without reading', async () => {
  const f = await mailboxFixture()
  try {
    const a = msg('a', { seq: 1 })
    const b = msg('b', { seq: 2, receivedAt: 2000 })
    await f.repo.put('alice', a)
    await f.repo.put('alice', b)
    await f.repo.put('bob', msg('a', { seq: 1 }))
    // the record's body is not needed: only its keys
    const { body: _ignored, ...refA } = a
    assert.equal(await f.repo.deleteKnown('alice', [refA, b]), 2)
    for (const bucket of MAILBOX_BUCKETS) assert.equal(await f.count(bucket), 1, `only bob's record remains in bucket ${bucket}`)
    assert.deepEqual(await f.repo.get('bob', 'a'), msg('a', { seq: 1 }))
    assert.equal(await f.repo.deleteKnown('alice', []), 0)
    await assert.rejects(f.repo.deleteKnown('alice', [{ ...refA, seq: -1 }]), (err) => isErrorCode(err, 'ERR_INVALID_ARGUMENT'))
  } finally { await f.close() }
})

test('an oversized record writes nothing: neither the record nor any index', async () => {
  const f = await mailboxFixture(1, undefined, { maxValueBytes: 1024 })
  try {
    await assert.rejects(f.repo.put('alice', msg('big', { body: new Uint8Array(4096) })), (err) => isErrorCode(err, 'ERR_TOO_LARGE'))
    for (const b of MAILBOX_BUCKETS) assert.equal(await f.count(b), 0, `bucket ${b}`)
    await assert.rejects(f.repo.put('alice', msg('x'.repeat(5000))), (err) => isErrorCode(err, 'ERR_TOO_LARGE'))
  } finally { await f.close() }
})

test('listByConversation orders by seq then id, starts at fromSeq, respects limit and users', async () => {
  const f = await mailboxFixture()
  try {
    await f.repo.put('alice', msg('m3', { seq: 3 }))
    await f.repo.put('alice', msg('m1', { seq: 1 }))
    await f.repo.put('alice', msg('m2b', { seq: 2 }))
    await f.repo.put('alice', msg('m2a', { seq: 2 }))
    await f.repo.put('alice', msg('x', { conversation: 'c10', seq: 0 }))
    await f.repo.put('alice', msg('big', { seq: 2 ** 40 }))
    await f.repo.put('alice2', msg('other', { seq: 1 }))
    const ids = async (o: { fromSeq?: number, limit?: number }): Promise<string[]> => (await f.repo.listByConversation('alice', 'c1', o)).map((m) => m.id)
    assert.deepEqual(await ids({}), ['m1', 'm2a', 'm2b', 'm3', 'big'])
    assert.deepEqual(await ids({ fromSeq: 2, limit: 2 }), ['m2a', 'm2b'])
    assert.deepEqual(await ids({ fromSeq: 4 }), ['big'])
    assert.deepEqual((await f.repo.listByConversation('alice', 'c10')).map((m) => m.id), ['x'])
    await assert.rejects(f.repo.listByConversation('alice', 'c1', { limit: 0 }), (err) => isErrorCode(err, 'ERR_INVALID_ARGUMENT'))
  } finally { await f.close() }
})

test('list pages in receive order with the last message as the cursor', async () => {
  const f = await mailboxFixture()
  try {
    const times = [500, 100, 300, 300, 200, 100000]
    for (const [i, t] of times.entries()) await f.repo.put('alice', msg(`m${i}`, { receivedAt: t }))
    await f.repo.put('bob', msg('b', { receivedAt: 1 }))
    const seen: string[] = []
    let after: StoredMessage | undefined
    for (;;) {
      const page = await f.repo.list('alice', { after, limit: 2 })
      if (page.length === 0) break
      seen.push(...page.map((m) => m.id))
      after = page[page.length - 1]
    }
    assert.deepEqual(seen, ['m1', 'm4', 'm2', 'm3', 'm0', 'm5'])
  } finally { await f.close() }
})

test('sweepExpired removes exactly the expired records and their indexes, on every shard', async () => {
  const f = await mailboxFixture(4)
  try {
    const users = ['u1', 'u2', 'u3', 'u4', 'u5', 'u6']
    for (const u of users) {
      await f.repo.put(u, msg('old', { expiresAt: 100 }))
      await f.repo.put(u, msg('edge', { expiresAt: 200 }))
      await f.repo.put(u, msg('new', { expiresAt: 300 }))
    }
    assert.equal(await f.repo.sweepExpired(99), 0)
    assert.equal(await f.repo.sweepExpired(200), 12)
    for (const b of MAILBOX_BUCKETS) assert.equal(await f.count(b), 6, `bucket ${b}`)
    for (const u of users) assert.deepEqual((await f.repo.list(u)).map((m) => m.id), ['new'])
    assert.equal(await f.repo.sweepExpired(200), 0)
  } finally { await f.close() }
})

test('sweepExpired works through more than one chunk', async () => {
  const f = await mailboxFixture(1)
  try {
    const n = 1200
    await Promise.all(Array.from({ length: n }, async (_, i) => await f.repo.put('alice', msg(`m${i}`, { expiresAt: i }))))
    assert.equal(await f.repo.sweepExpired(n), n)
    for (const b of MAILBOX_BUCKETS) assert.equal(await f.count(b), 0)
  } finally { await f.close() }
})

test('the mailbox requires expiresAt; bad arguments are ERR_INVALID_ARGUMENT', async () => {
  const f = await mailboxFixture()
  try {
    const { expiresAt: _, ...noExpiry } = msg('m')
    await assert.rejects(f.repo.put('alice', noExpiry), (err) => isErrorCode(err, 'ERR_INVALID_ARGUMENT'))
    await assert.rejects(f.repo.put('alice', msg('m', { seq: -1 })), (err) => isErrorCode(err, 'ERR_INVALID_ARGUMENT'))
    await assert.rejects(f.repo.put('alice', msg('m', { seq: 1.5 })), (err) => isErrorCode(err, 'ERR_INVALID_ARGUMENT'))
    await assert.rejects(f.repo.put('', msg('m')), (err) => isErrorCode(err, 'ERR_INVALID_ARGUMENT'))
    await assert.rejects(f.repo.put('alice', msg('')), (err) => isErrorCode(err, 'ERR_INVALID_ARGUMENT'))
  } finally { await f.close() }
})

test('undecodable stored bytes are ERR_CORRUPT, not a crash', async () => {
  const f = await mailboxFixture(1)
  try {
    const shard = f.shards[0]
    assert.ok(shard)
    await shard.write([putOp(Bucket.mailbox, encodeKey('alice', 'bad'), Uint8Array.of(0xc1))])
    await shard.write([putOp(Bucket.mailbox, encodeKey('alice', 'shape'), Uint8Array.of(0x93, 1, 2, 3))])
    await assert.rejects(f.repo.get('alice', 'bad'), (err) => isErrorCode(err, 'ERR_CORRUPT'))
    await assert.rejects(f.repo.get('alice', 'shape'), (err) => isErrorCode(err, 'ERR_CORRUPT'))
  } finally { await f.close() }
})

test('inbox and mailbox survive close and reopen on LevelDB, and keep their own key spaces', async () => {
  const dataDir = newDir()
  const s = await openStorage({ dataDir, shards: 4, sweepIntervalMs: 0 })
  const { expiresAt: _, ...inboxMsg } = msg('i1')
  await s.inbox.put('alice', inboxMsg)
  await s.mailbox.put('alice', msg('m1'))
  await s.close()
  const r = await openStorage({ dataDir, sweepIntervalMs: 0 })
  try {
    assert.deepEqual(await r.inbox.get('alice', 'i1'), inboxMsg)
    assert.equal(await r.inbox.get('alice', 'm1'), undefined)
    assert.deepEqual((await r.mailbox.list('alice')).map((m) => m.id), ['m1'])
    assert.equal(await r.mailbox.sweepExpired(10_000), 1)
    assert.deepEqual(await r.mailbox.list('alice'), [])
    assert.equal((await r.inbox.list('alice')).length, 1)
  } finally { await r.close() }
})

test('the periodic sweeper runs with the injected clock', async () => {
  // The sweeper skips ticks while a sweep runs, so a second clock read means the first sweep ended.
  let secondRead: () => void = () => {}
  const secondSweep = new Promise<void>((resolve) => { secondRead = resolve })
  let reads = 0
  const s = await openStorage({
    dataDir: newDir(),
    engine: 'memory',
    sweepIntervalMs: 5,
    now: () => { if (++reads === 2) secondRead(); return 10_000 }
  })
  try {
    await s.mailbox.put('alice', msg('expired', { expiresAt: 10 }))
    await s.mailbox.put('alice', msg('live', { expiresAt: 20_000 }))
    // The sweeper's timer is unref'd by design; this keeps the test process alive meanwhile.
    const keepAlive = setTimeout(() => {}, 60_000)
    try {
      await secondSweep
    } finally {
      clearTimeout(keepAlive)
    }
    assert.deepEqual((await s.mailbox.list('alice')).map((m) => m.id), ['live'])
  } finally { await s.close() }
})

test('LevelDB-backed mailbox fixture keeps indexes consistent too', async () => {
  const dir = newDir()
  const f = await mailboxFixture(2, async (i) => await openLevelEngine(join(dir, String(i))))
  try {
    await f.repo.put('alice', msg('a'))
    await f.repo.delete('alice', ['a'])
    for (const b of MAILBOX_BUCKETS) assert.equal(await f.count(b), 0)
  } finally { await f.close() }
})
