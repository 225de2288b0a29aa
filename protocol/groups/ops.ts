/**
 * Group operations on the wire: the genesis settings codec, op ids, signing and decoding.
 *
 * An op is a MessagePack map `{ v, group, parents, author, cert, at, body, sig }`. The signature
 * covers canonical bytes of every field but `sig` (domain 'talaria/group-op/v1'), and the op id
 * hashes the encoded op. Decoding re-encodes the decoded op and demands the same bytes: the wire
 * form is canonical too, so nobody but the author can make a second encoding (and so a second id)
 * of one signed op.
 */
import { concatBytes, equalBytes, toBase32, utf8Encode } from '../bytes.js'
import { canonicalEncode, decodeValue, encodeValue, expectArray, expectBytes, expectEnum, expectObject, expectString, expectUint, expectVersion, type CanonicalValue, type WireObject } from '../codec.js'
import { defaultCrypto } from '../crypto/index.js'
import type { CryptoProvider } from '../crypto/provider.js'
import { ProtocolError } from '../errors.js'
import { certificateFromWire, certificateToWire, verifyDeviceCertificate, type DeviceCertificate, type DeviceIdentity } from '../identity.js'
import { ID_HASH_BYTES, groupIdFromGenesis, parseDeviceId, parseGroupId, parseUserId, userIdFromKey, type GroupId, type UserId } from '../ids.js'
import { MAX_GROUP_GENESIS_BYTES } from '../limits.js'
import { createGroupGenesis, groupGenesisBytes, type GroupGenesis } from '../records.js'
import { MAX_FILTER_WORD_LENGTH, MAX_FILTER_WORDS } from './filter.js'
import { GROUP_OP_TYPES, type GenesisSettings, type GroupKind, type GroupOp, type GroupOpBody, type GroupOpId, type GroupSettings, type RateLimitSettings, type WordFilterSettings } from './types.js'

/** Largest encoded op. */
export const MAX_GROUP_OP_BYTES = 16 * 1024
/** Most parents one op names. */
export const MAX_OP_PARENTS = 16
/** Most users one op names (invite, approve, add, remove, mute, ban, unban). */
export const MAX_OP_USERS = 256
/** Longest group name, in UTF-16 code units. */
export const MAX_GROUP_NAME_LENGTH = 64
/** Largest group avatar. */
export const MAX_GROUP_AVATAR_BYTES = 4096
/** Most ops one log holds (applied, rejected and pending). */
export const MAX_GROUP_OPS = 100_000
/** Version of the op and genesis settings formats (the `v` field). */
export const GROUP_FORMAT_VERSION = 1
/** Domain tag of op signatures and op ids. */
export const GROUP_OP_DOMAIN = 'talaria/group-op/v1'

/** Rate limit bounds: messages per window and the window. */
export const MAX_RATE_LIMIT_MESSAGES = 10_000
/** Longest rate limit window: one hour. */
export const MAX_RATE_LIMIT_WINDOW_MS = 3_600_000
/** Largest history limit, in messages. */
export const MAX_HISTORY_LIMIT = 1_000_000
/** Longest retention: 365 days. */
export const MAX_RETENTION_MS = 365 * 24 * 3600 * 1000

const OP_TAG = utf8Encode(GROUP_OP_DOMAIN)
const JOIN_POLICIES = ['invite', 'approval', 'open'] as const
const KINDS = ['group', 'room'] as const
const FILTER_MODES = ['block', 'mask'] as const
const ROLES = ['admin', 'member'] as const

function malformed (message: string): ProtocolError {
  return new ProtocolError('ERR_MALFORMED', message)
}

// ---- settings -------------------------------------------------------------------------------

function settingsToWire (s: GroupSettings): WireObject {
  const w: WireObject = { name: s.name, joinPolicy: s.joinPolicy }
  if (s.avatar !== undefined) w.avatar = s.avatar
  if (s.filter !== undefined) w.filter = { words: s.filter.words, mode: s.filter.mode }
  if (s.rateLimit !== undefined) w.rateLimit = { messages: s.rateLimit.messages, windowMs: s.rateLimit.windowMs }
  if (s.historyLimit !== undefined) w.historyLimit = s.historyLimit
  if (s.retentionMs !== undefined) w.retentionMs = s.retentionMs
  return w
}

function filterFromWire (v: unknown): WordFilterSettings {
  const f = expectObject(v, 'settings.filter')
  const words = expectArray(f.words, 'settings.filter.words', MAX_FILTER_WORDS)
    .map((w) => expectString(w, 'settings.filter.word', MAX_FILTER_WORD_LENGTH, 1))
  return { words, mode: expectEnum(f.mode, 'settings.filter.mode', FILTER_MODES) }
}

