/**
 * The node's groups and rooms service (implements node/groups/contracts.ts): a log per known group,
 * loaded lazily from storage and bounded in memory; which local connections belong to which users
 * and rooms; the gossip validators of group topics; durable group history with retention; and the
 * history protocol's fetches when this node missed something. See docs/GROUPS.md.
 */
import { createHash } from 'node:crypto'
import type { Logger } from 'pino'
import { ClientProtocolError, MAX_FRAME_LIST_ITEMS, type ClientErrorCode, type ClientEvents, type ClientOps } from '../../protocol/client-protocol.js'
import { decodeValue, encodeValue, expectObject, expectUint } from '../../protocol/codec.js'
import type { GroupEnvelope } from '../../protocol/envelopes.js'
import { TalariaError } from '../../protocol/errors.js'
import {
  decodeGroupOp, decodeGroupTraffic, GroupLog, groupTopic, verifyGroupEnvelope, verifyRoomSender, WordFilter,
  type GroupOp, type RoomEnvelope, type WordFilterSettings
} from '../../protocol/groups/index.js'
import { equalBytes } from '../../protocol/bytes.js'
import { parseMessageId, type DeviceId, type GroupId, type UserId } from '../../protocol/ids.js'
import { MAX_CLOCK_SKEW_MS } from '../../protocol/limits.js'
import type { GroupRepository, StoredGroupMessage } from '../../storage/index.js'
import type { CallOptions } from '../messaging/contracts.js'
import type { MessagingDirectory } from '../messaging/directory.js'
import { DEFAULT_GROUP_HISTORY_LIMIT, DEFAULT_GROUP_RETENTION_MS, DEFAULT_MAX_GROUPS, DEFAULT_ROOM_HISTORY_LIMIT } from '../options.js'
import type { PubSubHandler, PubSubValidator, PublishResult, ValidationResult } from '../types.js'
import type { AuthenticatedDevice, GroupEventName, GroupService, GroupSink } from './contracts.js'
import type { HistorySource } from './history.js'
import { decodeTopicFrame, encodeTopicFrame, MAX_HISTORY_PAGE, type HistoryPosition, type HistoryRequest, type HistoryResponse } from './wire.js'

/** Default page of `groupHistory`. */
export const DEFAULT_HISTORY_PAGE = 500
/** Largest page of `groupHistory` served from storage. */
export const MAX_HISTORY_RESPONSE = 999
/** Ops per `groupGet` page. */
export const GROUP_GET_PAGE = 256
/** How long a fetch waits for the first subscriber of a topic to be known, in milliseconds. */
export const DEFAULT_SUBSCRIBER_WAIT_MS = 3_000
/** Peers asked, one after another, by one history or log fetch. */
export const DEFAULT_FETCH_PEERS = 3
/** Pages one fetch reads from one peer at most (messages or ops). */
export const DEFAULT_MAX_FETCH_PAGES = 64
/** Period of the retention sweep, in milliseconds. */
export const DEFAULT_GROUP_SWEEP_INTERVAL_MS = 10 * 60 * 1000

/** Options of the groups service. */
export interface GroupServiceInit {
  /** How long messages are kept; a group's own `retentionMs` may shorten it. Default {@link DEFAULT_GROUP_RETENTION_MS}. */
  retentionMs?: number
  /** Messages kept per group; a group's own `historyLimit` may lower it. Default {@link DEFAULT_GROUP_HISTORY_LIMIT}. */
  groupHistoryLimit?: number
  /** Messages kept per room. Default {@link DEFAULT_ROOM_HISTORY_LIMIT}. */
  roomHistoryLimit?: number
  /** Group logs in memory. Default {@link DEFAULT_MAX_GROUPS}. */
  maxGroups?: number
  /** Wait for a topic's first known subscriber before a fetch. Default {@link DEFAULT_SUBSCRIBER_WAIT_MS}. */
  subscriberWaitMs?: number
  /** Retention sweep period; 0 turns it off. Default {@link DEFAULT_GROUP_SWEEP_INTERVAL_MS}. */
  sweepIntervalMs?: number
  /** Replicas asked to keep each group this node's clients send to; 0 turns replication off. Default {@link DEFAULT_GROUP_REPLICAS}. */
  replicas?: number
  /** Period of keep rounds. Default {@link DEFAULT_KEEP_INTERVAL_MS}. */
  keepIntervalMs?: number
  /** Groups this node keeps as a replica. Default {@link DEFAULT_MAX_REPLICA_GROUPS}. */
  maxReplicaGroups?: number
}

/** The pubsub operations the service uses (the node's DefaultPubSub and its events). */
export interface GroupPubSub {
  subscribe(topic: string, handler: PubSubHandler): void
  unsubscribe(topic: string, handler?: PubSubHandler): void
  publish(topic: string, data: Uint8Array, opts?: CallOptions): Promise<PublishResult>
  setValidator(topic: string, validator: PubSubValidator): void
  removeValidator(topic: string): void
  getSubscribers(topic: string): string[]
  /** Calls `listener` on each remote subscription change; returns the function that removes it. */
  onSubscriptionChange(listener: (change: { peerId: string, topic: string, subscribed: boolean }) => void): () => void
}

/** What the groups service uses. */
export interface GroupServiceComponents {
  groups: GroupRepository
  pubsub: GroupPubSub
  directory: Pick<MessagingDirectory, 'getDeviceList' | 'cachedDeviceList'>
  /** One history protocol request to `peer`. */
  requestHistory: (peer: string, req: HistoryRequest, opts: CallOptions) => Promise<HistoryResponse>
  /** Up to `count` peers closest to `key` in the DHT, nearest first, this node excluded. None: no replicas. */
  closestPeers?: (key: Uint8Array, count: number, opts: CallOptions) => Promise<string[]>
  /** True when this node is among the `count` nodes it knows closest to `key`. */
  isNearest?: (key: Uint8Array, count: number) => Promise<boolean>
  logger: Logger
  shutdown: AbortSignal
  /** Clock, ms since the epoch. */
  now?: () => number
}

interface Conn {
  sink: GroupSink
  device: AuthenticatedDevice
  rooms: Set<GroupId>
  /** Groups whose pushes were dropped: a `groupLag` is owed, and pushes of them wait for it. */
  lag: Set<GroupId>
}

interface Loaded {
  log: GroupLog
  filter?: { settings: WordFilterSettings, wf: WordFilter }
}

type Envelope = GroupEnvelope | RoomEnvelope

type Check = { ok: true } | { ok: false, verdict: ValidationResult, code: ClientErrorCode, reason: string, retry?: boolean }

/** Nodes nearest a group's key asked to keep a copy of it (replicas). */
export const DEFAULT_GROUP_REPLICAS = 3
/** How often a node sends keep requests for the groups its clients sent to, in milliseconds. */
export const DEFAULT_KEEP_INTERVAL_MS = 2_000
/** Groups one keep round covers at most; the rest wait for the next round. */
export const MAX_KEEP_GROUPS_PER_ROUND = 64
/** How long a group's replica set is cached, in milliseconds. */
export const REPLICA_SET_TTL_MS = 5 * 60_000
/** Keep rounds one group gets in a row while fewer than two replicas take it. */
export const MAX_KEEP_ATTEMPTS = 10
/** Loads of a group's log, started by other callers, that one caller with a create waits out at most. */
const MAX_LOAD_WAITS = 8
/** Groups a node keeps as a replica, at most. */
export const DEFAULT_MAX_REPLICA_GROUPS = 1000

