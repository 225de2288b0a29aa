/**
 * 1:1 delivery. `submit` makes envelopes durable in the outbox and returns; a dispatcher routes
 * them, one queue per recipient device (so each device's envelopes leave in submission order),
 * with a bounded number of devices in progress at once:
 *
 * - recipient attached here → the local inbox, then pushed to its sinks;
 * - located on another node → that node's inbox over the deliver stream;
 * - offline, unreachable or not there → the mailbox replicas (write quorum).
 *
 * An envelope leaves the outbox, and its sender hears `delivered`, only once it is durable at the
 * recipient's node or on a quorum of replicas. A device that attaches pulls its mailbox into the
 * local inbox first; envelopes leave the inbox only when the device acks them.
 *
 * Replicas let this node fetch or delete a device's mailbox only with the device's location record
 * naming this node (the directory keeps it when the device publishes it). A device attaches before
 * it publishes its location, so a pull that finds no proof waits for the record instead of the
 * periodic re-pull; a delete after an ack with no live proof is skipped and the TTL cleans up.
 */
import type { PeerId } from '@libp2p/interface'
import type { Logger } from 'pino'
import { decodeEnvelope, type DirectEnvelope } from '../../protocol/envelopes.js'
import type { LocationEntry } from '../../protocol/records.js'
import type { DeviceId, MessageId, UserId } from '../../protocol/ids.js'
import { deviceOwnerKey, MAX_LIST_LIMIT, type InboxRepository, type OutboxEntry, type OutboxRepository, type StoredMessage, type StoredMessageRef } from '../../storage/index.js'
import type { ArrivalClock } from './clock.js'
import type { CallOptions, DeliveryService, DeviceRef, DeviceSink, SubmittedEnvelope } from './contracts.js'
import type { MessagingDirectory } from './directory.js'
import { MessagingError } from './errors.js'
import type { MailboxService } from './mailbox.js'
import { parsePeerId } from './mailbox.js'
import { MAX_ENVELOPES_PER_FRAME, type DeliverResult } from './wire.js'

/** Envelopes waiting in memory for routing, at most; `submit` answers ERR_UNAVAILABLE past it. */
export const DEFAULT_MAX_QUEUED_ENVELOPES = 100_000
/** Recipient devices routed at once. */
export const DEFAULT_DISPATCH_CONCURRENCY = 64
/** Envelope bytes in one routed batch, at most (the count is bounded by MAX_ENVELOPES_PER_FRAME). */
export const DEFAULT_MAX_BATCH_BYTES = 1024 * 1024
/** First delay before retrying a batch no route took, in milliseconds; doubled up to the maximum. */
export const DEFAULT_RETRY_DELAY_MS = 500
/** Longest delay between retries of one device's queue, in milliseconds. */
export const DEFAULT_MAX_RETRY_DELAY_MS = 30_000
/** Envelopes pushed to one sink and not yet acked before pushing pauses, whatever the sink says. */
export const DEFAULT_MAX_UNACKED_PER_SINK = 10_000
/**
 * First delay before an attached device's mailbox is pulled again, in milliseconds: it catches
 * envelopes sent while its location was not yet visible (senders' location caches live 30 s).
 * Each pull that finds nothing new doubles the delay, up to {@link DEFAULT_MAILBOX_POLL_MAX_MS}.
 */
export const DEFAULT_MAILBOX_POLL_MS = 30_000
/** Longest delay between re-pulls of an attached device's mailbox, in milliseconds. */
export const DEFAULT_MAILBOX_POLL_MAX_MS = 10 * 60_000
/** Inbox envelopes spilled to the mailbox replicas when a device's last connection closes, at most. */
export const MAX_SPILL_ENVELOPES = 10_000
/**
 * Ids pulled from the mailbox and not yet acked, remembered per attached device so an ack asks the
 * replicas to delete only those; past this many, every ack of that attachment asks again.
 */
export const MAX_MAILBOX_IDS_PER_DEVICE = 10_000
/**
 * Pushed and not yet acked inbox entries whose keys an attached device remembers, at most, so an
 * ack deletes them without reading them first; past this many, acks read what they delete.
 */
export const MAX_PUSHED_REFS_PER_DEVICE = 10_000

/** What the delivery service uses. */
export interface DeliveryComponents {
  /** This node's peer id. */
  peerId: PeerId
  inbox: InboxRepository
  outbox: OutboxRepository
  directory: MessagingDirectory
  mailbox: MailboxService
  /** Sends a batch over the deliver stream to a peer. */
  sendBatch: (peer: PeerId, envelopes: Uint8Array[]) => Promise<DeliverResult[]>
  /** Adds a peer's addresses to the peer store before dialing it. */
  learnAddrs: (peer: PeerId, addrs: string[]) => Promise<void>
  clock: ArrivalClock
  logger: Logger
  /** Fires when the node stops. */
  shutdown: AbortSignal
}

