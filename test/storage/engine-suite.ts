/**
 * Compliance suite of the storage engine contract ({@link KvEngine}), run against every
 * implementation: each must behave the same for reads, atomic batches, ordered ranges, prefixing
 * and closing.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { KvEngine, KvEntry, KvRange } from '../../storage/engine.js'
import { isErrorCode } from '../../protocol/errors.js'

/** What the suite needs from an implementation. */
export interface EngineSuiteInit {
  /** Shown in test names. */
  name: string
  /** Opens a fresh, empty engine; the suite closes it. */
  factory: () => Promise<KvEngine>
}

const b = (...bytes: number[]): Uint8Array => Uint8Array.from(bytes)
const hex = (u: Uint8Array): string => Buffer.from(u).toString('hex')

async function collect (engine: KvEngine, range?: KvRange): Promise<string[]> {
  const out: string[] = []
  for await (const [k] of engine.iterate(range)) out.push(hex(k))
  return out
}

async function withEngine (factory: () => Promise<KvEngine>, fn: (e: KvEngine) => Promise<void>): Promise<void> {
  const engine = await factory()
  try {
    await fn(engine)
  } finally {
    await engine.close()
  }
}

/** Keys chosen to exercise bytewise order: prefixes of each other, 0x00 and 0xff bytes. */
const ORDER_KEYS = [b(0x00), b(0x01), b(0x01, 0x00), b(0x01, 0xff), b(0x02), b(0x7f), b(0x80), b(0xff), b(0xff, 0xff)]

