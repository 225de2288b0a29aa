/**
 * Groups and rooms in the client: the device's own verified copy of every group's op log, the
 * sender keys that make group messages end-to-end encrypted, and the receive path that opens,
 * orders and deduplicates group messages.
 *
 * Trust: the node's word on membership is never taken. Every op is signature-checked
 * (`decodeGroupOp`) and replayed through the deterministic {@link GroupLog}; envelopes from users
 * the local log does not list as members are dropped, and sender keys go only to the members the
 * local log lists. Rooms are public and not end-to-end encrypted: room messages are shown as the
 * node delivers them (it checked their signatures; see docs/CLIENT.md).
 *
 * Sender keys: each device owns one sender key per group, sent over the 1:1 ratchet sessions
 * (`senderKey` content) to every other device of every member before the first message under it.
 * When the group's `epoch` changes (someone left, was removed or banned) the next send rotates the
 * key and sends the new one to the current members only, so a removed member cannot read what
 * follows. An envelope whose key has not arrived yet is held (bounded) and opened when it does.
 *
 * Every change of group state and its store writes run under one lock; network I/O runs outside.
 */
import { ClientProtocolError, isClientErrorCode, type ClientEvents as WireEvents, type ClientOp, type ClientOps } from '../protocol/client-protocol.js'
import { decodeValue, encodeValue, expectArray, expectBytes, expectObject, expectString, expectUint } from '../protocol/codec.js'
import { MAX_CONTENT_BYTES, MAX_GROUP_INVITE_OPS, MAX_TEXT_LENGTH, type GroupInviteContent, type SenderKeyContent } from '../protocol/content.js'
import type { CryptoProvider } from '../protocol/crypto/provider.js'
import {
  createReceiverSenderKey, createSenderKey, decodeSenderKeyDistribution, deserializeReceiverSenderKey, deserializeSenderKey,
  encodeSenderKeyDistribution, rotateSenderKey, senderKeyDistribution, serializeReceiverSenderKey, serializeSenderKey,
  type ReceiverSenderKeyState, type SenderKeyState
} from '../protocol/e2e/sender-keys.js'
import type { GroupEnvelope } from '../protocol/envelopes.js'
import {
  GroupLog, MAX_OP_USERS, MAX_ROOM_TEXT_LENGTH, createGroup as createGroupOp, decodeGroupOp, decodeGroupTraffic, openGroupEnvelope,
  sealGroupEnvelope, signGroupOp, signRoomEnvelope,
  type GroupOp, type GroupOpBody, type GroupOpType, type GroupRole, type GroupSettings, type GroupState, type JoinPolicy,
  type RateLimitSettings, type RoomEnvelope, type WordFilterSettings
} from '../protocol/groups/index.js'
import type { ClientIdentity } from './identity.js'
import { parseDeviceId, parseGroupId, parseMessageId, parseUserId, type DeviceId, type GroupId, type MessageId, type UserId } from '../protocol/ids.js'
import { MAX_CLOCK_SKEW_MS } from '../protocol/limits.js'
import { ClientError } from './errors.js'
import { Lock, pad } from './lock.js'
import { OrderingBuffer } from './ordering.js'
import type { ClientStore, StoreOp } from './store.js'

/** Group envelopes held per group until their sender key arrives; the oldest are dropped first. */
export const MAX_HELD_PER_GROUP = 1000
/** Groups not known yet whose envelopes are held (until an invite or op makes them known). */
export const MAX_HELD_UNKNOWN_GROUPS = 64
/** Sender keys kept per (group, sender device): the newest, for messages still in flight under an older one. */
export const MAX_KEYS_PER_SENDER = 4
/**
 * Ops sent in one `groupInvite` (and their bytes, within the content limit); a longer log sends
 * the genesis and the newest ops, and the receiver fetches the rest from its node.
 */
export const MAX_INVITE_OPS = MAX_GROUP_INVITE_OPS
const MAX_INVITE_BYTES = MAX_CONTENT_BYTES - 8 * 1024
/** Pages of `groupHistory` read in one sync of one group. */
export const MAX_HISTORY_PAGES = 200
/** How long a member whose devices all have this sender's key goes without a device-list lookup on send, in ms. */
export const DEVICE_RECHECK_MS = 5 * 60_000
/** Group and room events queued for processing; beyond it the oldest is dropped (history fills it). */
export const MAX_GROUP_EVENT_QUEUE = 10_000
/** Room message ids remembered to drop duplicate pushes. */
export const MAX_RECENT_ROOM_IDS = 10_000
/** Group message ids remembered for deduplication (persisted; the oldest are forgotten first). */
export const DEFAULT_MAX_GROUP_SEEN_IDS = 100_000
/** Groups synchronised (ops and history) at once after a connect. */
const SYNC_CONCURRENCY = 4
/** Bytes of ops in one `groupOps` upload (well under the node's frame limit). */
const MAX_UPLOAD_BYTES = 192 * 1024
/** Ops per `groupOps` upload (the frame schema's list limit is 1024). */
const MAX_UPLOAD_OPS = 512
const GROUP_RECORD_VERSION = 1

/** A group message as the application sees it. */
export interface GroupMessage {
  group: GroupId
  /** The message id (the envelope id: the same for every member). */
  id: MessageId
  from: UserId
  fromDevice: DeviceId
  text: string
  sentAt: number
  /** Position in the sender device's stream for this group, from 1. */
  seq: number
}

/** A room message as the application sees it. */
export interface RoomMessage {
  room: GroupId
  id: MessageId
  from: UserId
  fromDevice: DeviceId
  /** The text to show: the node's masked text when the room's filter masks, else the sender's. */
  text: string
  sentAt: number
}

/** A change of a group's log: one op took effect. */
export interface GroupChange {
  group: GroupId
  /** What the op did. */
  op: GroupOpType
  author: UserId
  /** The state after the op (and every op known so far). */
  state: GroupState
}

/** Events the groups layer adds to the client's. */
export interface GroupEvents {
  groupMessage: GroupMessage
  groupChange: GroupChange
  roomMessage: RoomMessage
}

/** Options of `createGroup`. */
export interface CreateGroupOptions {
  name: string
  /** Users added as members at once (one `add` op per {@link MAX_OP_USERS}). */
  members?: UserId[]
  /** Default 'invite'. */
  joinPolicy?: JoinPolicy
  avatar?: Uint8Array
}

/** Options of `createRoom`. */
export interface CreateRoomOptions {
  name: string
  filter?: WordFilterSettings
  rateLimit?: RateLimitSettings
  historyLimit?: number
}

/** Options of every async groups call. */
export interface GroupCallOptions {
  signal?: AbortSignal
}

/** Work sent to several users: who got it and who did not. */
export interface FanOutResult {
  successes: UserId[]
  failures: Array<{ user: UserId, error: Error }>
}

/** Group content that travels inside the 1:1 sessions. */
export type GroupDirectContent = SenderKeyContent | GroupInviteContent

/** What the groups layer needs from the client: narrow on purpose. */
export interface GroupComponents {
  identity: () => ClientIdentity
  crypto: CryptoProvider
  store: ClientStore
  log: { debug(obj: object, msg?: string): void, info(obj: object, msg?: string): void, warn(obj: object, msg?: string): void }
  /** A request to the node, waiting for a connection and riding out rate limits until the deadline. */
  request<Op extends ClientOp>(op: Op, body: ClientOps[Op]['req'], opts: { deadline: number, signal?: AbortSignal }): Promise<ClientOps[Op]['res']>
  /** Sends content to one device over its 1:1 session; resolves when the node has it durably. */
  sendDirect(user: UserId, device: DeviceId, content: GroupDirectContent, opts: { deadline: number, signal?: AbortSignal }): Promise<void>
  /** The devices of `user` this device can reach, verified (cached lookups). */
  devicesOf(user: UserId, signal?: AbortSignal): Promise<DeviceId[]>
  emit<E extends keyof GroupEvents>(event: E, payload: GroupEvents[E]): void
  emitError(error: Error, context: string): void
  /** Runs a background task; failures become `error` events. */
  spawn(p: Promise<unknown>, context: string): void
  closing(): boolean
}