/** Options of the delivery service. */
export interface DeliveryInit {
  maxQueuedEnvelopes?: number
  dispatchConcurrency?: number
  maxBatchBytes?: number
  retryDelayMs?: number
  maxRetryDelayMs?: number
  maxUnackedPerSink?: number
  /** First re-pull delay; 0 turns re-pulls off. Default {@link DEFAULT_MAILBOX_POLL_MS}. */
  mailboxPollMs?: number
  /** Longest re-pull delay. Default {@link DEFAULT_MAILBOX_POLL_MAX_MS}. */
  mailboxPollMaxMs?: number
}

interface QueuedEntry { entry: OutboxEntry, key: string }

interface DeviceQueue {
  user: UserId
  device: DeviceId
  items: QueuedEntry[]
  running: boolean
  scheduled: boolean
  failures: number
}

interface SinkState {
  sink: DeviceSink
  /** Waiting for drain or an ack. */
  paused: boolean
  /** Pushed, not yet acked. */
  pushed: Set<string>
  /** Every inbox entry at or before this position was pushed. */
  cursor: { receivedAt: number, id: string } | undefined
  /**
   * The inbox may hold entries this sink has not been pushed: the next pump lists the inbox from
   * the cursor. Otherwise new entries are pushed as they are stored, with no read.
   */
  scan: boolean
  /**
   * The earliest arrival stamp stored and not pushed to this sink since its last scan began:
   * stores finish out of stamp order, so the cursor (or a scan in flight) may already be past it;
   * the next scan starts before it.
   */
  rewind: number | undefined
  detached: boolean
}

interface AttachedDevice {
  ref: DeviceRef
  sinks: Set<SinkState>
  /** Mailbox pull in progress; pushing waits for it. */
  syncing: Promise<void> | undefined
  pumping: boolean
  again: boolean
  /** The next re-pull of the mailbox. */
  poll: ReturnType<typeof setTimeout> | undefined
  /** Delay of the next re-pull: doubles after a pull that found nothing new. */
  pollDelay: number
  /** A pull found no location proof: the next proof for this device starts one. */
  awaitingProof: boolean
  /** Ids pulled from the mailbox, not yet acked: only these have replica copies to delete. */
  mailboxIds: Set<string>
  /** More than MAX_MAILBOX_IDS_PER_DEVICE were pulled: every ack deletes at the replicas. */
  mailboxIdsOverflow: boolean
  /** Keys of pushed, unacked inbox entries by id (bounded), so an ack deletes without a read. */
  pushedRefs: Map<string, StoredMessageRef>
}

function deviceKey (user: string, device: string): string {
  return deviceOwnerKey(user, device)
}

/**
 * Rewrites `items` so that, within each conversation, envelopes appear in seq order, each
 * conversation keeping the positions it had: arrival order across conversations, seq order
 * within one. Stable for equal seqs.
 */
export function orderByConversation<T extends { conversation: string, seq: number }> (items: T[]): T[] {
  const groups = new Map<string, number[]>()
  items.forEach((m, i) => {
    let g = groups.get(m.conversation)
    if (g === undefined) groups.set(m.conversation, g = [])
    g.push(i)
  })
  const out = items.slice()
  for (const positions of groups.values()) {
    if (positions.length < 2) continue
    const sorted = positions.map((p) => items[p] as T).sort((a, b) => a.seq - b.seq)
    positions.forEach((p, i) => { out[p] = sorted[i] as T })
  }
  return out
}

/** The default delivery service. */
export class DefaultDeliveryService implements DeliveryService {
  private readonly queues = new Map<string, DeviceQueue>()
  private readonly ready: DeviceQueue[] = []
  private readonly queued = new Set<string>()
  private active = 0
  private readonly attached = new Map<string, AttachedDevice>()
  private readonly timers = new Set<ReturnType<typeof setTimeout>>()
  private readonly finishing = new Set<Promise<void>>()
  private readonly init: Required<DeliveryInit>
  private started = false
  private offLocalLocation: (() => void) | undefined