/** Messages held for another check because this node could not judge them yet, at most. */
export const MAX_UNJUDGED_MESSAGES = 1000
/** How often a room sender's device list is looked up again for revocations, in milliseconds. */
const REVOCATION_RECHECK_MS = 5 * 60_000
/** Room senders whose revocations are remembered; the least recently looked up go first. */
const MAX_REVOCATION_ENTRIES = 10_000
/** When such a message is checked again, after the first check (the directory's negative cache lasts 5 s). */
export const UNJUDGED_RETRY_DELAYS_MS: readonly number[] = [1_000, 6_000, 20_000]

function clientError (code: ClientErrorCode, message: string, opts: { cause?: unknown, retryAfterMs?: number } = {}): ClientProtocolError {
  return new ClientProtocolError(code, message, opts)
}

/** The DHT key whose nearest nodes keep a group's replicas: SHA-256('talaria/group/' + id). */
export function groupReplicaKey (group: GroupId): Uint8Array {
  return new Uint8Array(createHash('sha256').update('talaria/group/' + group, 'utf8').digest())
}

function groupOf (env: Envelope): GroupId {
  return env.kind === 'group' ? env.group : env.room
}

function encodeCursor (p: HistoryPosition): Uint8Array {
  return encodeValue({ s: p.sentAt, i: p.id })
}

function decodeCursor (bytes: Uint8Array): HistoryPosition {
  try {
    const o = expectObject(decodeValue(bytes, 256), 'history cursor')
    return { sentAt: expectUint(o.s, 'cursor.sentAt'), id: parseMessageId(o.i) }
  } catch (err) {
    throw clientError('ERR_BAD_REQUEST', 'bad history cursor', { cause: err })
  }
}

/** Batches message writes per group: one durable write carries everything queued meanwhile. */
class GroupWriter {
  private readonly queues = new Map<GroupId, Array<{ msg: StoredGroupMessage, resolve: (created: boolean) => void, reject: (err: unknown) => void }>>()
  private readonly running = new Set<GroupId>()

  constructor (private readonly repo: GroupRepository, private readonly limitOf: (group: GroupId) => number) {}

  async write (group: GroupId, msg: StoredGroupMessage): Promise<boolean> {
    return await new Promise<boolean>((resolve, reject) => {
      let q = this.queues.get(group)
      if (q === undefined) {
        q = []
        this.queues.set(group, q)
      }
      q.push({ msg, resolve, reject })
      if (!this.running.has(group)) void this.run(group)
    })
  }

  private async run (group: GroupId): Promise<void> {
    this.running.add(group)
    try {
      for (;;) {
        const batch = this.queues.get(group)
        if (batch === undefined || batch.length === 0) break
        this.queues.delete(group)
        try {
          const created = new Set(await this.repo.putMessages(group, batch.map((b) => b.msg), { limit: this.limitOf(group) }))
          for (const b of batch) b.resolve(created.has(b.msg.id))
        } catch (err) {
          for (const b of batch) b.reject(err)
        }
      }
    } finally {
      this.running.delete(group)
      this.queues.delete(group)
    }
  }
}

/** The default groups and rooms service. */
export class DefaultGroupService implements GroupService {
  private readonly c: GroupServiceComponents
  private readonly log: Logger
  private readonly now: () => number
  private readonly retentionMs: number
  private readonly groupHistoryLimit: number
  private readonly roomHistoryLimit: number
  private readonly maxGroups: number
  private readonly subscriberWaitMs: number
  private readonly sweepIntervalMs: number
  /** Logs in memory, least recently used first. */
  private readonly loaded = new Map<GroupId, Loaded>()
  private readonly loading = new Map<GroupId, Promise<Loaded | undefined>>()
  /** Members of every known private group, and the reverse index. */
  private readonly groupMembers = new Map<GroupId, Set<UserId>>()
  private readonly userGroups = new Map<UserId, Set<GroupId>>()
  private readonly conns = new Map<GroupSink, Conn>()
  private readonly byUser = new Map<UserId, Set<Conn>>()
  private readonly roomVisitors = new Map<GroupId, Set<Conn>>()
  /** Devices of room senders that their user's device list revokes, and when the list was looked up. */
  private readonly revocations = new Map<UserId, { at: number, revoked: Set<DeviceId> }>()
  /** Topics this node is on, with since when it has listened (its continuous coverage). */
  private readonly subscribed = new Map<GroupId, number>()
  private readonly handlers = new Map<GroupId, PubSubHandler>()
  private readonly fills = new Map<GroupId, Promise<boolean>>()
  private readonly opFetches = new Map<GroupId, Promise<Loaded | undefined>>()
  /** Room send times per (room, user), newest last. */
  private readonly sendTimes = new Map<string, number[]>()
  /** Messages held for another check, by group/id, with their timers. */
  private readonly unjudged = new Map<string, ReturnType<typeof setTimeout>>()
  private readonly replicas: number
  private readonly keepIntervalMs: number
  private readonly maxReplicaGroups: number
  /** Groups this node's clients sent to since the last keep round. */
  private readonly toKeep = new Set<GroupId>()
  private readonly keepAttempts = new Map<GroupId, number>()
  private readonly replicaSets = new Map<GroupId, { peers: string[], expiresAt: number }>()
  /** Groups kept here as a replica, and the pulls under way. */
  private readonly replicaGroups = new Set<GroupId>()
  private readonly pulls = new Map<GroupId, { again?: string }>()
  private keeper: ReturnType<typeof setInterval> | undefined
  private keeping = false
  private readonly writer: GroupWriter
  private sweeper: ReturnType<typeof setInterval> | undefined
  private offSubscriptions: (() => void) | undefined
  private readonly subscriptionWaiters = new Set<(topic: string) => void>()
  private started = false

  constructor (components: GroupServiceComponents, init: GroupServiceInit = {}) {
    this.c = components
    this.log = components.logger
    this.now = components.now ?? Date.now
    this.retentionMs = init.retentionMs ?? DEFAULT_GROUP_RETENTION_MS
    this.groupHistoryLimit = init.groupHistoryLimit ?? DEFAULT_GROUP_HISTORY_LIMIT
    this.roomHistoryLimit = init.roomHistoryLimit ?? DEFAULT_ROOM_HISTORY_LIMIT
    this.maxGroups = init.maxGroups ?? DEFAULT_MAX_GROUPS
    this.subscriberWaitMs = init.subscriberWaitMs ?? DEFAULT_SUBSCRIBER_WAIT_MS
    this.sweepIntervalMs = init.sweepIntervalMs ?? DEFAULT_GROUP_SWEEP_INTERVAL_MS
    this.replicas = components.closestPeers === undefined ? 0 : init.replicas ?? DEFAULT_GROUP_REPLICAS
    this.keepIntervalMs = init.keepIntervalMs ?? DEFAULT_KEEP_INTERVAL_MS
    this.maxReplicaGroups = init.maxReplicaGroups ?? DEFAULT_MAX_REPLICA_GROUPS
    this.writer = new GroupWriter(components.groups, (group) => this.historyLimit(group))
  }

  // ---- lifecycle ------------------------------------------------------------------------------

