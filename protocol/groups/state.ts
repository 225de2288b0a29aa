/**
 * The group state machine: a log of signed ops (a DAG), linearised the same way on every node and
 * replayed through the role rules, so every node holding the same ops reaches the same state.
 *
 * Linearisation (docs/protocol/groups.md): Kahn's algorithm over the ops whose ancestors are all
 * known; among the ready ops the one whose author ranks highest in the state reached so far goes
 * first (owner 3 > admin 2 > member 1 > non-member 0), ties by op id ascending. It is applied
 * if the role rules allow it at that point, else marked rejected; either way it is done, and its
 * children may become ready. Ops with an unknown ancestor wait (pending) until it arrives.
 */
import { ProtocolError } from '../errors.js'
import type { GroupId, UserId } from '../ids.js'
import { MAX_CLOCK_SKEW_MS } from '../limits.js'
import { decodeGenesisSettings, MAX_GROUP_OPS } from './ops.js'
import type { GroupKind, GroupOp, GroupOpBody, GroupOpId, GroupOpStatus, GroupRejectCode, GroupRole, GroupSettings, GroupState, MemberInfo } from './types.js'

/** Why an op is not allowed. */
export interface GroupRejection {
  code: GroupRejectCode
  reason: string
}

/** Why a user may not send to a group right now. */
export interface SendRefusal {
  code: 'ERR_NOT_MEMBER' | 'ERR_MUTED' | 'ERR_BANNED' | 'ERR_GROUP_DISMISSED'
  reason: string
}

/** What GroupLog.add did. */
export interface GroupAddResult {
  status: GroupOpStatus
  code?: GroupRejectCode
  reason?: string
  /** Ops whose status became applied or rejected because of this add (or flipped), in linear order. */
  changed: GroupOp[]
}

const RANK: Record<GroupRole, number> = { owner: 3, admin: 2, member: 1 }

/** The mutable state the replay works on. */
interface Mut {
  kind: GroupKind
  creator: UserId
  settings: GroupSettings
  members: Map<UserId, MemberInfo>
  invited: Set<UserId>
  requests: Set<UserId>
  banned: Set<UserId>
  /** Mutes of members and non-members alike; members' mutedUntil mirrors it. */
  muted: Map<UserId, number>
  mutedAll: boolean
  dismissed: boolean
  epoch: number
  version: number
}

function rankOf (s: Mut | undefined, user: UserId): number {
  const m = s?.members.get(user)
  return m === undefined ? 0 : RANK[m.role]
}

function reject (code: GroupRejectCode, reason: string): GroupRejection {
  return { code, reason }
}

function needRank (s: Mut, author: UserId, min: number, what: string): GroupRejection | null {
  const r = rankOf(s, author)
  if (r >= min) return null
  return r === 0 ? reject('ERR_NOT_MEMBER', `${what}: the author is not a member`) : reject('ERR_FORBIDDEN', `${what}: the author's role is too low`)
}

/**
 * The role rules: whether `author` may do `body` in state `s`. Pure; see the table in
 * docs/protocol/groups.md.
 */