  constructor (private readonly components: DeliveryComponents, init: DeliveryInit = {}) {
    this.init = {
      maxQueuedEnvelopes: init.maxQueuedEnvelopes ?? DEFAULT_MAX_QUEUED_ENVELOPES,
      dispatchConcurrency: init.dispatchConcurrency ?? DEFAULT_DISPATCH_CONCURRENCY,
      maxBatchBytes: init.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES,
      retryDelayMs: init.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS,
      maxRetryDelayMs: init.maxRetryDelayMs ?? DEFAULT_MAX_RETRY_DELAY_MS,
      maxUnackedPerSink: init.maxUnackedPerSink ?? DEFAULT_MAX_UNACKED_PER_SINK,
      mailboxPollMs: init.mailboxPollMs ?? DEFAULT_MAILBOX_POLL_MS,
      mailboxPollMaxMs: Math.max(init.mailboxPollMaxMs ?? DEFAULT_MAILBOX_POLL_MAX_MS, init.mailboxPollMs ?? DEFAULT_MAILBOX_POLL_MS)
    }
  }

  /** Starts dispatching, resuming what the outbox holds from before a restart. */
  async start (): Promise<void> {
    this.started = true
    this.offLocalLocation ??= this.components.directory.onLocalLocation((device) => { this.proofArrived(device) })
    let afterOrder: number | undefined
    let resumed = 0
    // bounded: the outbox is read in pages until it is exhausted or the queue is full
    for (let page = 0; page < this.init.maxQueuedEnvelopes / MAX_LIST_LIMIT + 1; page++) {
      const entries = await this.components.outbox.list({ limit: MAX_LIST_LIMIT, ...(afterOrder !== undefined ? { afterOrder } : {}) })
      for (const entry of entries) {
        if (this.queued.size >= this.init.maxQueuedEnvelopes) break
        this.enqueue(entry)
        resumed++
      }
      const last = entries[entries.length - 1]
      if (entries.length < MAX_LIST_LIMIT || last === undefined || this.queued.size >= this.init.maxQueuedEnvelopes) break
      afterOrder = last.order
    }
    if (resumed > 0) this.components.logger.info({ resumed }, 'resumed delivery of outbox entries')
  }

  /** Stops dispatching and pushing; what is in flight stays in the outbox for the next start. */
  stop (): void {
    this.started = false
    this.offLocalLocation?.()
    this.offLocalLocation = undefined
    for (const t of this.timers) clearTimeout(t)
    this.timers.clear()
    for (const a of this.attached.values()) clearTimeout(a.poll)
    this.attached.clear()
    this.queues.clear()
    this.ready.length = 0
    this.queued.clear()
  }

  // ---- submit and dispatch ----------------------------------------------------------------

  async submit (sender: DeviceRef, envelopes: SubmittedEnvelope[], opts: CallOptions = {}): Promise<MessageId[]> {
    opts.signal?.throwIfAborted()
    if (!this.started) throw new MessagingError('ERR_UNAVAILABLE', 'delivery is not running')
    for (const { envelope } of envelopes) {
      if (envelope.from.user !== sender.user || envelope.from.device !== sender.device) {
        throw new MessagingError('ERR_NOT_SENDER', 'an envelope is not from the submitting device')
      }
    }
    if (this.queued.size + envelopes.length > this.init.maxQueuedEnvelopes) {
      throw new MessagingError('ERR_UNAVAILABLE', 'the delivery queue is full; retry later')
    }
    const now = Date.now()
    const entries: OutboxEntry[] = envelopes.map(({ envelope, bytes }) => ({
      id: envelope.id,
      order: this.components.clock.next(),
      senderUser: envelope.from.user,
      senderDevice: envelope.from.device,
      recipientUser: envelope.to.user,
      recipientDevice: envelope.to.device,
      createdAt: now,
      body: bytes
    }))
    let created: boolean[]
    try {
      created = await this.components.outbox.put(entries)
    } catch (err) {
      throw new MessagingError('ERR_UNAVAILABLE', 'the outbox could not store the envelopes', { cause: err })
    }
    entries.forEach((entry, i) => { if (created[i] === true) this.enqueue(entry) })
    return envelopes.map(({ envelope }) => envelope.id)
  }

  private enqueue (entry: OutboxEntry): void {
    const key = `${entry.senderUser}/${entry.id}`
    if (this.queued.has(key)) return
    this.queued.add(key)
    const dk = deviceKey(entry.recipientUser, entry.recipientDevice)
    let q = this.queues.get(dk)
    if (q === undefined) {
      q = { user: entry.recipientUser as UserId, device: entry.recipientDevice as DeviceId, items: [], running: false, scheduled: false, failures: 0 }
      this.queues.set(dk, q)
    }
    q.items.push({ entry, key })
    this.schedule(q)
  }

  private schedule (q: DeviceQueue): void {
    if (q.running || q.scheduled || !this.started) return
    q.scheduled = true
    this.ready.push(q)
    this.pumpDispatch()
  }

