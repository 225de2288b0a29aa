/**
 * The gateway's background revocation checks: one lookup per user, a bounded number at once, a
 * deadline, and nothing left behind by a check nobody waits for. The directory here answers only
 * when the test says so, which is what these bounds are about.
 */
import assert from 'node:assert/strict'
import { afterEach, beforeEach, describe, it } from 'node:test'
import { pino } from 'pino'
import { revokeDeviceFromList, type DeviceList } from '../../protocol/identity.js'
import type { UserId } from '../../protocol/ids.js'
import { RevocationChecker, type RevocationCheckResult } from '../../node/gateway/revocation.js'
import type { CallOptions } from '../../node/messaging/contracts.js'
import { devicesRecord, startGateway, TestClient, testDevice, withTimeout, type TestDevice, type TestGateway } from './harness.js'

/** A directory whose lookups stay open until `answer`; it ignores abort signals unless `honourSignal`. */
class HeldDirectory {
  readonly calls: Array<{ user: UserId, signal: AbortSignal | undefined, answer: (list: DeviceList | undefined) => void }> = []
  private callWaiters: Array<() => void> = []

  async publish (): Promise<{ stored: number, failures: [] }> {
    return { stored: 0, failures: [] }
  }

  async lookup (): Promise<{ prekeys: Uint8Array[] }> {
    return { prekeys: [] }
  }

  async getDeviceList (user: UserId, opts: CallOptions = {}): Promise<DeviceList | undefined> {
    return await new Promise((resolve) => {
      this.calls.push({ user, signal: opts.signal, answer: resolve })
      for (const w of this.callWaiters.splice(0)) w()
    })
  }

  /** Resolves once `n` lookups have been made in all. */
  async untilCalls (n: number): Promise<void> {
    while (this.calls.length < n) await withTimeout(new Promise<void>((resolve) => { this.callWaiters.push(resolve) }), `${n} lookups`)
  }
}

const logger = pino({ level: 'silent' })

function user (): UserId {
  return testDevice().user.userId
}

/** A `done` callback and the promise of its one result. */
function outcome (): { done: (r: RevocationCheckResult) => void, result: Promise<RevocationCheckResult> } {
  let done!: (r: RevocationCheckResult) => void
  const result = new Promise<RevocationCheckResult>((resolve) => { done = resolve })
  return { done, result }
}

describe('gateway: background revocation checks', () => {
  it('makes one lookup for every connection of a user and answers each', async () => {
    const directory = new HeldDirectory()
    const checker = new RevocationChecker(directory, { concurrency: 4, timeoutMs: 60_000, logger })
    const d = testDevice()
    const first = outcome()
    const second = outcome()
    checker.check(d.user.userId, first.done)
    checker.check(d.user.userId, second.done)
    await directory.untilCalls(1)
    directory.calls[0]!.answer(d.list)
    for (const r of await Promise.all([first.result, second.result])) assert.deepEqual(r, { ok: true, list: d.list })
    assert.equal(directory.calls.length, 1, 'one lookup for both')
  })

  it('runs at most `concurrency` lookups at once and starts a queued one as a slot frees', async () => {
    const directory = new HeldDirectory()
    const checker = new RevocationChecker(directory, { concurrency: 2, timeoutMs: 60_000, logger })
    const users = [user(), user(), user(), user()]
    const results = users.map((u) => {
      const o = outcome()
      checker.check(u, o.done)
      return o.result
    })
    // lookups start as they are asked for: two now, the other two wait for a slot
    assert.deepEqual(directory.calls.map((c) => c.user), users.slice(0, 2))
    directory.calls[0]!.answer(undefined)
    await directory.untilCalls(3)
    assert.equal(directory.calls[2]!.user, users[2])
    directory.calls[1]!.answer(undefined)
    directory.calls[2]!.answer(undefined)
    await directory.untilCalls(4)
    directory.calls[3]!.answer(undefined)
    for (const r of await Promise.all(results)) assert.deepEqual(r, { ok: true, list: undefined })
  })

  it('answers a lookup that outlives its deadline with a failure and frees its slot', async () => {
    const directory = new HeldDirectory()
    const checker = new RevocationChecker(directory, { concurrency: 1, timeoutMs: 50, logger })
    const slow = outcome()
    const queued = outcome()
    checker.check(user(), slow.done)
    const next = user()
    checker.check(next, queued.done)
    const r = await withTimeout(slow.result, 'the deadline')
    assert.equal(r.ok, false)
    assert.equal(directory.calls[0]!.signal?.aborted, true, 'the lookup was aborted')
    // asked for at the same time, the queued check's deadline (queue time included) passes too
    const q = await withTimeout(queued.result, 'the queued check')
    assert.equal(q.ok, false)
    // the slot is free again even though the directory ignored the aborts
    const later = outcome()
    const calls = directory.calls.length
    checker.check(next, later.done)
    await directory.untilCalls(calls + 1)
    directory.calls[calls]!.answer(undefined)
    assert.deepEqual(await later.result, { ok: true, list: undefined })
  })

  it('drops a check nobody waits for: a queued one never looks up, a running one is aborted and frees its slot', async () => {
    const directory = new HeldDirectory()
    const checker = new RevocationChecker(directory, { concurrency: 1, timeoutMs: 60_000, logger })
    let called = 0
    const cancelRunning = checker.check(user(), () => { called++ })
    const cancelQueued = checker.check(user(), () => { called++ })
    await directory.untilCalls(1)
    cancelQueued()
    cancelRunning()
    assert.equal(directory.calls[0]!.signal?.aborted, true, 'the running lookup was aborted')
    const third = outcome()
    const u = user()
    checker.check(u, third.done)
    await directory.untilCalls(2)
    assert.equal(directory.calls[1]!.user, u, 'the cancelled queued check was skipped')
    directory.calls[1]!.answer(undefined)
    await third.result
    directory.calls[0]!.answer(undefined)
    await new Promise<void>((resolve) => { setImmediate(resolve) })
    assert.equal(called, 0, 'no cancelled caller was answered')
  })

  it('keeps a shared lookup while one connection of the user still waits', async () => {
    const directory = new HeldDirectory()
    const checker = new RevocationChecker(directory, { concurrency: 1, timeoutMs: 60_000, logger })
    const d = testDevice()
    const stays = outcome()
    let cancelledAnswered = 0
    const cancel = checker.check(d.user.userId, () => { cancelledAnswered++ })
    checker.check(d.user.userId, stays.done)
    await directory.untilCalls(1)
    cancel()
    assert.equal(directory.calls[0]!.signal?.aborted, false)
    directory.calls[0]!.answer(d.list)
    assert.deepEqual(await stays.result, { ok: true, list: d.list })
    assert.equal(cancelledAnswered, 0, 'the cancelled caller was not answered')
  })

  it('stop cancels every check without answering', async () => {
    const directory = new HeldDirectory()
    const checker = new RevocationChecker(directory, { concurrency: 1, timeoutMs: 60_000, logger })
    let called = 0
    checker.check(user(), () => { called++ })
    checker.check(user(), () => { called++ })
    await directory.untilCalls(1)
    checker.stop()
    assert.equal(directory.calls[0]!.signal?.aborted, true)
    await new Promise<void>((resolve) => { setImmediate(resolve) })
    assert.equal(called, 0)
    assert.equal(directory.calls.length, 1)
  })
})

