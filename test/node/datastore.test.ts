/**
 * The libp2p datastore over Talaria's storage (real LevelDB in a temp dir): the peer book is held
 * in memory and written back in batches, everything else goes straight to storage, and a restart
 * finds both.
 */
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { Key } from 'interface-datastore'
import { StorageDatastore } from '../../node/datastore.js'
import { openStorage, type Storage } from '../../storage/index.js'
import { tempDirs, utf8 } from '../storage/helpers.js'

const newDir = await tempDirs('datastore')
const text = (u: Uint8Array | undefined): string | undefined => u === undefined ? undefined : new TextDecoder().decode(u)

describe('StorageDatastore', () => {
  const open: Storage[] = []
  after(async () => { await Promise.allSettled(open.map(async (s) => { await s.close() })) })

  async function storage (dir: string): Promise<Storage> {
    const s = await openStorage({ dataDir: dir, shards: 1 })
    open.push(s)
    return s
  }

  it('keeps the peer book in memory until a flush, and DHT records in storage at once', async () => {
    const s = await storage(newDir())
    const ds = new StorageDatastore({ store: s.dht }, { peerBookFlushMs: 3_600_000 })
    await ds.open()
    await ds.put(new Key('/peers/a'), utf8('peer a'))
    await ds.put(new Key('/dht/record/r'), utf8('record'))
    assert.equal(text(await ds.get(new Key('/peers/a'))), 'peer a')
    assert.equal(await ds.has(new Key('/peers/a')), true)
    // the record is in storage already; the peer is not, until the flush
    assert.equal(text(await s.dht.get(utf8('/dht/record/r'))), 'record')
    assert.equal(await s.dht.get(utf8('/peers/a')), undefined)
    await ds.flush()
    assert.equal(text(await s.dht.get(utf8('/peers/a'))), 'peer a')
    // a deleted peer leaves storage at the next flush, and reads as absent at once
    await ds.delete(new Key('/peers/a'))
    await assert.rejects(ds.get(new Key('/peers/a')), (err: Error) => err.name === 'NotFoundError')
    await ds.flush()
    assert.equal(await s.dht.get(utf8('/peers/a')), undefined)
    await ds.close()
  })

  it('lists the peer book from memory and the rest from storage, by prefix', async () => {
    const s = await storage(newDir())
    const ds = new StorageDatastore({ store: s.dht }, { peerBookFlushMs: 3_600_000 })
    await ds.open()
    const batch = ds.batch()
    batch.put(new Key('/peers/b'), utf8('b'))
    batch.put(new Key('/peers/c'), utf8('c'))
    batch.put(new Key('/dht/record/x'), utf8('x'))
    await batch.commit()
    const keys = async (prefix?: string): Promise<string[]> => {
      const out: string[] = []
      for await (const k of ds.queryKeys(prefix === undefined ? {} : { prefix })) out.push(k.toString())
      return out.sort()
    }
    assert.deepEqual(await keys('/peers'), ['/peers/b', '/peers/c'])
    assert.deepEqual(await keys('/peers/c'), ['/peers/c'])
    assert.deepEqual(await keys('/dht'), ['/dht/record/x'])
    assert.deepEqual(await keys(), ['/dht/record/x', '/peers/b', '/peers/c'])
    const values: string[] = []
    for await (const { value } of ds.query({ prefix: '/peers' })) values.push(text(value) ?? '')
    assert.deepEqual(values.sort(), ['b', 'c'])
    await ds.close()
  })

  it('writes the peer book back on close, and loads it again on open', async () => {
    const dir = newDir()
    const s = await storage(dir)
    const first = new StorageDatastore({ store: s.dht }, { peerBookFlushMs: 3_600_000 })
    await first.open()
    await first.put(new Key('/peers/d'), utf8('d'))
    await first.close()
    await s.close()
    const again = await storage(dir)
    const second = new StorageDatastore({ store: again.dht })
    await second.open()
    assert.equal(text(await second.get(new Key('/peers/d'))), 'd')
    await second.close()
  })

  it('flushes on its own every interval', async (t) => {
    const s = await storage(newDir())
    t.mock.timers.enable({ apis: ['setInterval'] })
    const ds = new StorageDatastore({ store: s.dht }, { peerBookFlushMs: 1000 })
    await ds.open()
    await ds.put(new Key('/peers/e'), utf8('e'))
    t.mock.timers.tick(999)
    assert.equal(await s.dht.get(utf8('/peers/e')), undefined, 'not before the interval')
    const spy = t.mock.method(s.dht, 'batch')
    t.mock.timers.tick(1)
    // the interval's flush starts one microtask later (it queues behind any flush under way)
    await Promise.resolve()
    await Promise.resolve()
    assert.equal(spy.mock.callCount(), 1, 'the interval started a write of the change')
    await spy.mock.calls[0]?.result
    assert.equal(text(await s.dht.get(utf8('/peers/e'))), 'e')
    t.mock.timers.reset()
    await ds.close()
  })
})