  private pumpDispatch (): void {
    while (this.active < this.init.dispatchConcurrency && this.ready.length > 0) {
      const q = this.ready.shift() as DeviceQueue
      q.scheduled = false
      q.running = true
      this.active++
      void this.runQueue(q).finally(() => {
        this.active--
        q.running = false
        if (q.items.length === 0) {
          if (this.queues.get(deviceKey(q.user, q.device)) === q) this.queues.delete(deviceKey(q.user, q.device))
        } else if (q.failures === 0) {
          this.schedule(q)
        }
        this.pumpDispatch()
      })
    }
  }

  private async runQueue (q: DeviceQueue): Promise<void> {
    // bounded: each pass takes at least one envelope off the queue or stops on failure
    while (q.items.length > 0 && this.started) {
      const batch: QueuedEntry[] = []
      let bytes = 0
      for (const item of q.items) {
        if (batch.length >= MAX_ENVELOPES_PER_FRAME || (batch.length > 0 && bytes + item.entry.body.length > this.init.maxBatchBytes)) break
        batch.push(item)
        bytes += item.entry.body.length
      }
      let done: QueuedEntry[]
      try {
        done = await this.route(q, batch)
      } catch (err) {
        this.components.logger.debug({ err, device: q.device }, 'routing failed; retrying later')
        done = []
      }
      if (done.length > 0) {
        q.failures = 0
        const doneKeys = new Set(done.map((d) => d.key))
        q.items = q.items.filter((item) => !doneKeys.has(item.key))
        // the next batch need not wait for the outbox deletion (an fsync): these entries are
        // already durable at the recipient, and an entry whose deletion is lost is delivered
        // again after a restart and dropped there by envelope id (a duplicate, never a loss)
        this.track(this.finish(done))
      }
      if (done.length < batch.length) {
        this.retryLater(q)
        return
      }
    }
  }

  /** Runs `work` off the dispatch path, keeping a reference until it settles. */
  private track (work: Promise<void>): void {
    this.finishing.add(work)
    void work.finally(() => { this.finishing.delete(work) })
  }

  private retryLater (q: DeviceQueue): void {
    q.failures++
    const delay = Math.min(this.init.retryDelayMs * 2 ** (q.failures - 1), this.init.maxRetryDelayMs)
    const timer = setTimeout(() => {
      this.timers.delete(timer)
      q.failures = 0
      this.schedule(q)
    }, delay)
    timer.unref()
    this.timers.add(timer)
  }

  /** Removes delivered entries from the outbox and tells their senders. */
  private async finish (done: QueuedEntry[]): Promise<void> {
    try {
      // every queued entry is exactly as the outbox holds it (put by submit or listed by start),
      // so its keys are known and the delete needs no read
      await this.components.outbox.deleteKnown(done.map(({ entry }) => entry))
    } catch (err) {
      // a leftover outbox entry is delivered again after a restart: a duplicate, never a loss
      this.components.logger.warn({ err }, 'outbox delete failed')
    }
    for (const d of done) this.queued.delete(d.key)
    const bySender = new Map<string, MessageId[]>()
    for (const { entry } of done) {
      const k = deviceKey(entry.senderUser, entry.senderDevice)
      let ids = bySender.get(k)
      if (ids === undefined) bySender.set(k, ids = [])
      ids.push(entry.id as MessageId)
    }
    for (const [k, ids] of bySender) {
      for (const s of this.attached.get(k)?.sinks ?? []) {
        try {
          s.sink.delivered(ids)
        } catch (err) {
          this.components.logger.warn({ err }, 'sink.delivered threw')
        }
      }
    }
  }

  /** Routes one batch for one device; returns the entries that are now durable somewhere. */
  private async route (q: DeviceQueue, batch: QueuedEntry[]): Promise<QueuedEntry[]> {
    const { directory, peerId } = this.components
    if (this.attached.has(deviceKey(q.user, q.device))) {
      await this.storeLocal(q.user, q.device, batch.map((b) => b.entry.body))
      return batch
    }
    let location = await directory.locate(q.device).catch(() => undefined)
    let offline: QueuedEntry[] = batch
    const done: QueuedEntry[] = []
    // a node that no longer holds the device answers not-here: its location in the cache may be
    // stale (the device moved), so one fresh lookup before the mailbox, where an attached device
    // would find the envelope only at its next re-pull
    for (let attempt = 0; attempt < 2 && offline.length > 0; attempt++) {
      // located here but not attached: its location is stale, it is offline
      if (location === undefined || location.node === peerId.toString()) break
      const tried = location.node
      const sent = await this.sendRemote(q, location, offline)
      done.push(...sent.done)
      if (sent.retry) return done
      offline = sent.offline
      if (offline.length === 0 || attempt > 0) break
      location = await directory.locate(q.device).catch(() => undefined)
      if (location?.node === tried) break
    }
    if (offline.length === 0) return done
    // a failure caused by this node stopping says nothing about the recipient: leave the rest in the outbox
    if (!this.started || this.components.shutdown.aborted) return done
    const result = await this.components.mailbox.put(q.user, q.device, offline.map((b) => b.entry.body))
    if (this.components.shutdown.aborted) return done
    const quorum = Math.min(this.components.mailbox.writeQuorum, result.replicas)
    if (result.replicas > 0 && result.successes.length >= quorum) return [...done, ...offline]
    this.components.logger.debug({ device: q.device, successes: result.successes.length, replicas: result.replicas }, 'mailbox write quorum not reached')
    return done
  }

