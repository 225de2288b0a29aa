/**
 * Signed DHT records: the contract between the protocol layer and the node's DHT validators and
 * selectors.
 *
 * Keys are `/talaria/<kind>/<id>`. Values are MessagePack maps (see docs/PROTOCOL.md, "Records").
 * Every record is signed over canonical bytes, versioned by `seq`, and expires. Who may sign:
 *
 * | kind      | id         | signer                                                           |
 * | --------- | ---------- | ---------------------------------------------------------------- |
 * | devices   | UserId     | the user's root key (no certificate)                             |
 * | profile   | UserId     | the user's root key (no certificate)                             |
 * | location  | DeviceId   | that device's key (or the root key) with a certificate for the device |
 * | prekeys   | DeviceId   | that device's key (or the root key) with a certificate for the device |
 *
 * Location records are per device (one entry each), so devices of one user never race to merge
 * a shared record, and a device's location is withdrawn by its own newer, empty record.
 * | group     | GroupId    | the genesis creator (root key, or a certified device of the creator), or whoever `authorizeGroup` accepts |
 *
 * Validation order, cheapest first: size → structure → key matches (kind, id) → time window →
 * signer authorised for the id (hashes only) → certificate signature → record signature.
 */
import { equalBytes, toHex, utf8Decode, utf8Encode } from './bytes.js'
import { canonicalEncode, decodeValue, encodeValue, expectArray, expectBytes, expectEnum, expectObject, expectString, expectUint, expectVersion, type WireObject } from './codec.js'
import { defaultCrypto } from './crypto/index.js'
import type { CryptoProvider } from './crypto/provider.js'
import { ProtocolError } from './errors.js'
import { verifyPreKeyBundle, type PreKeyBundle } from './e2e/x3dh.js'
import { certificateFromWire, certificateToWire, verifyDeviceCertificate, type DeviceCertificate, type DeviceList, deviceListFromWire, deviceListToWire } from './identity.js'
import { groupIdFromGenesis, parseDeviceId, parseGroupId, parseUserId, userIdFromKey, type DeviceId, type UserId } from './ids.js'
import {
  MAX_ADDR_LENGTH, MAX_ADDRS_PER_LOCATION, MAX_AVATAR_BYTES, MAX_CLOCK_SKEW_MS, MAX_DISPLAY_NAME_LENGTH, MAX_GROUP_GENESIS_BYTES,
  MAX_LOCATION_ENTRIES, MAX_ONE_TIME_PREKEYS, MAX_PEER_ID_LENGTH, MAX_RECORD_BYTES, MAX_RECORD_ID_LENGTH, MAX_RECORD_LIFETIME_MS,
  MAX_RECORD_PAYLOAD_BYTES, MAX_STATUS_LENGTH
} from './limits.js'

/** The kinds of DHT records. */
export type RecordKind = 'location' | 'devices' | 'prekeys' | 'profile' | 'group'
/** Every record kind, in a fixed order. */
export const RECORD_KINDS: readonly RecordKind[] = ['location', 'devices', 'prekeys', 'profile', 'group']
/** The DHT key namespace: keys are '/talaria/<kind>/<id>'. */
export const RECORD_NAMESPACE = 'talaria'
/** Version of the record format (the `v` field). */
export const RECORD_FORMAT_VERSION = 1

/** What the caller of signRecord provides. */
export interface RecordInit {
  kind: RecordKind
  id: string
  /** Version of this record; a higher seq replaces a lower one. */
  seq: number
  /** Expiry, ms since the epoch. */
  expiresAt: number
  /** The kind-specific payload (see the encode*Payload helpers). */
  payload: Uint8Array
}

/** A decoded record. */
export interface SignedRecord extends RecordInit {
  /** Signing time, ms since the epoch; breaks seq ties. */
  issuedAt: number
  /** The Ed25519 public key that signed: a root key, or a device key when `cert` is present. */
  signer: Uint8Array
  /** The certificate linking a device signer to its user. */
  cert?: DeviceCertificate
  sig: Uint8Array
}