  /** Builds the member index from stored logs and starts the retention sweep. */
  async start (): Promise<void> {
    this.offSubscriptions = this.c.pubsub.onSubscriptionChange((change) => {
      if (!change.subscribed) return
      for (const w of [...this.subscriptionWaiters]) w(change.topic)
    })
    for await (const group of this.c.groups.groups()) {
      const meta = await this.c.groups.getMeta(group)
      // a stopped node heard nothing: whatever coverage it recorded has a gap now
      if (meta?.coveredSince !== undefined) await this.c.groups.updateMeta(group, { clearCoverage: true })
      if (meta?.replica === true) this.replicaGroups.add(group as GroupId)
      try {
        await this.getLoaded(group as GroupId)
      } catch (err) {
        this.log.warn({ err, group }, 'could not load a stored group log')
      }
    }
    if (this.sweepIntervalMs > 0) {
      this.sweeper = setInterval(() => { void this.sweep() }, this.sweepIntervalMs)
      this.sweeper.unref()
    }
    if (this.replicas > 0) {
      this.keeper = setInterval(() => { void this.keepRound() }, this.keepIntervalMs)
      this.keeper.unref()
    }
    this.started = true
  }

  /** Leaves every topic and stops the sweep; connections are the gateway's to close. */
  async stop (): Promise<void> {
    this.started = false
    clearInterval(this.sweeper)
    clearInterval(this.keeper)
    this.offSubscriptions?.()
    for (const timer of this.unjudged.values()) clearTimeout(timer)
    this.unjudged.clear()
    for (const group of [...this.subscribed.keys()]) this.unsubscribe(group)
  }

  // ---- logs -----------------------------------------------------------------------------------

  private touch (group: GroupId, l: Loaded): void {
    this.loaded.delete(group)
    this.loaded.set(group, l)
    if (this.loaded.size <= this.maxGroups) return
    for (const [g] of this.loaded) {
      if (this.loaded.size <= this.maxGroups) break
      if (!this.subscribed.has(g)) this.loaded.delete(g)
    }
  }

  /** The group's log, from memory or storage; undefined when this node holds no `create` of it. */
  /**
   * The group's log, from memory or storage; `extra` may carry the create of a group nothing is
   * stored of yet. One load per group runs at a time, so every caller gets the same log.
   */
  private async getLoaded (group: GroupId, extra: GroupOp[] = []): Promise<Loaded | undefined> {
    const creates = extra.some((op) => op.body.type === 'create')
    for (let i = 0; i < MAX_LOAD_WAITS; i++) {
      const hit = this.loaded.get(group)
      if (hit !== undefined) {
        this.touch(group, hit)
        return hit
      }
      const running = this.loading.get(group)
      if (running === undefined) {
        const p = this.loadFromStorage(group, extra).finally(() => { this.loading.delete(group) })
        this.loading.set(group, p)
        return await p
      }
      const got = await running
      // a load without this create (a history request, say) found nothing stored: waiting on it
      // alone would drop the create, and with it a replica's whole pull
      if (got !== undefined || !creates) return got
    }
    this.log.warn({ group }, 'group log still loading without its create; giving up this time')
    return undefined
  }

  private async loadFromStorage (group: GroupId, extra: GroupOp[]): Promise<Loaded | undefined> {
    const ops: GroupOp[] = []
    for (let after = 0; ;) {
      const page = await this.c.groups.listOps(group, { afterSeq: after, limit: 1000 })
      for (const stored of page) {
        try {
          ops.push(decodeGroupOp(stored.bytes))
        } catch (err) {
          this.log.warn({ err, group, op: stored.id }, 'stored op does not decode; skipped')
        }
      }
      if (page.length < 1000) break
      after = page[page.length - 1]!.seq
    }
    const create = ops.find((o) => o.body.type === 'create') ?? extra.find((o) => o.body.type === 'create')
    if (create === undefined) return undefined
    const log = GroupLog.create(create)
    for (const op of ops) log.add(op)
    const l: Loaded = { log }
    this.touch(group, l)
    this.reindex(group, log)
    return l
  }

  private historyLimit (group: GroupId): number {
    const log = this.loaded.get(group)?.log
    const node = log?.state.kind === 'room' ? this.roomHistoryLimit : this.groupHistoryLimit
    return Math.min(node, log?.state.settings.historyLimit ?? node)
  }

  private wordFilter (l: Loaded): { mode: 'block' | 'mask', wf: WordFilter } | undefined {
    const settings = l.log.state.settings.filter
    if (settings === undefined || settings.words.length === 0) return undefined
    if (l.filter?.settings !== settings) l.filter = { settings, wf: new WordFilter(settings.words) }
    return { mode: settings.mode, wf: l.filter.wf }
  }

  // ---- membership index and subscriptions -----------------------------------------------------

  /** Updates the member index of a private group; subscribes or leaves as connected users come and go. */
  private reindex (group: GroupId, log: GroupLog): void {
    if (log.state.kind !== 'group') return
    const before = this.groupMembers.get(group) ?? new Set<UserId>()
    const after = new Set(log.state.dismissed ? [] : log.memberUsers())
    this.groupMembers.set(group, after)
    let connectedJoined = false
    for (const u of after) {
      if (before.has(u)) continue
      let set = this.userGroups.get(u)
      if (set === undefined) {
        set = new Set()
        this.userGroups.set(u, set)
      }
      set.add(group)
      if (this.byUser.has(u)) connectedJoined = true
    }
    for (const u of before) {
      if (after.has(u)) continue
      const set = this.userGroups.get(u)
      set?.delete(group)
      if (set?.size === 0) this.userGroups.delete(u)
    }
    if (connectedJoined) this.subscribe(group)
    else this.unsubscribeIfUnneeded(group)
  }

  private needed (group: GroupId): boolean {
    if ((this.roomVisitors.get(group)?.size ?? 0) > 0) return true
    for (const u of this.groupMembers.get(group) ?? []) if (this.byUser.has(u)) return true
    return false
  }

  private subscribe (group: GroupId): void {
    if (this.subscribed.has(group)) return
    const topic = groupTopic(group)
    const since = this.now()
    this.subscribed.set(group, since)
    const handler: PubSubHandler = (msg) => { this.onTopicMessage(group, msg.data) }
    this.handlers.set(group, handler)
    this.c.pubsub.setValidator(topic, async (msg) => await this.validate(group, msg.data, msg.propagationSource))
    this.c.pubsub.subscribe(topic, handler)
    this.background(this.c.groups.updateMeta(group, { coveredSince: since, touchedAt: since }), 'record coverage')
  }

  private unsubscribe (group: GroupId): void {
    if (!this.subscribed.delete(group)) return
    const topic = groupTopic(group)
    this.c.pubsub.unsubscribe(topic, this.handlers.get(group))
    this.handlers.delete(group)
    this.c.pubsub.removeValidator(topic)
    if (this.started) this.background(this.c.groups.updateMeta(group, { clearCoverage: true }), 'clear coverage')
  }

  private unsubscribeIfUnneeded (group: GroupId): void {
    if (this.subscribed.has(group) && !this.needed(group)) this.unsubscribe(group)
  }

  private background (p: Promise<unknown>, what: string): void {
    p.catch((err: unknown) => { this.log.warn({ err }, `groups: ${what} failed`) })
  }

  // ---- pushes ---------------------------------------------------------------------------------

  private push<E extends GroupEventName> (conns: Iterable<Conn>, group: GroupId, ev: E, body: ClientEvents[E], except?: GroupSink): void {
    for (const conn of conns) {
      if (conn.sink === except) continue
      // a connection that is behind reads history instead: no pushes until it has the lag
      if (conn.lag.has(group)) continue
      let ok: boolean
      try {
        ok = conn.sink.event(ev, body)
      } catch (err) {
        this.log.warn({ err, group }, 'a group sink threw')
        continue
      }
      if (!ok) conn.lag.add(group)
    }
  }

