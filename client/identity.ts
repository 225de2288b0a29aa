/**
 * A client identity: the user's root identity, this device (keys and root-signed certificate), the
 * user's device list, and this device's signed prekey. Everything secret a device holds, in one
 * value the application keeps (a file for the CLI, storage of its choice in a browser).
 *
 * The root key lives with the device in v1, so a device can sign its user's device list; a user
 * with several devices gives each a copy of the root identity ({@link addDevice}).
 */
import { decodeValue, encodeValue, expectBytes, expectEnum, expectObject, expectUint, expectVersion } from '../protocol/codec.js'
import { defaultCrypto } from '../protocol/crypto/index.js'
import type { CryptoProvider } from '../protocol/crypto/provider.js'
import { generateSignedPreKey, type DeviceIdentityKeys, type SignedPreKeyPair } from '../protocol/e2e/index.js'
import {
  addDeviceToList, certifyDevice, createDevice, createDeviceList, createUserIdentity, decodeDeviceIdentity, decodeDeviceList,
  decodeUserIdentity, encodeDeviceIdentity, encodeDeviceList, encodeUserIdentity, isDeviceActive, verifyDeviceList,
  type DeviceIdentity, type DeviceList, type UserIdentity
} from '../protocol/identity.js'
import type { DeviceId, UserId } from '../protocol/ids.js'
import { equalBytes } from '../protocol/bytes.js'
import { ClientError } from './errors.js'

/** Version of the client identity format. */
export const CLIENT_IDENTITY_VERSION = 1
/** Largest encoded client identity accepted, checked before parsing. */
export const MAX_CLIENT_IDENTITY_BYTES = 32 * 1024
/** Id of the first signed prekey of a new device. */
export const DEFAULT_SIGNED_PREKEY_ID = 1

/** Everything a device needs to connect and talk. Secret: keep it like a private key. */
export interface ClientIdentity {
  user: UserIdentity
  /** This device, with its certificate set. */
  device: DeviceIdentity & { cert: NonNullable<DeviceIdentity['cert']> }
  /** The newest device list this device knows; it lists this device. */
  deviceList: DeviceList
  /** This device's signed prekey (v1 publishes no one-time prekeys). */
  signedPreKey: SignedPreKeyPair
}

/** Options of {@link createIdentity} and {@link addDevice}. */
export interface CreateIdentityOptions {
  crypto?: CryptoProvider
  now?: number
}

/** This device's keys in the E2E layer's shape. */
export function deviceKeys (identity: ClientIdentity): DeviceIdentityKeys {
  const d = identity.device
  return { signingPrivateKey: d.signingSeed, signingPublicKey: d.signingPublicKey, identityPrivateKey: d.exchangePrivateKey, identityPublicKey: d.exchangePublicKey }
}

function newDevice (user: UserIdentity, crypto: CryptoProvider, now: number): { device: ClientIdentity['device'], signedPreKey: SignedPreKeyPair } {
  const device = createDevice(crypto, now)
  const cert = certifyDevice(user, device, { crypto, now })
  const withCert = { ...device, cert }
  const keys: DeviceIdentityKeys = { signingPrivateKey: device.signingSeed, signingPublicKey: device.signingPublicKey, identityPrivateKey: device.exchangePrivateKey, identityPublicKey: device.exchangePublicKey }
  return { device: withCert, signedPreKey: generateSignedPreKey(keys, DEFAULT_SIGNED_PREKEY_ID, crypto) }
}

/** A new user with one device, its certificate, a device list and a signed prekey. */
export function createIdentity (opts: CreateIdentityOptions = {}): ClientIdentity {
  const crypto = opts.crypto ?? defaultCrypto
  const now = opts.now ?? Date.now()
  const user = createUserIdentity(crypto, now)
  const { device, signedPreKey } = newDevice(user, crypto, now)
  return { user, device, deviceList: createDeviceList(user, [device.cert], { crypto, now }), signedPreKey }
}

/**
 * A new device for the user of `identity`. Returns the new device's identity and `identity` with
 * the updated device list (both list the two devices); keep the updated one too.
 */