/** Options of validateRecord and selectRecord. */
export interface ValidateRecordOptions {
  crypto?: CryptoProvider
  /** Current time (ms since the epoch); defaults to Date.now(). */
  now?: number
  /**
   * Decides who may sign a group record, replacing the default rule (the genesis creator). The
   * groups layer passes its membership rules here; the record's signature and certificate are
   * already checked when it is called, and `ownerUserId` is the user the signer speaks for.
   */
  authorizeGroup?: (record: SignedRecord, payload: GroupRecordPayload, ownerUserId: UserId) => boolean
}

const PREFIX = `/${RECORD_NAMESPACE}/`

/** The DHT key of a record. */
export function recordKey (kind: RecordKind, id: string): Uint8Array {
  if (!RECORD_KINDS.includes(kind)) throw new ProtocolError('ERR_MALFORMED', 'unknown record kind')
  checkRecordId(id)
  return utf8Encode(PREFIX + kind + '/' + id)
}

function checkRecordId (id: string): void {
  if (id.length === 0 || id.length > MAX_RECORD_ID_LENGTH || !/^[a-z0-9]+$/.test(id)) {
    throw new ProtocolError('ERR_MALFORMED', 'record id must be 1-64 characters of [a-z0-9]')
  }
}

/** Splits a DHT key into kind and id; throws ProtocolError('ERR_MALFORMED'). */
export function parseRecordKey (key: Uint8Array): { kind: RecordKind, id: string } {
  if (!(key instanceof Uint8Array) || key.length > PREFIX.length + 10 + MAX_RECORD_ID_LENGTH) {
    throw new ProtocolError('ERR_MALFORMED', 'record key: not bytes or too long')
  }
  const text = utf8Decode(key)
  if (!text.startsWith(PREFIX)) throw new ProtocolError('ERR_MALFORMED', 'record key: wrong namespace')
  const rest = text.slice(PREFIX.length)
  const slash = rest.indexOf('/')
  if (slash < 0) throw new ProtocolError('ERR_MALFORMED', 'record key: missing id')
  const kind = expectEnum(rest.slice(0, slash), 'record key kind', RECORD_KINDS)
  const id = rest.slice(slash + 1)
  checkRecordId(id)
  return { kind, id }
}

/** The canonical bytes a record signature covers. */
export function recordSigningBytes (r: Omit<SignedRecord, 'sig' | 'cert'>): Uint8Array {
  return canonicalEncode(['talaria/record/v1', r.kind, r.id, r.seq, r.issuedAt, r.expiresAt, r.payload, r.signer])
}

/**
 * Signs a record and returns its encoded bytes (the DHT value). Sign with the user's root key
 * (`cert` absent) or with a device key and the device's certificate.
 */
export function signRecord (
  init: RecordInit,
  signer: { seed: Uint8Array, publicKey: Uint8Array, cert?: DeviceCertificate },
  opts: { crypto?: CryptoProvider, now?: number } = {}
): Uint8Array {
  const crypto = opts.crypto ?? defaultCrypto
  const body = {
    kind: init.kind,
    id: init.id,
    seq: init.seq,
    issuedAt: opts.now ?? Date.now(),
    expiresAt: init.expiresAt,
    payload: init.payload,
    signer: signer.publicKey
  }
  const sig = crypto.ed25519Sign(signer.seed, recordSigningBytes(body))
  const wire: WireObject = { v: RECORD_FORMAT_VERSION, ...body, sig }
  if (signer.cert !== undefined) wire.cert = certificateToWire(signer.cert)
  const bytes = encodeValue(wire)
  if (bytes.length > MAX_RECORD_BYTES) throw new ProtocolError('ERR_TOO_LARGE', 'record exceeds MAX_RECORD_BYTES')
  return bytes
}

/** Decodes a record value: size and structure only, no signature or authorisation check. */
export function decodeRecord (value: Uint8Array): SignedRecord {
  const o = expectObject(decodeValue(value, MAX_RECORD_BYTES), 'record')
  expectVersion(o, 'record', RECORD_FORMAT_VERSION)
  const id = expectString(o.id, 'record.id', MAX_RECORD_ID_LENGTH, 1)
  checkRecordId(id)
  const r: SignedRecord = {
    kind: expectEnum(o.kind, 'record.kind', RECORD_KINDS),
    id,
    seq: expectUint(o.seq, 'record.seq'),
    issuedAt: expectUint(o.issuedAt, 'record.issuedAt'),
    expiresAt: expectUint(o.expiresAt, 'record.expiresAt'),
    payload: expectBytes(o.payload, 'record.payload', 0, MAX_RECORD_PAYLOAD_BYTES),
    signer: expectBytes(o.signer, 'record.signer', 32, 32),
    sig: expectBytes(o.sig, 'record.sig', 64, 64)
  }
  if (o.cert !== undefined) r.cert = certificateFromWire(o.cert)
  return r
}