  /**
   * Sends entries to the node a location names. Resolves with what it stored (or refused as
   * invalid: never deliverable), what it does not hold the device for, and whether it asked for
   * the rest later. A failed stream counts as not held: the caller falls back to the mailbox.
   */
  private async sendRemote (q: DeviceQueue, location: LocationEntry, entries: QueuedEntry[]): Promise<{ done: QueuedEntry[], offline: QueuedEntry[], retry: boolean }> {
    const { directory } = this.components
    const peer = parsePeerId(location.node)
    if (peer === undefined) return { done: [], offline: entries, retry: false }
    try {
      await this.components.learnAddrs(peer, location.addrs)
      const results = await this.components.sendBatch(peer, entries.map((b) => b.entry.body))
      const done: QueuedEntry[] = []
      const offline: QueuedEntry[] = []
      let retry = false
      entries.forEach((b, i) => {
        const r = results[i]
        if (r === 'stored') done.push(b)
        else if (r === 'invalid') {
          // the receiver will never take it; keeping it would block the device's queue forever
          this.components.logger.warn({ id: b.entry.id }, 'recipient node rejected an envelope as invalid; dropped')
          done.push(b)
        } else if (r === 'not-here') offline.push(b)
        else retry = true
      })
      if (offline.length > 0) directory.forgetLocation(q.device)
      return { done, offline, retry }
    } catch (err) {
      this.components.logger.debug({ err, peer: location.node }, 'deliver stream failed; using the mailbox')
      directory.forgetLocation(q.device)
      return { done: [], offline: entries, retry: false }
    }
  }

  // ---- inbox and sinks --------------------------------------------------------------------

  /** Stores envelopes (already addressed to (user, device)) in the local inbox, then pushes. */
  private async storeLocal (user: UserId, device: DeviceId, bodies: Uint8Array[], decoded?: DirectEnvelope[]): Promise<void> {
    const owner = deviceOwnerKey(user, device)
    const messages: StoredMessage[] = bodies.map((body, i) => {
      const e = decoded?.[i] ?? decodeEnvelope(body)
      return { id: e.id, conversation: e.conv, seq: e.seq, receivedAt: this.components.clock.next(), body }
    })
    await Promise.all(messages.map(async (m) => await this.components.inbox.put(owner, m)))
    this.pushStored(owner, messages)
  }

  /**
   * Pushes envelopes just made durable in the inbox to the device's sinks that are caught up,
   * straight from memory: listing the inbox again for each store (and each ack) was a read and an
   * iterator per message in the 1:1 bench. A sink that is behind (paused, not yet scanned) or a
   * device whose pump or mailbox pull is running gets a scan instead.
   */
  private pushStored (k: string, messages: StoredMessage[]): void {
    const a = this.attached.get(k)
    if (a === undefined) return
    const busy = a.pumping || a.syncing !== undefined
    const ordered = orderByConversation(messages)
    for (const s of a.sinks) {
      if (s.detached) continue
      let pushed = 0
      if (!busy && !s.scan && !s.paused) {
        for (const m of ordered) {
          if (!this.pushTo(a, s, m)) break
          // caught up: everything stored before was pushed, and a store still in flight with an
          // earlier stamp is pushed when it lands or rewinds the cursor
          if (s.cursor === undefined || m.receivedAt > s.cursor.receivedAt) s.cursor = { receivedAt: m.receivedAt, id: m.id }
          pushed++
        }
      }
      if (pushed < ordered.length) {
        s.scan = true
        for (let i = pushed; i < ordered.length; i++) s.rewind = Math.min(s.rewind ?? Infinity, (ordered[i] as StoredMessage).receivedAt)
      }
    }
    this.pump(k)
  }