function rateLimitFromWire (v: unknown): RateLimitSettings {
  const r = expectObject(v, 'settings.rateLimit')
  return {
    messages: expectUint(r.messages, 'settings.rateLimit.messages', MAX_RATE_LIMIT_MESSAGES, 1),
    windowMs: expectUint(r.windowMs, 'settings.rateLimit.windowMs', MAX_RATE_LIMIT_WINDOW_MS, 1)
  }
}

function settingsFromWire (v: unknown): GroupSettings {
  const o = expectObject(v, 'settings')
  const s: GroupSettings = {
    name: expectString(o.name, 'settings.name', MAX_GROUP_NAME_LENGTH),
    joinPolicy: expectEnum(o.joinPolicy, 'settings.joinPolicy', JOIN_POLICIES)
  }
  if (o.avatar !== undefined) s.avatar = expectBytes(o.avatar, 'settings.avatar', 0, MAX_GROUP_AVATAR_BYTES)
  if (o.filter !== undefined) s.filter = filterFromWire(o.filter)
  if (o.rateLimit !== undefined) s.rateLimit = rateLimitFromWire(o.rateLimit)
  if (o.historyLimit !== undefined) s.historyLimit = expectUint(o.historyLimit, 'settings.historyLimit', MAX_HISTORY_LIMIT, 1)
  if (o.retentionMs !== undefined) s.retentionMs = expectUint(o.retentionMs, 'settings.retentionMs', MAX_RETENTION_MS)
  return s
}

/** Validates settings (the same checks as decoding); throws ProtocolError. */
export function validateGroupSettings (s: GroupSettings): GroupSettings {
  return settingsFromWire(settingsToWire(s))
}

function settingsCanonical (s: GroupSettings): CanonicalValue[] {
  return [
    s.name, s.avatar ?? null, s.joinPolicy,
    s.filter === undefined ? null : [s.filter.words, s.filter.mode],
    s.rateLimit === undefined ? null : [s.rateLimit.messages, s.rateLimit.windowMs],
    s.historyLimit ?? null, s.retentionMs ?? null
  ]
}

/** Encodes what a genesis `settings` field holds: the group kind and the initial settings. */
export function encodeGenesisSettings (g: GenesisSettings): Uint8Array {
  expectEnum(g.kind, 'genesis.kind', KINDS)
  const bytes = encodeValue({ v: GROUP_FORMAT_VERSION, kind: g.kind, settings: settingsToWire(validateGroupSettings(g.settings)) })
  if (bytes.length > MAX_GROUP_GENESIS_BYTES) throw new ProtocolError('ERR_TOO_LARGE', `genesis settings exceed ${MAX_GROUP_GENESIS_BYTES} bytes`)
  return bytes
}

/** Decodes and validates genesis settings; throws ProtocolError only. */
export function decodeGenesisSettings (bytes: Uint8Array): GenesisSettings {
  const o = expectObject(decodeValue(bytes, MAX_GROUP_GENESIS_BYTES), 'genesis settings')
  expectVersion(o, 'genesis settings', GROUP_FORMAT_VERSION)
  return { kind: expectEnum(o.kind, 'genesis.kind', KINDS), settings: settingsFromWire(o.settings) }
}

// ---- ids ------------------------------------------------------------------------------------

/** The id of an encoded op: 'o' + base32(first 20 bytes of SHA-256("talaria/group-op/v1" || bytes)). */
export function groupOpId (bytes: Uint8Array, crypto: CryptoProvider = defaultCrypto): GroupOpId {
  return ('o' + toBase32(crypto.sha256(concatBytes(OP_TAG, bytes)).subarray(0, ID_HASH_BYTES))) as GroupOpId
}

const B32 = /^o[a-z2-7]{32}$/

/** Validates the format of an op id (prefix, length, base32; 160 bits fill 32 characters exactly). */
export function parseGroupOpId (v: unknown): GroupOpId {
  if (typeof v !== 'string' || !B32.test(v)) throw malformed('op id: bad format')
  return v as GroupOpId
}

// ---- bodies ---------------------------------------------------------------------------------

function usersFromWire (v: unknown, what: string): UserId[] {
  const list = expectArray(v, what, MAX_OP_USERS)
  if (list.length === 0) throw malformed(`${what}: empty`)
  const users = list.map((u) => parseUserId(u))
  if (new Set(users).size !== users.length) throw malformed(`${what}: duplicate user`)
  return users
}

function genesisToWire (g: GroupGenesis): WireObject {
  return { creatorKey: g.creatorKey, createdAt: g.createdAt, nonce: g.nonce, settings: g.settings }
}

