/**
 * User and device identities, device certificates and device lists.
 *
 * A user is an Ed25519 root key; its id is derived from the public key (ids.ts). A device has its
 * own Ed25519 signing key and X25519 key. The root key signs a **device certificate** binding the
 * device's keys to the user, so anything a device signs can be checked offline against the user id
 * with two signature checks and no lookup. The root key also signs the **device list**: a
 * versioned set of active devices and of revoked ones. A certificate alone cannot show that a
 * device was revoked; whoever holds the user's device list must check it too (device-list records
 * are how peers learn of revocations).
 */
import { equalBytes, toHex } from './bytes.js'
import { canonicalEncode, decodeValue, encodeValue, expectArray, expectBytes, expectEnum, expectObject, expectUint, expectVersion, type WireObject } from './codec.js'
import { defaultCrypto } from './crypto/index.js'
import type { CryptoProvider } from './crypto/provider.js'
import { ProtocolError } from './errors.js'
import { deviceIdFromKey, parseDeviceId, parseUserId, userIdFromKey, type DeviceId, type UserId } from './ids.js'
import { MAX_CERTIFICATE_BYTES, MAX_DEVICE_LIST_BYTES, MAX_DEVICES, MAX_IDENTITY_FILE_BYTES, MAX_REVOKED_DEVICES } from './limits.js'

/** Version of the certificate, device list and identity file formats. */
export const IDENTITY_FORMAT_VERSION = 1

/** A user's root identity. `rootSeed` is secret. */
export interface UserIdentity {
  userId: UserId
  /** 32-byte Ed25519 seed (secret). */
  rootSeed: Uint8Array
  /** 32-byte Ed25519 public key; the user id is derived from it. */
  rootPublicKey: Uint8Array
  /** Creation time, ms since the epoch. */
  createdAt: number
}

/** A device's identity. `signingSeed` and `exchangePrivateKey` are secret. */
export interface DeviceIdentity {
  deviceId: DeviceId
  /** 32-byte Ed25519 seed (secret). */
  signingSeed: Uint8Array
  /** 32-byte Ed25519 public key; the device id is derived from it. */
  signingPublicKey: Uint8Array
  /** 32-byte X25519 private scalar (secret): the device's X3DH identity key. */
  exchangePrivateKey: Uint8Array
  /** 32-byte X25519 public key. */
  exchangePublicKey: Uint8Array
  createdAt: number
  /** The root-signed certificate, once the user has certified this device. */
  cert?: DeviceCertificate
}

/** The root key's statement that a device belongs to the user. */
export interface DeviceCertificate {
  userId: UserId
  /** The user's root Ed25519 public key (hashes to userId). */
  rootKey: Uint8Array
  deviceId: DeviceId
  /** The device's Ed25519 public key (hashes to deviceId). */
  signingKey: Uint8Array
  /** The device's X25519 public key. */
  exchangeKey: Uint8Array
  issuedAt: number
  /** Ed25519 signature by rootKey over {@link certificateSigningBytes}. */
  sig: Uint8Array
}

/** An active device in a device list. */
export interface DeviceListEntry {
  deviceId: DeviceId
  signingKey: Uint8Array
  exchangeKey: Uint8Array
  addedAt: number
}

/** A revoked device in a device list. */
export interface RevokedDevice {
  deviceId: DeviceId
  revokedAt: number
}

/** The root-signed, versioned list of a user's devices. */
export interface DeviceList {
  userId: UserId
  rootKey: Uint8Array
  /** Increases by one with every change; the highest seq wins. */
  seq: number
  issuedAt: number
  devices: DeviceListEntry[]
  revoked: RevokedDevice[]
  sig: Uint8Array
}

interface Opts { crypto?: CryptoProvider, now?: number }

/** Creates a new user: a fresh root Ed25519 key and its user id. */
export function createUserIdentity (crypto: CryptoProvider = defaultCrypto, now = Date.now()): UserIdentity {
  const rootSeed = crypto.randomBytes(32)
  const rootPublicKey = crypto.ed25519PublicKey(rootSeed)
  return { userId: userIdFromKey(rootPublicKey, crypto), rootSeed, rootPublicKey, createdAt: now }
}