function rule (s: Mut, author: UserId, body: GroupOpBody): GroupRejection | null {
  if (s.dismissed) return reject('ERR_GROUP_DISMISSED', 'the group was dismissed')
  const rank = rankOf(s, author)
  const isRoom = s.kind === 'room'
  const policy = s.settings.joinPolicy
  switch (body.type) {
    case 'create':
      return reject('ERR_BAD_REQUEST', 'the group already exists')
    case 'invite': {
      const r = needRank(s, author, 1, 'invite')
      if (r !== null) return r
      if (body.users.some((u) => s.banned.has(u))) return reject('ERR_BANNED', 'invite: a user is banned')
      return null
    }
    case 'request':
      if (rank > 0) return reject('ERR_BAD_REQUEST', 'request: already a member')
      if (s.banned.has(author)) return reject('ERR_BANNED', 'request: the author is banned')
      if (!isRoom && policy !== 'approval') return reject('ERR_FORBIDDEN', 'request: the group does not take requests')
      return null
    case 'approve': {
      const r = needRank(s, author, 2, 'approve')
      if (r !== null) return r
      if (body.users.some((u) => !s.requests.has(u))) return reject('ERR_BAD_REQUEST', 'approve: a user has no pending request')
      return null
    }
    case 'join':
      if (rank > 0) return reject('ERR_BAD_REQUEST', 'join: already a member')
      if (s.banned.has(author)) return reject('ERR_BANNED', 'join: the author is banned')
      if (!isRoom && policy !== 'open' && !s.invited.has(author)) return reject('ERR_FORBIDDEN', 'join: not invited')
      return null
    case 'add': {
      const r = needRank(s, author, policy === 'open' ? 1 : 2, 'add')
      if (r !== null) return r
      if (body.users.some((u) => s.banned.has(u))) return reject('ERR_BANNED', 'add: a user is banned')
      return null
    }
    case 'remove': {
      const r = needRank(s, author, 2, 'remove')
      if (r !== null) return r
      for (const u of body.users) {
        const m = s.members.get(u)
        if (m === undefined) return reject('ERR_BAD_REQUEST', 'remove: a user is not a member')
        if (m.role === 'owner') return reject('ERR_FORBIDDEN', 'remove: the owner cannot be removed')
        if (RANK[m.role] > rank) return reject('ERR_FORBIDDEN', 'remove: a user ranks above the author')
      }
      return null
    }
    case 'leave':
      if (rank === 0) return reject('ERR_NOT_MEMBER', 'leave: not a member')
      if (rank === 3) return reject('ERR_FORBIDDEN', 'leave: the owner must transfer or dismiss')
      return null
    case 'role': {
      const r = needRank(s, author, 3, 'role')
      if (r !== null) return r
      const m = s.members.get(body.user)
      if (m === undefined) return reject('ERR_BAD_REQUEST', 'role: the user is not a member')
      if (m.role === 'owner') return reject('ERR_FORBIDDEN', 'role: the owner keeps its role')
      return null
    }
    case 'mute': {
      const r = needRank(s, author, 2, 'mute')
      if (r !== null) return r
      // non-members too: in rooms they may send
      if (body.users.some((u) => rankOf(s, u) >= rank)) return reject('ERR_FORBIDDEN', 'mute: a user does not rank below the author')
      return null
    }
    case 'muteAll':
      return needRank(s, author, 2, 'muteAll')
    case 'settings':
      return needRank(s, author, 2, 'settings')
    case 'transfer': {
      const r = needRank(s, author, 3, 'transfer')
      if (r !== null) return r
      if (body.user === author) return reject('ERR_BAD_REQUEST', 'transfer: already the owner')
      if (!s.members.has(body.user)) return reject('ERR_BAD_REQUEST', 'transfer: the user is not a member')
      return null
    }
    case 'ban': {
      const r = needRank(s, author, 2, 'ban')
      if (r !== null) return r
      for (const u of body.users) {
        const m = s.members.get(u)
        if (m?.role === 'owner') return reject('ERR_FORBIDDEN', 'ban: the owner cannot be banned')
        if (rankOf(s, u) >= rank) return reject('ERR_FORBIDDEN', 'ban: a user does not rank below the author')
      }
      return null
    }
    case 'unban':
      return needRank(s, author, 2, 'unban')
    case 'dismiss':
      return needRank(s, author, 3, 'dismiss')
  }
}

function addMember (s: Mut, user: UserId, at: number): void {
  if (!s.members.has(user)) s.members.set(user, { role: 'member', mutedUntil: s.muted.get(user) ?? 0, since: at })
  s.invited.delete(user)
  s.requests.delete(user)
}

/** Applies an op the rules allowed. */
function effect (s: Mut, author: UserId, body: GroupOpBody, at: number): void {
  switch (body.type) {
    case 'create': break
    case 'invite': for (const u of body.users) if (!s.members.has(u)) s.invited.add(u); break
    case 'request': s.requests.add(author); break
    case 'approve': for (const u of body.users) addMember(s, u, at); break
    case 'join': addMember(s, author, at); break
    case 'add': for (const u of body.users) addMember(s, u, at); break
    case 'remove': for (const u of body.users) s.members.delete(u); s.epoch++; break
    case 'leave': s.members.delete(author); s.epoch++; break
    case 'role': s.members.set(body.user, { ...s.members.get(body.user)!, role: body.role }); break
    case 'mute':
      for (const u of body.users) {
        if (body.until === 0) s.muted.delete(u)
        else s.muted.set(u, body.until)
        const m = s.members.get(u)
        if (m !== undefined) s.members.set(u, { ...m, mutedUntil: body.until })
      }
      break
    case 'muteAll': s.mutedAll = body.on; break
    case 'settings': s.settings = body.settings; break
    case 'transfer':
      s.members.set(body.user, { ...s.members.get(body.user)!, role: 'owner' })
      s.members.set(author, { ...s.members.get(author)!, role: 'admin' })
      break
    case 'ban': {
      let removed = false
      for (const u of body.users) {
        if (s.members.delete(u)) removed = true
        s.invited.delete(u)
        s.requests.delete(u)
        s.banned.add(u)
      }
      if (removed) s.epoch++
      break
    }
    case 'unban': for (const u of body.users) s.banned.delete(u); break
    case 'dismiss': s.dismissed = true; s.epoch++; break
  }
  s.version++
}

