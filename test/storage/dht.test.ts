import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { isErrorCode } from '../../protocol/errors.js'
import { openStorage } from '../../storage/index.js'
import type { Storage } from '../../storage/index.js'
import { tempDirs, utf8 } from './helpers.js'

const newDir = await tempDirs('dht')
let s: Storage
before(async () => { s = await openStorage({ dataDir: newDir(), shards: 2 }) })
after(async () => { await s.close() })

const text = (u: Uint8Array | undefined): string | undefined => u === undefined ? undefined : new TextDecoder().decode(u)

test('put, get, has and delete', async () => {
  const k = utf8('/dht/record/abc')
  assert.equal(await s.dht.has(k), false)
  assert.equal(await s.dht.get(k), undefined)
  await s.dht.put(k, utf8('v1'))
  assert.equal(await s.dht.has(k), true)
  assert.equal(text(await s.dht.get(k)), 'v1')
  await s.dht.put(k, utf8('v2'))
  assert.equal(text(await s.dht.get(k)), 'v2')
  await s.dht.delete(k)
  assert.equal(await s.dht.has(k), false)
  await s.dht.delete(k) // deleting a missing key is not an error
})

test('entries lists in key order and filters by prefix', async () => {
  await s.dht.batch([
    { type: 'put', key: utf8('/dht/provider/x'), value: utf8('p') },
    { type: 'put', key: utf8('/dht/record/b'), value: utf8('b') },
    { type: 'put', key: utf8('/dht/record/a'), value: utf8('a') },
    { type: 'put', key: utf8('/dht/recordz'), value: utf8('z') },
    { type: 'put', key: utf8('/other'), value: utf8('o') }
  ])
  const keys = async (prefix?: string, limit?: number): Promise<string[]> => {
    const out: string[] = []
    for await (const e of s.dht.entries({ prefix: prefix === undefined ? undefined : utf8(prefix), limit })) out.push(text(e.key) as string)
    return out
  }
  assert.deepEqual(await keys('/dht/record/'), ['/dht/record/a', '/dht/record/b'])
  assert.deepEqual(await keys('/dht/'), ['/dht/provider/x', '/dht/record/a', '/dht/record/b', '/dht/recordz'])
  assert.deepEqual(await keys(undefined, 2), ['/dht/provider/x', '/dht/record/a'])
  assert.deepEqual(await keys('/none'), [])
  const all = await keys()
  assert.equal(all.length, 5)
  for await (const e of s.dht.entries({ prefix: utf8('/other') })) assert.equal(text(e.value), 'o')
})

test('a batch of puts and deletes is atomic: an oversized value writes nothing', async () => {
  await assert.rejects(s.dht.batch([
    { type: 'put', key: utf8('/atomic/1'), value: utf8('ok') },
    { type: 'put', key: utf8('/atomic/2'), value: new Uint8Array(2 * 1024 * 1024) }
  ]), (err) => isErrorCode(err, 'ERR_TOO_LARGE'))
  assert.equal(await s.dht.has(utf8('/atomic/1')), false)
  await assert.rejects(s.dht.put(new Uint8Array(5000).fill(0x2f), utf8('v')), (err) => isErrorCode(err, 'ERR_TOO_LARGE'))
})

test('empty keys are rejected with ERR_INVALID_ARGUMENT', async () => {
  await assert.rejects(s.dht.put(new Uint8Array(0), utf8('v')), (err) => isErrorCode(err, 'ERR_INVALID_ARGUMENT'))
})

test('entries yields copies the caller may keep', async () => {
  await s.dht.put(utf8('/copy/1'), utf8('one'))
  const kept: Uint8Array[] = []
  for await (const e of s.dht.entries({ prefix: utf8('/copy/') })) kept.push(e.value)
  await s.dht.put(utf8('/copy/1'), utf8('two'))
  assert.equal(text(kept[0]), 'one')
})
