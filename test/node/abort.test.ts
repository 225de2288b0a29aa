import assert from 'node:assert/strict'
import { createHook } from 'node:async_hooks'
import { once } from 'node:events'
import { describe, test } from 'node:test'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { operationSignal, timeoutSignal, untilAborted } from '../../node/abort.js'

// the deadline tests need a collection at a chosen moment (as in test/messaging/stream-end.test.ts)
setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

/** How long a test waits for a deadline before failing instead of hanging: far past every deadline here. */
const TEST_DEADLINE_MS = 5_000

/** Resolves when every signal has fired; rejects if one has not after TEST_DEADLINE_MS. */
async function allFire (signals: AbortSignal[]): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const gaveUp = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => { reject(new Error(`${signals.filter((s) => !s.aborted).length} of ${signals.length} deadlines never fired`)) }, TEST_DEADLINE_MS)
  })
  try {
    await Promise.race([Promise.all(signals.map(async (s) => { if (!s.aborted) await once(s, 'abort') })), gaveUp])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Makes the signals in a function of their own and collects garbage once it has returned, so
 * nothing but what the signals themselves hold keeps their deadlines: AbortSignal.any over
 * AbortSignal.timeout, on Node 20, loses every one of them here.
 */
async function collectedAfter (make: () => AbortSignal[]): Promise<AbortSignal[]> {
  const signals = make()
  await new Promise((resolve) => setImmediate(resolve))
  gc()
  return signals
}

/**
 * Records the timers `fn` makes; `allDestroyed` resolves once Node has destroyed every one of them
 * (cleared, or fired), and fails if one is still pending after TEST_DEADLINE_MS.
 */
function trackTimers<T> (fn: () => T): { result: T, timers: Array<{ hasRef: () => boolean }>, allDestroyed: () => Promise<void> } {
  const made = new Map<number, { hasRef: () => boolean }>()
  const destroyed = new Set<number>()
  let watching = true
  const hook = createHook({
    init (asyncId, type, _trigger, resource) {
      if (watching && type === 'Timeout') made.set(asyncId, resource as { hasRef: () => boolean })
    },
    destroy (asyncId) {
      if (made.has(asyncId)) destroyed.add(asyncId)
    }
  }).enable()
  let result: T
  try {
    result = fn()
  } finally {
    watching = false
  }
  const allDestroyed = async (): Promise<void> => {
    try {
      // Node reports destroyed timers from an immediate that does not keep the loop turning: turn
      // it (a few turns suffice; the bound only ends a failing test)
      for (let turns = 0; destroyed.size < made.size && turns < 1000; turns++) await new Promise((resolve) => setImmediate(resolve))
      assert.equal(made.size - destroyed.size, 0, 'timers still pending')
    } finally {
      hook.disable()
    }
  }
  return { result, timers: [...made.values()], allDestroyed }
}

describe('deadlines (node/abort.ts)', () => {
  test('timeoutSignal fires after a garbage collection, with or without other signals', async () => {
    const shutdown = new AbortController()
    const signals = await collectedAfter(() => [
      ...Array.from({ length: 5 }, () => timeoutSignal(50, shutdown.signal)),
      timeoutSignal(50),
      timeoutSignal(50, undefined, new AbortController().signal)
    ])
    await allFire(signals)
    for (const s of signals) assert.equal((s.reason as DOMException).name, 'TimeoutError')
    assert.equal(shutdown.signal.aborted, false)
  })

  test('operationSignal: its default deadline and a caller\'s inline AbortSignal.timeout fire after a garbage collection', async () => {
    const shutdown = new AbortController()
    const signals = await collectedAfter(() => [
      ...Array.from({ length: 5 }, () => operationSignal(undefined, 50, shutdown.signal)),
      ...Array.from({ length: 5 }, () => operationSignal(AbortSignal.timeout(50), 60_000, shutdown.signal))
    ])
    await allFire(signals)
  })

  test('a deadline fires early when one of the other signals does, with that signal\'s reason', () => {
    const shutdown = new AbortController()
    const signal = timeoutSignal(60_000, shutdown.signal)
    const reason = new Error('stopping')
    shutdown.abort(reason)
    assert.equal(signal.aborted, true)
    assert.equal(signal.reason, reason)
    signal.clear()
  })

  test('a deadline cleared once its work is done leaves no timer, and none keeps the process alive', async () => {
    const shutdown = new AbortController()
    const { result: deadlines, timers, allDestroyed } = trackTimers(() => Array.from({ length: 20 }, () => timeoutSignal(60_000, shutdown.signal)))
    assert.equal(timers.length, deadlines.length)
    for (const t of timers) assert.equal(t.hasRef(), false)
    // the work under each deadline, done long before it
    await Promise.all(deadlines.map(async (signal) => await untilAborted(Promise.resolve(), signal)))
    for (const d of deadlines) d.clear()
    await allDestroyed()
    for (const d of deadlines) assert.equal(d.aborted, false)
  })

  test('a deadline that fires leaves no timer', async () => {
    const { result: deadline, allDestroyed } = trackTimers(() => timeoutSignal(20))
    await allFire([deadline])
    await allDestroyed()
    // clearing after the fact is harmless
    deadline.clear()
  })

  test('operationSignal under a caller\'s signal makes no timer; untilAborted leaves no listener behind', async () => {
    const caller = new AbortController()
    const { result: signal, timers, allDestroyed } = trackTimers(() => operationSignal(caller.signal, 60_000))
    assert.equal(timers.length, 0)
    await allDestroyed()
    let listeners = 0
    const add = signal.addEventListener.bind(signal)
    const remove = signal.removeEventListener.bind(signal)
    signal.addEventListener = (...args: Parameters<AbortSignal['addEventListener']>) => { listeners++; add(...args) }
    signal.removeEventListener = (...args: Parameters<AbortSignal['removeEventListener']>) => { listeners--; remove(...args) }
    assert.equal(await untilAborted(Promise.resolve('done'), signal), 'done')
    assert.equal(listeners, 0)
    caller.abort(new Error('caller gave up'))
    await assert.rejects(untilAborted(new Promise(() => {}), signal), /caller gave up/)
    signal.clear()
  })

  test('a deadline handed to a query that listens once per path (kad-dht: 10 paths and the query) warns of no leak', async () => {
    const warnings: Error[] = []
    const onWarning = (w: Error): void => { if (w.name === 'MaxListenersExceededWarning') warnings.push(w) }
    process.on('warning', onWarning)
    try {
      for (const signal of [timeoutSignal(60_000, new AbortController().signal), operationSignal(new AbortController().signal, 60_000, new AbortController().signal)]) {
        const listeners = Array.from({ length: 25 }, () => () => {})
        for (const l of listeners) signal.addEventListener('abort', l)
        for (const l of listeners) signal.removeEventListener('abort', l)
        signal.clear()
      }
      // warnings are emitted on the next tick
      await new Promise((resolve) => setImmediate(resolve))
      assert.deepEqual(warnings.map((w) => w.message), [])
    } finally {
      process.off('warning', onWarning)
    }
  })
})