function initial (op: GroupOp & { body: { type: 'create' } }): Mut {
  const g = decodeGenesisSettings(op.body.genesis.settings)
  return {
    kind: g.kind,
    creator: op.author.user,
    settings: g.settings,
    members: new Map([[op.author.user, { role: 'owner', mutedUntil: 0, since: op.at }]]),
    invited: new Set(),
    requests: new Set(),
    banned: new Set(),
    muted: new Map(),
    mutedAll: false,
    dismissed: false,
    epoch: 0,
    version: 1
  }
}

interface Entry {
  op: GroupOp
  status: GroupOpStatus
  code?: GroupRejectCode
  reason?: string
  /** Known ops naming this one as a parent. */
  children: GroupOpId[]
  /** For pending ops: how many parents are not done yet. */
  blocked: number
  /** Position in the linear order (done ops). */
  index: number
}

/** A copy of the replay state after the first `length` ops of the order. */
interface Checkpoint {
  length: number
  s: Mut | undefined
  heads: Set<GroupOpId>
}

/** Replay state is saved every this many ops, so a reorder replays at most this many from before it. */
const CHECKPOINT_EVERY = 256

function cloneMut (s: Mut | undefined): Mut | undefined {
  if (s === undefined) return undefined
  // MemberInfo objects and settings are replaced, never mutated, so shallow copies suffice
  return { ...s, members: new Map(s.members), invited: new Set(s.invited), requests: new Set(s.requests), banned: new Set(s.banned), muted: new Map(s.muted) }
}

/**
 * One group's op log and the state it resolves to. Feed it decoded (signature-checked) ops in any
 * order; every node holding the same ops reaches the same state.
 */
export class GroupLog {
  /** The group's id. */
  readonly id: GroupId
  private readonly entries = new Map<GroupOpId, Entry>()
  /** Done ops (applied or rejected), in linear order. */
  private order: GroupOpId[] = []
  private heads = new Set<GroupOpId>()
  private readonly checkpoints: Checkpoint[] = []
  private s: Mut | undefined
  private pendingCount = 0
  /** Unknown parent → known ops waiting for it. */
  private readonly waiters = new Map<GroupOpId, GroupOpId[]>()
  private snapshot: GroupState | undefined

  private constructor (id: GroupId) {
    this.id = id
  }

  /** A log starting from a group's `create` op; throws ProtocolError ERR_MALFORMED for any other op. */
  static create (genesisOp: GroupOp): GroupLog {
    if (genesisOp.body.type !== 'create') throw new ProtocolError('ERR_MALFORMED', 'a group log starts with a create op')
    const log = new GroupLog(genesisOp.group)
    log.add(genesisOp)
    return log
  }

  /** The resolved state (a snapshot: later adds do not change it). */
  get state (): GroupState {
    if (this.snapshot === undefined) {
      const s = this.s!
      this.snapshot = {
        id: this.id,
        kind: s.kind,
        creator: s.creator,
        settings: s.settings,
        members: new Map(s.members),
        invited: new Set(s.invited),
        requests: new Set(s.requests),
        banned: new Set(s.banned),
        muted: new Map(s.muted),
        mutedAll: s.mutedAll,
        dismissed: s.dismissed,
        epoch: s.epoch,
        heads: [...this.heads].sort(),
        version: s.version
      }
    }
    return this.snapshot
  }

  /** Number of known ops (applied, rejected and pending). */
  get size (): number {
    return this.entries.size
  }

  /** True when the op is known. */
  has (id: GroupOpId): boolean {
    return this.entries.has(id)
  }

  /** A known op. */
  get (id: GroupOpId): GroupOp | undefined {
    return this.entries.get(id)?.op
  }

  /** A known op's status. */
  status (id: GroupOpId): GroupOpStatus | undefined {
    return this.entries.get(id)?.status
  }

  /** Why a known op was rejected. */
  rejection (id: GroupOpId): GroupRejection | undefined {
    const e = this.entries.get(id)
    return e?.code === undefined ? undefined : { code: e.code, reason: e.reason ?? '' }
  }

