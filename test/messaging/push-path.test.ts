/**
 * The push path of the delivery service, over real storage (LevelDB in a temp dir): an envelope
 * stored for a caught-up device is pushed from memory, its ack deletes by the keys remembered at
 * push time, and an envelope whose store completes while a scan is listing is still pushed.
 * The directory and mailbox are stubs (no device here has a location proof, so neither is asked).
 */
import assert from 'node:assert/strict'
import { rm } from 'node:fs/promises'
import { after, before, describe, test } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { pino } from 'pino'
import { ArrivalClock } from '../../node/messaging/clock.js'
import { DefaultDeliveryService } from '../../node/messaging/delivery.js'
import type { MessagingDirectory } from '../../node/messaging/directory.js'
import type { MailboxService } from '../../node/messaging/mailbox.js'
import type { MessageId } from '../../protocol/ids.js'
import { deviceOwnerKey, openStorage, type InboxRepository, type Storage, type StoredMessage, type StoredMessageRef } from '../../storage/index.js'
import { tempDataDir } from '../helpers/mesh.js'
import type { SubmittedEnvelope } from '../../node/messaging/contracts.js'
import { envelopes, RecordingSink, sinkOf, testDevice, type TestDevice } from './fixtures.js'

/** The real inbox, counting its reads and deletes, with hooks to hold a put or a list. */
class WatchedInbox implements InboxRepository {
  lists = 0
  gets = 0
  reads = 0
  knownDeletes = 0
  /** A put of this id waits for `release` before it writes. */
  holdPut: { id: string, release: Promise<void> } | undefined
  /** The next list reads, then waits for this before it answers. */
  holdList: { release: Promise<void>, listed: () => void } | undefined

  constructor (private readonly inner: InboxRepository) {}

  async put (userId: string, msg: StoredMessage): ReturnType<InboxRepository['put']> {
    if (this.holdPut?.id === msg.id) await this.holdPut.release
    return await this.inner.put(userId, msg)
  }

  async get (userId: string, id: string): ReturnType<InboxRepository['get']> {
    this.gets++
    return await this.inner.get(userId, id)
  }

  async listByConversation (...args: Parameters<InboxRepository['listByConversation']>): ReturnType<InboxRepository['listByConversation']> {
    this.lists++
    return await this.inner.listByConversation(...args)
  }

  async list (...args: Parameters<InboxRepository['list']>): ReturnType<InboxRepository['list']> {
    this.lists++
    const page = await this.inner.list(...args)
    const hold = this.holdList
    if (hold !== undefined) {
      this.holdList = undefined
      hold.listed()
      await hold.release
    }
    return page
  }

  async delete (userId: string, ids: readonly string[]): Promise<number> {
    this.reads++
    return await this.inner.delete(userId, ids)
  }

  async deleteKnown (userId: string, records: readonly StoredMessageRef[]): Promise<number> {
    this.knownDeletes++
    return await this.inner.deleteKnown(userId, records)
  }
}

function gate (): { promise: Promise<void>, open: () => void } {
  let open = (): void => {}
  const promise = new Promise<void>((resolve) => { open = resolve })
  return { promise, open }
}

