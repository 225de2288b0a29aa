import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { DEFAULT_RECONNECT_BASE_MS, DEFAULT_RECONNECT_MAX_MS, backoffDelay } from '../../client/backoff.js'

describe('backoffDelay', () => {
  it('stays within [cap/2, cap] with cap = min(max, base * 2^attempt)', () => {
    for (let attempt = 0; attempt < 40; attempt++) {
      const cap = Math.min(DEFAULT_RECONNECT_MAX_MS, DEFAULT_RECONNECT_BASE_MS * 2 ** attempt)
      assert.equal(backoffDelay(attempt, {}, () => 0), Math.round(cap / 2))
      assert.equal(backoffDelay(attempt, {}, () => 0.999999999), Math.round(cap))
      const d = backoffDelay(attempt)
      assert.ok(d >= cap / 2 - 1 && d <= cap, `attempt ${attempt}: ${d}`)
    }
  })

  it('never exceeds the maximum, even for huge attempt counts or a misbehaving random source', () => {
    for (const attempt of [50, 1000, Number.MAX_SAFE_INTEGER]) {
      assert.ok(backoffDelay(attempt, { baseMs: 100, maxMs: 5000 }, () => 7) <= 5000)
      assert.ok(backoffDelay(attempt, { baseMs: 100, maxMs: 5000 }, () => -3) >= 2500)
    }
  })

  it('grows: the lower bound doubles until the cap', () => {
    const lows = [0, 1, 2, 3].map((a) => backoffDelay(a, { baseMs: 100, maxMs: 500 }, () => 0))
    assert.deepEqual(lows, [50, 100, 200, 250])
  })

  it('jitters: different random values give different delays', () => {
    const values = new Set(Array.from({ length: 20 }, (_, i) => backoffDelay(5, { baseMs: 100, maxMs: 10_000 }, () => i / 20)))
    assert.equal(values.size, 20)
  })
})