/** Tuning of the groups layer. */
export interface GroupInit {
  /** How long an op, a send or a sync keeps trying, in milliseconds. */
  timeoutMs: number
  gapTimeoutMs?: number
  gapMaxRequests?: number
  maxSeenIds?: number
}

interface OwnKey {
  /** The group epoch the key belongs to. */
  epoch: number
  key: SenderKeyState
  /** Devices that have this key. */
  sentTo: Set<DeviceId>
  /**
   * When each member's device list was last looked up for this key (in memory): a send looks up
   * only members not checked for {@link DEVICE_RECHECK_MS}, not every member every time.
   */
  checked?: Map<UserId, number>
}

interface ReceiverEntry {
  keyId: number
  user: UserId
  at: number
  /** The iteration the distribution started at: the first message this device can read under the key. */
  start: number
  state: ReceiverSenderKeyState
}

interface GroupEntry {
  log: GroupLog
  /** Newest `sentAt` of a message seen in this group. */
  cursor: number
  own?: OwnKey
  /** Envelopes waiting for their sender key, by id (insertion order = age). */
  held: Map<MessageId, GroupEnvelope>
  /** Serialises key distribution and sealing per group, so seq order is call order. */
  sendLock: Lock
  syncing?: Promise<void>
  syncAgain?: number
}

interface PendingGroupMessage extends GroupMessage {
  stream: string
  /**
   * Where this device's view of the sender's stream starts: seq and chain iteration advance
   * together under one key, so the first readable iteration gives the first readable seq, and a
   * first message that arrives after the second is waited for.
   */
  base?: number
}

function refuse (code: string, message: string): ClientProtocolError {
  return new ClientProtocolError(isClientErrorCode(code) ? code : 'ERR_INVALID_OP', message)
}

function badArgument (message: string): ClientError {
  return new ClientError('ERR_BAD_ARGUMENT', message)
}

function parseUsers (users: readonly UserId[], what: string): UserId[] {
  if (!Array.isArray(users) || users.length === 0) throw badArgument(`${what}: at least one user id`)
  const out: UserId[] = []
  for (const u of users) {
    try { out.push(parseUserId(u)) } catch (err) { throw new ClientError('ERR_BAD_ARGUMENT', `${what}: not a user id: ${String(u).slice(0, 40)}`, { cause: err }) }
  }
  return [...new Set(out)]
}

function parseGroup (group: GroupId): GroupId {
  try { return parseGroupId(group) } catch (err) { throw new ClientError('ERR_BAD_ARGUMENT', `not a group id: ${String(group).slice(0, 40)}`, { cause: err }) }
}

function chunks<T> (list: T[], size: number): T[][] {
  const out: T[][] = []
  for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size))
  return out
}

/**
 * The groups layer of one client. `start` loads what the store holds; `onConnected` synchronises
 * after every (re)connect; the client routes node events and group content here.
 */
export class ClientGroups {
  private readonly c: GroupComponents
  private readonly init: GroupInit
  private readonly lock = new Lock()
  private readonly groups = new Map<GroupId, GroupEntry>()
  private readonly receivers = new Map<string, ReceiverEntry[]>()
  private readonly unknownHeld = new Map<GroupId, Map<MessageId, GroupEnvelope>>()
  private readonly entered = new Set<GroupId>()
  private readonly learning = new Set<GroupId>()
  private readonly recentRoomIds = new Map<MessageId, true>()
  private readonly ordering: OrderingBuffer<PendingGroupMessage>
  private readonly queue: Array<WireEvents['group']> = []
  private processing = false

  constructor (components: GroupComponents, init: GroupInit) {
    this.c = components
    this.init = init
    this.ordering = new OrderingBuffer<PendingGroupMessage>({
      ...(init.gapTimeoutMs !== undefined ? { gapTimeoutMs: init.gapTimeoutMs } : {}),
      ...(init.gapMaxRequests !== undefined ? { gapMaxRequests: init.gapMaxRequests } : {}),
      deliver: (m) => { this.deliver(m) },
      // a gap in a sender's stream: the node's history holds every message the group saw
      requestGap: (_stream, fromSeq, toSeq, sample) => {
        this.c.log.info({ group: sample.group, from: sample.fromDevice, fromSeq, toSeq }, 'group gap: reading the history')
        this.c.spawn(this.syncHistory(sample.group, Math.max(0, sample.sentAt - 2 * MAX_CLOCK_SKEW_MS)), 'group gap')
      },
      skipped: (stream, fromSeq, toSeq) => {
        this.c.emitError(new ClientError('ERR_TIMEOUT', `gave up waiting for group stream ${stream} seq ${fromSeq}..${toSeq}`), 'group gap')
      }
    })
  }

  private get me (): UserId { return this.c.identity().user.userId }
  private get myDevice (): DeviceId { return this.c.identity().device.deviceId }
  private deadline (): number { return Date.now() + this.init.timeoutMs }

  // ---- lifecycle ----------------------------------------------------------------------------

  /** Loads logs, keys and undelivered messages from the store (once, after it opened). */
  async start (): Promise<void> {
    await this.lock.run(async () => {
      const byGroup = new Map<GroupId, GroupOp[]>()
      for (const [key, value] of await this.c.store.list('group-ops')) {
        try {
          const op = decodeGroupOp(value, { crypto: this.c.crypto })
          const list = byGroup.get(op.group) ?? []
          list.push(op)
          byGroup.set(op.group, list)
        } catch (err) {
          this.c.log.warn({ err, key }, 'dropping a stored group op that does not verify')
        }
      }
      for (const [group, ops] of byGroup) {
        const create = ops.find((o) => o.body.type === 'create')
        if (create === undefined) continue
        const log = GroupLog.create(create)
        for (const op of ops) if (op !== create) log.add(op)
        this.groups.set(group, { log, cursor: await this.readCounter(`gcursor/${group}`), held: new Map(), sendLock: new Lock() })
      }
      for (const [key, value] of await this.c.store.list('counters', { gte: 'grecv/', lt: 'grecv0' })) {
        this.ordering.setNext(key.slice('grecv/'.length), expectUint(decodeValue(value, 64), 'counter') + 1)
      }
      for (const [key, value] of await this.c.store.list('group-pending')) {
        try {
          this.ordering.offer(decodePending(value))
        } catch (err) {
          this.c.log.warn({ err, key }, 'dropping an unreadable pending group message')
        }
      }
    })
    // group content acked by the client before it was handled (a crash in between)
    for (const [key, value] of await this.c.store.list('group-inbox')) {
      try {
        const o = expectObject(decodeValue(value, 1 << 20), 'group inbox')
        await this.handleDirect(parseUserId(o.u), parseDeviceId(o.d), o.c as GroupDirectContent, key)
      } catch (err) {
        this.c.log.warn({ err, key }, 'dropping unreadable group content')
        await this.c.store.batch([{ type: 'del', ns: 'group-inbox', key }])
      }
    }
  }

  /** Cancels timers. */
  close (): void {
    this.ordering.close()
  }

