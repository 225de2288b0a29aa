/**
 * One compliance suite for every ClientStore implementation.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { ClientStore } from '../../client/store.js'

const b = (s: string): Uint8Array => new TextEncoder().encode(s)
const s = (v: Uint8Array | undefined): string | undefined => v === undefined ? undefined : new TextDecoder().decode(v)

/** Runs the suite; `reopen` (when given) must return a new instance on the same storage. */
export function storeSuite (name: string, factory: () => Promise<{ store: ClientStore, reopen?: () => ClientStore, cleanup: () => Promise<void> }>, opts: { persistent: boolean }): void {
  describe(`ClientStore: ${name}`, () => {
    it('puts, gets and deletes per namespace', async () => {
      const { store, cleanup } = await factory()
      try {
        await store.open()
        await store.batch([{ type: 'put', ns: 'sessions', key: 'k', value: b('one') }, { type: 'put', ns: 'seen', key: 'k', value: b('two') }])
        assert.equal(s(await store.get('sessions', 'k')), 'one')
        assert.equal(s(await store.get('seen', 'k')), 'two')
        assert.equal(await store.get('counters', 'k'), undefined)
        await store.batch([{ type: 'del', ns: 'sessions', key: 'k' }])
        assert.equal(await store.get('sessions', 'k'), undefined)
        assert.equal(s(await store.get('seen', 'k')), 'two')
      } finally {
        await store.close()
        await cleanup()
      }
    })

    it('lists in key order within a range and a limit', async () => {
      const { store, cleanup } = await factory()
      try {
        await store.open()
        await store.batch(['c/3', 'a/1', 'b/2', 'b/1', 'd'].map((key) => ({ type: 'put' as const, ns: 'sent' as const, key, value: b(key) })))
        assert.deepEqual((await store.list('sent')).map(([k]) => k), ['a/1', 'b/1', 'b/2', 'c/3', 'd'])
        assert.deepEqual((await store.list('sent', { gte: 'b/', lt: 'b0' })).map(([k, v]) => [k, s(v)]), [['b/1', 'b/1'], ['b/2', 'b/2']])
        assert.deepEqual((await store.list('sent', { gte: 'b', limit: 2 })).map(([k]) => k), ['b/1', 'b/2'])
        assert.deepEqual(await store.list('pending'), [])
      } finally {
        await store.close()
        await cleanup()
      }
    })

    it('returns copies: mutating a value read or written does not change the store', async () => {
      const { store, cleanup } = await factory()
      try {
        await store.open()
        const v = b('abc')
        await store.batch([{ type: 'put', ns: 'meta', key: 'x', value: v }])
        v[0] = 0x7a
        const got = await store.get('meta', 'x')
        assert.equal(s(got), 'abc')
        got![0] = 0x7a
        assert.equal(s(await store.get('meta', 'x')), 'abc')
      } finally {
        await store.close()
        await cleanup()
      }
    })

    it('refuses calls with an aborted signal and after close', async () => {
      const { store, cleanup } = await factory()
      try {
        await store.open()
        const ac = new AbortController()
        ac.abort()
        await assert.rejects(store.get('meta', 'x', { signal: ac.signal }), { code: 'ERR_ABORTED' })
        await store.close()
        await assert.rejects(store.get('meta', 'x'), { code: 'ERR_CLOSED' })
      } finally {
        await store.close()
        await cleanup()
      }
    })

    it('keeps round-tripped bytes exact, including empty and binary values', async () => {
      const { store, cleanup } = await factory()
      try {
        await store.open()
        const bin = Uint8Array.from({ length: 256 }, (_, i) => i)
        await store.batch([{ type: 'put', ns: 'sessions', key: 'bin', value: bin }, { type: 'put', ns: 'sessions', key: 'empty', value: new Uint8Array(0) }])
        assert.deepEqual(await store.get('sessions', 'bin'), bin)
        assert.deepEqual(await store.get('sessions', 'empty'), new Uint8Array(0))
      } finally {
        await store.close()
        await cleanup()
      }
    })

    if (opts.persistent) it('survives a reopen', async () => {
      const { store, reopen, cleanup } = await factory()
      try {
        assert.ok(reopen !== undefined, 'a persistent store factory provides reopen')
        await store.open()
        await store.batch([{ type: 'put', ns: 'counters', key: 'send/c', value: b('42') }])
        await store.close()
        const again = reopen()
        await again.open()
        assert.equal(s(await again.get('counters', 'send/c')), '42')
        await again.close()
      } finally {
        await store.close()
        await cleanup()
      }
    })
  })
}