  /** Pushes one inbox entry to a sink; false when the sink paused (its unacked limit, or full). */
  private pushTo (a: AttachedDevice, s: SinkState, m: StoredMessage): boolean {
    if (s.pushed.has(m.id)) return true
    if (s.pushed.size >= this.init.maxUnackedPerSink) {
      s.paused = true
      s.scan = true
      return false
    }
    let taken: boolean
    try {
      taken = s.sink.push(m.id as MessageId, m.body)
    } catch (err) {
      this.components.logger.warn({ err }, 'sink.push threw')
      taken = false
    }
    // false: the sink did not take it; it is pushed again after drain or an ack
    if (!taken) {
      s.paused = true
      s.scan = true
      return false
    }
    s.pushed.add(m.id)
    if (a.pushedRefs.size < MAX_PUSHED_REFS_PER_DEVICE) {
      const ref: StoredMessageRef = { id: m.id, conversation: m.conversation, seq: m.seq, receivedAt: m.receivedAt }
      if (m.expiresAt !== undefined) ref.expiresAt = m.expiresAt
      a.pushedRefs.set(m.id, ref)
    }
    return true
  }

  /**
   * The receiving side of the deliver stream: stores each envelope addressed to a device attached
   * here; answers not-here for the others and invalid for bytes that are not a valid envelope.
   */
  readonly receiveBatch = async (envelopes: Uint8Array[]): Promise<DeliverResult[]> => {
    const results: DeliverResult[] = envelopes.map(() => 'invalid')
    const groups = new Map<string, Array<{ i: number, e: DirectEnvelope, body: Uint8Array }>>()
    envelopes.forEach((body, i) => {
      let e: DirectEnvelope
      try {
        e = decodeEnvelope(body)
      } catch {
        return
      }
      const k = deviceKey(e.to.user, e.to.device)
      if (!this.attached.has(k)) {
        results[i] = 'not-here'
        return
      }
      let g = groups.get(k)
      if (g === undefined) groups.set(k, g = [])
      g.push({ i, e, body })
    })
    await Promise.all([...groups.values()].map(async (g) => {
      const first = g[0]
      if (first === undefined) return
      try {
        await this.storeLocal(first.e.to.user, first.e.to.device, g.map((x) => x.body), g.map((x) => x.e))
        for (const x of g) results[x.i] = 'stored'
      } catch (err) {
        this.components.logger.warn({ err }, 'inbox write failed; the sender will retry')
        for (const x of g) results[x.i] = 'failed'
      }
    }))
    return results
  }

  attach (device: DeviceRef, sink: DeviceSink): () => void {
    const k = deviceKey(device.user, device.device)
    let a = this.attached.get(k)
    const fresh = a === undefined
    if (a === undefined) {
      a = { ref: device, sinks: new Set(), syncing: undefined, pumping: false, again: false, poll: undefined, pollDelay: this.init.mailboxPollMs, awaitingProof: false, mailboxIds: new Set(), mailboxIdsOverflow: false, pushedRefs: new Map() }
      this.attached.set(k, a)
    }
    const state: SinkState = { sink, paused: false, pushed: new Set(), cursor: undefined, scan: true, rewind: undefined, detached: false }
    a.sinks.add(state)
    const entry = a
    if (fresh) {
      // a device may have been located here before it attached, and sent to its mailbox meanwhile
      this.components.directory.forgetLocation(device.device)
      // every pull that ends schedules the next (see pullMailbox)
      this.startPull(entry)
    } else {
      this.pump(k)
    }
    return () => {
      if (state.detached) return
      state.detached = true
      entry.sinks.delete(state)
      if (entry.sinks.size === 0 && this.attached.get(k) === entry) {
        clearTimeout(entry.poll)
        entry.poll = undefined
        this.attached.delete(k)
        this.spill(entry.ref)
      }
    }
  }

  /**
   * Starts a mailbox pull for an attached device unless one runs. Without a location proof the
   * replicas would refuse it: the device is marked to pull when its proof arrives, and pushing
   * from the local inbox goes on meanwhile.
   */
  private startPull (a: AttachedDevice): void {
    if (a.syncing !== undefined) return
    const proof = this.components.directory.localLocationProof(a.ref.device)
    if (proof === undefined) {
      a.awaitingProof = true
      this.components.logger.debug({ device: a.ref.device }, 'no location proof yet; the mailbox pull waits for it')
      return
    }
    a.awaitingProof = false
    a.syncing = this.pullMailbox(a, proof)
  }

  /** A location record placing `device` here arrived: pull now if a pull was waiting for it. */
  private proofArrived (device: DeviceId): void {
    for (const a of this.attached.values()) {
      if (a.ref.device === device && a.awaitingProof) this.startPull(a)
    }
  }