function bodyToWire (b: GroupOpBody): WireObject {
  switch (b.type) {
    case 'create': return { type: b.type, genesis: genesisToWire(b.genesis) }
    case 'request': case 'join': case 'leave': case 'dismiss': return { type: b.type }
    case 'invite': case 'approve': case 'add': case 'remove': case 'ban': case 'unban': return { type: b.type, users: b.users }
    case 'role': return { type: b.type, user: b.user, role: b.role }
    case 'mute': return { type: b.type, users: b.users, until: b.until }
    case 'muteAll': return { type: b.type, on: b.on }
    case 'settings': return { type: b.type, settings: settingsToWire(b.settings) }
    case 'transfer': return { type: b.type, user: b.user }
  }
}

function bodyFromWire (v: unknown): GroupOpBody {
  const o = expectObject(v, 'op.body')
  const type = expectEnum(o.type, 'op.body.type', GROUP_OP_TYPES)
  switch (type) {
    case 'create': {
      const g = expectObject(o.genesis, 'op.genesis')
      return {
        type,
        genesis: {
          creatorKey: expectBytes(g.creatorKey, 'genesis.creatorKey', 32, 32),
          createdAt: expectUint(g.createdAt, 'genesis.createdAt'),
          nonce: expectBytes(g.nonce, 'genesis.nonce', 16, 16),
          settings: expectBytes(g.settings, 'genesis.settings', 0, MAX_GROUP_GENESIS_BYTES)
        }
      }
    }
    case 'request': case 'join': case 'leave': case 'dismiss': return { type }
    case 'invite': case 'approve': case 'add': case 'remove': case 'ban': case 'unban':
      return { type, users: usersFromWire(o.users, `op.${type}.users`) }
    case 'role': return { type, user: parseUserId(o.user), role: expectEnum(o.role, 'op.role.role', ROLES) }
    case 'mute': return { type, users: usersFromWire(o.users, 'op.mute.users'), until: expectUint(o.until, 'op.mute.until') }
    case 'muteAll':
      if (typeof o.on !== 'boolean') throw malformed('op.muteAll.on: expected a boolean')
      return { type, on: o.on }
    case 'settings': return { type, settings: settingsFromWire(o.settings) }
    case 'transfer': return { type, user: parseUserId(o.user) }
  }
}

function bodyCanonical (b: GroupOpBody): CanonicalValue[] {
  switch (b.type) {
    case 'create': return [b.type, [b.genesis.creatorKey, b.genesis.createdAt, b.genesis.nonce, b.genesis.settings]]
    case 'request': case 'join': case 'leave': case 'dismiss': return [b.type]
    case 'invite': case 'approve': case 'add': case 'remove': case 'ban': case 'unban': return [b.type, b.users]
    case 'role': return [b.type, b.user, b.role]
    case 'mute': return [b.type, b.users, b.until]
    case 'muteAll': return [b.type, b.on]
    case 'settings': return [b.type, settingsCanonical(b.settings)]
    case 'transfer': return [b.type, b.user]
  }
}

function certCanonical (c: DeviceCertificate): CanonicalValue[] {
  return [c.userId, c.rootKey, c.deviceId, c.signingKey, c.exchangeKey, c.issuedAt, c.sig]
}

/** The canonical bytes an op signature covers: every field but the signature. */
export function groupOpSigningBytes (op: Omit<GroupOp, 'id' | 'sig' | 'bytes'>): Uint8Array {
  return canonicalEncode([
    GROUP_OP_DOMAIN, op.group, op.parents, op.author.user, op.author.device, certCanonical(op.cert), op.at, bodyCanonical(op.body)
  ])
}

function opToWire (op: Omit<GroupOp, 'id' | 'bytes'>): Uint8Array {
  return encodeValue({
    v: GROUP_FORMAT_VERSION,
    group: op.group,
    parents: op.parents,
    author: { user: op.author.user, device: op.author.device },
    cert: certificateToWire(op.cert),
    at: op.at,
    body: bodyToWire(op.body),
    sig: op.sig
  })
}

// ---- sign and decode ------------------------------------------------------------------------

/** What signGroupOp needs to know about the author. */
export interface GroupOpSigner {
  user: UserId
  /** A device of `user` with its certificate set. */
  device: DeviceIdentity
}

/** What signGroupOp is asked to sign. */
export interface GroupOpInit {
  group: GroupId
  /** The heads the author knows; sorted and deduplicated here. */
  parents: GroupOpId[]
  body: GroupOpBody
  /** Defaults to Date.now(). */
  at?: number
}

/**
 * Signs an op with the author device's key and returns it decoded (with `bytes` and `id`).
 * Throws ProtocolError: ERR_MALFORMED without a certificate or with a certificate of another
 * user, or when the op would not decode; ERR_TOO_LARGE beyond MAX_GROUP_OP_BYTES.
 */