export function addDevice (identity: ClientIdentity, opts: CreateIdentityOptions = {}): { identity: ClientIdentity, added: ClientIdentity } {
  const crypto = opts.crypto ?? defaultCrypto
  const now = opts.now ?? Date.now()
  const { device, signedPreKey } = newDevice(identity.user, crypto, now)
  const deviceList = addDeviceToList(identity.deviceList, identity.user, device.cert, { crypto, now })
  return { identity: { ...identity, deviceList }, added: { user: identity.user, device, deviceList, signedPreKey } }
}

/** The user id of an identity. */
export function identityUserId (identity: ClientIdentity): UserId {
  return identity.user.userId
}

/** The device id of an identity. */
export function identityDeviceId (identity: ClientIdentity): DeviceId {
  return identity.device.deviceId
}

/** Encodes an identity (secret material included) as MessagePack bytes. */
export function encodeIdentity (identity: ClientIdentity): Uint8Array {
  const spk = identity.signedPreKey
  return encodeValue({
    v: CLIENT_IDENTITY_VERSION,
    type: 'client-identity',
    user: encodeUserIdentity(identity.user),
    device: encodeDeviceIdentity(identity.device),
    deviceList: encodeDeviceList(identity.deviceList),
    signedPreKey: { id: spk.id, privateKey: spk.privateKey, publicKey: spk.publicKey, signature: spk.signature }
  })
}

/**
 * Decodes an identity and checks that its parts agree: keys and ids, the certificate, the device
 * list's signature and that it lists this device, and the signed prekey's key pair.
 * Throws ClientError('ERR_BAD_IDENTITY') with the underlying error as `cause`.
 */
export function decodeIdentity (bytes: Uint8Array, crypto: CryptoProvider = defaultCrypto): ClientIdentity {
  try {
    const o = expectObject(decodeValue(bytes, MAX_CLIENT_IDENTITY_BYTES), 'client identity')
    expectVersion(o, 'client identity', CLIENT_IDENTITY_VERSION)
    expectEnum(o.type, 'client identity.type', ['client-identity'])
    const user = decodeUserIdentity(expectBytes(o.user, 'client identity.user', 1, MAX_CLIENT_IDENTITY_BYTES), crypto)
    const device = decodeDeviceIdentity(expectBytes(o.device, 'client identity.device', 1, MAX_CLIENT_IDENTITY_BYTES), crypto)
    const deviceList = decodeDeviceList(expectBytes(o.deviceList, 'client identity.deviceList', 1, MAX_CLIENT_IDENTITY_BYTES))
    const s = expectObject(o.signedPreKey, 'client identity.signedPreKey')
    const signedPreKey: SignedPreKeyPair = {
      id: expectUint(s.id, 'signedPreKey.id', 0xffffffff),
      privateKey: expectBytes(s.privateKey, 'signedPreKey.privateKey', 32, 32),
      publicKey: expectBytes(s.publicKey, 'signedPreKey.publicKey', 32, 32),
      signature: expectBytes(s.signature, 'signedPreKey.signature', 64, 64)
    }
    const cert = device.cert
    if (cert === undefined) throw new ClientError('ERR_BAD_IDENTITY', 'the device has no certificate')
    if (cert.userId !== user.userId || !equalBytes(cert.rootKey, user.rootPublicKey)) throw new ClientError('ERR_BAD_IDENTITY', 'the certificate is for another user')
    verifyDeviceList(deviceList, crypto)
    if (deviceList.userId !== user.userId) throw new ClientError('ERR_BAD_IDENTITY', 'the device list is for another user')
    if (!isDeviceActive(deviceList, device.deviceId)) throw new ClientError('ERR_BAD_IDENTITY', 'the device list does not list this device')
    if (!equalBytes(crypto.x25519PublicKey(signedPreKey.privateKey), signedPreKey.publicKey)) throw new ClientError('ERR_BAD_IDENTITY', 'signed prekey pair mismatch')
    return { user, device: { ...device, cert }, deviceList, signedPreKey }
  } catch (err) {
    if (err instanceof ClientError) throw err
    throw new ClientError('ERR_BAD_IDENTITY', `invalid identity: ${err instanceof Error ? err.message : String(err)}`, { cause: err })
  }
}