  private connsOfUsers (users: Iterable<UserId>): Conn[] {
    const out: Conn[] = []
    for (const u of users) for (const c of this.byUser.get(u) ?? []) out.push(c)
    return out
  }

  /** Connections that get a group's messages: members' connections, or a room's visitors. */
  private messageRecipients (group: GroupId, log: GroupLog): Iterable<Conn> {
    if (log.state.kind === 'room') return this.roomVisitors.get(group) ?? []
    return this.connsOfUsers(this.groupMembers.get(group) ?? [])
  }

  // ---- contract: connections ------------------------------------------------------------------

  attach (device: AuthenticatedDevice, sink: GroupSink): () => void {
    const conn: Conn = { sink, device, rooms: new Set(), lag: new Set() }
    this.conns.set(sink, conn)
    let set = this.byUser.get(device.user)
    if (set === undefined) {
      set = new Set()
      this.byUser.set(device.user, set)
    }
    set.add(conn)
    for (const group of this.userGroups.get(device.user) ?? []) this.subscribe(group)
    let detached = false
    return () => {
      if (detached) return
      detached = true
      this.conns.delete(sink)
      const mine = this.byUser.get(device.user)
      mine?.delete(conn)
      if (mine?.size === 0) this.byUser.delete(device.user)
      for (const room of conn.rooms) this.removeVisitor(room, conn)
      for (const group of this.userGroups.get(device.user) ?? []) this.unsubscribeIfUnneeded(group)
    }
  }

  drain (sink: GroupSink): void {
    const conn = this.conns.get(sink)
    if (conn === undefined) return
    for (const group of [...conn.lag]) {
      if (!sink.event('groupLag', { group })) return
      conn.lag.delete(group)
    }
  }

  // ---- contract: ops --------------------------------------------------------------------------

  async submitOps (device: AuthenticatedDevice, req: ClientOps['groupOps']['req'], opts: CallOptions = {}): Promise<ClientOps['groupOps']['res']> {
    const ops = this.decodeOps(req.group, req.ops)
    const { results, loaded } = await this.ingestOps(req.group, ops, { publish: true, ...opts })
    return { results, heads: loaded?.log.state.heads ?? [] }
  }

  private decodeOps (group: GroupId, list: Uint8Array[]): GroupOp[] {
    return list.map((bytes, i) => {
      let op: GroupOp
      try {
        op = decodeGroupOp(bytes)
      } catch (err) {
        throw clientError('ERR_INVALID_OP', `op ${i}: ${err instanceof Error ? err.message : String(err)}`, { cause: err })
      }
      if (op.group !== group) throw clientError('ERR_INVALID_OP', `op ${i}: op of another group`)
      return op
    })
  }

  /**
   * Adds verified ops to the group's log (creating it from a `create`, or fetching it from peers
   * when the node has none), stores the new ones durably, publishes them when asked, and pushes
   * them to the local members they concern.
   */
  private async ingestOps (group: GroupId, ops: GroupOp[], opts: { publish: boolean, fetch?: boolean } & CallOptions): Promise<{ results: ClientOps['groupOps']['res']['results'], loaded: Loaded | undefined }> {
    let loaded = await this.getLoaded(group, ops)
    if (loaded === undefined && opts.fetch !== false && ops.length > 0) loaded = await this.fetchLog(group, opts)
    if (loaded === undefined) {
      // no create known anywhere reachable: keep them for when it arrives
      await this.c.groups.putOps(group, ops.map((op) => ({ id: op.id, bytes: op.bytes })))
      return { results: ops.map(() => ({ status: 'pending' as const })), loaded: undefined }
    }
    const log = loaded.log
    const membersBefore = new Set(log.state.kind === 'group' ? log.memberUsers() : [])
    const added = ops.map((op) => {
      try {
        return log.add(op)
      } catch (err) {
        return { status: 'rejected' as const, code: 'ERR_INVALID_OP', reason: err instanceof Error ? err.message : String(err), changed: [] }
      }
    })
    // the store says what is news: a log just built from this request already holds its create
    const taken = ops.filter((_op, i) => added[i]!.code !== 'ERR_INVALID_OP')
    const created = new Set(await this.c.groups.putOps(group, taken.map((op) => ({ id: op.id, bytes: op.bytes }))))
    const news = taken.filter((op) => created.has(op.id))
    const results = ops.map((op, i) => {
      const r = added[i]!
      if (r.status === 'duplicate') return created.has(op.id) ? { status: log.status(op.id) ?? 'applied' } : { status: 'duplicate' as const }
      return r.code !== undefined ? { status: r.status, code: r.code, message: r.reason ?? '' } : { status: r.status }
    })
    if (opts.publish) {
      const topic = groupTopic(group)
      await Promise.all(news.map(async (op) => {
        try {
          await this.c.pubsub.publish(topic, encodeTopicFrame({ kind: 'op', bytes: op.bytes }), opts)
        } catch (err) {
          this.log.warn({ err, group, op: op.id }, 'could not publish an op; peers fetch it with the log')
        }
      }))
    }
    this.reindex(group, log)
    this.pushOps(group, log, news, membersBefore)
    if (opts.publish && this.replicas > 0 && log.state.kind === 'room' && news.some((op) => op.body.type === 'create')) {
      // a new room is kept on its nearest nodes before its creator hears back: nobody may be in it
      // yet, so no topic peer could serve it to a visitor on another node
      try {
        await this.keepGroup(group, opts)
      } catch (err) {
        this.log.debug({ err, group }, 'a new room was not kept yet; the keep rounds retry')
        this.toKeep.add(group)
      }
    }
    if (log.missing().length > 0) this.background(this.fetchLog(group, {}), 'fetch missing ops')
    return { results, loaded }
  }

  private pushOps (group: GroupId, log: GroupLog, ops: GroupOp[], membersBefore: Set<UserId>): void {
    if (ops.length === 0) return
    const users = new Set<UserId>([...membersBefore, ...(this.groupMembers.get(group) ?? [])])
    for (const op of ops) {
      const body = op.body
      if ('users' in body) for (const u of body.users) users.add(u)
      if (body.type === 'role' || body.type === 'transfer') users.add(body.user)
      users.add(op.author.user)
    }
    const conns = new Set<Conn>(this.connsOfUsers(users))
    if (log.state.kind === 'room') for (const c of this.roomVisitors.get(group) ?? []) conns.add(c)
    for (const op of ops) {
      const ev: ClientEvents['groupOp'] = { group, op: op.bytes }
      for (const conn of conns) {
        try {
          if (!conn.sink.event('groupOp', ev)) conn.lag.add(group)
        } catch (err) {
          this.log.warn({ err, group }, 'a group sink threw')
        }
      }
    }
  }

  async getOps (_device: AuthenticatedDevice, req: ClientOps['groupGet']['req'], opts: CallOptions = {}): Promise<ClientOps['groupGet']['res']> {
    const loaded = await this.getLoaded(req.group) ?? await this.fetchLog(req.group, opts)
    if (loaded === undefined) throw clientError('ERR_NOT_FOUND', 'this node knows no op of the group')
    const all = loaded.log.ops()
    const from = req.after ?? 0
    const page = all.slice(from, from + GROUP_GET_PAGE)
    const res: ClientOps['groupGet']['res'] = { ops: page.map((op) => op.bytes) }
    if (from + page.length < all.length) res.next = from + page.length
    return res
  }