function notAuthorized (message: string): ProtocolError {
  return new ProtocolError('ERR_NOT_AUTHORIZED', message)
}

/**
 * Checks who signed against who may sign for (kind, id), using hashes only. Returns the user the
 * signer speaks for. Signatures are checked afterwards by the caller.
 */
function authorise (r: SignedRecord, crypto: CryptoProvider, opts: ValidateRecordOptions): UserId {
  const cert = r.cert
  let owner: UserId
  let byRoot: boolean
  if (cert === undefined) {
    owner = userIdFromKey(r.signer, crypto)
    byRoot = true
  } else {
    if (toHex(r.signer) === toHex(cert.signingKey)) byRoot = false
    else if (toHex(r.signer) === toHex(cert.rootKey)) byRoot = true
    else throw notAuthorized('signer is neither the certified device nor its root key')
    owner = cert.userId
  }
  switch (r.kind) {
    case 'devices':
    case 'profile':
      parseUserId(r.id)
      if (!byRoot || cert !== undefined) throw notAuthorized(`${r.kind} records are signed by the root key alone`)
      if (owner !== r.id) throw new ProtocolError('ERR_KEY_MISMATCH', 'signer is not the root key of this user')
      break
    case 'location':
    case 'prekeys':
      parseDeviceId(r.id)
      if (cert === undefined) throw notAuthorized(`${r.kind} records carry the device certificate`)
      if (cert.deviceId !== r.id) throw new ProtocolError('ERR_KEY_MISMATCH', 'certificate is for another device')
      break
    case 'group': {
      parseGroupId(r.id)
      const payload = decodeGroupRecordPayload(r.payload)
      if (groupIdFromGenesis(groupGenesisBytes(payload.genesis), crypto) !== r.id) {
        throw new ProtocolError('ERR_KEY_MISMATCH', 'genesis does not hash to this group id')
      }
      if (opts.authorizeGroup !== undefined) {
        if (!opts.authorizeGroup(r, payload, owner)) throw notAuthorized('group rule rejected the signer')
      } else if (userIdFromKey(payload.genesis.creatorKey, crypto) !== owner) {
        throw notAuthorized('only the group creator may sign the group record')
      }
      break
    }
  }
  return owner
}

/**
 * What the DHT validator calls. Checks size, structure, that the key matches (kind, id), the time
 * window (ERR_EXPIRED when now > expiresAt; expiresAt at most MAX_RECORD_LIFETIME_MS ahead;
 * issuedAt at most MAX_CLOCK_SKEW_MS ahead), that the signer may sign for the id, the
 * certificate, and the signature. Returns the record; throws ProtocolError only.
 */
export function validateRecord (key: Uint8Array, value: Uint8Array, opts: ValidateRecordOptions = {}): SignedRecord {
  const crypto = opts.crypto ?? defaultCrypto
  const now = opts.now ?? Date.now()
  const r = decodeRecord(value)
  const k = parseRecordKey(key)
  if (k.kind !== r.kind || k.id !== r.id) throw new ProtocolError('ERR_KEY_MISMATCH', 'record does not belong under this key')
  if (now > r.expiresAt) throw new ProtocolError('ERR_EXPIRED', 'record expired')
  if (r.expiresAt - now > MAX_RECORD_LIFETIME_MS) throw new ProtocolError('ERR_MALFORMED', 'record expiry too far in the future')
  if (r.issuedAt - now > MAX_CLOCK_SKEW_MS) throw new ProtocolError('ERR_MALFORMED', 'record issued in the future')
  if (r.issuedAt > r.expiresAt) throw new ProtocolError('ERR_MALFORMED', 'record expires before it was issued')
  authorise(r, crypto, opts)
  if (r.cert !== undefined) verifyDeviceCertificate(r.cert, crypto)
  if (!crypto.ed25519Verify(r.signer, recordSigningBytes(r), r.sig)) throw new ProtocolError('ERR_BAD_SIGNATURE', 'bad record signature')
  return r
}