/** Registers the compliance tests for one implementation. */
export function engineSuite ({ name, factory }: EngineSuiteInit): void {
  describe(`engine compliance: ${name}`, () => {
    test('get of a missing key is undefined; put then get returns the bytes', async () => {
      await withEngine(factory, async (e) => {
        assert.equal(await e.get(b(1)), undefined)
        await e.batch([{ type: 'put', key: b(1), value: b(9, 8, 7) }])
        assert.deepEqual([...(await e.get(b(1))) ?? []], [9, 8, 7])
      })
    })

    test('getMany returns values in the order asked, undefined for missing keys', async () => {
      await withEngine(factory, async (e) => {
        await e.batch([{ type: 'put', key: b(1), value: b(1) }, { type: 'put', key: b(3), value: b(3) }])
        const got = await e.getMany([b(3), b(2), b(1)])
        assert.deepEqual(got.map((v) => v === undefined ? null : [...v]), [[3], null, [1]])
        assert.deepEqual(await e.getMany([]), [])
      })
    })

    test('a batch applies puts and deletes together, later ops win', async () => {
      await withEngine(factory, async (e) => {
        await e.batch([{ type: 'put', key: b(1), value: b(1) }, { type: 'put', key: b(2), value: b(2) }])
        await e.batch([
          { type: 'del', key: b(1) },
          { type: 'put', key: b(2), value: b(22) },
          { type: 'put', key: b(3), value: b(3) },
          { type: 'del', key: b(3) }
        ], { sync: true })
        assert.equal(await e.get(b(1)), undefined)
        assert.deepEqual([...(await e.get(b(2))) ?? []], [22])
        assert.equal(await e.get(b(3)), undefined)
      })
    })

    test('binary values round-trip unchanged, including empty values', async () => {
      await withEngine(factory, async (e) => {
        const all = Uint8Array.from({ length: 256 }, (_, i) => i)
        await e.batch([{ type: 'put', key: b(1), value: all }, { type: 'put', key: b(2), value: new Uint8Array(0) }])
        assert.deepEqual([...(await e.get(b(1))) ?? []], [...all])
        assert.equal((await e.get(b(2)))?.length, 0)
        // One type whichever engine runs: plain Uint8Array, not a Buffer subclass.
        assert.equal(Object.getPrototypeOf(await e.get(b(1))), Uint8Array.prototype)
        for await (const [k, v] of e.iterate()) {
          assert.equal(Object.getPrototypeOf(k), Uint8Array.prototype)
          assert.equal(Object.getPrototypeOf(v), Uint8Array.prototype)
        }
      })
    })

    test('iteration is in bytewise key order, forward and reverse', async () => {
      await withEngine(factory, async (e) => {
        const shuffled = [...ORDER_KEYS].reverse()
        await e.batch(shuffled.map((k) => ({ type: 'put' as const, key: k, value: b(0) })))
        const expected = ORDER_KEYS.map(hex)
        assert.deepEqual(await collect(e), expected)
        assert.deepEqual(await collect(e, { reverse: true }), [...expected].reverse())
      })
    })

    test('range bounds gt/gte/lt/lte, limit and reverse', async () => {
      await withEngine(factory, async (e) => {
        await e.batch(ORDER_KEYS.map((k) => ({ type: 'put' as const, key: k, value: b(0) })))
        assert.deepEqual(await collect(e, { gte: b(0x01), lt: b(0x02) }), ['01', '0100', '01ff'])
        assert.deepEqual(await collect(e, { gt: b(0x01), lte: b(0x02) }), ['0100', '01ff', '02'])
        assert.deepEqual(await collect(e, { gte: b(0x7f), limit: 2 }), ['7f', '80'])
        assert.deepEqual(await collect(e, { lt: b(0xff), reverse: true, limit: 2 }), ['80', '7f'])
        assert.deepEqual(await collect(e, { gt: b(0xff) }), ['ffff'])
        assert.deepEqual(await collect(e, { limit: 0 }), [])
        assert.deepEqual(await collect(e, { gt: b(0x05), lt: b(0x05) }), [])
      })
    })

    test('iteration yields values with their keys', async () => {
      await withEngine(factory, async (e) => {
        await e.batch([{ type: 'put', key: b(1), value: b(10) }, { type: 'put', key: b(2), value: b(20) }])
        const entries: KvEntry[] = []
        for await (const entry of e.iterate()) entries.push(entry)
        assert.deepEqual(entries.map(([k, v]) => [[...k], [...v]]), [[[1], [10]], [[2], [20]]])
      })
    })

    test('breaking out of an iteration releases it and the engine still closes', async () => {
      const e = await factory()
      await e.batch(Array.from({ length: 600 }, (_, i) => ({ type: 'put' as const, key: b(i >> 8, i & 0xff), value: b(1) })))
      let n = 0
      for await (const _ of e.iterate()) {
        if (++n === 3) break
      }
      assert.equal(n, 3)
      await e.close()
    })

    test('a prefixed view isolates its keys and strips the prefix', async () => {
      await withEngine(factory, async (e) => {
        const a = e.prefixed(b(0x0a))
        const c = e.prefixed(b(0x0b))
        await a.batch([{ type: 'put', key: b(1), value: b(1) }, { type: 'put', key: b(2), value: b(2) }])
        await c.batch([{ type: 'put', key: b(1), value: b(100) }])
        assert.deepEqual(await collect(a), ['01', '02'])
        await e.batch([{ type: 'put', key: b(0x0a), value: b(0) }]) // the bare prefix is the view's empty key
        assert.deepEqual(await collect(a), ['', '01', '02'])
        assert.deepEqual(await collect(c), ['01'])
        assert.deepEqual([...(await c.get(b(1))) ?? []], [100])
        assert.deepEqual(await collect(a, { gt: b(1) }), ['02'])
        assert.deepEqual(await collect(a, { lt: b(2) }), ['', '01'])
        assert.deepEqual(await collect(a, { reverse: true, limit: 1 }), ['02'])
        assert.deepEqual((await a.getMany([b(2), b(3)])).map((v) => v?.[0]), [2, undefined])
        assert.deepEqual(await collect(e), ['0a', '0a01', '0a02', '0b01'])
      })
    })

    test('prefixed views nest, and a 0xff prefix has no upper leak', async () => {
      await withEngine(factory, async (e) => {
        const top = e.prefixed(b(0xff))
        const inner = top.prefixed(b(0xff))
        await inner.batch([{ type: 'put', key: b(1), value: b(1) }])
        await top.batch([{ type: 'put', key: b(0xfe), value: b(1) }])
        await e.batch([{ type: 'put', key: b(0xfe, 0xff), value: b(1) }])
        assert.deepEqual(await collect(inner), ['01'])
        assert.deepEqual(await collect(top), ['fe', 'ff01'])
        await inner.batch([{ type: 'del', key: b(1) }])
        assert.deepEqual(await collect(top), ['fe'])
      })
    })

    test('operations after close fail with ERR_CLOSED; close is idempotent', async () => {
      const e = await factory()
      await e.close()
      await e.close()
      await assert.rejects(e.get(b(1)), (err) => isErrorCode(err, 'ERR_CLOSED'))
      await assert.rejects(e.batch([{ type: 'put', key: b(1), value: b(1) }]), (err) => isErrorCode(err, 'ERR_CLOSED'))
      await assert.rejects(collect(e), (err) => isErrorCode(err, 'ERR_CLOSED'))
    })
  })
}