  // ---- contract: messages ---------------------------------------------------------------------

  async send (device: AuthenticatedDevice, sink: GroupSink, req: ClientOps['groupSend']['req'], opts: CallOptions = {}): Promise<ClientOps['groupSend']['res']> {
    let env: Envelope
    try {
      env = decodeGroupTraffic(req.envelope)
    } catch (err) {
      throw clientError('ERR_INVALID_ENVELOPE', `envelope does not decode: ${err instanceof Error ? err.message : String(err)}`, { cause: err })
    }
    if (env.from.user !== device.user || env.from.device !== device.device) throw clientError('ERR_NOT_SENDER', 'the envelope is not from this device')
    const group = groupOf(env)
    const loaded = await this.getLoaded(group)
    if (loaded === undefined) throw clientError(env.kind === 'room' ? 'ERR_NOT_FOUND' : 'ERR_NOT_MEMBER', 'this node does not know the group')
    const log = loaded.log
    if ((env.kind === 'room') !== (log.state.kind === 'room')) throw clientError('ERR_BAD_REQUEST', `a ${env.kind} envelope for a ${log.state.kind}`)
    const now = this.now()
    const refusal = log.canSend(device.user, now)
    if (refusal !== null) throw clientError(refusal.code, refusal.reason)
    try {
      if (env.kind === 'group') verifyGroupEnvelope(env, device.signingKey)
      else {
        // the certificate other nodes will check it by must be of the key authenticated here;
        // verifyRoomSender then checks the envelope signature once, under that key
        if (!equalBytes(env.cert.signingKey, device.signingKey)) throw new Error('the certificate is not of this connection\'s device key')
        verifyRoomSender(env)
      }
    } catch (err) {
      throw clientError('ERR_INVALID_ENVELOPE', 'bad envelope signature', { cause: err })
    }
    if (Math.abs(env.sentAt - now) > MAX_CLOCK_SKEW_MS) throw clientError('ERR_INVALID_ENVELOPE', `sentAt is more than ${MAX_CLOCK_SKEW_MS} ms from the node's clock`)
    const stored = await this.c.groups.getMessage(group, env.id)
    if (stored !== undefined) return { id: env.id, at: stored.receivedAt }
    let text: string | undefined
    if (env.kind === 'room') {
      const filter = this.wordFilter(loaded)
      if (filter !== undefined && filter.wf.test(env.text)) {
        if (filter.mode === 'block') throw clientError('ERR_CONTENT_BLOCKED', 'the room\'s word filter blocks this message')
        text = filter.wf.mask(env.text)
      }
      this.takeRate(group, device.user, loaded, now)
    }
    await this.writer.write(group, { id: env.id, sentAt: env.sentAt, receivedAt: now, body: req.envelope })
    this.c.groups.updateMeta(group, { touchedAt: now }).catch(() => {})
    if (this.replicas > 0) this.toKeep.add(group)
    try {
      await this.c.pubsub.publish(groupTopic(group), encodeTopicFrame({ kind: 'message', bytes: req.envelope }), opts)
    } catch (err) {
      // stored here: the group's other nodes fetch it with history
      this.log.warn({ err, group, id: env.id }, 'could not publish a group message')
    }
    const body: ClientEvents['group'] = text === undefined ? { envelope: req.envelope } : { envelope: req.envelope, text }
    this.push(this.messageRecipients(group, log), group, 'group', body, sink)
    return { id: env.id, at: now }
  }

  /** Counts a room message against the sender's rate limit; throws ERR_ROOM_RATE_LIMITED. */
  private takeRate (room: GroupId, user: UserId, loaded: Loaded, now: number): void {
    const limit = loaded.log.state.settings.rateLimit
    if (limit === undefined) return
    const key = `${room}\u0000${user}`
    const times = (this.sendTimes.get(key) ?? []).filter((t) => t > now - limit.windowMs)
    if (times.length >= limit.messages) {
      this.sendTimes.set(key, times)
      const retryAfterMs = Math.max(1, times[times.length - limit.messages]! + limit.windowMs - now)
      throw clientError('ERR_ROOM_RATE_LIMITED', `at most ${limit.messages} messages per ${limit.windowMs} ms in this room`, { retryAfterMs })
    }
    times.push(now)
    this.sendTimes.set(key, times)
  }

  /** The signing key of an active device of `user`, from the directory; undefined when unknown. */
  private async deviceKey (user: UserId, device: DeviceId): Promise<Uint8Array | undefined> {
    const list = await this.c.directory.getDeviceList(user)
    return list?.devices.find((d) => d.deviceId === device)?.signingKey
  }

  /**
   * Whether the sender's device list, as far as this node knows it without waiting, revokes
   * `device`. A certificate cannot say it was revoked: the list can. A list not at hand is looked
   * up in the background (the directory shares and caches the lookup), so the sender's later
   * messages meet it; waiting for the DHT here would stall the topic on every new sender.
   */
  private knownRevoked (user: UserId, device: DeviceId): boolean {
    // a list the directory holds fresh (looked up or published through this node) decides
    const cached = this.c.directory.cachedDeviceList(user)?.list
    if (cached !== undefined) return cached.revoked.some((r) => r.deviceId === device)
    const known = this.revocations.get(user)
    if (known === undefined || known.at < this.now() - REVOCATION_RECHECK_MS) {
      this.revocations.set(user, { at: this.now(), revoked: known?.revoked ?? new Set() })
      while (this.revocations.size > MAX_REVOCATION_ENTRIES) {
        const oldest = this.revocations.keys().next().value
        if (oldest === undefined) break
        this.revocations.delete(oldest)
      }
      this.background(this.c.directory.getDeviceList(user).then((list) => {
        if (list === undefined) return
        this.revocations.set(user, { at: this.now(), revoked: new Set(list.revoked.map((r) => r.deviceId)) })
      }), 'look up a room sender\'s device list')
    }
    return this.revocations.get(user)?.revoked.has(device) === true
  }

  /**
   * The checks a message from another node passes before it is stored or pushed: the checks of
   * `send` with the sender's key from the directory. `fetched` messages (history) may be old.
   */
  private async checkRemote (group: GroupId, loaded: Loaded, env: Envelope, fetched: boolean): Promise<Check> {
    const log = loaded.log
    const now = this.now()
    if (groupOf(env) !== group) return { ok: false, verdict: 'reject', code: 'ERR_INVALID_ENVELOPE', reason: 'envelope of another group' }
    if ((env.kind === 'room') !== (log.state.kind === 'room')) return { ok: false, verdict: 'reject', code: 'ERR_INVALID_ENVELOPE', reason: 'wrong envelope kind' }
    if (env.sentAt > now + MAX_CLOCK_SKEW_MS) return { ok: false, verdict: 'reject', code: 'ERR_INVALID_ENVELOPE', reason: 'sent in the future' }
    if (!fetched && env.sentAt < now - MAX_CLOCK_SKEW_MS) return { ok: false, verdict: 'ignore', code: 'ERR_INVALID_ENVELOPE', reason: 'too old for gossip' }
    const refusal = log.canSend(env.from.user, fetched ? env.sentAt : now)
    if (refusal !== null) {
      // with ops still missing, the sender may be a member this node does not know of yet
      const missing = log.missing().length > 0
      return { ok: false, verdict: missing ? 'ignore' : 'reject', code: refusal.code, reason: refusal.reason, retry: missing }
    }
    if (env.kind === 'group') {
      const key = await this.deviceKey(env.from.user, env.from.device)
      if (key === undefined) return { ok: false, verdict: 'ignore', code: 'ERR_INVALID_ENVELOPE', reason: 'unknown or inactive sender device', retry: true }
      try {
        verifyGroupEnvelope(env, key)
      } catch {
        return { ok: false, verdict: 'reject', code: 'ERR_INVALID_ENVELOPE', reason: 'bad signature' }
      }
    } else {
      // a room message carries its sender's certificate: no directory lookup on the message path
      try {
        verifyRoomSender(env)
      } catch {
        return { ok: false, verdict: 'reject', code: 'ERR_INVALID_ENVELOPE', reason: 'bad signature or certificate' }
      }
      if (this.knownRevoked(env.from.user, env.from.device)) return { ok: false, verdict: 'reject', code: 'ERR_DEVICE_REVOKED', reason: 'the sender device is revoked' }
    }
    if (env.kind === 'room') {
      const filter = this.wordFilter(loaded)
      if (filter?.mode === 'block' && filter.wf.test(env.text)) return { ok: false, verdict: 'reject', code: 'ERR_CONTENT_BLOCKED', reason: 'blocked by the word filter' }
    }
    return { ok: true }
  }