/** Creates a new device: a fresh Ed25519 signing key, a fresh X25519 key and the device id. */
export function createDevice (crypto: CryptoProvider = defaultCrypto, now = Date.now()): DeviceIdentity {
  const signingSeed = crypto.randomBytes(32)
  const signingPublicKey = crypto.ed25519PublicKey(signingSeed)
  const exchangePrivateKey = crypto.randomBytes(32)
  const exchangePublicKey = crypto.x25519PublicKey(exchangePrivateKey)
  return { deviceId: deviceIdFromKey(signingPublicKey, crypto), signingSeed, signingPublicKey, exchangePrivateKey, exchangePublicKey, createdAt: now }
}

// ---- device certificates --------------------------------------------------------------------

/** The canonical bytes a device certificate signature covers. */
export function certificateSigningBytes (c: Omit<DeviceCertificate, 'sig'>): Uint8Array {
  return canonicalEncode(['talaria/device-cert/v1', c.userId, c.rootKey, c.deviceId, c.signingKey, c.exchangeKey, c.issuedAt])
}

/** The user's root key certifies `device`; returns the certificate (the device should keep it). */
export function certifyDevice (user: UserIdentity, device: Pick<DeviceIdentity, 'deviceId' | 'signingPublicKey' | 'exchangePublicKey'>, opts: Opts = {}): DeviceCertificate {
  const crypto = opts.crypto ?? defaultCrypto
  const body = {
    userId: user.userId,
    rootKey: user.rootPublicKey,
    deviceId: device.deviceId,
    signingKey: device.signingPublicKey,
    exchangeKey: device.exchangePublicKey,
    issuedAt: opts.now ?? Date.now()
  }
  return { ...body, sig: crypto.ed25519Sign(user.rootSeed, certificateSigningBytes(body)) }
}

// Verified certificates, keyed by their exact signed bytes and signature: a device signs many
// records and messages with the same certificate, and re-verifying it each time doubles the cost.
const verifiedCerts = new Map<string, true>()
const VERIFIED_CERT_CACHE_SIZE = 1024

/**
 * Checks a certificate offline: the user id hashes from the root key, the device id hashes from
 * the signing key, and the root key's signature is valid. Throws ERR_KEY_MISMATCH or
 * ERR_BAD_SIGNATURE.
 */
export function verifyDeviceCertificate (cert: DeviceCertificate, crypto: CryptoProvider = defaultCrypto): void {
  if (userIdFromKey(cert.rootKey, crypto) !== cert.userId) throw new ProtocolError('ERR_KEY_MISMATCH', 'certificate: user id does not match the root key')
  if (deviceIdFromKey(cert.signingKey, crypto) !== cert.deviceId) throw new ProtocolError('ERR_KEY_MISMATCH', 'certificate: device id does not match the signing key')
  const signed = certificateSigningBytes(cert)
  const cacheKey = toHex(signed) + toHex(cert.sig)
  if (verifiedCerts.has(cacheKey)) return
  if (!crypto.ed25519Verify(cert.rootKey, signed, cert.sig)) throw new ProtocolError('ERR_BAD_SIGNATURE', 'certificate: bad root signature')
  if (verifiedCerts.size >= VERIFIED_CERT_CACHE_SIZE) {
    const oldest = verifiedCerts.keys().next().value
    if (oldest !== undefined) verifiedCerts.delete(oldest)
  }
  verifiedCerts.set(cacheKey, true)
}

/** Wire form (a MessagePack map) of a certificate. */
export function certificateToWire (c: DeviceCertificate): WireObject {
  return { v: IDENTITY_FORMAT_VERSION, userId: c.userId, rootKey: c.rootKey, deviceId: c.deviceId, signingKey: c.signingKey, exchangeKey: c.exchangeKey, issuedAt: c.issuedAt, sig: c.sig }
}

/** Structure check of a decoded certificate map (no signature check). */
export function certificateFromWire (v: unknown): DeviceCertificate {
  const o = expectObject(v, 'certificate')
  expectVersion(o, 'certificate', IDENTITY_FORMAT_VERSION)
  return {
    userId: parseUserId(o.userId),
    rootKey: expectBytes(o.rootKey, 'certificate.rootKey', 32, 32),
    deviceId: parseDeviceId(o.deviceId),
    signingKey: expectBytes(o.signingKey, 'certificate.signingKey', 32, 32),
    exchangeKey: expectBytes(o.exchangeKey, 'certificate.exchangeKey', 32, 32),
    issuedAt: expectUint(o.issuedAt, 'certificate.issuedAt'),
    sig: expectBytes(o.sig, 'certificate.sig', 64, 64)
  }
}