export function signGroupOp (init: GroupOpInit, signer: GroupOpSigner, crypto: CryptoProvider = defaultCrypto): GroupOp {
  const cert = signer.device.cert
  if (cert === undefined) throw malformed('signGroupOp: the device has no certificate')
  if (cert.userId !== signer.user || cert.deviceId !== signer.device.deviceId) throw malformed('signGroupOp: the certificate is for another user or device')
  const parents = [...new Set(init.parents)].sort()
  const unsigned = { group: init.group, parents, author: { user: signer.user, device: signer.device.deviceId }, cert, at: init.at ?? Date.now(), body: init.body }
  const sig = crypto.ed25519Sign(signer.device.signingSeed, groupOpSigningBytes(unsigned))
  const bytes = opToWire({ ...unsigned, sig })
  // decoding checks everything a receiver will, so a bad op fails here and not on every peer
  return decodeGroupOp(bytes, { crypto })
}

/** Options of decodeGroupOp. */
export interface DecodeGroupOpOptions {
  crypto?: CryptoProvider
}

/**
 * Decodes and fully verifies an op: size (ERR_TOO_LARGE), structure and canonical encoding
 * (ERR_MALFORMED), the certificate against the author (ERR_KEY_MISMATCH) and its root signature,
 * for `create` the genesis against the group id and the author (ERR_KEY_MISMATCH), and the op
 * signature (ERR_BAD_SIGNATURE). Throws ProtocolError only.
 */
export function decodeGroupOp (bytes: Uint8Array, opts: DecodeGroupOpOptions = {}): GroupOp {
  const crypto = opts.crypto ?? defaultCrypto
  const o = expectObject(decodeValue(bytes, MAX_GROUP_OP_BYTES), 'op')
  expectVersion(o, 'op', GROUP_FORMAT_VERSION)
  const group = parseGroupId(o.group)
  const parents = expectArray(o.parents, 'op.parents', MAX_OP_PARENTS).map((p) => parseGroupOpId(p))
  for (let i = 1; i < parents.length; i++) {
    if (!(parents[i - 1]! < parents[i]!)) throw malformed('op.parents: not ascending and unique')
  }
  const a = expectObject(o.author, 'op.author')
  const author = { user: parseUserId(a.user), device: parseDeviceId(a.device) }
  const cert = certificateFromWire(o.cert)
  const at = expectUint(o.at, 'op.at')
  const body = bodyFromWire(o.body)
  const sig = expectBytes(o.sig, 'op.sig', 64, 64)
  if ((body.type === 'create') !== (parents.length === 0)) throw malformed('op.parents: only create has no parents')
  const op = { group, parents, author, cert, at, body, sig }
  if (!equalBytes(opToWire(op), bytes)) throw malformed('op: not in canonical encoding')
  if (cert.userId !== author.user || cert.deviceId !== author.device) throw new ProtocolError('ERR_KEY_MISMATCH', 'op: certificate is not for the author')
  if (body.type === 'create') {
    if (groupIdFromGenesis(groupGenesisBytes(body.genesis), crypto) !== group) throw new ProtocolError('ERR_KEY_MISMATCH', 'op: genesis does not hash to the group id')
    if (userIdFromKey(body.genesis.creatorKey, crypto) !== author.user) throw new ProtocolError('ERR_KEY_MISMATCH', 'op: create not authored by the genesis creator')
    decodeGenesisSettings(body.genesis.settings)
  }
  verifyDeviceCertificate(cert, crypto)
  if (!crypto.ed25519Verify(cert.signingKey, groupOpSigningBytes(op), sig)) throw new ProtocolError('ERR_BAD_SIGNATURE', 'op: bad signature')
  return { id: groupOpId(bytes, crypto), ...op, bytes }
}

/** What createGroup is given. */
export interface CreateGroupInit {
  /** Defaults to 'group'. */
  kind?: GroupKind
  settings: GroupSettings
  /** Defaults to Date.now(). */
  now?: number
}

/**
 * Creates a group: a fresh genesis by the signer's user (the root key from the device certificate)
 * and the signed `create` op. The group id is the genesis hash.
 */
export function createGroup (signer: GroupOpSigner, init: CreateGroupInit, crypto: CryptoProvider = defaultCrypto): { id: GroupId, genesis: GroupGenesis, op: GroupOp } {
  const cert = signer.device.cert
  if (cert === undefined) throw malformed('createGroup: the device has no certificate')
  const now = init.now ?? Date.now()
  const settings = encodeGenesisSettings({ kind: init.kind ?? 'group', settings: init.settings })
  const genesis = createGroupGenesis(cert.rootKey, settings, { crypto, now })
  const id = groupIdFromGenesis(groupGenesisBytes(genesis), crypto)
  const op = signGroupOp({ group: id, parents: [], body: { type: 'create', genesis }, at: now }, signer, crypto)
  return { id, genesis, op }
}