  /**
   * After every (re)connect: re-enters rooms, then for each group this user is a member of makes
   * sure the node has the log's heads and reads the history missed since the group's cursor.
   */
  async onConnected (): Promise<void> {
    for (const room of this.entered) this.c.spawn(this.roomEnterRequest(room), 'room enter')
    const todo = [...this.groups.values()].filter((g) => g.log.state.kind === 'group' && g.log.isMember(this.me))
    const worker = async (): Promise<void> => {
      for (let g = todo.shift(); g !== undefined && !this.c.closing(); g = todo.shift()) {
        try {
          await this.uploadHeads(g)
          await this.syncHistory(g.log.id, this.historySince(g))
        } catch (err) {
          if (!this.c.closing()) this.c.emitError(err instanceof Error ? err : new Error(String(err)), 'group sync')
        }
      }
    }
    await Promise.all(Array.from({ length: SYNC_CONCURRENCY }, worker))
  }

  private historySince (g: GroupEntry): number {
    if (g.cursor > 0) return Math.max(0, g.cursor - MAX_CLOCK_SKEW_MS)
    const since = g.log.state.members.get(this.me)?.since ?? 0
    return Math.max(0, since - MAX_CLOCK_SKEW_MS)
  }

  /** Hands the node the log's head ops; the whole log when it lacks their ancestors. */
  private async uploadHeads (g: GroupEntry): Promise<void> {
    const heads = g.log.state.heads.map((id) => g.log.get(id)).filter((o): o is GroupOp => o !== undefined)
    if (heads.length === 0) return
    const res = await this.c.request('groupOps', { group: g.log.id, ops: heads.map((o) => o.bytes) }, { deadline: this.deadline() })
    if (res.results.some((r) => r.status === 'pending')) await this.uploadOps(g.log.id, g.log.ops())
  }

  private async uploadOps (group: GroupId, ops: GroupOp[]): Promise<void> {
    let batch: Uint8Array[] = []
    let size = 0
    const flush = async (): Promise<void> => {
      if (batch.length === 0) return
      await this.c.request('groupOps', { group, ops: batch }, { deadline: this.deadline() })
      batch = []
      size = 0
    }
    for (const op of ops) {
      if (batch.length >= MAX_UPLOAD_OPS || size + op.bytes.length > MAX_UPLOAD_BYTES) await flush()
      batch.push(op.bytes)
      size += op.bytes.length
    }
    await flush()
  }

  // ---- reading state ------------------------------------------------------------------------

  /** The state of a known group or room; undefined when this device knows no op of it. */
  group (group: GroupId): GroupState | undefined {
    return this.groups.get(group)?.log.state
  }

  /** The ids of every group and room this device knows, ascending. */
  list (): GroupId[] {
    return [...this.groups.keys()].sort()
  }

  // ---- ops ----------------------------------------------------------------------------------

  private signer (): { user: UserId, device: ClientIdentity['device'] } {
    const id = this.c.identity()
    return { user: id.user.userId, device: id.device }
  }

  /** Creates a group with `members` added; resolves with its id once the node has the ops and the members their invitations. */
  async createGroup (opts: CreateGroupOptions, call: GroupCallOptions = {}): Promise<GroupId> {
    if (typeof opts !== 'object' || opts === null || typeof opts.name !== 'string') throw badArgument('createGroup: name is required')
    const members = opts.members === undefined || opts.members.length === 0 ? [] : parseUsers(opts.members, 'createGroup members').filter((u) => u !== this.me)
    const settings: GroupSettings = { name: opts.name, joinPolicy: opts.joinPolicy ?? 'invite' }
    if (opts.avatar !== undefined) settings.avatar = opts.avatar
    const { id, ops } = this.buildGroup('group', settings, members)
    await this.submitNew(id, ops, call)
    // the members learn the group from its ops, and so do this user's other devices
    await this.inviteUsers(id, [this.me, ...members], call)
    return id
  }

  /** Creates a room (open, moderated, not end-to-end encrypted). Enter it with `enterRoom` to receive its messages. */
  async createRoom (opts: CreateRoomOptions, call: GroupCallOptions = {}): Promise<GroupId> {
    if (typeof opts !== 'object' || opts === null || typeof opts.name !== 'string') throw badArgument('createRoom: name is required')
    const settings: GroupSettings = { name: opts.name, joinPolicy: 'open' }
    if (opts.filter !== undefined) settings.filter = opts.filter
    if (opts.rateLimit !== undefined) settings.rateLimit = opts.rateLimit
    if (opts.historyLimit !== undefined) settings.historyLimit = opts.historyLimit
    const { id, ops } = this.buildGroup('room', settings, [])
    await this.submitNew(id, ops, call)
    return id
  }

  private buildGroup (kind: 'group' | 'room', settings: GroupSettings, members: UserId[]): { id: GroupId, ops: GroupOp[] } {
    let created: ReturnType<typeof createGroupOp>
    try {
      created = createGroupOp(this.signer(), { kind, settings }, this.c.crypto)
    } catch (err) {
      throw new ClientError('ERR_BAD_ARGUMENT', `invalid group settings: ${(err as Error).message}`, { cause: err })
    }
    const log = GroupLog.create(created.op)
    const ops = [created.op]
    for (const users of chunks(members, MAX_OP_USERS)) {
      const op = signGroupOp({ group: created.id, parents: log.state.heads, body: { type: 'add', users } }, this.signer(), this.c.crypto)
      const r = log.add(op)
      if (r.status !== 'applied') throw refuse(r.code ?? 'ERR_INVALID_OP', `createGroup: ${r.reason ?? 'add refused'}`)
      ops.push(op)
    }
    return { id: created.id, ops }
  }

  /** Submits the ops of a new group and keeps its log. */
  private async submitNew (id: GroupId, ops: GroupOp[], call: GroupCallOptions): Promise<void> {
    const deadline = this.deadline()
    for (const part of chunks(ops, MAX_UPLOAD_OPS)) {
      const res = await this.c.request('groupOps', { group: id, ops: part.map((o) => o.bytes) }, { deadline, ...(call.signal !== undefined ? { signal: call.signal } : {}) })
      const bad = res.results.find((r) => r.status === 'rejected')
      if (bad !== undefined) throw refuse(bad.code ?? 'ERR_INVALID_OP', `the node refused the group: ${bad.message ?? ''}`)
    }
    await this.ingest(id, ops)
  }

  /**
   * Signs one op on the current heads and submits it: checked against the local log first (a
   * refusal throws its code without a round trip), then `groupOps`; a rejection by the node
   * throws ClientProtocolError with the node's code.
   */
  private async submitOp (group: GroupId, body: GroupOpBody, call: GroupCallOptions): Promise<GroupOp> {
    const g = await this.ensureGroup(parseGroup(group), call)
    const now = Date.now()
    const refusal = g.log.check(this.me, body, now)
    if (refusal !== null) throw refuse(refusal.code, refusal.reason)
    const op = signGroupOp({ group: g.log.id, parents: g.log.state.heads, body, at: now }, this.signer(), this.c.crypto)
    const res = await this.c.request('groupOps', { group: g.log.id, ops: [op.bytes] }, { deadline: this.deadline(), ...(call.signal !== undefined ? { signal: call.signal } : {}) })
    const r = res.results[0]
    if (r?.status === 'rejected') throw refuse(r.code ?? 'ERR_INVALID_OP', r.message ?? `${body.type} rejected by the node`)
    await this.ingest(g.log.id, [op])
    return op
  }

