import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { OrderingBuffer, type OrderingTimers, type Sequenced } from '../../client/ordering.js'

interface M extends Sequenced { text: string }

/** Timers the test fires by hand. */
function manualTimers (): OrderingTimers & { fire: () => number, pending: () => number } {
  const due = new Map<number, () => void>()
  let next = 1
  return {
    setTimeout: (fn) => { const h = next++; due.set(h, fn); return h },
    clearTimeout: (h) => { due.delete(h as number) },
    fire: () => { const fns = [...due.values()]; due.clear(); for (const f of fns) f(); return fns.length },
    pending: () => due.size
  }
}

function setup (opts: { gapMaxRequests?: number, maxBufferedPerStream?: number } = {}) {
  const delivered: M[] = []
  const gaps: Array<[string, number, number]> = []
  const skipped: Array<[string, number, number]> = []
  const timers = manualTimers()
  const buf = new OrderingBuffer<M>({
    ...opts,
    timers,
    deliver: (m) => { delivered.push(m) },
    requestGap: (stream, from, to) => { gaps.push([stream, from, to]) },
    skipped: (stream, from, to) => { skipped.push([stream, from, to]) }
  })
  const m = (seq: number, stream = 's'): M => ({ stream, seq, text: `${stream}${seq}` })
  return { buf, delivered, gaps, skipped, timers, m }
}

describe('OrderingBuffer', () => {
  it('delivers in seq order and holds back early messages', () => {
    const { buf, delivered, m } = setup()
    buf.setNext('s', 1)
    for (const seq of [2, 4, 1, 3, 5]) buf.offer(m(seq))
    assert.deepEqual(delivered.map((x) => x.seq), [1, 2, 3, 4, 5])
    assert.equal(buf.heldCount(), 0)
  })

  it('keeps streams independent', () => {
    const { buf, delivered, m } = setup()
    buf.setNext('a', 1)
    buf.setNext('b', 1)
    buf.offer(m(2, 'a'))
    buf.offer(m(1, 'b'))
    buf.offer(m(1, 'a'))
    assert.deepEqual(delivered.map((x) => x.text), ['b1', 'a1', 'a2'])
  })

  it('takes the first message of an unknown stream as its start', () => {
    const { buf, delivered, m } = setup()
    buf.offer(m(57))
    buf.offer(m(58))
    assert.deepEqual(delivered.map((x) => x.seq), [57, 58])
    assert.equal(buf.nextSeq('s'), 59)
  })

  it('starts an unknown stream at the sender\'s base, so a late first message is waited for', () => {
    const { buf, delivered, gaps, timers, m } = setup()
    buf.offer({ ...m(2), base: 1 })
    assert.equal(delivered.length, 0)
    timers.fire()
    assert.deepEqual(gaps, [['s', 1, 1]])
    buf.offer({ ...m(1), base: 1 })
    assert.deepEqual(delivered.map((x) => x.seq), [1, 2])
  })

  it('asks for the missing range after the timeout, and stops asking once it is filled', () => {
    const { buf, delivered, gaps, timers, m } = setup()
    buf.setNext('s', 1)
    buf.offer(m(1))
    buf.offer(m(4))
    buf.offer(m(5))
    assert.deepEqual(gaps, [])
    assert.equal(timers.fire(), 1)
    assert.deepEqual(gaps, [['s', 2, 3]])
    buf.offer(m(2))
    buf.offer(m(3))
    assert.deepEqual(delivered.map((x) => x.seq), [1, 2, 3, 4, 5])
    assert.equal(timers.pending(), 0)
  })

  it('gives up after the configured requests and delivers what it holds, in order', () => {
    const { buf, delivered, gaps, skipped, timers, m } = setup({ gapMaxRequests: 2 })
    buf.setNext('s', 1)
    buf.offer(m(3))
    buf.offer(m(4))
    timers.fire()
    timers.fire()
    assert.deepEqual(gaps, [['s', 1, 2], ['s', 1, 2]])
    assert.equal(delivered.length, 0)
    timers.fire()
    assert.deepEqual(skipped, [['s', 1, 2]])
    assert.deepEqual(delivered.map((x) => x.seq), [3, 4])
    assert.equal(timers.pending(), 0)
  })

  it('narrows the requested range as messages arrive', () => {
    const { buf, gaps, timers, m } = setup()
    buf.setNext('s', 1)
    buf.offer(m(6))
    buf.offer(m(1))
    buf.offer(m(2))
    timers.fire()
    assert.deepEqual(gaps, [['s', 3, 5]])
  })

  it('bounds what it holds: past the limit it gives up on the gap at once', () => {
    const { buf, delivered, skipped, m } = setup({ maxBufferedPerStream: 3 })
    buf.setNext('s', 1)
    for (const seq of [3, 4, 5, 6]) buf.offer(m(seq))
    assert.deepEqual(skipped, [['s', 1, 2]])
    assert.deepEqual(delivered.map((x) => x.seq), [3, 4, 5, 6])
  })

  it('delivers a late message below the expected seq at once instead of dropping it', () => {
    const { buf, delivered, m } = setup()
    buf.offer(m(5))
    buf.offer(m(4))
    assert.deepEqual(delivered.map((x) => x.seq), [5, 4])
  })

  it('ignores a second copy of a held message', () => {
    const { buf, delivered, m } = setup()
    buf.setNext('s', 1)
    buf.offer(m(2))
    buf.offer(m(2))
    buf.offer(m(1))
    assert.deepEqual(delivered.map((x) => x.seq), [1, 2])
  })
})