  /**
   * Every known op: applied and rejected ones in the linear order, then pending ones. Replaying
   * them into a fresh log (`GroupLog.create(ops[0])`, then `add` each) gives the same state.
   */
  ops (): GroupOp[] {
    const out = this.order.map((id) => this.entries.get(id)!.op)
    if (this.pendingCount > 0) for (const e of this.entries.values()) if (e.status === 'pending') out.push(e.op)
    return out
  }

  /** Parents that pending ops name and that are unknown: what to fetch. */
  missing (): GroupOpId[] {
    return [...this.waiters.keys()].sort()
  }

  /**
   * Adds a decoded op. Returns its status and the ops whose status it changed, in linear order.
   * Throws ProtocolError: ERR_MALFORMED for an op of another group, ERR_TOO_LARGE beyond
   * MAX_GROUP_OPS ops.
   */
  add (op: GroupOp): GroupAddResult {
    if (op.group !== this.id) throw new ProtocolError('ERR_MALFORMED', 'op of another group')
    if (this.entries.has(op.id)) return { status: 'duplicate', changed: [] }
    if (this.entries.size >= MAX_GROUP_OPS) throw new ProtocolError('ERR_TOO_LARGE', `a group log holds at most ${MAX_GROUP_OPS} ops`)
    const entry: Entry = { op, status: 'pending', children: [], blocked: 0, index: -1 }
    this.entries.set(op.id, entry)
    // children may have arrived first
    const early = this.waiters.get(op.id)
    if (early !== undefined) {
      entry.children.push(...early)
      this.waiters.delete(op.id)
    }
    for (const p of op.parents) {
      const parent = this.entries.get(p)
      if (parent === undefined) {
        const w = this.waiters.get(p)
        if (w === undefined) this.waiters.set(p, [op.id])
        else w.push(op.id)
        entry.blocked++
      } else {
        parent.children.push(op.id)
        if (parent.status === 'pending') entry.blocked++
      }
    }
    if (entry.blocked > 0) {
      this.pendingCount++
      return { status: 'pending', changed: [] }
    }
    // op and the pending descendants it releases
    const released = this.release(op.id)
    this.snapshot = undefined
    const changed = this.reorder(op, released)
    const e = this.entries.get(op.id)!
    const result: GroupAddResult = { status: e.status, changed }
    if (e.code !== undefined) { result.code = e.code; result.reason = e.reason ?? '' }
    return result
  }

  /**
   * Whether `author` may append `body` at `at` on the current heads; null when allowed.
   */
  check (author: UserId, body: GroupOpBody, at: number): GroupRejection | null {
    const s = this.s!
    for (const h of this.heads) {
      if (at + MAX_CLOCK_SKEW_MS < this.entries.get(h)!.op.at) return reject('ERR_BAD_REQUEST', 'op dated before its parents')
    }
    return rule(s, author, body)
  }

  /** Whether `user` may send a message now; null when allowed. */
  canSend (user: UserId, now: number): SendRefusal | null {
    const s = this.s!
    if (s.dismissed) return { code: 'ERR_GROUP_DISMISSED', reason: 'the group was dismissed' }
    if (s.banned.has(user)) return { code: 'ERR_BANNED', reason: 'banned from the group' }
    if (s.kind === 'group' && !s.members.has(user)) return { code: 'ERR_NOT_MEMBER', reason: 'not a member of the group' }
    if ((s.muted.get(user) ?? 0) > now) return { code: 'ERR_MUTED', reason: 'muted' }
    if (s.mutedAll && rankOf(s, user) < 2) return { code: 'ERR_MUTED', reason: 'only admins may send while the group is muted' }
    return null
  }

  /** True when `user` is a member (rooms: has joined or was added). */
  isMember (user: UserId): boolean {
    return this.s!.members.has(user)
  }

  /** Member user ids, ascending. */
  memberUsers (): UserId[] {
    return [...this.s!.members.keys()].sort()
  }

  /** A member's role; undefined for non-members. */
  role (user: UserId): GroupRole | undefined {
    return this.s!.members.get(user)?.role
  }

  /** Marks `id` and every pending descendant it unblocks as not pending; returns them. */
  private release (id: GroupOpId): GroupOp[] {
    const out: GroupOp[] = []
    const stack = [id]
    while (stack.length > 0) {
      const e = this.entries.get(stack.pop()!)!
      if (e.op.id !== id) this.pendingCount--
      out.push(e.op)
      for (const c of e.children) {
        const child = this.entries.get(c)!
        // each released parent unblocks a child once; the last one releases it
        if (child.status === 'pending' && child.blocked > 0 && --child.blocked === 0) stack.push(c)
      }
    }
    return out
  }