/** Encodes a certificate to bytes. */
export function encodeDeviceCertificate (c: DeviceCertificate): Uint8Array {
  return encodeValue(certificateToWire(c))
}

/** Decodes certificate bytes (size and structure; call verifyDeviceCertificate to check it). */
export function decodeDeviceCertificate (bytes: Uint8Array): DeviceCertificate {
  return certificateFromWire(decodeValue(bytes, MAX_CERTIFICATE_BYTES))
}

// ---- device lists ---------------------------------------------------------------------------

/** The canonical bytes a device list signature covers. */
export function deviceListSigningBytes (l: Omit<DeviceList, 'sig'>): Uint8Array {
  return canonicalEncode([
    'talaria/device-list/v1', l.userId, l.rootKey, l.seq, l.issuedAt,
    l.devices.map((d) => [d.deviceId, d.signingKey, d.exchangeKey, d.addedAt]),
    l.revoked.map((r) => [r.deviceId, r.revokedAt])
  ])
}

function signList (user: UserIdentity, body: Omit<DeviceList, 'sig'>, crypto: CryptoProvider): DeviceList {
  if (body.devices.length > MAX_DEVICES) throw new ProtocolError('ERR_TOO_LARGE', `more than ${MAX_DEVICES} devices`)
  // the oldest revocations fall off first; their certificates are long superseded
  const revoked = body.revoked.slice(-MAX_REVOKED_DEVICES)
  const full = { ...body, revoked }
  return { ...full, sig: crypto.ed25519Sign(user.rootSeed, deviceListSigningBytes(full)) }
}

function entryOf (cert: DeviceCertificate, now: number): DeviceListEntry {
  return { deviceId: cert.deviceId, signingKey: cert.signingKey, exchangeKey: cert.exchangeKey, addedAt: now }
}

/** A first device list (seq 1) holding the given certified devices. */
export function createDeviceList (user: UserIdentity, certs: DeviceCertificate[] = [], opts: Opts = {}): DeviceList {
  const now = opts.now ?? Date.now()
  const crypto = opts.crypto ?? defaultCrypto
  for (const c of certs) if (c.userId !== user.userId) throw new ProtocolError('ERR_KEY_MISMATCH', 'certificate of another user')
  return signList(user, { userId: user.userId, rootKey: user.rootPublicKey, seq: 1, issuedAt: now, devices: certs.map((c) => entryOf(c, now)), revoked: [] }, crypto)
}

function checkOwner (list: DeviceList, user: UserIdentity): void {
  if (list.userId !== user.userId) throw new ProtocolError('ERR_KEY_MISMATCH', 'device list of another user')
}

/** A new list (seq + 1) with the certified device added. A revoked device cannot come back. */
export function addDeviceToList (list: DeviceList, user: UserIdentity, cert: DeviceCertificate, opts: Opts = {}): DeviceList {
  checkOwner(list, user)
  if (cert.userId !== user.userId) throw new ProtocolError('ERR_KEY_MISMATCH', 'certificate of another user')
  if (list.revoked.some((r) => r.deviceId === cert.deviceId)) throw new ProtocolError('ERR_NOT_AUTHORIZED', 'device was revoked')
  const now = opts.now ?? Date.now()
  const devices = list.devices.filter((d) => d.deviceId !== cert.deviceId)
  devices.push(entryOf(cert, now))
  return signList(user, { userId: list.userId, rootKey: list.rootKey, seq: list.seq + 1, issuedAt: Math.max(now, list.issuedAt), devices, revoked: list.revoked }, opts.crypto ?? defaultCrypto)
}

/** A new list (seq + 1) with the device moved from the active devices to the revoked ones. */
export function revokeDeviceFromList (list: DeviceList, user: UserIdentity, deviceId: DeviceId, opts: Opts = {}): DeviceList {
  checkOwner(list, user)
  const now = opts.now ?? Date.now()
  const devices = list.devices.filter((d) => d.deviceId !== deviceId)
  const revoked = list.revoked.some((r) => r.deviceId === deviceId) ? list.revoked : [...list.revoked, { deviceId, revokedAt: now }]
  return signList(user, { userId: list.userId, rootKey: list.rootKey, seq: list.seq + 1, issuedAt: Math.max(now, list.issuedAt), devices, revoked }, opts.crypto ?? defaultCrypto)
}

