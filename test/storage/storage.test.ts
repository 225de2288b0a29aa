import assert from 'node:assert/strict'
import { test } from 'node:test'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { isErrorCode } from '../../protocol/errors.js'
import { META_FILE, openStorage, shardIndex, STORAGE_SCHEMA_VERSION } from '../../storage/index.js'
import type { Storage } from '../../storage/index.js'
import { tempDirs, utf8 } from './helpers.js'

const newDir = await tempDirs('storage')

async function withStorage<T> (storage: Storage, fn: (s: Storage) => Promise<T>): Promise<T> {
  try {
    return await fn(storage)
  } finally {
    await storage.close()
  }
}

test('a new data dir gets the meta file and one LevelDB per shard', async () => {
  const dataDir = newDir()
  await withStorage(await openStorage({ dataDir, shards: 3 }), async (s) => {
    assert.equal(s.shardCount, 3)
    const meta = JSON.parse(await readFile(join(dataDir, META_FILE), 'utf8')) as Record<string, unknown>
    assert.equal(meta.schemaVersion, STORAGE_SCHEMA_VERSION)
    assert.equal(meta.shards, 3)
    assert.equal(typeof meta.createdAt, 'number')
    assert.deepEqual((await readdir(join(dataDir, 'shards'))).sort(), ['00', '01', '02'])
    assert.deepEqual((await readdir(dataDir)).filter((f) => f.endsWith('.tmp')), [], 'no temp file left behind')
  })
})

test('the recorded shard count is kept when a different one is requested on reopen', async () => {
  const dataDir = newDir()
  await (await openStorage({ dataDir, shards: 4 })).close()
  const warnings: unknown[] = []
  const logger = { warn: (obj: unknown) => { warnings.push(obj) }, info: () => {} }
  await withStorage(await openStorage({ dataDir, shards: 16, logger: logger as never }), async (s) => {
    assert.equal(s.shardCount, 4)
    assert.equal(warnings.length, 1)
  })
  await withStorage(await openStorage({ dataDir }), async (s) => { assert.equal(s.shardCount, 4) })
})

test('a newer schema version is refused with ERR_SCHEMA_NEWER naming both versions and the path', async () => {
  const dataDir = newDir()
  await (await openStorage({ dataDir, shards: 1 })).close()
  const path = join(dataDir, META_FILE)
  const meta = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>
  await writeFile(path, JSON.stringify({ ...meta, schemaVersion: STORAGE_SCHEMA_VERSION + 1 }))
  await assert.rejects(openStorage({ dataDir }), (err) => {
    assert.ok(isErrorCode(err, 'ERR_SCHEMA_NEWER'))
    const message = (err as Error).message
    assert.match(message, new RegExp(`version ${STORAGE_SCHEMA_VERSION + 1}`))
    assert.match(message, new RegExp(`version ${STORAGE_SCHEMA_VERSION}\\b`))
    assert.ok(message.includes(dataDir))
    return true
  })
  await writeFile(path, JSON.stringify({ ...meta, schemaVersion: 0 }))
  await assert.rejects(openStorage({ dataDir }), (err) => isErrorCode(err, 'ERR_DATA_DIR_CORRUPT'))
})

test('a corrupt meta file, or shards without one, is ERR_DATA_DIR_CORRUPT', async () => {
  const dataDir = newDir()
  await (await openStorage({ dataDir, shards: 1 })).close()
  await writeFile(join(dataDir, META_FILE), '{ not json')
  await assert.rejects(openStorage({ dataDir }), (err) => isErrorCode(err, 'ERR_DATA_DIR_CORRUPT'))
  await writeFile(join(dataDir, META_FILE), JSON.stringify({ schemaVersion: 1, shards: 'eight', createdAt: 1 }))
  await assert.rejects(openStorage({ dataDir }), (err) => isErrorCode(err, 'ERR_DATA_DIR_CORRUPT'))
  const { rm } = await import('node:fs/promises')
  await rm(join(dataDir, META_FILE))
  await assert.rejects(openStorage({ dataDir }), (err) => isErrorCode(err, 'ERR_DATA_DIR_CORRUPT'))
})

test('an invalid shard count for a new data dir is ERR_INVALID_ARGUMENT', async () => {
  await assert.rejects(openStorage({ dataDir: newDir(), shards: 0 }), (err) => isErrorCode(err, 'ERR_INVALID_ARGUMENT'))
})

test('opening a data dir that is already open fails with ERR_LOCKED and leaves the first usable', async () => {
  const dataDir = newDir()
  await withStorage(await openStorage({ dataDir, shards: 2 }), async (s) => {
    await assert.rejects(openStorage({ dataDir }), (err) => isErrorCode(err, 'ERR_LOCKED'))
    await s.dht.put(utf8('/k'), utf8('v'))
    assert.deepEqual(await s.dht.get(utf8('/k')), utf8('v'))
  })
  // The failed open released the shards it had opened: the dir opens again.
  await (await openStorage({ dataDir })).close()
})

test('data survives close and reopen', async () => {
  const dataDir = newDir()
  await withStorage(await openStorage({ dataDir, shards: 2 }), async (s) => {
    await s.dht.put(utf8('/dht/record/a'), utf8('A'))
    await s.kv.put('node', { id: 'n1', started: 5 })
  })
  await withStorage(await openStorage({ dataDir }), async (s) => {
    assert.deepEqual(await s.dht.get(utf8('/dht/record/a')), utf8('A'))
    assert.deepEqual(await s.kv.get('node'), { id: 'n1', started: 5 })
  })
})

test('operations after close fail with ERR_CLOSED; close is idempotent', async () => {
  const s = await openStorage({ dataDir: newDir(), shards: 1 })
  await s.close()
  await s.close()
  await assert.rejects(s.dht.put(utf8('/a'), utf8('1')), (err) => isErrorCode(err, 'ERR_CLOSED'))
  await assert.rejects(s.dht.get(utf8('/a')), (err) => isErrorCode(err, 'ERR_CLOSED'))
  await assert.rejects(s.kv.get('x'), (err) => isErrorCode(err, 'ERR_CLOSED'))
})

test('close waits for queued writes: every write acked before close is readable after reopen', async () => {
  const dataDir = newDir()
  const s = await openStorage({ dataDir, shards: 1 })
  const writes = Array.from({ length: 50 }, async (_, i) => { await s.dht.put(utf8(`/k/${i}`), utf8(String(i))) })
  await s.close()
  await Promise.all(writes)
  await withStorage(await openStorage({ dataDir }), async (r) => {
    let n = 0
    for await (const _ of r.dht.entries()) n++
    assert.equal(n, 50)
  })
})

test('shardIndex is SHA-256 (first 4 bytes, big-endian) mod N, pinned by vectors', () => {
  // sha256("alice") starts 2bd806c9; sha256("") starts e3b0c442.
  assert.equal(shardIndex('alice', 8), 0x2bd806c9 % 8)
  assert.equal(shardIndex('alice', 7), 0x2bd806c9 % 7)
  assert.equal(shardIndex('', 5), 0xe3b0c442 % 5)
})

test('the memory engine needs no disk and behaves the same', async () => {
  await withStorage(await openStorage({ dataDir: '/nonexistent/never-created', engine: 'memory', shards: 2 }), async (s) => {
    await s.dht.put(utf8('/a'), utf8('1'))
    assert.deepEqual(await s.dht.get(utf8('/a')), utf8('1'))
    assert.equal(s.shardFor('alice'), shardIndex('alice', 2))
  })
})