  // ---- gossip ---------------------------------------------------------------------------------

  /** The validator of a group topic. Never throws: garbage is rejected, what it cannot judge ignored. */
  private async validate (group: GroupId, data: Uint8Array, from: string): Promise<ValidationResult> {
    let frame
    try {
      frame = decodeTopicFrame(data)
    } catch {
      return 'reject'
    }
    if (frame.kind === 'op') {
      let op: GroupOp
      try {
        op = decodeGroupOp(frame.bytes)
      } catch {
        return 'reject'
      }
      if (op.group !== group) return 'reject'
      try {
        await this.ingestOps(group, [op], { publish: false, fetch: false })
      } catch (err) {
        this.log.warn({ err, group, from }, 'could not take an op from gossip')
        return 'ignore'
      }
      return 'accept'
    }
    let env: Envelope
    try {
      env = decodeGroupTraffic(frame.bytes)
    } catch {
      return 'reject'
    }
    const loaded = await this.getLoaded(group)
    if (loaded === undefined) return 'ignore'
    const check = await this.checkRemote(group, loaded, env, false)
    if (!check.ok) {
      this.log.debug({ group, from, code: check.code, reason: check.reason }, 'gossip message refused')
      if (check.retry === true) this.holdUnjudged(group, env, frame.bytes, 0)
      return check.verdict
    }
    return 'accept'
  }

  /**
   * Keeps a message this node could not judge (its sender's device list was not found, or ops are
   * missing) and checks it again later: gossip delivers a message once, and dropping it here
   * would lose it for this node's members. Bounded; the oldest held go first.
   */
  private holdUnjudged (group: GroupId, env: Envelope, bytes: Uint8Array, attempt: number): void {
    const delay = UNJUDGED_RETRY_DELAYS_MS[attempt]
    if (delay === undefined || !this.started) return
    const key = `${group}/${env.id}`
    const prev = this.unjudged.get(key)
    if (prev !== undefined) clearTimeout(prev)
    const timer = setTimeout(() => {
      this.unjudged.delete(key)
      this.background(this.rejudge(group, env, bytes, attempt), 'check a held message again')
    }, delay)
    timer.unref()
    this.unjudged.set(key, timer)
    for (const [k, t] of this.unjudged) {
      if (this.unjudged.size <= MAX_UNJUDGED_MESSAGES) break
      clearTimeout(t)
      this.unjudged.delete(k)
    }
  }

  private async rejudge (group: GroupId, env: Envelope, bytes: Uint8Array, attempt: number): Promise<void> {
    const loaded = this.subscribed.has(group) ? this.loaded.get(group) : undefined
    if (loaded === undefined) return
    // judged as history: the message is older now than gossip allows
    const check = await this.checkRemote(group, loaded, env, true)
    if (check.ok) {
      await this.acceptMessage(group, loaded, env, bytes)
      return
    }
    if (check.retry === true) this.holdUnjudged(group, env, bytes, attempt + 1)
  }

  /** An accepted message (ops were handled by the validator): store it and push it to local recipients. */
  private onTopicMessage (group: GroupId, data: Uint8Array): void {
    let env: Envelope
    try {
      const frame = decodeTopicFrame(data)
      if (frame.kind !== 'message') return
      env = decodeGroupTraffic(frame.bytes)
    } catch {
      return
    }
    const loaded = this.loaded.get(group)
    if (loaded === undefined) return
    this.background(this.acceptMessage(group, loaded, env, data.subarray(1)), 'store a gossip message')
  }

  /** Stores a checked message from another node and pushes it to local recipients, once. */
  private async acceptMessage (group: GroupId, loaded: Loaded, env: Envelope, bytes: Uint8Array): Promise<void> {
    const created = await this.writer.write(group, { id: env.id, sentAt: env.sentAt, receivedAt: this.now(), body: bytes })
    if (!created) return
    let body: ClientEvents['group'] = { envelope: bytes }
    if (env.kind === 'room') {
      const filter = this.wordFilter(loaded)
      if (filter?.mode === 'mask' && filter.wf.test(env.text)) body = { envelope: bytes, text: filter.wf.mask(env.text) }
    }
    this.push(this.messageRecipients(group, loaded.log), group, 'group', body)
  }

  // ---- history --------------------------------------------------------------------------------

  async history (device: AuthenticatedDevice, req: ClientOps['groupHistory']['req'], opts: CallOptions = {}): Promise<ClientOps['groupHistory']['res']> {
    const loaded = await this.getLoaded(req.group) ?? await this.fetchLog(req.group, opts)
    if (loaded === undefined) throw clientError('ERR_NOT_FOUND', 'this node knows no op of the group')
    const state = loaded.log.state
    if (state.kind === 'group' && !loaded.log.isMember(device.user)) throw clientError('ERR_NOT_MEMBER', 'not a member of the group')
    if (state.banned.has(device.user)) throw clientError('ERR_BANNED', 'banned from the room')
    const after = req.cursor !== undefined ? decodeCursor(req.cursor) : undefined
    if (after === undefined) {
      const covered = this.subscribed.get(req.group)
      if (covered === undefined || covered > req.since) await this.fillHistory(req.group, req.since, opts)
    }
    const limit = Math.min(req.limit ?? DEFAULT_HISTORY_PAGE, MAX_HISTORY_RESPONSE, MAX_FRAME_LIST_ITEMS)
    const page = await this.c.groups.listMessages(req.group, { since: req.since, ...(after !== undefined ? { after } : {}), limit: limit + 1 })
    const messages = page.slice(0, limit)
    const res: ClientOps['groupHistory']['res'] = { messages: messages.map((m) => m.body) }
    const masked = this.maskedTexts(loaded, res.messages)
    if (masked.length > 0) res.masked = masked
    const last = messages[messages.length - 1]
    if (page.length > limit && last !== undefined) res.cursor = encodeCursor({ sentAt: last.sentAt, id: parseMessageId(last.id) })
    return res
  }

  /** The texts a room that masks its filtered words shows instead of those of `bodies`, by index. */
  private maskedTexts (loaded: Loaded, bodies: Uint8Array[]): Array<{ i: number, text: string }> {
    const filter = loaded.log.state.kind === 'room' ? this.wordFilter(loaded) : undefined
    if (filter?.mode !== 'mask') return []
    const out: Array<{ i: number, text: string }> = []
    bodies.forEach((body, i) => {
      let env: Envelope
      try {
        env = decodeGroupTraffic(body)
      } catch {
        return
      }
      if (env.kind === 'room' && filter.wf.test(env.text)) out.push({ i, text: filter.wf.mask(env.text) })
    })
    return out
  }