/** True when the device is in the list's active devices (and so not revoked). */
export function isDeviceActive (list: DeviceList, deviceId: string): boolean {
  return list.devices.some((d) => d.deviceId === deviceId)
}

/**
 * Checks a device list offline: user id from the root key, every device id from its key, no
 * device both active and revoked, and the root signature. Throws ERR_KEY_MISMATCH,
 * ERR_MALFORMED or ERR_BAD_SIGNATURE.
 */
export function verifyDeviceList (list: DeviceList, crypto: CryptoProvider = defaultCrypto): void {
  if (userIdFromKey(list.rootKey, crypto) !== list.userId) throw new ProtocolError('ERR_KEY_MISMATCH', 'device list: user id does not match the root key')
  const seen = new Set<string>()
  for (const d of list.devices) {
    if (seen.has(d.deviceId)) throw new ProtocolError('ERR_MALFORMED', 'device list: duplicate device')
    seen.add(d.deviceId)
    if (deviceIdFromKey(d.signingKey, crypto) !== d.deviceId) throw new ProtocolError('ERR_KEY_MISMATCH', 'device list: device id does not match its key')
  }
  for (const r of list.revoked) {
    if (seen.has(r.deviceId)) throw new ProtocolError('ERR_MALFORMED', 'device list: device both active and revoked')
  }
  if (!crypto.ed25519Verify(list.rootKey, deviceListSigningBytes(list), list.sig)) throw new ProtocolError('ERR_BAD_SIGNATURE', 'device list: bad root signature')
}

/** Wire form of a device list. */
export function deviceListToWire (l: DeviceList): WireObject {
  return {
    v: IDENTITY_FORMAT_VERSION,
    userId: l.userId,
    rootKey: l.rootKey,
    seq: l.seq,
    issuedAt: l.issuedAt,
    devices: l.devices.map((d) => ({ deviceId: d.deviceId, signingKey: d.signingKey, exchangeKey: d.exchangeKey, addedAt: d.addedAt })),
    revoked: l.revoked.map((r) => ({ deviceId: r.deviceId, revokedAt: r.revokedAt })),
    sig: l.sig
  }
}

/** Structure check of a decoded device list map. */
export function deviceListFromWire (v: unknown): DeviceList {
  const o = expectObject(v, 'device list')
  expectVersion(o, 'device list', IDENTITY_FORMAT_VERSION)
  const devices = expectArray(o.devices, 'device list.devices', MAX_DEVICES).map((item) => {
    const d = expectObject(item, 'device list entry')
    return {
      deviceId: parseDeviceId(d.deviceId),
      signingKey: expectBytes(d.signingKey, 'device.signingKey', 32, 32),
      exchangeKey: expectBytes(d.exchangeKey, 'device.exchangeKey', 32, 32),
      addedAt: expectUint(d.addedAt, 'device.addedAt')
    }
  })
  const revoked = expectArray(o.revoked, 'device list.revoked', MAX_REVOKED_DEVICES).map((item) => {
    const r = expectObject(item, 'revoked device')
    return { deviceId: parseDeviceId(r.deviceId), revokedAt: expectUint(r.revokedAt, 'revoked.revokedAt') }
  })
  return {
    userId: parseUserId(o.userId),
    rootKey: expectBytes(o.rootKey, 'device list.rootKey', 32, 32),
    seq: expectUint(o.seq, 'device list.seq'),
    issuedAt: expectUint(o.issuedAt, 'device list.issuedAt'),
    devices,
    revoked,
    sig: expectBytes(o.sig, 'device list.sig', 64, 64)
  }
}

/** Encodes a device list to bytes. */
export function encodeDeviceList (l: DeviceList): Uint8Array {
  return encodeValue(deviceListToWire(l))
}

/** Decodes device list bytes (size and structure; call verifyDeviceList to check it). */
export function decodeDeviceList (bytes: Uint8Array): DeviceList {
  return deviceListFromWire(decodeValue(bytes, MAX_DEVICE_LIST_BYTES))
}

// ---- identity files -------------------------------------------------------------------------