  private async usersOp (group: GroupId, type: 'add' | 'remove' | 'invite' | 'approve' | 'ban' | 'unban', users: UserId[], call: GroupCallOptions): Promise<void> {
    const list = parseUsers(users, type)
    for (const part of chunks(list, MAX_OP_USERS)) {
      await this.submitOp(group, { type, users: part }, call)
      // the users learn the group (and, for add and approve, that they are in) from its ops
      if (type === 'add' || type === 'invite' || type === 'approve') await this.inviteUsers(group, part, call)
    }
  }

  addMembers = async (group: GroupId, users: UserId[], call: GroupCallOptions = {}): Promise<void> => { await this.usersOp(group, 'add', users, call) }
  removeMembers = async (group: GroupId, users: UserId[], call: GroupCallOptions = {}): Promise<void> => { await this.usersOp(group, 'remove', users, call) }
  invite = async (group: GroupId, users: UserId[], call: GroupCallOptions = {}): Promise<void> => { await this.usersOp(group, 'invite', users, call) }
  approve = async (group: GroupId, users: UserId[], call: GroupCallOptions = {}): Promise<void> => { await this.usersOp(group, 'approve', users, call) }
  ban = async (group: GroupId, users: UserId[], call: GroupCallOptions = {}): Promise<void> => { await this.usersOp(group, 'ban', users, call) }
  unban = async (group: GroupId, users: UserId[], call: GroupCallOptions = {}): Promise<void> => { await this.usersOp(group, 'unban', users, call) }
  leaveGroup = async (group: GroupId, call: GroupCallOptions = {}): Promise<void> => { await this.submitOp(group, { type: 'leave' }, call) }
  requestJoin = async (group: GroupId, call: GroupCallOptions = {}): Promise<void> => { await this.submitOp(group, { type: 'request' }, call) }
  dismissGroup = async (group: GroupId, call: GroupCallOptions = {}): Promise<void> => { await this.submitOp(group, { type: 'dismiss' }, call) }
  muteAll = async (group: GroupId, on: boolean, call: GroupCallOptions = {}): Promise<void> => {
    if (typeof on !== 'boolean') throw badArgument('muteAll: on must be a boolean')
    await this.submitOp(group, { type: 'muteAll', on }, call)
  }

  async joinGroup (group: GroupId, call: GroupCallOptions = {}): Promise<void> {
    const op = await this.submitOp(group, { type: 'join' }, call)
    const g = this.groups.get(op.group)
    // a new member reads what the group said since it joined
    if (g !== undefined && g.log.state.kind === 'group') this.c.spawn(this.syncHistory(op.group, Math.max(0, op.at - MAX_CLOCK_SKEW_MS)), 'group sync')
  }

  async setRole (group: GroupId, user: UserId, role: Exclude<GroupRole, 'owner'>, call: GroupCallOptions = {}): Promise<void> {
    const [u] = parseUsers([user], 'setRole')
    if (role !== 'admin' && role !== 'member') throw badArgument("setRole: role must be 'admin' or 'member'")
    await this.submitOp(group, { type: 'role', user: u!, role }, call)
  }

  async mute (group: GroupId, users: UserId[], untilMs: number, call: GroupCallOptions = {}): Promise<void> {
    if (!Number.isSafeInteger(untilMs) || untilMs < 0) throw badArgument('mute: untilMs must be a time in ms since the epoch (0 unmutes)')
    for (const part of chunks(parseUsers(users, 'mute'), MAX_OP_USERS)) await this.submitOp(group, { type: 'mute', users: part, until: untilMs }, call)
  }

  async updateGroupSettings (group: GroupId, settings: Partial<GroupSettings>, call: GroupCallOptions = {}): Promise<void> {
    const g = await this.ensureGroup(parseGroup(group), call)
    // a settings op replaces them whole: unnamed fields keep their current values
    const merged: GroupSettings = { ...g.log.state.settings, ...settings }
    await this.submitOp(group, { type: 'settings', settings: merged }, call)
  }

  async transferOwnership (group: GroupId, user: UserId, call: GroupCallOptions = {}): Promise<void> {
    const [u] = parseUsers([user], 'transferOwnership')
    await this.submitOp(group, { type: 'transfer', user: u! }, call)
  }

  /** The log of `group`, fetched from the node (`groupGet`) when this device knows none of it. */
  private async ensureGroup (group: GroupId, call: GroupCallOptions): Promise<GroupEntry> {
    const known = this.groups.get(group)
    if (known !== undefined) return known
    const ops = await this.fetchOps(group, call)
    await this.ingest(group, ops)
    const g = this.groups.get(group)
    if (g === undefined) throw new ClientProtocolError('ERR_NOT_FOUND', `group ${group} is unknown`)
    return g
  }

  /** Every op of a group from the node, verified. */
  private async fetchOps (group: GroupId, call: GroupCallOptions = {}): Promise<GroupOp[]> {
    const out: GroupOp[] = []
    let after: number | undefined = 0
    for (let page = 0; after !== undefined && page < MAX_HISTORY_PAGES; page++) {
      const res: ClientOps['groupGet']['res'] = await this.c.request('groupGet', { group, after }, { deadline: this.deadline(), ...(call.signal !== undefined ? { signal: call.signal } : {}) })
      for (const bytes of res.ops) {
        try {
          const op = decodeGroupOp(bytes, { crypto: this.c.crypto })
          if (op.group === group) out.push(op)
        } catch (err) {
          this.c.log.warn({ err, group }, 'the node sent a group op that does not verify')
        }
      }
      after = res.next
    }
    return out
  }

  /**
   * Merges verified ops into the local log (creating it from a `create` op), persists the new
   * ones and emits `groupChange` for each op that took effect. Returns what the log still misses.
   */
  private async ingest (group: GroupId, ops: GroupOp[]): Promise<{ added: GroupOp[], missing: boolean, created: boolean }> {
    const r = await this.lock.run(async () => {
      let g = this.groups.get(group)
      let created = false
      if (g === undefined) {
        const create = ops.find((o) => o.body.type === 'create' && o.group === group)
        if (create === undefined) return { added: [], missing: true, created: false, changed: [] as GroupOp[] }
        g = { log: GroupLog.create(create), cursor: 0, held: new Map(), sendLock: new Lock() }
        created = true
      }
      const added: GroupOp[] = created ? [ops.find((o) => o.body.type === 'create')!] : []
      const changed: GroupOp[] = created ? [...added] : []
      for (const op of ops) {
        if (op.group !== group) continue
        try {
          const res = g.log.add(op)
          if (res.status === 'duplicate') continue
          added.push(op)
          changed.push(...res.changed)
        } catch (err) {
          this.c.log.warn({ err, group }, 'group op not added')
        }
      }
      if (added.length > 0) {
        await this.c.store.batch(added.map((o) => ({ type: 'put' as const, ns: 'group-ops' as const, key: `${group}/${o.id}`, value: o.bytes })))
      }
      if (created) this.groups.set(group, g)
      return { added, missing: g.log.missing().length > 0, created, changed }
    })
    const g = this.groups.get(group)
    if (g !== undefined) {
      const state = g.log.state
      const seen = new Set<string>()
      for (const op of r.changed) {
        if (seen.has(op.id) || g.log.status(op.id) !== 'applied') continue
        seen.add(op.id)
        this.c.emit('groupChange', { group, op: op.body.type, author: op.author.user, state })
      }
      if (r.created) this.releaseUnknown(group)
    }
    return { added: r.added, missing: r.missing, created: r.created }
  }

  // ---- invitations --------------------------------------------------------------------------

