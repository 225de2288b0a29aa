/**
 * Types of groups and rooms, shared by the node (`node/groups/`) and the client SDK (`client/`).
 *
 * A group is a log of signed operations (a DAG: each op names the heads its author knew). Every
 * node and every client linearises the same set of ops the same way and replays it through the
 * role rules, so they all reach the same state without a coordinator. A room is a group whose
 * genesis says `kind: 'room'`: open to anyone not banned, not end-to-end encrypted, moderated.
 *
 * The codecs, the state machine and the role rules are in the sibling modules; this file is only
 * the vocabulary.
 */
import type { DeviceCertificate } from '../identity.js'
import type { DeviceId, GroupId, MessageId, UserId } from '../ids.js'
import type { GroupGenesis } from '../records.js'

declare const brand: unique symbol
/** An op id: 'o' + base32(first 20 bytes of SHA-256("talaria/group-op/v1" || encoded op)). */
export type GroupOpId = string & { readonly [brand]: 'GroupOpId' }

/** What a group is: a private E2E group, or a public, moderated room. Fixed at genesis. */
export type GroupKind = 'group' | 'room'
/** Roles, highest first. Non-members have no role. */
export type GroupRole = 'owner' | 'admin' | 'member'
/** How users become members: only when added or invited, by request and approval, or freely. */
export type JoinPolicy = 'invite' | 'approval' | 'open'

/** A room's word filter: matching messages are refused (`block`) or have the words masked (`mask`). */
export interface WordFilterSettings {
  words: string[]
  mode: 'block' | 'mask'
}

/** At most `messages` messages per member per `windowMs` (rooms). */
export interface RateLimitSettings {
  messages: number
  windowMs: number
}

/** The mutable settings of a group or room, replaced whole by a `settings` op. */
export interface GroupSettings {
  name: string
  /** A small image or a content reference; opaque. */
  avatar?: Uint8Array
  joinPolicy: JoinPolicy
  /** Rooms: the word filter nodes apply. */
  filter?: WordFilterSettings
  /** Rooms: per-member message rate limit nodes apply. */
  rateLimit?: RateLimitSettings
  /** Most messages a node keeps for this group (newest win). */
  historyLimit?: number
  /** How long a node keeps messages, in ms. */
  retentionMs?: number
}

/** What the genesis `settings` bytes hold: the kind (immutable) and the initial settings. */
export interface GenesisSettings {
  kind: GroupKind
  settings: GroupSettings
}

/** The body of an operation; `type` says what it does. */
export type GroupOpBody =
  /** The first op; its genesis hashes to the group id. Author: the creator (becomes owner). */
  | { type: 'create', genesis: GroupGenesis }
  /** Members may invite; an invited user may then `join` whatever the policy. */
  | { type: 'invite', users: UserId[] }
  /** A non-member asks to join (policy `approval`). */
  | { type: 'request' }
  /** Admin+: turns pending requests into memberships. */
  | { type: 'approve', users: UserId[] }
  /** A non-member joins: allowed when the policy is `open` or the user was invited, and not banned. */
  | { type: 'join' }
  /** Admin+ (any member when the policy is `open`) adds users as members. */
  | { type: 'add', users: UserId[] }
  /** Admin+ removes members of a rank no higher than its own; never the owner. */
  | { type: 'remove', users: UserId[] }
  /** A member leaves; the owner cannot (transfer or dismiss instead). */
  | { type: 'leave' }
  /** Owner only: makes a member an admin or an admin a member. */
  | { type: 'role', user: UserId, role: 'admin' | 'member' }
  /** Admin+ mutes members of lower rank until `until` (ms since the epoch); 0 unmutes. */
  | { type: 'mute', users: UserId[], until: number }
  /** Admin+: while on, only admins and the owner may send. */
  | { type: 'muteAll', on: boolean }
  /** Admin+ replaces the settings. */
  | { type: 'settings', settings: GroupSettings }
  /** Owner only: another member becomes owner, the old owner becomes admin. */
  | { type: 'transfer', user: UserId }
  /** Admin+: bans users (removing them if members); a banned user cannot join or send. */
  | { type: 'ban', users: UserId[] }
  /** Admin+: lifts bans. */
  | { type: 'unban', users: UserId[] }
  /** Owner only: ends the group; every later op is rejected. */
  | { type: 'dismiss' }