/** Size, structure, version and type of an identity file. */
function openIdentityFile (bytes: Uint8Array, type: 'user' | 'device'): WireObject {
  const what = `${type} identity`
  const o = expectObject(decodeValue(bytes, MAX_IDENTITY_FILE_BYTES), what)
  expectVersion(o, what, IDENTITY_FORMAT_VERSION)
  expectEnum(o.type, `${what}.type`, [type])
  return o
}

/** Encodes a user identity (secret material included) for storage by the application. */
export function encodeUserIdentity (u: UserIdentity): Uint8Array {
  return encodeValue({ v: IDENTITY_FORMAT_VERSION, type: 'user', userId: u.userId, rootSeed: u.rootSeed, rootPublicKey: u.rootPublicKey, createdAt: u.createdAt })
}

/**
 * Decodes a user identity file and checks that its parts agree (seed → public key → user id),
 * so a corrupted file is caught on load rather than when its signatures start failing.
 */
export function decodeUserIdentity (bytes: Uint8Array, crypto: CryptoProvider = defaultCrypto): UserIdentity {
  const o = openIdentityFile(bytes, 'user')
  const u: UserIdentity = {
    userId: parseUserId(o.userId),
    rootSeed: expectBytes(o.rootSeed, 'user identity.rootSeed', 32, 32),
    rootPublicKey: expectBytes(o.rootPublicKey, 'user identity.rootPublicKey', 32, 32),
    createdAt: expectUint(o.createdAt, 'user identity.createdAt')
  }
  if (!equalBytes(crypto.ed25519PublicKey(u.rootSeed), u.rootPublicKey)) throw new ProtocolError('ERR_KEY_MISMATCH', 'user identity: seed does not match the public key')
  if (userIdFromKey(u.rootPublicKey, crypto) !== u.userId) throw new ProtocolError('ERR_KEY_MISMATCH', 'user identity: user id does not match the public key')
  return u
}

/** Encodes a device identity (secret material and certificate included). */
export function encodeDeviceIdentity (d: DeviceIdentity): Uint8Array {
  const wire: WireObject = {
    v: IDENTITY_FORMAT_VERSION,
    type: 'device',
    deviceId: d.deviceId,
    signingSeed: d.signingSeed,
    signingPublicKey: d.signingPublicKey,
    exchangePrivateKey: d.exchangePrivateKey,
    exchangePublicKey: d.exchangePublicKey,
    createdAt: d.createdAt
  }
  if (d.cert !== undefined) wire.cert = certificateToWire(d.cert)
  return encodeValue(wire)
}

/** Decodes a device identity file and checks that its keys, id and certificate agree. */
export function decodeDeviceIdentity (bytes: Uint8Array, crypto: CryptoProvider = defaultCrypto): DeviceIdentity {
  const o = openIdentityFile(bytes, 'device')
  const d: DeviceIdentity = {
    deviceId: parseDeviceId(o.deviceId),
    signingSeed: expectBytes(o.signingSeed, 'device identity.signingSeed', 32, 32),
    signingPublicKey: expectBytes(o.signingPublicKey, 'device identity.signingPublicKey', 32, 32),
    exchangePrivateKey: expectBytes(o.exchangePrivateKey, 'device identity.exchangePrivateKey', 32, 32),
    exchangePublicKey: expectBytes(o.exchangePublicKey, 'device identity.exchangePublicKey', 32, 32),
    createdAt: expectUint(o.createdAt, 'device identity.createdAt')
  }
  if (o.cert !== undefined) d.cert = certificateFromWire(o.cert)
  if (!equalBytes(crypto.ed25519PublicKey(d.signingSeed), d.signingPublicKey)) throw new ProtocolError('ERR_KEY_MISMATCH', 'device identity: signing seed does not match the public key')
  if (!equalBytes(crypto.x25519PublicKey(d.exchangePrivateKey), d.exchangePublicKey)) throw new ProtocolError('ERR_KEY_MISMATCH', 'device identity: exchange key does not match')
  if (deviceIdFromKey(d.signingPublicKey, crypto) !== d.deviceId) throw new ProtocolError('ERR_KEY_MISMATCH', 'device identity: device id does not match the public key')
  if (d.cert !== undefined) {
    if (d.cert.deviceId !== d.deviceId || !equalBytes(d.cert.exchangeKey, d.exchangePublicKey)) throw new ProtocolError('ERR_KEY_MISMATCH', 'device identity: certificate is for another device')
    verifyDeviceCertificate(d.cert, crypto)
  }
  return d
}