  /** The ops an invitation carries: the whole log, or the genesis and the newest ops when it is long. */
  private inviteOps (g: GroupEntry): Uint8Array[] {
    const ops = g.log.ops()
    const genesis = ops[0]!
    const newest: Uint8Array[] = []
    let size = genesis.bytes.length
    for (let i = ops.length - 1; i >= 1 && newest.length < MAX_INVITE_OPS - 1; i--) {
      size += ops[i]!.bytes.length + 8
      if (size > MAX_INVITE_BYTES) break
      newest.push(ops[i]!.bytes)
    }
    return [genesis.bytes, ...newest.reverse()]
  }

  /** Sends the group's ops to every device of `users` (this user: its other devices). */
  private async inviteUsers (group: GroupId, users: UserId[], call: GroupCallOptions): Promise<FanOutResult> {
    const g = this.groups.get(group)
    const result: FanOutResult = { successes: [], failures: [] }
    if (g === undefined) return result
    const content: GroupInviteContent = { type: 'groupInvite', group, ops: this.inviteOps(g) }
    // a user the ops make a member gets this device's sender key in the same message, so the first
    // send needs no second 1:1 message (and no second lookup) per member; an invitee gets no key
    const own = g.log.state.kind === 'group' && g.log.isMember(this.me) ? await this.currentKey(g) : undefined
    let withKey: GroupInviteContent | undefined
    if (own !== undefined) {
      const { epoch, distribution } = keyContent(g, own)
      withKey = { ...content, senderKey: { epoch, distribution } }
    }
    const keyed: DeviceId[] = []
    const now = Date.now()
    const deadline = this.deadline()
    await Promise.all(users.map(async (user) => {
      try {
        const devices = (await this.c.devicesOf(user, call.signal)).filter((d) => d !== this.myDevice)
        const keyedInvite = g.log.isMember(user) ? withKey : undefined
        await Promise.all(devices.map(async (d) => {
          await this.c.sendDirect(user, d, keyedInvite ?? content, { deadline, ...(call.signal !== undefined ? { signal: call.signal } : {}) })
          if (keyedInvite !== undefined) keyed.push(d)
        }))
        if (keyedInvite !== undefined && own !== undefined) (own.checked ??= new Map()).set(user, now)
        result.successes.push(user)
      } catch (err) {
        // own other devices may not exist; anyone else not reachable is worth reporting
        if (user === this.me && (err as { code?: string }).code === 'ERR_NO_DEVICES') return
        result.failures.push({ user, error: err instanceof Error ? err : new Error(String(err)) })
      }
    }))
    if (own !== undefined) await this.noteKeySent(g, own, keyed)
    for (const f of result.failures) {
      this.c.emitError(new ClientError((f.error as { code?: string }).code ?? 'ERR_NO_DEVICES', `could not send the invitation to ${group} to ${f.user}: ${f.error.message}`, { cause: f.error }), 'group invite')
    }
    return result
  }

  // ---- 1:1 content --------------------------------------------------------------------------

  /**
   * Store ops that keep group content until it is handled: the client writes them in the batch
   * that acks the envelope, so a crash before {@link handleDirect} finishes loses nothing.
   */
  inboxOps (key: string, from: { user: UserId, device: DeviceId }, content: GroupDirectContent): StoreOp[] {
    return [{ type: 'put', ns: 'group-inbox', key, value: encodeValue({ u: from.user, d: from.device, c: { ...content } }) }]
  }

  /** Handles `senderKey` or `groupInvite` content from a verified device, then drops its inbox entry. */
  async handleDirect (user: UserId, device: DeviceId, content: GroupDirectContent, inboxKey: string): Promise<void> {
    try {
      if (content.type === 'senderKey') await this.onSenderKey(user, device, content)
      else if (content.type === 'groupInvite') await this.onInvite(user, device, content)
    } finally {
      await this.c.store.batch([{ type: 'del', ns: 'group-inbox', key: inboxKey }])
    }
  }

  private async onSenderKey (user: UserId, device: DeviceId, c: SenderKeyContent): Promise<void> {
    const group = parseGroupId(c.group)
    const g = this.groups.get(group)
    if (g !== undefined && !g.log.isMember(user)) {
      this.c.log.warn({ group, user }, 'sender key from a non-member dropped')
      return
    }
    const d = decodeSenderKeyDistribution(expectBytes(c.distribution, 'senderKey.distribution', 1, 1024))
    const stream = `${group}/${device}`
    await this.lock.run(async () => {
      const list = await this.loadReceivers(group, device)
      // a repeated distribution must not rewind a key this device already reads with
      if (list.some((e) => e.keyId === d.keyId)) return
      const entry: ReceiverEntry = { keyId: d.keyId, user, at: Date.now(), start: d.iteration, state: createReceiverSenderKey(d) }
      list.unshift(entry)
      const ops: StoreOp[] = [{ type: 'put', ns: 'group-recv', key: `${stream}/${d.keyId}`, value: encodeReceiver(entry) }]
      while (list.length > MAX_KEYS_PER_SENDER) {
        const old = list.pop()!
        ops.push({ type: 'del', ns: 'group-recv', key: `${stream}/${old.keyId}` })
      }
      await this.c.store.batch(ops)
    })
    // a member's key for a group this device has not heard of: its invitation was lost or is late,
    // so ask the node for the log (it is kept only if it lists this user)
    if (g === undefined) this.c.spawn(this.learn(group), 'group learn')
    // envelopes that waited for this key
    if (g !== undefined) {
      // in chain order, which is the sender's seq order
      const waiting = [...g.held.values()].filter((e) => e.from.device === device).sort((x, y) => x.iteration - y.iteration)
      for (const env of waiting) {
        g.held.delete(env.id)
        await this.onGroupEnvelope(env)
      }
    }
  }

  private async onInvite (from: UserId, device: DeviceId, c: GroupInviteContent): Promise<void> {
    const group = parseGroupId(c.group)
    const ops: GroupOp[] = []
    for (const bytes of expectArray(c.ops, 'groupInvite.ops', MAX_INVITE_OPS)) {
      try {
        const op = decodeGroupOp(expectBytes(bytes, 'groupInvite op', 1, 64 * 1024), { crypto: this.c.crypto })
        if (op.group === group) ops.push(op)
      } catch (err) {
        this.c.log.warn({ err, group, from }, 'invitation op does not verify')
      }
    }
    await this.onInviteOps(from, group, ops)
    // the key after the ops, which make its sender a member here; taken exactly as a `senderKey`
    // content (a non-member's is dropped; for a group still unknown, the node's log is fetched)
    if (c.senderKey !== undefined) {
      await this.onSenderKey(from, device, { type: 'senderKey', group, epoch: c.senderKey.epoch, distribution: c.senderKey.distribution })
    }
  }

  /** Verified ops of a group, from an invitation by `from` (this user: fetched from the node). */
  private async onInviteOps (from: UserId, group: GroupId, ops: GroupOp[]): Promise<void> {
    const known = this.groups.has(group)
    if (!known) {
      // only an invitation that makes this user a member or invitee creates a log here
      const create = ops.find((o) => o.body.type === 'create')
      if (create === undefined) {
        this.c.log.warn({ group, from }, 'invitation without the genesis dropped')
        return
      }
      const trial = GroupLog.create(create)
      for (const op of ops) if (op !== create) trial.add(op)
      const concerned = trial.isMember(this.me) || trial.state.invited.has(this.me) || trial.missing().length > 0
      if (!concerned || (!trial.isMember(from) && from !== this.me)) {
        this.c.log.warn({ group, from }, 'invitation that does not concern this user dropped')
        return
      }
    }
    const r = await this.ingest(group, ops)
    const g = this.groups.get(group)
    if (g === undefined) return
    this.c.spawn(this.afterInvite(g, r.missing), 'group invite')
  }