  /**
   * Places `op` (all parents done) and the ops it released into the order. The order is unchanged
   * up to the op's last parent (before it, `op` is not ready and the released ops depend on it),
   * so only what follows is linearised again, from the state saved nearest before that point.
   * An op on the current heads thus costs one step; an op naming old parents replays the ops
   * after them. Returns the ops whose status changed, in linear order.
   */
  private reorder (op: GroupOp, released: GroupOp[]): GroupOp[] {
    let from = 0
    for (const p of op.parents) from = Math.max(from, this.entries.get(p)!.index + 1)
    const rest = this.order.slice(from).map((id) => this.entries.get(id)!)
    const before = new Map<GroupOpId, GroupOpStatus>(rest.map((e) => [e.op.id, e.status]))
    if (rest.length > 0) this.rewind(from)
    const done = this.linearise([...rest.map((e) => e.op), ...released])
    return done.filter((o) => this.entries.get(o.id)!.status !== (before.get(o.id) ?? 'pending'))
  }

  /** Truncates the order to its first `length` ops, restoring the state after them. */
  private rewind (length: number): void {
    while (this.checkpoints.length > 0 && this.checkpoints.at(-1)!.length > length) this.checkpoints.pop()
    const cp = this.checkpoints.at(-1) ?? { length: 0, s: undefined, heads: new Set<GroupOpId>() }
    const replay = this.order.slice(cp.length, length)
    this.order.length = cp.length
    this.s = cloneMut(cp.s)
    this.heads = new Set(cp.heads)
    for (const id of replay) this.apply(this.entries.get(id)!.op)
  }

  /**
   * Kahn's algorithm over `ops` (whose parents outside `ops` are all done), continuing from the
   * current state; returns them in the order applied.
   */
  private linearise (ops: GroupOp[]): GroupOp[] {
    const inSet = new Set<GroupOpId>(ops.map((o) => o.id))
    const indegree = new Map<GroupOpId, number>()
    const ready: GroupOp[] = []
    for (const op of ops) {
      let n = 0
      for (const p of op.parents) if (inSet.has(p)) n++
      indegree.set(op.id, n)
      if (n === 0) ready.push(op)
    }
    const done: GroupOp[] = []
    while (ready.length > 0) {
      let best = 0
      let bestRank = rankOf(this.s, ready[0]!.author.user)
      for (let i = 1; i < ready.length; i++) {
        const r = rankOf(this.s, ready[i]!.author.user)
        if (r > bestRank || (r === bestRank && ready[i]!.id < ready[best]!.id)) { best = i; bestRank = r }
      }
      const op = ready[best]!
      ready[best] = ready[ready.length - 1]!
      ready.pop()
      this.apply(op)
      done.push(op)
      const e = this.entries.get(op.id)!
      for (const c of e.children) {
        const n = indegree.get(c)
        if (n === undefined) continue
        indegree.set(c, n - 1)
        if (n === 1) ready.push(this.entries.get(c)!.op)
      }
    }
    return done
  }

  private apply (op: GroupOp): void {
    const length = this.order.length
    if (length > 0 && length % CHECKPOINT_EVERY === 0 && (this.checkpoints.at(-1)?.length ?? 0) < length) {
      this.checkpoints.push({ length, s: cloneMut(this.s), heads: new Set(this.heads) })
    }
    const e = this.entries.get(op.id)!
    e.index = length
    delete e.code
    delete e.reason
    let why: GroupRejection | null = null
    if (this.s === undefined) {
      if (op.body.type === 'create') this.s = initial(op as GroupOp & { body: { type: 'create' } })
      else why = reject('ERR_BAD_REQUEST', 'no create op before this one')
    } else {
      for (const p of op.parents) {
        if (op.at + MAX_CLOCK_SKEW_MS < this.entries.get(p)!.op.at) { why = reject('ERR_BAD_REQUEST', 'op dated before its parents'); break }
      }
      why ??= rule(this.s, op.author.user, op.body)
      if (why === null) effect(this.s, op.author.user, op.body, op.at)
    }
    if (why === null) {
      e.status = 'applied'
    } else {
      e.status = 'rejected'
      e.code = why.code
      e.reason = why.reason
    }
    this.order.push(op.id)
    for (const p of op.parents) this.heads.delete(p)
    this.heads.add(op.id)
  }
}