/**
 * Orders two records of the same key: positive when `a` is newer than `b` (higher seq, then later
 * issuedAt), negative when older, 0 when neither.
 */
export function compareRecords (a: Pick<SignedRecord, 'seq' | 'issuedAt'>, b: Pick<SignedRecord, 'seq' | 'issuedAt'>): number {
  return a.seq !== b.seq ? a.seq - b.seq : a.issuedAt - b.issuedAt
}

/**
 * For a store that already holds `current`: throws ProtocolError('ERR_STALE') unless `incoming`
 * is strictly newer, so a replayed or older record never overwrites a newer one.
 */
export function assertNewerRecord (incoming: Pick<SignedRecord, 'seq' | 'issuedAt'>, current: Pick<SignedRecord, 'seq' | 'issuedAt'>): void {
  if (compareRecords(incoming, current) <= 0) throw new ProtocolError('ERR_STALE', 'a newer or equal record is already stored')
}

/**
 * What the DHT selector calls: the index of the best value — valid ones only, highest seq, then
 * latest issuedAt, then the earliest index. Invalid values never win; when none is valid, 0.
 */
export function selectRecord (key: Uint8Array, values: Uint8Array[], opts: ValidateRecordOptions = {}): number {
  let best = -1
  let bestSeq = -1
  let bestIssued = -1
  for (let i = 0; i < values.length; i++) {
    let r: SignedRecord
    try {
      r = validateRecord(key, values[i]!, opts)
    } catch {
      continue
    }
    if (best < 0 || compareRecords(r, { seq: bestSeq, issuedAt: bestIssued }) > 0) {
      best = i
      bestSeq = r.seq
      bestIssued = r.issuedAt
    }
  }
  return best < 0 ? 0 : best
}

// ---- payloads -------------------------------------------------------------------------------

/** Version of every record payload format. */
export const PAYLOAD_FORMAT_VERSION = 1

/**
 * Where one device can be reached. A location record (keyed by the device id) carries one entry
 * for its device, or none when the device has gone offline.
 */
export interface LocationEntry {
  device: DeviceId
  /** The libp2p peer id (string form) of the node the device is connected to. */
  node: string
  /** Multiaddrs of that node. */
  addrs: string[]
  /** When this entry stops being valid, ms since the epoch. */
  expires: number
}

/** Encodes a location payload. */
export function encodeLocationPayload (entries: LocationEntry[]): Uint8Array {
  return encodeValue({ v: PAYLOAD_FORMAT_VERSION, entries: entries.map((e) => ({ device: e.device, node: e.node, addrs: e.addrs, expires: e.expires })) })
}

/** Decodes and validates a location payload. */
export function decodeLocationPayload (bytes: Uint8Array): LocationEntry[] {
  const o = expectObject(decodeValue(bytes, MAX_RECORD_PAYLOAD_BYTES), 'location')
  expectVersion(o, 'location', PAYLOAD_FORMAT_VERSION)
  return expectArray(o.entries, 'location.entries', MAX_LOCATION_ENTRIES).map((item) => {
    const e = expectObject(item, 'location entry')
    return {
      device: parseDeviceId(e.device),
      node: expectString(e.node, 'location.node', MAX_PEER_ID_LENGTH, 1),
      addrs: expectArray(e.addrs, 'location.addrs', MAX_ADDRS_PER_LOCATION).map((a) => expectString(a, 'location.addr', MAX_ADDR_LENGTH, 1)),
      expires: expectUint(e.expires, 'location.expires')
    }
  })
}

/** Encodes a device list as a `devices` record payload. */
export function encodeDevicesPayload (list: DeviceList): Uint8Array {
  return encodeValue(deviceListToWire(list))
}

/** Decodes a `devices` record payload (structure only; verifyDeviceList checks it). */
export function decodeDevicesPayload (bytes: Uint8Array): DeviceList {
  return deviceListFromWire(decodeValue(bytes, MAX_RECORD_PAYLOAD_BYTES))
}