  /** Learns a group from the node's log when it concerns this user; at most one attempt per group at a time. */
  private async learn (group: GroupId): Promise<void> {
    if (this.groups.has(group) || this.learning.has(group)) return
    this.learning.add(group)
    try {
      let ops: GroupOp[]
      try {
        ops = await this.fetchOps(group)
      } catch (err) {
        this.c.log.info({ err, group }, 'the node does not know a group a member sent a key for')
        return
      }
      await this.onInviteOps(this.me, group, ops)
    } finally {
      this.learning.delete(group)
    }
  }

  /** Tells the node about the group (so it subscribes), fills the log, and reads what was said since this user joined. */
  private async afterInvite (g: GroupEntry, missing: boolean): Promise<void> {
    await this.uploadOps(g.log.id, g.log.ops())
    if (missing) await this.ingest(g.log.id, await this.fetchOps(g.log.id))
    if (g.log.state.kind === 'group' && g.log.isMember(this.me)) await this.syncHistory(g.log.id, this.historySince(g))
  }

  // ---- node events --------------------------------------------------------------------------

  /** A `groupOp` event: verify, merge, fetch the rest when parents are missing. */
  async onGroupOp (body: WireEvents['groupOp']): Promise<void> {
    let op: GroupOp
    try {
      op = decodeGroupOp(body.op, { crypto: this.c.crypto })
    } catch (err) {
      this.c.log.warn({ err, group: body.group }, 'pushed group op does not verify')
      return
    }
    if (op.group !== body.group) return
    const r = await this.ingest(op.group, [op])
    if (r.missing) this.c.spawn(this.ingest(op.group, await this.fetchOps(op.group)), 'group ops')
    const g = this.groups.get(op.group)
    // a member who was just added may have spoken before this op reached us: its words were dropped
    if (g !== undefined && r.added.length > 0 && g.log.state.kind === 'group' && g.log.isMember(this.me) &&
      (op.body.type === 'add' || op.body.type === 'join' || op.body.type === 'approve')) {
      this.c.spawn(this.syncHistory(op.group, Math.max(0, op.at - MAX_CLOCK_SKEW_MS)), 'group sync')
    }
  }

  /** A `groupLag` event: the node dropped pushes; read them from the history. */
  onGroupLag (body: WireEvents['groupLag']): void {
    const g = this.groups.get(body.group)
    const since = g === undefined ? Math.max(0, Date.now() - 2 * MAX_CLOCK_SKEW_MS) : this.historySince(g)
    this.c.spawn(this.syncHistory(body.group, since), 'group lag')
  }

  /** A `group` event: queued and processed one at a time. */
  onGroupEvent (body: WireEvents['group']): void {
    if (this.queue.length >= MAX_GROUP_EVENT_QUEUE) {
      // the history has it: a lag, as if the node had dropped it
      this.queue.shift()
      this.c.log.warn({}, 'group event queue full: dropping the oldest')
    }
    this.queue.push(body)
    if (!this.processing) this.c.spawn(this.processQueue(), 'group receive')
  }

  private async processQueue (): Promise<void> {
    this.processing = true
    try {
      for (let item = this.queue.shift(); item !== undefined && !this.c.closing(); item = this.queue.shift()) {
        try {
          await this.onTraffic(item.envelope, item.text)
        } catch (err) {
          this.c.emitError(err instanceof Error ? err : new Error(String(err)), 'group receive')
        }
      }
    } finally {
      this.processing = false
    }
  }

  private async onTraffic (bytes: Uint8Array, masked?: string): Promise<void> {
    let env: GroupEnvelope | RoomEnvelope
    try {
      env = decodeGroupTraffic(bytes)
    } catch (err) {
      this.c.log.warn({ err }, 'unreadable group traffic')
      return
    }
    if (env.kind === 'room') this.onRoomEnvelope(env, masked)
    else await this.onGroupEnvelope(env)
  }

  private onRoomEnvelope (env: RoomEnvelope, masked?: string): void {
    if (this.recentRoomIds.has(env.id)) return
    this.recentRoomIds.set(env.id, true)
    if (this.recentRoomIds.size > MAX_RECENT_ROOM_IDS) this.recentRoomIds.delete(this.recentRoomIds.keys().next().value as MessageId)
    if (env.from.device === this.myDevice) return
    this.c.emit('roomMessage', { room: env.room, id: env.id, from: env.from.user, fromDevice: env.from.device, text: masked ?? env.text, sentAt: env.sentAt })
  }

  private holdUnknown (env: GroupEnvelope): void {
    let held = this.unknownHeld.get(env.group)
    if (held === undefined) {
      if (this.unknownHeld.size >= MAX_HELD_UNKNOWN_GROUPS) this.unknownHeld.delete(this.unknownHeld.keys().next().value as GroupId)
      held = new Map()
      this.unknownHeld.set(env.group, held)
    }
    held.set(env.id, env)
    if (held.size > MAX_HELD_PER_GROUP) held.delete(held.keys().next().value as MessageId)
  }

  private releaseUnknown (group: GroupId): void {
    const held = this.unknownHeld.get(group)
    if (held === undefined) return
    this.unknownHeld.delete(group)
    this.c.spawn((async () => { for (const env of held.values()) await this.onGroupEnvelope(env) })(), 'group receive')
  }

  /**
   * Opens a group envelope (pushed or from the history): drops duplicates and non-members' words,
   * holds it while its sender key is unknown, else decrypts, stores the receiver state, the id as
   * seen and the message as pending in one batch, and hands it to the ordering buffer.
   */
  private async onGroupEnvelope (env: GroupEnvelope): Promise<void> {
    const g = this.groups.get(env.group)
    if (g === undefined) { this.holdUnknown(env); return }
    if (env.from.device === this.myDevice) return
    if (!g.log.isMember(env.from.user)) {
      this.c.log.debug({ group: env.group, from: env.from.user }, 'group message from a non-member dropped')
      return
    }
    const message = await this.lock.run(async (): Promise<PendingGroupMessage | undefined> => {
      if (await this.c.store.get('group-seen', env.id) !== undefined) return undefined
      const list = await this.loadReceivers(env.group, env.from.device)
      const entry = list.find((e) => e.keyId === env.senderKeyId && e.user === env.from.user)
      if (entry === undefined) {
        g.held.set(env.id, env)
        if (g.held.size > MAX_HELD_PER_GROUP) g.held.delete(g.held.keys().next().value as MessageId)
        return undefined
      }
      let content
      try {
        content = openGroupEnvelope(env, entry.state, this.c.crypto)
      } catch (err) {
        this.c.log.debug({ err, id: env.id, group: env.group }, 'group envelope did not open')
        return undefined
      }
      const stream = `${env.group}/${env.from.device}`
      const m: PendingGroupMessage = { stream, group: env.group, id: env.id, from: env.from.user, fromDevice: env.from.device, text: content.text, sentAt: content.sentAt, seq: content.seq }
      const base = content.seq - (env.iteration - entry.start)
      if (base >= 1 && base <= content.seq) m.base = base
      const ops: StoreOp[] = [
        { type: 'put', ns: 'group-recv', key: `${stream}/${entry.keyId}`, value: encodeReceiver(entry) },
        ...await this.seenOps(env.id, env.group),
        { type: 'put', ns: 'group-pending', key: `${stream}/${pad(m.seq)}`, value: encodeValue({ ...m }) }
      ]
      if (content.sentAt > g.cursor) {
        g.cursor = content.sentAt
        ops.push({ type: 'put', ns: 'counters', key: `gcursor/${env.group}`, value: encodeValue(content.sentAt) })
      }
      await this.c.store.batch(ops)
      return m
    })
    if (message !== undefined) this.ordering.offer(message)
  }