  /** Topic subscribers to ask, waiting a bounded time for the first one to be known. */
  private async peersFor (group: GroupId, opts: CallOptions): Promise<string[]> {
    const topic = groupTopic(group)
    const now = this.c.pubsub.getSubscribers(topic)
    // on the topic for a while already: the subscribers known now are all there is to ask
    const on = this.subscribed.get(group)
    const settled = on !== undefined && this.now() - on >= this.subscriberWaitMs
    if (now.length > 0) return now.slice(0, DEFAULT_FETCH_PEERS)
    if (this.subscriberWaitMs === 0 || settled) return await this.replicaSet(group, opts)
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer)
        this.subscriptionWaiters.delete(waiter)
        opts.signal?.removeEventListener('abort', done)
        resolve()
      }
      const waiter = (t: string): void => { if (t === topic) done() }
      const timer = setTimeout(done, this.subscriberWaitMs)
      this.subscriptionWaiters.add(waiter)
      opts.signal?.addEventListener('abort', done, { once: true })
    })
    const subscribers = this.c.pubsub.getSubscribers(topic)
    if (subscribers.length > 0) return subscribers.slice(0, DEFAULT_FETCH_PEERS)
    return await this.replicaSet(group, opts)
  }

  /** Fetches a group's messages since `since` from its other nodes, merging the valid ones by id. */
  private async fillHistory (group: GroupId, since: number, opts: CallOptions): Promise<boolean> {
    let p = this.fills.get(group)
    if (p === undefined) {
      p = this.fillFromPeers(group, since, opts).finally(() => { this.fills.delete(group) })
      this.fills.set(group, p)
    }
    return await p
  }

  private async fillFromPeers (group: GroupId, since: number, opts: CallOptions): Promise<boolean> {
    return await this.fillFrom(group, await this.peersFor(group, opts), since, opts)
  }

  private async fillFrom (group: GroupId, peers: string[], since: number, opts: CallOptions): Promise<boolean> {
    for (const peer of peers) {
      try {
        let after: HistoryPosition | undefined
        for (let page = 0; page < DEFAULT_MAX_FETCH_PAGES; page++) {
          const res = await this.c.requestHistory(peer, { op: 'messages', group, since, ...(after !== undefined ? { after } : {}), limit: MAX_HISTORY_PAGE }, opts)
          if (!res.ok) break
          await this.storeFetched(group, res.items, peer)
          if (res.next === undefined || typeof res.next === 'number') {
            const covered = this.subscribed.get(group)
            if (covered !== undefined && since < covered) this.subscribed.set(group, since)
            return true
          }
          after = res.next
        }
      } catch (err) {
        this.log.debug({ err, group, peer }, 'history fetch from a peer failed')
      }
    }
    return false
  }

  private async storeFetched (group: GroupId, items: Uint8Array[], peer: string): Promise<void> {
    const loaded = await this.getLoaded(group)
    if (loaded === undefined) return
    const now = this.now()
    const good: StoredGroupMessage[] = []
    for (const bytes of items) {
      let env: Envelope
      try {
        env = decodeGroupTraffic(bytes)
      } catch {
        this.log.debug({ group, peer }, 'fetched history item does not decode')
        continue
      }
      const check = await this.checkRemote(group, loaded, env, true)
      if (!check.ok) {
        this.log.debug({ group, peer, code: check.code, reason: check.reason }, 'fetched history item refused')
        continue
      }
      good.push({ id: env.id, sentAt: env.sentAt, receivedAt: now, body: bytes })
    }
    if (good.length > 0) await this.c.groups.putMessages(group, good, { limit: this.historyLimit(group) })
  }

  /** Fetches a group's log from its other nodes; resolves with it, or undefined when nobody has it. */
  private async fetchLog (group: GroupId, opts: CallOptions): Promise<Loaded | undefined> {
    let p = this.opFetches.get(group)
    if (p === undefined) {
      p = this.fetchLogFromPeers(group, opts).finally(() => { this.opFetches.delete(group) })
      this.opFetches.set(group, p)
    }
    return await p
  }

  private async fetchLogFromPeers (group: GroupId, opts: CallOptions): Promise<Loaded | undefined> {
    return await this.fetchLogFrom(group, await this.peersFor(group, opts), opts)
  }

  private async fetchLogFrom (group: GroupId, peers: string[], opts: CallOptions): Promise<Loaded | undefined> {
    for (const peer of peers) {
      try {
        const ops: GroupOp[] = []
        let from = 0
        for (let page = 0; page < DEFAULT_MAX_FETCH_PAGES * 8; page++) {
          const res = await this.c.requestHistory(peer, { op: 'ops', group, from, limit: MAX_HISTORY_PAGE }, opts)
          if (!res.ok) break
          for (const bytes of res.items) {
            const op = decodeGroupOp(bytes)
            if (op.group !== group) throw new TalariaError('ERR_INVALID_OP', 'peer sent an op of another group')
            ops.push(op)
          }
          if (typeof res.next !== 'number') break
          from = res.next
        }
        if (ops.length === 0) continue
        const { loaded } = await this.ingestOps(group, ops, { publish: false, fetch: false })
        if (loaded !== undefined && loaded.log.missing().length === 0) return loaded
      } catch (err) {
        this.log.debug({ err, group, peer }, 'log fetch from a peer failed')
      }
    }
    return this.loaded.get(group)
  }

  /** What this node serves on the history protocol. */
  readonly historySource: HistorySource = {
    messages: async (group, since, after, limit) => {
      if (await this.getLoaded(group) === undefined) return undefined
      const page = await this.c.groups.listMessages(group, { since, ...(after !== undefined ? { after } : {}), limit: limit + 1 })
      const items = page.slice(0, limit)
      const last = items[items.length - 1]
      return page.length > limit && last !== undefined
        ? { items: items.map((m) => m.body), next: { sentAt: last.sentAt, id: parseMessageId(last.id) } }
        : { items: items.map((m) => m.body) }
    },
    ops: async (group, from, limit) => {
      const loaded = await this.getLoaded(group)
      if (loaded === undefined) return undefined
      const all = loaded.log.ops()
      const items = all.slice(from, from + limit).map((op) => op.bytes)
      return from + items.length < all.length ? { items, next: from + items.length } : { items }
    },
    keep: async (group, peer) => await this.keep(group, peer)
  }

  // ---- replicas -------------------------------------------------------------------------------

  /** The nodes nearest the group's key (cached); empty without a DHT or replication. */
  private async replicaSet (group: GroupId, opts: CallOptions): Promise<string[]> {
    const closest = this.c.closestPeers
    if (closest === undefined || this.replicas === 0) return []
    const hit = this.replicaSets.get(group)
    if (hit !== undefined && hit.expiresAt > this.now()) return hit.peers
    let peers: string[] = []
    try {
      peers = await closest(groupReplicaKey(group), this.replicas, opts)
    } catch (err) {
      this.log.debug({ err, group }, 'replica lookup failed')
    }
    // a short set means the routing table is still filling: look again next time
    if (peers.length >= this.replicas) this.replicaSets.set(group, { peers, expiresAt: this.now() + REPLICA_SET_TTL_MS })
    return peers
  }

  /** One keep round: asks the replicas of the groups local clients sent to since the last round to pull. */
  private async keepRound (): Promise<void> {
    if (this.keeping || this.toKeep.size === 0) return
    this.keeping = true
    try {
      const groups = [...this.toKeep].slice(0, MAX_KEEP_GROUPS_PER_ROUND)
      for (const g of groups) this.toKeep.delete(g)
      await Promise.all(groups.map(async (group) => { await this.keepGroup(group, {}) }))
    } finally {
      this.keeping = false
    }
  }

  /** Asks the group's replicas to pull it from this node; too few takers queue it for the next rounds. */
  private async keepGroup (group: GroupId, opts: CallOptions): Promise<void> {
    const peers = await this.replicaSet(group, opts)
    let taken = 0
    await Promise.all(peers.map(async (peer) => {
      try {
        const res = await this.c.requestHistory(peer, { op: 'keep', group }, opts)
        if (res.ok) {
          taken++
        } else {
          this.log.debug({ group, peer, code: res.code }, 'keep refused')
          // the peer knows nearer nodes than this one's set: find them again next round
          if (res.code === 'ERR_NOT_NEAREST') this.replicaSets.delete(group)
        }
      } catch (err) {
        this.log.debug({ err, group, peer }, 'keep request failed')
      }
    }))
    // too few replicas took it (the routing table may still be filling): try again, a few times
    const attempts = (this.keepAttempts.get(group) ?? 0) + 1
    if (taken < Math.min(2, this.replicas) && attempts < MAX_KEEP_ATTEMPTS) {
      this.keepAttempts.set(group, attempts)
      this.toKeep.add(group)
    } else {
      this.keepAttempts.delete(group)
    }
  }

  /** A keep request: a node among the nearest pulls the group's log and new messages from the asker. */
  private async keep (group: GroupId, peer: string): Promise<string | undefined> {
    if (this.c.isNearest === undefined || !await this.c.isNearest(groupReplicaKey(group), this.replicas || DEFAULT_GROUP_REPLICAS)) return 'ERR_NOT_NEAREST'
    if (!this.replicaGroups.has(group) && this.replicaGroups.size >= this.maxReplicaGroups) return 'ERR_TOO_MANY_GROUPS'
    // members' nodes hear everything on the topic: nothing to pull
    if (this.subscribed.has(group)) return undefined
    const running = this.pulls.get(group)
    if (running !== undefined) {
      // a pull is under way and may have missed what this keep announces: one more after it
      running.again = peer
      return undefined
    }
    const state: { again?: string } = {}
    this.pulls.set(group, state)
    this.background((async () => {
      try {
        let from: string | undefined = peer
        for (let i = 0; from !== undefined && i < 10; i++) {
          delete state.again
          await this.pullReplica(group, from)
          from = state.again
        }
      } finally {
        this.pulls.delete(group)
      }
    })(), 'pull a replica')
    return undefined
  }

  private async pullReplica (group: GroupId, peer: string): Promise<void> {
    const loaded = await this.fetchLogFrom(group, [peer], {})
    if (loaded === undefined) return
    if (!this.replicaGroups.has(group)) {
      this.replicaGroups.add(group)
      await this.c.groups.updateMeta(group, { replica: true, touchedAt: this.now() })
    }
    // from the newest message kept here, less the clock skew a later message may carry
    const newest = await this.newestSentAt(group)
    await this.fillFrom(group, [peer], Math.max(0, newest - MAX_CLOCK_SKEW_MS), {})
  }

  private async newestSentAt (group: GroupId): Promise<number> {
    let newest = 0
    let after: HistoryPosition | undefined
    // bounded walk to the end of the stored history (at most the history limit)
    for (let i = 0; i < 1000; i++) {
      const page = await this.c.groups.listMessages(group, { since: newest, ...(after !== undefined ? { after } : {}), limit: 1000 })
      const last = page[page.length - 1]
      if (last === undefined) break
      newest = last.sentAt
      after = { sentAt: last.sentAt, id: parseMessageId(last.id) }
      if (page.length < 1000) break
    }
    return newest
  }

  /** Groups kept here as a replica. */
  replicaOf (): GroupId[] {
    return [...this.replicaGroups]
  }

  // ---- rooms ----------------------------------------------------------------------------------

  async enterRoom (device: AuthenticatedDevice, sink: GroupSink, req: ClientOps['roomEnter']['req'], opts: CallOptions = {}): Promise<ClientOps['roomEnter']['res']> {
    const conn = this.conns.get(sink)
    if (conn === undefined) throw clientError('ERR_BAD_REQUEST', 'the connection is not attached')
    let loaded = await this.getLoaded(req.room)
    if (loaded === undefined && req.ops !== undefined && req.ops.length > 0) {
      loaded = (await this.ingestOps(req.room, this.decodeOps(req.room, req.ops), { publish: false, ...opts })).loaded
    }
    loaded ??= await this.fetchLog(req.room, opts)
    if (loaded === undefined) throw clientError('ERR_NOT_FOUND', 'unknown room')
    const state = loaded.log.state
    if (state.kind !== 'room') throw clientError('ERR_BAD_REQUEST', 'not a room')
    if (state.banned.has(device.user)) throw clientError('ERR_BANNED', 'banned from the room')
    if (this.conns.get(sink) !== conn) throw clientError('ERR_BAD_REQUEST', 'the connection detached')
    conn.rooms.add(req.room)
    let visitors = this.roomVisitors.get(req.room)
    if (visitors === undefined) {
      visitors = new Set()
      this.roomVisitors.set(req.room, visitors)
    }
    visitors.add(conn)
    this.subscribe(req.room)
    return { heads: state.heads }
  }

  leaveRoom (_device: AuthenticatedDevice, sink: GroupSink, room: GroupId): void {
    const conn = this.conns.get(sink)
    if (conn === undefined || !conn.rooms.delete(room)) return
    this.removeVisitor(room, conn)
  }

  private removeVisitor (room: GroupId, conn: Conn): void {
    const visitors = this.roomVisitors.get(room)
    visitors?.delete(conn)
    if (visitors?.size === 0) this.roomVisitors.delete(room)
    this.unsubscribeIfUnneeded(room)
  }

  // ---- retention ------------------------------------------------------------------------------

  /** Removes messages past their retention, every stored group; drops stale rate-limit entries. */
  async sweep (): Promise<number> {
    const now = this.now()
    let removed = 0
    try {
      for await (const group of this.c.groups.groups()) {
        const own = this.loaded.get(group as GroupId)?.log.state.settings.retentionMs
        const keep = Math.min(this.retentionMs, own ?? this.retentionMs)
        if (now > keep) removed += await this.c.groups.sweepMessages(group, now - keep)
      }
    } catch (err) {
      this.log.warn({ err }, 'group retention sweep failed; retrying at the next tick')
    }
    for (const [key, times] of this.sendTimes) {
      if (times.length === 0 || times[times.length - 1]! < now - 3_600_000) this.sendTimes.delete(key)
    }
    return removed
  }

  // ---- introspection (tests, status) ----------------------------------------------------------

  /** The state of a group as this node holds it in memory or storage; undefined when unknown. */
  async state (group: GroupId): Promise<GroupLog['state'] | undefined> {
    return (await this.getLoaded(group))?.log.state
  }

  /** Messages held for another check (their sender could not be judged yet). */
  heldMessages (): number {
    return this.unjudged.size
  }

  /** Groups whose topic this node is on. */
  subscribedGroups (): GroupId[] {
    return [...this.subscribed.keys()]
  }
}