  /**
   * Schedules the next re-pull of an attached device's mailbox. Envelopes land there while the
   * device is attached only when a sender could not locate it (its location not yet visible, or a
   * lookup that failed), so each pull that finds nothing new doubles the delay up to the maximum,
   * and one that finds something starts over: a fixed period cost every attached device a
   * replica lookup and k authorized fetches, which at 1,000 devices kept 10 nodes busy.
   */
  private schedulePoll (a: AttachedDevice, foundNew: boolean): void {
    const first = this.init.mailboxPollMs
    if (first <= 0 || !this.started || this.attached.get(deviceKey(a.ref.user, a.ref.device)) !== a) return
    clearTimeout(a.poll)
    const delay = foundNew ? first : a.pollDelay
    a.pollDelay = foundNew ? first : Math.min(a.pollDelay * 2, this.init.mailboxPollMaxMs)
    a.poll = setTimeout(() => {
      a.poll = undefined
      this.startPull(a)
    }, delay)
    a.poll.unref()
  }

  /** Pulls the device's mailbox into the local inbox, then pushes, then schedules the next pull. */
  private async pullMailbox (a: AttachedDevice, proof: Uint8Array): Promise<void> {
    const { user, device } = a.ref
    let foundNew = false
    try {
      const lists = await this.components.mailbox.fetchAll(user, device, proof)
      const seen = new Set<string>()
      const merged: Array<{ id: string, conversation: string, seq: number, body: Uint8Array, e: DirectEnvelope }> = []
      for (const list of lists) {
        for (const body of list) {
          let e: DirectEnvelope
          try {
            e = decodeEnvelope(body)
          } catch {
            continue
          }
          if (seen.has(e.id) || e.to.user !== user || e.to.device !== device) continue
          seen.add(e.id)
          this.rememberMailboxId(a, e.id)
          merged.push({ id: e.id, conversation: e.conv, seq: e.seq, body, e })
        }
      }
      if (merged.length > 0) {
        const ordered = orderByConversation(merged)
        const owner = deviceOwnerKey(user, device)
        // skip what is already here (a previous pull, or a direct delivery)
        const existing = await Promise.all(ordered.map(async (m) => await this.components.inbox.get(owner, m.id)))
        const fresh = ordered.filter((_, i) => existing[i] === undefined)
        foundNew = fresh.length > 0
        if (foundNew) await this.storeLocal(user, device, fresh.map((m) => m.body), fresh.map((m) => m.e))
      }
    } catch (err) {
      // the next pull is scheduled below; a node that is stopping has nothing to report
      if (this.started && !this.components.shutdown.aborted) this.components.logger.warn({ err, device }, 'mailbox pull failed')
      else this.components.logger.debug({ err, device }, 'mailbox pull ended by the node stopping')
    } finally {
      a.syncing = undefined
      this.schedulePoll(a, foundNew)
      this.pump(deviceKey(user, device))
    }
  }

  private rememberMailboxId (a: AttachedDevice, id: string): void {
    if (a.mailboxIdsOverflow) return
    a.mailboxIds.add(id)
    if (a.mailboxIds.size > MAX_MAILBOX_IDS_PER_DEVICE) {
      a.mailboxIdsOverflow = true
      a.mailboxIds.clear()
    }
  }

  /** After the last connection of a device closed: copies what it has not acked to its mailbox replicas. */
  private spill (ref: DeviceRef): void {
    if (!this.started) return
    void (async () => {
      const owner = deviceOwnerKey(ref.user, ref.device)
      try {
        const bodies: Uint8Array[] = []
        let after: { receivedAt: number, id: string } | undefined
        while (bodies.length < MAX_SPILL_ENVELOPES) {
          const page = await this.components.inbox.list(owner, { limit: MAX_LIST_LIMIT, ...(after !== undefined ? { after } : {}) })
          bodies.push(...page.map((m) => m.body))
          const last = page[page.length - 1]
          if (page.length < MAX_LIST_LIMIT || last === undefined) break
          after = { receivedAt: last.receivedAt, id: last.id }
        }
        if (bodies.length > 0 && !this.attached.has(owner)) await this.components.mailbox.put(ref.user, ref.device, bodies)
      } catch (err) {
        this.components.logger.debug({ err }, 'spilling unacked envelopes to the mailbox failed')
      }
    })()
  }

  drain (device: DeviceRef, sink: DeviceSink): void {
    const a = this.attached.get(deviceKey(device.user, device.device))
    for (const s of a?.sinks ?? []) if (s.sink === sink) s.paused = false
    this.pump(deviceKey(device.user, device.device))
  }