/** Every op type, as a runtime list. */
export const GROUP_OP_TYPES = [
  'create', 'invite', 'request', 'approve', 'join', 'add', 'remove', 'leave', 'role', 'mute', 'muteAll', 'settings', 'transfer', 'ban', 'unban', 'dismiss'
] as const
/** An op type. */
export type GroupOpType = typeof GROUP_OP_TYPES[number]

/** A decoded, signature-checked operation. */
export interface GroupOp {
  /** Derived from `bytes`; not on the wire. */
  id: GroupOpId
  group: GroupId
  /** The heads the author knew, ascending and unique; empty only for `create`. */
  parents: GroupOpId[]
  author: { user: UserId, device: DeviceId }
  /** The author device's certificate (binds the signing key to `author.user`). */
  cert: DeviceCertificate
  /** Author's clock, ms since the epoch. */
  at: number
  body: GroupOpBody
  /** Ed25519 signature by the author device over the op's canonical signing bytes. */
  sig: Uint8Array
  /** The encoded op, exactly as signed and sent. */
  bytes: Uint8Array
}

/** What the log did with an op. */
export type GroupOpStatus =
  /** Valid at its place in the order: part of the state. */
  | 'applied'
  /** Signed correctly but not allowed at its place in the order (role rules): no effect. */
  | 'rejected'
  /** Some parent is unknown yet: kept until the parents arrive. */
  | 'pending'
  /** Already known. */
  | 'duplicate'

/** Why an op was rejected; codes match the client error codes where a client sees them. */
export type GroupRejectCode = 'ERR_NOT_MEMBER' | 'ERR_FORBIDDEN' | 'ERR_BANNED' | 'ERR_GROUP_DISMISSED' | 'ERR_BAD_REQUEST'

/** A member's standing. */
export interface MemberInfo {
  role: GroupRole
  /** Muted until this time (ms since the epoch); 0 when not muted. */
  mutedUntil: number
  /** `at` of the op that made it a member. */
  since: number
}

/** The state a log resolves to. */
export interface GroupState {
  id: GroupId
  kind: GroupKind
  /** The creator's user id. */
  creator: UserId
  settings: GroupSettings
  members: ReadonlyMap<UserId, MemberInfo>
  invited: ReadonlySet<UserId>
  /** Users with a pending join request. */
  requests: ReadonlySet<UserId>
  banned: ReadonlySet<UserId>
  mutedAll: boolean
  dismissed: boolean
  /**
   * Bumped by every applied op that takes a member out (remove, leave, ban of a member, dismiss):
   * member devices rotate their sender keys when it changes.
   */
  epoch: number
  /**
   * Everyone muted by a `mute` op, members or not (anyone may send in a room): user → muted
   * until (ms since the epoch). Members' `mutedUntil` mirrors it. Added after the first contract;
   * optional so hand-built states stay valid.
   */
  muted?: ReadonlyMap<UserId, number>
  /** Ops with no known children, ascending: the parents of the next op. */
  heads: GroupOpId[]
  /** Applied ops so far. */
  version: number
}

/** The text of a group message, inside the sender-key ciphertext (nodes never see it). */
export interface GroupTextContent {
  type: 'text'
  /** Same as the envelope id. */
  id: MessageId
  text: string
  sentAt: number
  /** Per (sender device, group) counter from 1: receivers deliver each sender's messages in this order. */
  seq: number
}

/** A public room message: plaintext, signed by the sender device (rooms are not E2E). */
export interface RoomEnvelope {
  kind: 'room'
  id: MessageId
  room: GroupId
  from: { user: UserId, device: DeviceId }
  sentAt: number
  text: string
  /**
   * The sender device's certificate, so that any node can check the sender without a directory
   * lookup (room members need publish no keys). Not covered by `sig`: it verifies on its own.
   */
  cert: DeviceCertificate
  /** Ed25519 signature by the sender device over the canonical signing bytes. */
  sig: Uint8Array
}