describe('delivery push path over real storage', () => {
  let dir: string
  let storage: Storage
  let inbox: WatchedInbox
  let delivery: DefaultDeliveryService
  const shutdown = new AbortController()

  before(async () => {
    dir = await tempDataDir()
    storage = await openStorage({ dataDir: dir, sweepIntervalMs: 0 })
    inbox = new WatchedInbox(storage.inbox)
    const directory = {
      locate: async () => undefined,
      forgetLocation: () => {},
      localLocationProof: () => undefined,
      onLocalLocation: () => () => {}
    } as unknown as MessagingDirectory
    const mailbox = {
      put: async () => { throw new Error('no mailbox in this test') }
    } as unknown as MailboxService
    delivery = new DefaultDeliveryService({
      peerId: peerIdFromPrivateKey(await generateKeyPair('Ed25519')),
      inbox,
      outbox: storage.outbox,
      directory,
      mailbox,
      sendBatch: async () => { throw new Error('no remote nodes in this test') },
      learnAddrs: async () => {},
      clock: new ArrivalClock(),
      logger: pino({ level: 'silent' }),
      shutdown: shutdown.signal
    }, { mailboxPollMs: 0 })
    await delivery.start()
  })

  after(async () => {
    delivery.stop()
    shutdown.abort()
    await storage.close()
    await rm(dir, { recursive: true, force: true })
  })

  test('a caught-up device is pushed what is stored for it without a listing, and its acks delete without a read', async () => {
    const alice = testDevice()
    const bob = testDevice()
    const sink = new RecordingSink()
    const detach = delivery.attach(bob.ref, sinkOf(sink))
    try {
      await delivery.submit(alice.ref, envelopes(alice, bob, 1))
      await sink.until(() => sink.pushed.length >= 1, 'the first push')
      const listsAfterFirst = inbox.lists
      // one submit at a time, so each is its own store
      for (let i = 0; i < 20; i++) {
        await delivery.submit(alice.ref, envelopes(alice, bob, 1, 2 + i))
        await sink.until(() => sink.pushed.length >= 2 + i, `push ${2 + i}`)
      }
      assert.equal(inbox.lists, listsAfterFirst, 'no inbox listing after the device was caught up')
      const ids = sink.pushed.map((p) => p.id)
      const readsBefore = inbox.reads
      for (let i = 0; i < ids.length; i += 7) {
        assert.equal(await delivery.ack(bob.ref, ids.slice(i, i + 7)), ids.slice(i, i + 7).length)
      }
      assert.equal(inbox.reads, readsBefore, 'every ack deleted by remembered keys')
      assert.ok(inbox.knownDeletes >= 3)
      assert.equal(inbox.lists, listsAfterFirst, 'acks of a caught-up device list nothing')
      // acked means gone, and a second ack of the same ids reads and finds nothing
      assert.deepEqual(await storage.inbox.list(deviceOwnerKey(bob.ref.user, bob.ref.device)), [])
      assert.equal(await delivery.ack(bob.ref, ids.slice(0, 3)), 0)
      assert.equal(inbox.reads, readsBefore + 1)
    } finally {
      detach()
    }
  })

  /**
   * Stores `warm` for `to` and waits for its push to `sink`, then stamps `early` with its write held
   * and stores `late`: `releaseEarly` lets `early` land after an envelope with a later stamp.
   */
  async function storeOutOfOrder (from: TestDevice, to: TestDevice, sink: RecordingSink): Promise<{ early: SubmittedEnvelope, late: SubmittedEnvelope, all: MessageId[], releaseEarly: () => Promise<void> }> {
    const [warm, early, late] = envelopes(from, to, 3)
    assert.ok(warm !== undefined && early !== undefined && late !== undefined)
    assert.deepEqual(await delivery.receiveBatch([warm.bytes]), ['stored'])
    await sink.until(() => sink.pushed.length >= 1, 'the first push')
    const putGate = gate()
    inbox.holdPut = { id: early.envelope.id, release: putGate.promise }
    const earlyStored = delivery.receiveBatch([early.bytes])
    assert.deepEqual(await delivery.receiveBatch([late.bytes]), ['stored'])
    return {
      early,
      late,
      all: [warm, early, late].map((e) => e.envelope.id as MessageId),
      releaseEarly: async () => {
        putGate.open()
        assert.deepEqual(await earlyStored, ['stored'])
      }
    }
  }

  test('an envelope whose store completes while a scan lists past it is still pushed to every sink', async () => {
    const alice = testDevice()
    const bob = testDevice()
    const first = new RecordingSink()
    const detachFirst = delivery.attach(bob.ref, sinkOf(first))
    try {
      // `early` is stamped first but its write is held; `late` is stored and pushed meanwhile
      const { all, releaseEarly } = await storeOutOfOrder(alice, bob, first)
      await first.until(() => first.pushed.length >= 2, 'the late push')
      // a second connection scans the inbox: its listing has read `late` and waits
      const listGate = gate()
      const listed = gate()
      inbox.holdList = { release: listGate.promise, listed: listed.open }
      const second = new RecordingSink()
      const detachSecond = delivery.attach(bob.ref, sinkOf(second))
      try {
        await listed.promise
        // `early` is written while that scan is in flight, then the scan goes on past `late`
        await releaseEarly()
        listGate.open()
        const want = all.sort()
        await first.until(() => first.pushed.length >= 3, 'every envelope on the first connection', 10_000)
        await second.until(() => second.pushed.length >= 3, 'every envelope on the second connection', 10_000)
        assert.deepEqual(first.pushed.map((p) => p.id).sort(), want)
        assert.deepEqual(second.pushed.map((p) => p.id).sort(), want)
      } finally {
        detachSecond()
      }
    } finally {
      inbox.holdPut = undefined
      detachFirst()
    }
  })

  test('a connection paused by its push window gets an envelope stored out of stamp order after its cursor passed it', async () => {
    const alice = testDevice()
    const bob = testDevice()
    const sink = new RecordingSink(1)
    const detach = delivery.attach(bob.ref, sinkOf(sink))
    try {
      // the window (1) is full: `late` waits for the ack of `warm`, then is pushed from a scan
      const { early, late, all, releaseEarly } = await storeOutOfOrder(alice, bob, sink)
      const ack = async (id: MessageId): Promise<void> => {
        sink.acked([id])
        assert.equal(await delivery.ack(bob.ref, [id]), 1)
      }
      await ack(all[0] as MessageId)
      await sink.until(() => sink.pushed.length >= 2, 'the late push')
      assert.equal(sink.pushed[1]?.id, late.envelope.id)
      // `early` lands now, with an earlier stamp than the cursor, while the window is full again
      await releaseEarly()
      await ack(late.envelope.id as MessageId)
      await sink.until(() => sink.pushed.length >= 3, 'the early push', 10_000)
      assert.equal(sink.pushed[2]?.id, early.envelope.id)
    } finally {
      inbox.holdPut = undefined
      detach()
    }
  })
})