  async ack (device: DeviceRef, ids: MessageId[], opts: CallOptions = {}): Promise<number> {
    opts.signal?.throwIfAborted()
    if (ids.length === 0) return 0
    const k = deviceKey(device.user, device.device)
    const before = this.attached.get(k)
    // entries pushed on this attachment are deleted by their remembered keys, without a read; each
    // ref is taken once, so a repeated or concurrent ack of the same id reads (and counts 0)
    const known: StoredMessageRef[] = []
    const unknown: string[] = []
    for (const id of ids) {
      const ref = before?.pushedRefs.get(id)
      if (ref !== undefined) {
        before?.pushedRefs.delete(id)
        known.push(ref)
      } else {
        unknown.push(id)
      }
    }
    let removed = 0
    try {
      if (known.length > 0) removed += await this.components.inbox.deleteKnown(k, known)
      if (unknown.length > 0) removed += await this.components.inbox.delete(k, unknown)
    } catch (err) {
      throw new MessagingError('ERR_UNAVAILABLE', 'the inbox could not delete the envelopes', { cause: err })
    }
    const a = this.attached.get(k)
    // Only envelopes pulled from the mailbox have replica copies: one delete request per replica
    // for every ack of directly delivered envelopes was a large share of a node's CPU (and each
    // replica's) in the 1:1 bench. A copy written after a direct delivery (a retried route) is
    // pulled again later, redelivered, deduplicated by the client and then deleted with its ack.
    const fromMailbox = a === undefined || a.mailboxIdsOverflow ? ids : ids.filter((id) => a.mailboxIds.delete(id))
    const proof = fromMailbox.length > 0 ? this.components.directory.localLocationProof(device.device) : undefined
    if (proof !== undefined) {
      this.components.mailbox.deleteInBackground(device.user, device.device, fromMailbox, proof)
    } else if (fromMailbox.length > 0) {
      // replicas would refuse the delete; their copies expire with the mailbox TTL
      this.components.logger.debug({ device: device.device, ids: fromMailbox.length }, 'no live location proof; mailbox copies left to expire')
    }
    for (const s of a?.sinks ?? []) {
      for (const id of ids) s.pushed.delete(id)
      s.paused = false
    }
    this.pump(k)
    return removed
  }

  /** Pushes pending inbox envelopes of a device to every sink with room; coalesces concurrent calls. */
  private pump (k: string): void {
    const a = this.attached.get(k)
    if (a === undefined) return
    let behind = false
    for (const s of a.sinks) if (s.scan && !s.paused && !s.detached) behind = true
    if (!behind) return
    if (a.pumping || a.syncing !== undefined) {
      a.again = true
      return
    }
    a.pumping = true
    a.again = false
    void this.pumpOnce(a).catch((err: unknown) => {
      this.components.logger.warn({ err }, 'pushing to a device failed')
    }).finally(() => {
      a.pumping = false
      if (a.again && this.attached.get(k) === a) this.pump(k)
    })
  }

  private async pumpOnce (a: AttachedDevice): Promise<void> {
    const owner = deviceOwnerKey(a.ref.user, a.ref.device)
    for (const s of a.sinks) {
      if (!s.scan || s.paused || s.detached) continue
      // cleared before listing: an entry stored meanwhile sets it again (pushStored)
      s.scan = false
      if (s.rewind !== undefined) {
        // just before the earliest entry not pushed; stamps are unique on a node, so only that
        // stamp and later ones are listed (what was pushed since is skipped)
        if (s.cursor !== undefined && s.cursor.receivedAt >= s.rewind) s.cursor = { receivedAt: s.rewind - 1, id: '\uffff' }
        s.rewind = undefined
      }
      let complete = false
      // bounded: each page advances the cursor, or the sink is paused and the loop ends
      for (let pages = 0; pages < 1_000 && !s.paused && !s.detached; pages++) {
        const page = await this.components.inbox.list(owner, { limit: MAX_LIST_LIMIT, ...(s.cursor !== undefined ? { after: s.cursor } : {}) })
        if (page.length === 0) {
          complete = true
          break
        }
        for (const m of orderByConversation(page)) if (!this.pushTo(a, s, m)) break
        if (s.paused) break
        const last = page[page.length - 1] as StoredMessage
        s.cursor = { receivedAt: last.receivedAt, id: last.id }
        if (page.length < MAX_LIST_LIMIT) {
          complete = true
          break
        }
      }
      if (!complete) s.scan = true
    }
  }

  /** True when `device` has a sink attached on this node. */
  isAttached (user: UserId, device: DeviceId): boolean {
    return this.attached.has(deviceKey(user, device))
  }

  /** Envelopes accepted and not yet delivered, in memory (for status and tests). */
  get pendingCount (): number {
    return this.queued.size
  }
}