  private deliver (m: PendingGroupMessage): void {
    this.c.emit('groupMessage', { group: m.group, id: m.id, from: m.from, fromDevice: m.fromDevice, text: m.text, sentAt: m.sentAt, seq: m.seq })
    // persisted after the application saw it: a crash in between shows it again, never loses it
    this.c.spawn(this.lock.run(async () => {
      const key = `grecv/${m.stream}`
      const ops: StoreOp[] = [{ type: 'del', ns: 'group-pending', key: `${m.stream}/${pad(m.seq)}` }]
      if (m.seq > await this.readCounter(key)) ops.push({ type: 'put', ns: 'counters', key, value: encodeValue(m.seq) })
      await this.c.store.batch(ops)
    }), 'group delivered state')
  }

  private async loadReceivers (group: GroupId, device: DeviceId): Promise<ReceiverEntry[]> {
    const stream = `${group}/${device}`
    let list = this.receivers.get(stream)
    if (list !== undefined) return list
    list = []
    for (const [key, value] of await this.c.store.list('group-recv', { gte: `${stream}/`, lt: `${stream}0` })) {
      try {
        list.push(decodeReceiver(value))
      } catch (err) {
        this.c.log.warn({ err, key }, 'dropping an unreadable sender key')
      }
    }
    list.sort((a, b) => b.at - a.at)
    this.receivers.set(stream, list)
    return list
  }

  private async seenOps (id: MessageId, group: GroupId): Promise<StoreOp[]> {
    const max = this.init.maxSeenIds ?? DEFAULT_MAX_GROUP_SEEN_IDS
    const n = (await this.readCounter('gseen')) + 1
    const ops: StoreOp[] = [
      { type: 'put', ns: 'group-seen', key: id, value: new TextEncoder().encode(group) },
      { type: 'put', ns: 'group-seen-order', key: pad(n), value: new TextEncoder().encode(id) },
      { type: 'put', ns: 'counters', key: 'gseen', value: encodeValue(n) }
    ]
    if (n > max) {
      const old = await this.c.store.get('group-seen-order', pad(n - max))
      if (old !== undefined) ops.push({ type: 'del', ns: 'group-seen', key: new TextDecoder().decode(old) }, { type: 'del', ns: 'group-seen-order', key: pad(n - max) })
    }
    return ops
  }

  private async readCounter (key: string): Promise<number> {
    const v = await this.c.store.get('counters', key)
    return v === undefined ? 0 : expectUint(decodeValue(v, 64), 'counter')
  }

  /**
   * Reads the node's history of a group from `since` and processes every message (duplicates are
   * dropped by id). One sync per group at a time; a request meanwhile reruns it from the lower
   * `since` afterwards.
   */
  async syncHistory (group: GroupId, since: number): Promise<void> {
    const g = this.groups.get(group)
    if (g?.syncing !== undefined) {
      g.syncAgain = Math.min(g.syncAgain ?? since, since)
      await g.syncing
      return
    }
    const run = async (): Promise<void> => {
      let from: number | undefined = since
      while (from !== undefined && !this.c.closing()) {
        let cursor: Uint8Array | undefined
        for (let page = 0; page < MAX_HISTORY_PAGES; page++) {
          const req: ClientOps['groupHistory']['req'] = { group, since: from }
          if (cursor !== undefined) req.cursor = cursor
          const res = await this.c.request('groupHistory', req, { deadline: this.deadline() })
          const masked = new Map((res.masked ?? []).map((m) => [m.i, m.text]))
          for (const [i, bytes] of res.messages.entries()) await this.onTraffic(bytes, masked.get(i))
          cursor = res.cursor
          if (cursor === undefined) break
        }
        from = g?.syncAgain
        if (g !== undefined) delete g.syncAgain
      }
    }
    const p = run()
    if (g !== undefined) g.syncing = p
    try {
      await p
    } catch (err) {
      // a user no longer in the group may not read its history: nothing to fill
      if ((err as { code?: string }).code === 'ERR_NOT_MEMBER') return
      throw err
    } finally {
      if (g !== undefined) delete g.syncing
    }
  }

  // ---- sending ------------------------------------------------------------------------------

  /**
   * Sends a text to a group: checks locally that this user may send, makes sure every member
   * device has this device's current sender key (rotating it first when the group's epoch
   * changed), seals, and resolves with the message id once the node holds it durably.
   */
  async sendGroup (group: GroupId, text: string, call: GroupCallOptions = {}): Promise<MessageId> {
    if (typeof text !== 'string' || text.length > MAX_TEXT_LENGTH) throw badArgument(`text must be a string of at most ${MAX_TEXT_LENGTH} characters`)
    // a group this device has not heard of yet (its invitation may still be on the way): the node's log
    const g = await this.ensureGroup(parseGroup(group), call)
    if (g.log.state.kind !== 'group') throw badArgument(`${group} is a room: use sendRoom`)
    const refusal = g.log.canSend(this.me, Date.now())
    if (refusal !== null) throw refuse(refusal.code, refusal.reason)
    const deadline = this.deadline()
    const opts = { deadline, ...(call.signal !== undefined ? { signal: call.signal } : {}) }
    const sealed = await g.sendLock.run(async () => {
      const own = await this.currentKey(g)
      await this.distribute(g, own, call)
      return await this.lock.run(async () => {
        const seqKey = `gsend/${g.log.id}`
        const seq = (await this.readCounter(seqKey)) + 1
        const before = serializeSenderKey(own.key)
        let out
        try {
          out = sealGroupEnvelope({ group: g.log.id, from: { user: this.me, device: this.myDevice }, text, seq }, own.key, this.c.identity().device.signingSeed, this.c.crypto)
        } catch (err) {
          own.key = deserializeSenderKey(before)
          throw err
        }
        // the advanced key is stored before the envelope leaves: a key is never used twice
        await this.c.store.batch([
          { type: 'put', ns: 'counters', key: seqKey, value: encodeValue(seq) },
          { type: 'put', ns: 'group-keys', key: g.log.id, value: encodeOwnKey(own) },
          ...await this.seenOps(out.envelope.id, g.log.id)
        ])
        return out
      })
    })
    await this.c.request('groupSend', { envelope: sealed.bytes }, opts)
    return sealed.envelope.id
  }

  /** This device's sender key for the group's current epoch: loaded, created, or rotated. */
  private async currentKey (g: GroupEntry): Promise<OwnKey> {
    const epoch = g.log.state.epoch
    if (g.own === undefined) {
      const stored = await this.c.store.get('group-keys', g.log.id)
      if (stored !== undefined) {
        g.own = decodeOwnKey(stored)
        for (const [key] of await this.c.store.list('group-keydist', { gte: `${g.log.id}/${g.own.key.keyId}/`, lt: `${g.log.id}/${g.own.key.keyId}0` })) {
          g.own.sentTo.add(key.slice(key.lastIndexOf('/') + 1) as DeviceId)
        }
      }
    }
    if (g.own !== undefined && g.own.epoch === epoch) return g.own
    // someone left or was removed since this key went out: a fresh key, for the current members only
    const key = g.own === undefined ? createSenderKey(this.c.crypto) : rotateSenderKey(g.own.key, this.c.crypto)
    const own: OwnKey = { epoch, key, sentTo: new Set() }
    await this.lock.run(async () => { await this.c.store.batch([{ type: 'put', ns: 'group-keys', key: g.log.id, value: encodeOwnKey(own) }]) })
    g.own = own
    if (epoch > 0) this.c.log.info({ group: g.log.id, epoch }, 'sender key rotated')
    return own
  }

