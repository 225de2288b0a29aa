import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { isErrorCode } from '../../protocol/errors.js'
import { openStorage, type Storage, type StoredGroupMessage } from '../../storage/index.js'
import { tempDirs, utf8 } from './helpers.js'

const newDir = await tempDirs('groups')

function msg (id: string, sentAt: number): StoredGroupMessage {
  return { id, sentAt, receivedAt: sentAt + 1, body: utf8(`body-${id}`) }
}

/** The group repository's behaviour, run against each engine. */
function suite (engine: 'level' | 'memory'): void {
  describe(`group repository on ${engine}`, () => {
    const open = async (dataDir = newDir()): Promise<Storage> => await openStorage({ dataDir, engine, shards: 3, sweepIntervalMs: 0 })

    it('stores ops once each and lists them in insertion order, per group', async () => {
      const s = await open()
      try {
        assert.deepEqual(await s.groups.putOps('g1', [{ id: 'o2', bytes: utf8('two') }, { id: 'o1', bytes: utf8('one') }]), ['o2', 'o1'])
        assert.deepEqual(await s.groups.putOps('g1', [{ id: 'o1', bytes: utf8('again') }, { id: 'o3', bytes: utf8('three') }, { id: 'o3', bytes: utf8('x') }]), ['o3'])
        await s.groups.putOps('g2', [{ id: 'o1', bytes: utf8('other group') }])
        const ops = await s.groups.listOps('g1')
        assert.deepEqual(ops.map((o) => [o.seq, o.id, new TextDecoder().decode(o.bytes)]), [[1, 'o2', 'two'], [2, 'o1', 'one'], [3, 'o3', 'three']])
        assert.deepEqual((await s.groups.listOps('g1', { afterSeq: 1, limit: 1 })).map((o) => o.id), ['o1'])
        assert.equal(await s.groups.hasOp('g1', 'o3'), true)
        assert.equal(await s.groups.hasOp('g2', 'o3'), false)
        assert.equal((await s.groups.getMeta('g1'))?.ops, 3)
      } finally { await s.close() }
    })

    it('concurrent puts of one op store it once', async () => {
      const s = await open()
      try {
        const results = await Promise.all(Array.from({ length: 8 }, async () => await s.groups.putOps('g', [{ id: 'same', bytes: utf8('x') }])))
        assert.equal(results.filter((r) => r.length === 1).length, 1)
        assert.equal((await s.groups.listOps('g')).length, 1)
      } finally { await s.close() }
    })

    it('pages history in (sentAt, id) order from since and a cursor, idempotently by id', async () => {
      const s = await open()
      try {
        assert.deepEqual(await s.groups.putMessages('g', [msg('b', 20), msg('a', 20), msg('c', 10), msg('d', 30)], { limit: 100 }), ['b', 'a', 'c', 'd'])
        assert.deepEqual(await s.groups.putMessages('g', [msg('a', 99)], { limit: 100 }), [])
        assert.deepEqual((await s.groups.listMessages('g')).map((m) => m.id), ['c', 'a', 'b', 'd'])
        assert.deepEqual((await s.groups.listMessages('g', { since: 20, limit: 2 })).map((m) => m.id), ['a', 'b'])
        assert.deepEqual((await s.groups.listMessages('g', { after: { sentAt: 20, id: 'b' } })).map((m) => m.id), ['d'])
        assert.deepEqual(await s.groups.getMessage('g', 'a'), msg('a', 20))
        assert.equal((await s.groups.getMeta('g'))?.messages, 4)
      } finally { await s.close() }
    })

    it('keeps the newest `limit` messages and sweeps by time, keeping the count right', async () => {
      const s = await open()
      try {
        await s.groups.putMessages('g', Array.from({ length: 10 }, (_, i) => msg(`m${i}`, 100 + i)), { limit: 6 })
        assert.deepEqual((await s.groups.listMessages('g')).map((m) => m.id), ['m4', 'm5', 'm6', 'm7', 'm8', 'm9'])
        // an old message arriving into a full group is trimmed at once
        assert.deepEqual(await s.groups.putMessages('g', [msg('old', 1)], { limit: 6 }), [])
        assert.equal(await s.groups.sweepMessages('g', 107), 3)
        assert.deepEqual((await s.groups.listMessages('g')).map((m) => m.id), ['m7', 'm8', 'm9'])
        assert.equal((await s.groups.getMeta('g'))?.messages, 3)
      } finally { await s.close() }
    })

    it('keeps coverage and replica flags in the meta record and lists groups', async () => {
      const s = await open()
      try {
        await s.groups.updateMeta('g1', { coveredSince: 5, replica: true })
        await s.groups.putOps('g2', [{ id: 'o', bytes: utf8('x') }])
        assert.deepEqual(await s.groups.getMeta('g1'), { ops: 0, messages: 0, coveredSince: 5, replica: true })
        assert.deepEqual(await s.groups.updateMeta('g1', { clearCoverage: true, replica: false, touchedAt: 9 }), { ops: 0, messages: 0, touchedAt: 9 })
        const groups: string[] = []
        for await (const g of s.groups.groups()) groups.push(g)
        assert.deepEqual(groups.sort(), ['g1', 'g2'])
        assert.equal(await s.groups.getMeta('none'), undefined)
      } finally { await s.close() }
    })

    it('rejects bad arguments with ERR_INVALID_ARGUMENT and writes nothing', async () => {
      const s = await open()
      try {
        await assert.rejects(s.groups.putMessages('g', [msg('a', -1)], { limit: 10 }), (err) => isErrorCode(err, 'ERR_INVALID_ARGUMENT'))
        await assert.rejects(s.groups.putMessages('', [msg('a', 1)], { limit: 10 }), (err) => isErrorCode(err, 'ERR_INVALID_ARGUMENT'))
        await assert.rejects(s.groups.listMessages('g', { limit: 0 }), (err) => isErrorCode(err, 'ERR_INVALID_ARGUMENT'))
        assert.equal(await s.groups.getMeta('g'), undefined)
      } finally { await s.close() }
    })

    if (engine === 'level') {
      it('survives a reopen: ops in order, history and meta', async () => {
        const dir = newDir()
        const s1 = await open(dir)
        await s1.groups.putOps('g', [{ id: 'o1', bytes: utf8('1') }, { id: 'o2', bytes: utf8('2') }])
        await s1.groups.putMessages('g', [msg('a', 1), msg('b', 2)], { limit: 10 })
        await s1.groups.updateMeta('g', { coveredSince: 1 })
        await s1.close()
        const s2 = await open(dir)
        try {
          assert.deepEqual((await s2.groups.listOps('g')).map((o) => o.id), ['o1', 'o2'])
          await s2.groups.putOps('g', [{ id: 'o3', bytes: utf8('3') }])
          assert.deepEqual((await s2.groups.listOps('g')).map((o) => o.seq), [1, 2, 3])
          assert.deepEqual((await s2.groups.listMessages('g')).map((m) => m.id), ['a', 'b'])
          assert.deepEqual(await s2.groups.getMeta('g'), { ops: 3, messages: 2, coveredSince: 1 })
        } finally { await s2.close() }
      })
    }
  })
}

suite('level')
suite('memory')
