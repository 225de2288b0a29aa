import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { cdfPoints, chartSvg, logTicks, niceTicks, scale } from '../../bench/lib/chart.js'
import { quantile, summarise } from '../../bench/lib/stats.js'

describe('bench statistics', () => {
  test('quantiles are nearest-rank', () => {
    const sorted = Array.from({ length: 1000 }, (_, i) => i + 1)
    assert.equal(quantile(sorted, 0.5), 500)
    assert.equal(quantile(sorted, 0.99), 990)
    assert.equal(quantile(sorted, 0.999), 999)
    assert.equal(quantile(sorted, 1), 1000)
    assert.ok(Number.isNaN(quantile([], 0.5)))
  })

  test('a summary sorts its input and keeps the maximum', () => {
    const s = summarise([5, 1, 4, 2, 3])
    assert.deepEqual({ count: s.count, p50: s.p50, max: s.max }, { count: 5, p50: 3, max: 5 })
  })
})

describe('chart scaling', () => {
  test('linear ticks are 1, 2 or 5 × 10^k steps covering the range', () => {
    assert.deepEqual(niceTicks(0, 10), [0, 2, 4, 6, 8, 10])
    assert.deepEqual(niceTicks(0, 19_000, 6), [0, 5000, 10_000, 15_000])
    assert.deepEqual(niceTicks(0.1, 0.5, 5), [0.1, 0.2, 0.3, 0.4, 0.5])
    assert.deepEqual(niceTicks(3, 3), [3])
  })

  test('log ticks are the powers of ten around the range', () => {
    assert.deepEqual(logTicks(0.2, 35), [0.1, 1, 10, 100])
  })

  test('scale maps the range to [0, 1] on both kinds of axis', () => {
    assert.equal(scale({ label: '' }, 0, 10, 5), 0.5)
    assert.equal(scale({ label: '', log: true }, 1, 100, 10), 0.5)
  })

  test('a CDF ends at (max, 1), never has more than the asked points plus one, and rises', () => {
    const values = Array.from({ length: 10_000 }, (_, i) => 10_000 - i)
    const points = cdfPoints(values, 100)
    assert.ok(points.length <= 101)
    assert.deepEqual(points[points.length - 1], [10_000, 1])
    for (let i = 1; i < points.length; i++) assert.ok((points[i]?.[1] ?? 0) >= (points[i - 1]?.[1] ?? 0))
    assert.deepEqual(cdfPoints([]), [])
  })

  test('the SVG escapes names and skips values a log axis cannot show', () => {
    const svg = chartSvg({ title: 'a < b & c', x: { label: 'x', log: true }, y: { label: 'y' }, series: [{ name: 's', points: [[0, 1], [1, 2], [10, 3]] }] })
    assert.match(svg, /a &lt; b &amp; c/)
    assert.equal((svg.match(/<circle /g) ?? []).length, 2)
  })
})