  /** Sends the current sender key to every member device that does not have it yet. */
  private async distribute (g: GroupEntry, own: OwnKey, call: GroupCallOptions): Promise<void> {
    const members = g.log.memberUsers()
    const deadline = this.deadline()
    const content = keyContent(g, own)
    const done: DeviceId[] = []
    const now = Date.now()
    const checked = own.checked ??= new Map()
    // a member whose devices all got the key lately needs no lookup: at 1,000 members a lookup per
    // member per send was a DHT walk per member per message at the nodes
    const due = members.filter((u) => (checked.get(u) ?? -Infinity) <= now - DEVICE_RECHECK_MS)
    await Promise.all(due.map(async (user) => {
      let devices: DeviceId[]
      try {
        devices = await this.c.devicesOf(user, call.signal)
      } catch (err) {
        if (user !== this.me) this.c.log.warn({ err, group: g.log.id, user }, 'no reachable device for a member: it cannot read this group')
        return
      }
      let all = true
      await Promise.all(devices.filter((d) => d !== this.myDevice && !own.sentTo.has(d)).map(async (device) => {
        try {
          await this.c.sendDirect(user, device, content, { deadline, ...(call.signal !== undefined ? { signal: call.signal } : {}) })
          done.push(device)
        } catch (err) {
          all = false
          this.c.log.warn({ err, group: g.log.id, device }, 'sender key not delivered; retried before the next message')
        }
      }))
      if (all) checked.set(user, now)
    }))
    await this.noteKeySent(g, own, done)
  }

  /** Records that `devices` have `own` (in memory and in the store), so no send gives it to them again. */
  private async noteKeySent (g: GroupEntry, own: OwnKey, devices: DeviceId[]): Promise<void> {
    if (devices.length === 0) return
    for (const d of devices) own.sentTo.add(d)
    await this.lock.run(async () => {
      await this.c.store.batch(devices.map((d) => ({ type: 'put' as const, ns: 'group-keydist' as const, key: `${g.log.id}/${own.key.keyId}/${d}`, value: new Uint8Array([1]) })))
    })
  }

  // ---- rooms --------------------------------------------------------------------------------

  /** Enters a room: its messages arrive as `roomMessage` events until `leaveRoom` (re-entered after reconnects). */
  async enterRoom (room: GroupId, call: GroupCallOptions = {}): Promise<void> {
    const id = parseGroup(room)
    const known = this.groups.get(id)
    if (known !== undefined && known.log.state.kind !== 'room') throw new ClientProtocolError('ERR_BAD_REQUEST', `${id} is a group, not a room`)
    await this.roomEnterRequest(id, call)
    this.entered.add(id)
  }

  private async roomEnterRequest (room: GroupId, call: GroupCallOptions = {}): Promise<void> {
    const g = this.groups.get(room)
    const req: ClientOps['roomEnter']['req'] = { room }
    if (g !== undefined) {
      const ops = this.inviteOps(g)
      if (ops.reduce((n, o) => n + o.length, 0) <= MAX_UPLOAD_BYTES) req.ops = ops
    }
    await this.c.request('roomEnter', req, { deadline: this.deadline(), ...(call.signal !== undefined ? { signal: call.signal } : {}) })
  }

  /** Leaves a room entered with `enterRoom`. */
  async leaveRoom (room: GroupId, call: GroupCallOptions = {}): Promise<void> {
    const id = parseGroup(room)
    this.entered.delete(id)
    await this.c.request('roomLeave', { room: id }, { deadline: this.deadline(), ...(call.signal !== undefined ? { signal: call.signal } : {}) })
  }

  /** Sends a signed, plaintext room message; resolves with its id once the node holds it. */
  async sendRoom (room: GroupId, text: string, call: GroupCallOptions = {}): Promise<MessageId> {
    const id = parseGroup(room)
    if (typeof text !== 'string' || text.length > MAX_ROOM_TEXT_LENGTH) throw badArgument(`room text must be a string of at most ${MAX_ROOM_TEXT_LENGTH} characters`)
    const g = this.groups.get(id)
    if (g !== undefined) {
      if (g.log.state.kind !== 'room') throw badArgument(`${id} is a group: use sendGroup`)
      const refusal = g.log.canSend(this.me, Date.now())
      if (refusal !== null) throw refuse(refusal.code, refusal.reason)
    }
    const { envelope, bytes } = signRoomEnvelope({ room: id, cert: this.c.identity().device.cert, text }, this.c.identity().device.signingSeed, this.c.crypto)
    this.recentRoomIds.set(envelope.id, true)
    await this.c.request('groupSend', { envelope: bytes }, { deadline: this.deadline(), ...(call.signal !== undefined ? { signal: call.signal } : {}) })
    return envelope.id
  }
}

// ---- persisted forms ------------------------------------------------------------------------

function encodeOwnKey (o: OwnKey): Uint8Array {
  return encodeValue({ v: GROUP_RECORD_VERSION, epoch: o.epoch, key: serializeSenderKey(o.key) })
}

function decodeOwnKey (bytes: Uint8Array): OwnKey {
  const o = expectObject(decodeValue(bytes, 4096), 'own sender key')
  return { epoch: expectUint(o.epoch, 'own key epoch'), key: deserializeSenderKey(expectBytes(o.key, 'own key', 1, 2048)), sentTo: new Set() }
}

function encodeReceiver (e: ReceiverEntry): Uint8Array {
  return encodeValue({ v: GROUP_RECORD_VERSION, keyId: e.keyId, user: e.user, at: e.at, start: e.start, state: serializeReceiverSenderKey(e.state) })
}

function decodeReceiver (bytes: Uint8Array): ReceiverEntry {
  const o = expectObject(decodeValue(bytes, 256 * 1024), 'receiver sender key')
  return {
    keyId: expectUint(o.keyId, 'receiver keyId'),
    user: parseUserId(o.user),
    at: expectUint(o.at, 'receiver at'),
    start: expectUint(o.start, 'receiver start'),
    state: deserializeReceiverSenderKey(expectBytes(o.state, 'receiver state', 1, 200 * 1024))
  }
}

function decodePending (bytes: Uint8Array): PendingGroupMessage {
  const o = expectObject(decodeValue(bytes, MAX_TEXT_LENGTH * 3 + 4096), 'pending group message')
  return {
    stream: expectString(o.stream, 'pending.stream', 160),
    group: parseGroupId(o.group),
    id: parseMessageId(o.id),
    from: parseUserId(o.from),
    fromDevice: parseDeviceId(o.fromDevice),
    text: expectString(o.text, 'pending.text', MAX_TEXT_LENGTH),
    sentAt: expectUint(o.sentAt, 'pending.sentAt'),
    seq: expectUint(o.seq, 'pending.seq'),
    ...(o.base !== undefined ? { base: expectUint(o.base, 'pending.base') } : {})
  }
}

/** The `senderKey` content that gives `own` to a member device (also what an invitation carries). */
function keyContent (g: GroupEntry, own: OwnKey): SenderKeyContent {
  return { type: 'senderKey', group: g.log.id, epoch: own.epoch, distribution: encodeSenderKeyDistribution(senderKeyDistribution(own.key)) }
}