/**
 * A connection while its check runs, on the gateway harness: the test decides when the lookup
 * answers, so what happens before and after is exact.
 */
describe('gateway: a connection while its revocation check runs', () => {
  let gw: TestGateway
  /** The lookups the directory holds, oldest first. */
  let lookups: Array<{ signal: AbortSignal | undefined, answer: (list: DeviceList | undefined) => void }>

  beforeEach(async () => {
    gw = await startGateway()
    lookups = []
    gw.directory.getDeviceList = async (_user, opts) => await new Promise((resolve) => { lookups.push({ signal: opts?.signal, answer: resolve }) })
  })
  afterEach(async () => { await gw.close() })

  const attached = (d: TestDevice): boolean => gw.delivery.sinks.some((s) => s.device.device === d.device.deviceId && s.attached)

  it('serves requests but attaches nothing and holds device-list publishes until the check ends, then attaches', async () => {
    const d = testDevice()
    const client = await TestClient.connect(gw.url)
    try {
      await client.auth(d)
      const publish = client.sendRequest('publish', { records: [devicesRecord(d)] })
      // answered in order after the publish was taken: the publish is waiting, not lost
      await client.ok('ping', {})
      assert.equal(lookups.length, 1)
      assert.equal(attached(d), false, 'no pushes before the check ends')
      assert.equal(gw.directory.published.length, 0, 'the device list is not published yet')
      lookups[0]!.answer(d.list)
      const res = await client.response(publish)
      assert.ok(res.ok)
      assert.equal(gw.directory.published.length, 1)
      assert.equal(attached(d), true, 'attached once the check passed')
    } finally {
      await client.close()
    }
  })

  it('disconnects the device with ERR_DEVICE_REVOKED when the check finds a newer list without it, before any push or publish', async () => {
    const d = testDevice()
    const client = await TestClient.connect(gw.url)
    try {
      await client.auth(d)
      client.sendRequest('publish', { records: [devicesRecord(d)] })
      await client.ok('ping', {})
      lookups[0]!.answer(revokeDeviceFromList(d.list, d.user, d.device.deviceId))
      const revocation = await client.response(0)
      assert.equal(revocation.ok ? undefined : revocation.error.code, 'ERR_DEVICE_REVOKED')
      assert.equal((await withTimeout(client.closed, 'close')).code, 1008)
      assert.equal(gw.delivery.sinks.length, 0, 'never attached')
      assert.equal(gw.directory.published.length, 0, 'its held publish was dropped')
    } finally {
      await client.close()
    }
  })

  it('cancels the check when the connection closes first', async () => {
    const d = testDevice()
    const client = await TestClient.connect(gw.url)
    await client.auth(d)
    await client.ok('ping', {})
    const signal = lookups[0]!.signal
    assert.ok(signal !== undefined)
    const aborted = new Promise<void>((resolve) => { signal.addEventListener('abort', () => { resolve() }, { once: true }) })
    await client.close()
    await withTimeout(aborted, 'the lookup to be aborted')
    assert.equal(gw.delivery.sinks.length, 0)
  })
})