/** A one-time prekey. */
export interface OneTimePrekey { id: number, key: Uint8Array }

/**
 * A device's published X3DH prekeys. The signed prekey's signature is the E2E layer's
 * (`generateSignedPreKey` in protocol/e2e/x3dh.ts, checked by `verifyPreKeyBundle`): it binds the
 * prekey to the device's X25519 identity key under the device's Ed25519 key.
 */
export interface PrekeyBundle {
  /** The device's X25519 identity key (as in its certificate). */
  identityKey: Uint8Array
  signedPrekey: {
    id: number
    key: Uint8Array
    sig: Uint8Array
  }
  /** One-time prekeys an initiator may pick from; each should be used once. */
  oneTimePrekeys: OneTimePrekey[]
}

/**
 * The E2E layer's view of a published bundle, for `x3dhInitiate`: the device signing key comes
 * from the record's certificate, and at most one one-time prekey is picked (index `oneTimeIndex`,
 * none when out of range).
 */
export function toX3dhBundle (payload: PrekeyBundle, signingKey: Uint8Array, oneTimeIndex = 0): PreKeyBundle {
  const bundle: PreKeyBundle = {
    signingKey,
    identityKey: payload.identityKey,
    signedPreKeyId: payload.signedPrekey.id,
    signedPreKey: payload.signedPrekey.key,
    signedPreKeySignature: payload.signedPrekey.sig
  }
  const otp = payload.oneTimePrekeys[oneTimeIndex]
  if (otp !== undefined) bundle.oneTimePreKey = { id: otp.id, publicKey: otp.key }
  return bundle
}

/**
 * The X3DH bundle of a validated `prekeys` record, fully checked: the payload's structure, its
 * identity key against the certificate's exchange key (ERR_KEY_MISMATCH), and the signed prekey
 * signature under the certified device key (ERR_BAD_SIGNATURE). Call validateRecord first.
 */
export function prekeyBundleFromRecord (r: SignedRecord, oneTimeIndex = 0, crypto: CryptoProvider = defaultCrypto): PreKeyBundle {
  if (r.kind !== 'prekeys' || r.cert === undefined) throw new ProtocolError('ERR_MALFORMED', 'not a certified prekeys record')
  const payload = decodePrekeyPayload(r.payload)
  if (!equalBytes(payload.identityKey, r.cert.exchangeKey)) throw new ProtocolError('ERR_KEY_MISMATCH', 'prekey bundle identity key is not the certified exchange key')
  const bundle = toX3dhBundle(payload, r.cert.signingKey, oneTimeIndex)
  verifyPreKeyBundle(bundle, crypto)
  return bundle
}

const MAX_PREKEY_ID = 0xffffffff

/** Encodes a prekey bundle payload. */
export function encodePrekeyPayload (b: PrekeyBundle): Uint8Array {
  return encodeValue({
    v: PAYLOAD_FORMAT_VERSION,
    identityKey: b.identityKey,
    signedPrekey: { id: b.signedPrekey.id, key: b.signedPrekey.key, sig: b.signedPrekey.sig },
    oneTimePrekeys: b.oneTimePrekeys.map((p) => ({ id: p.id, key: p.key }))
  })
}

/** Decodes and validates a prekey bundle payload (structure; see toX3dhBundle for the signature). */
export function decodePrekeyPayload (bytes: Uint8Array): PrekeyBundle {
  const o = expectObject(decodeValue(bytes, MAX_RECORD_PAYLOAD_BYTES), 'prekeys')
  expectVersion(o, 'prekeys', PAYLOAD_FORMAT_VERSION)
  const sp = expectObject(o.signedPrekey, 'prekeys.signedPrekey')
  return {
    identityKey: expectBytes(o.identityKey, 'prekeys.identityKey', 32, 32),
    signedPrekey: {
      id: expectUint(sp.id, 'signedPrekey.id', MAX_PREKEY_ID),
      key: expectBytes(sp.key, 'signedPrekey.key', 32, 32),
      sig: expectBytes(sp.sig, 'signedPrekey.sig', 64, 64)
    },
    oneTimePrekeys: expectArray(o.oneTimePrekeys, 'prekeys.oneTimePrekeys', MAX_ONE_TIME_PREKEYS).map((item) => {
      const p = expectObject(item, 'one-time prekey')
      return { id: expectUint(p.id, 'oneTimePrekey.id', MAX_PREKEY_ID), key: expectBytes(p.key, 'oneTimePrekey.key', 32, 32) }
    })
  }
}

