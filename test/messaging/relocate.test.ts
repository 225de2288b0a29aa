import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import type { TalariaNode } from '../../node/index.js'
import { startMesh, waitUntil, type CloseAll } from '../helpers/mesh.js'
import { envelopes, heldBy, locationRecord, RecordingSink, sinkOf, testDevice } from './fixtures.js'

/** First re-pull delay and its cap on the node of the re-pull test (the defaults are 30 s and 10 min). */
const POLL_MS = 100
const POLL_MAX_MS = 800
/** Timers may fire this much early (Node rounds to the millisecond). */
const TIMER_SLACK_MS = 5

describe('an attached device whose mailbox or location changes', () => {
  let nodes: TalariaNode[] = []
  let closeAll: CloseAll = async () => {}

  before(async () => {
    // node 4 re-pulls on a short schedule, so the backoff shows within a test
    [nodes, closeAll] = await startMesh(5, { perNode: (i) => (i === 4 ? { mailboxPollMs: POLL_MS, mailboxPollMaxMs: POLL_MAX_MS } : {}) })
  })
  after(async () => { await closeAll() })

  test('a device that moved gets what a stale cached location sent, directly, not through its mailbox', async () => {
    const [, sender, before, moved] = nodes as [TalariaNode, TalariaNode, TalariaNode, TalariaNode]
    const alice = testDevice()
    const bob = testDevice()
    const aliceSink = new RecordingSink()
    const detachAlice = sender.messaging().delivery.attach(alice.ref, sinkOf(aliceSink))
    try {
      const first = new RecordingSink()
      const detachFirst = before.messaging().delivery.attach(bob.ref, sinkOf(first))
      await before.messaging().directory.publish([locationRecord(bob, before, Date.now())])
      const one = envelopes(alice, bob, 1)
      await sender.messaging().delivery.submit(alice.ref, one)
      await first.until(() => first.pushed.length >= 1, 'the first envelope on the first node')
      await before.messaging().delivery.ack(bob.ref, first.pushed.map((p) => p.id))
      detachFirst()

      // bob now sits on another node; the sender's cache (30 s) still names the first one
      const second = new RecordingSink()
      const detachSecond = moved.messaging().delivery.attach(bob.ref, sinkOf(second))
      try {
        await moved.messaging().directory.publish([locationRecord(bob, moved, Date.now() + 1)])
        const two = envelopes(alice, bob, 1, 2)
        await sender.messaging().delivery.submit(alice.ref, two)
        // well before the 30 s re-pull that would find it in the mailbox
        await second.until(() => second.pushed.length >= 1, 'the second envelope on the node bob moved to', 10_000)
        assert.deepEqual(second.pushed.map((p) => p.id), [two[0]!.envelope.id])
        const held = await Promise.all(nodes.map(async (n) => await heldBy(n, bob)))
        assert.deepEqual(held, nodes.map(() => 0), 'no mailbox replica holds it')
      } finally {
        detachSecond()
      }
    } finally {
      detachAlice()
    }
  })

  test('re-pulls of an attached device\'s mailbox back off while they find nothing, and start over when one does', async () => {
    const host = nodes[4]!
    const other = nodes[1]!
    const bob = testDevice()
    const mailbox = host.messaging().mailbox
    // a spy on the real service: when each pull of this device starts
    const pulls: number[] = []
    const fetchAll = mailbox.fetchAll.bind(mailbox)
    mailbox.fetchAll = async (user, device, proof) => {
      if (device === bob.ref.device) pulls.push(performance.now())
      return await fetchAll(user, device, proof)
    }
    const sink = new RecordingSink()
    const detach = host.messaging().delivery.attach(bob.ref, sinkOf(sink))
    try {
      await host.messaging().directory.publish([locationRecord(bob, host)])
      // the pull on the location record, then 100, 200, 400, 800, 800 ms apart
      await waitUntil(() => pulls.length >= 6, { what: 'six pulls', timeoutMs: 20_000 })
      const gaps = pulls.slice(1, 6).map((t, i) => t - pulls[i]!)
      gaps.forEach((gap, i) => {
        const scheduled = Math.min(POLL_MS * 2 ** i, POLL_MAX_MS)
        assert.ok(gap >= scheduled - TIMER_SLACK_MS, `gap ${i} is ${gap.toFixed(0)} ms, scheduled ${scheduled} ms: ${gaps.map((g) => g.toFixed(0)).join(', ')}`)
      })

      // an envelope lands in the mailbox while bob is attached (its sender could not locate him)
      const alice = testDevice()
      const lost = envelopes(alice, bob, 1)
      const put = await other.messaging().mailbox.put(bob.ref.user, bob.ref.device, lost.map((e) => e.bytes))
      assert.ok(put.successes.length >= 1)
      await sink.until(() => sink.pushed.length >= 1, 'the mailbox envelope, pulled')
      const found = pulls.length
      await waitUntil(() => pulls.length >= found + 1, { what: 'the pull after the one that found it', timeoutMs: 10_000 })
      const after = pulls[found]! - pulls[found - 1]!
      // back to the first delay, not the 800 ms cap
      assert.ok(after < POLL_MAX_MS / 2, `the pull after a find came ${after.toFixed(0)} ms later`)
    } finally {
      detach()
      mailbox.fetchAll = fetchAll
    }
  })
})
