import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import type { StoredMessage } from '../../storage/index.js'
import { MAILBOX_BUCKETS, mailboxFixture } from './helpers.js'

type Op =
  | { kind: 'put', user: string, msg: StoredMessage }
  | { kind: 'delete', user: string, ids: string[] }
  | { kind: 'sweep', now: number }

const users = fc.constantFrom('alice', 'bob', 'carol', 'dave')
const ids = fc.constantFrom('m0', 'm1', 'm2', 'm3', 'm4', 'm5')
const msgArb: fc.Arbitrary<StoredMessage> = fc.record({
  id: ids,
  conversation: fc.constantFrom('c', 'c2', 'cc'),
  seq: fc.nat({ max: 5 }),
  receivedAt: fc.nat({ max: 20 }),
  expiresAt: fc.nat({ max: 50 }),
  body: fc.uint8Array({ maxLength: 8 })
})
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('put' as const), user: users, msg: msgArb }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), user: users, ids: fc.array(ids, { maxLength: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('sweep' as const), now: fc.nat({ max: 50 }) }) }
)

const byTime = (a: StoredMessage, b: StoredMessage): number => a.receivedAt - b.receivedAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
const bySeq = (a: StoredMessage, b: StoredMessage): number => a.seq - b.seq || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
const plain = (m: StoredMessage): unknown => ({ ...m, body: [...m.body] })

test('the mailbox repository behaves like a map of maps under random put/delete/sweep/list', async () => {
  await fc.assert(fc.asyncProperty(fc.array(opArb, { maxLength: 40 }), async (ops) => {
    const f = await mailboxFixture(3)
    const model = new Map<string, Map<string, StoredMessage>>()
    const of = (user: string): Map<string, StoredMessage> => {
      let m = model.get(user)
      if (m === undefined) model.set(user, m = new Map())
      return m
    }
    try {
      for (const op of ops) {
        if (op.kind === 'put') {
          const expected = !of(op.user).has(op.msg.id)
          if (expected) of(op.user).set(op.msg.id, op.msg)
          assert.equal((await f.repo.put(op.user, op.msg)).created, expected)
        } else if (op.kind === 'delete') {
          const unique = [...new Set(op.ids)]
          const expected = unique.filter((id) => of(op.user).delete(id)).length
          assert.equal(await f.repo.delete(op.user, op.ids), expected)
        } else {
          let expected = 0
          for (const m of model.values()) {
            for (const [id, msg] of m) if ((msg.expiresAt ?? Infinity) <= op.now && m.delete(id)) expected++
          }
          assert.equal(await f.repo.sweepExpired(op.now), expected)
        }
      }
      let total = 0
      for (const user of ['alice', 'bob', 'carol', 'dave']) {
        const stored = [...of(user).values()]
        total += stored.length
        assert.deepEqual((await f.repo.list(user, { limit: 1000 })).map(plain), [...stored].sort(byTime).map(plain))
        for (const conv of ['c', 'c2', 'cc']) {
          const want = stored.filter((m) => m.conversation === conv && m.seq >= 2).sort(bySeq)
          assert.deepEqual((await f.repo.listByConversation(user, conv, { fromSeq: 2 })).map(plain), want.map(plain))
        }
      }
      // No index entry outlives its record, none is missing.
      for (const bucket of MAILBOX_BUCKETS) assert.equal(await f.count(bucket), total, `bucket ${bucket}`)
    } finally {
      await f.close()
    }
  }), { numRuns: 150 })
})