/** A user's public profile. */
export interface Profile {
  displayName: string
  status?: string
  /** An avatar: a small image or a content reference, opaque here. */
  avatar?: Uint8Array
}

/** Encodes a profile payload. */
export function encodeProfilePayload (p: Profile): Uint8Array {
  const wire: WireObject = { v: PAYLOAD_FORMAT_VERSION, displayName: p.displayName }
  if (p.status !== undefined) wire.status = p.status
  if (p.avatar !== undefined) wire.avatar = p.avatar
  return encodeValue(wire)
}

/** Decodes and validates a profile payload. */
export function decodeProfilePayload (bytes: Uint8Array): Profile {
  const o = expectObject(decodeValue(bytes, MAX_RECORD_PAYLOAD_BYTES), 'profile')
  expectVersion(o, 'profile', PAYLOAD_FORMAT_VERSION)
  const p: Profile = { displayName: expectString(o.displayName, 'profile.displayName', MAX_DISPLAY_NAME_LENGTH) }
  if (o.status !== undefined) p.status = expectString(o.status, 'profile.status', MAX_STATUS_LENGTH)
  if (o.avatar !== undefined) p.avatar = expectBytes(o.avatar, 'profile.avatar', 0, MAX_AVATAR_BYTES)
  return p
}

/**
 * The genesis of a group: the group id is the hash of its canonical bytes, so the id commits to
 * the creator. `settings` is opaque here; the groups layer defines it.
 */
export interface GroupGenesis {
  /** The creator's root Ed25519 public key. */
  creatorKey: Uint8Array
  createdAt: number
  /** 16 random bytes, so one creator can make many groups. */
  nonce: Uint8Array
  settings: Uint8Array
}

/** The canonical bytes of a genesis; `groupIdFromGenesis(groupGenesisBytes(g))` is the group id. */
export function groupGenesisBytes (g: GroupGenesis): Uint8Array {
  return canonicalEncode(['talaria/group-genesis/v1', g.creatorKey, g.createdAt, g.nonce, g.settings])
}

/** A new genesis for a group created by the given user root key. */
export function createGroupGenesis (creatorKey: Uint8Array, settings: Uint8Array = new Uint8Array(0), opts: { crypto?: CryptoProvider, now?: number } = {}): GroupGenesis {
  return { creatorKey, createdAt: opts.now ?? Date.now(), nonce: (opts.crypto ?? defaultCrypto).randomBytes(16), settings }
}

/** The payload of a `group` record: the genesis (proving the id) and the group's current head. */
export interface GroupRecordPayload {
  genesis: GroupGenesis
  /** The group's current state head (opaque here: the groups layer defines it). */
  head: Uint8Array
}

/** Encodes a group record payload. */
export function encodeGroupRecordPayload (p: GroupRecordPayload): Uint8Array {
  const g = p.genesis
  return encodeValue({ v: PAYLOAD_FORMAT_VERSION, genesis: { creatorKey: g.creatorKey, createdAt: g.createdAt, nonce: g.nonce, settings: g.settings }, head: p.head })
}

/** Decodes and validates a group record payload. */
export function decodeGroupRecordPayload (bytes: Uint8Array): GroupRecordPayload {
  const o = expectObject(decodeValue(bytes, MAX_RECORD_PAYLOAD_BYTES), 'group')
  expectVersion(o, 'group', PAYLOAD_FORMAT_VERSION)
  const g = expectObject(o.genesis, 'group.genesis')
  return {
    genesis: {
      creatorKey: expectBytes(g.creatorKey, 'genesis.creatorKey', 32, 32),
      createdAt: expectUint(g.createdAt, 'genesis.createdAt'),
      nonce: expectBytes(g.nonce, 'genesis.nonce', 16, 16),
      settings: expectBytes(g.settings, 'genesis.settings', 0, MAX_GROUP_GENESIS_BYTES)
    },
    head: expectBytes(o.head, 'group.head', 0, MAX_RECORD_PAYLOAD_BYTES)
  }
}
