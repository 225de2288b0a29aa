/**
 * X3DH key agreement (Signal's "The X3DH Key Agreement Protocol", revision 1), with X25519 and
 * SHA-256. Talaria devices keep a separate Ed25519 signing key and X25519 identity key, so the
 * signed prekey is signed with Ed25519 directly (no XEdDSA), and that signature also covers the
 * device's X25519 identity key, binding the two.
 */
import { defaultCrypto } from '../crypto/index.js'
import type { CryptoProvider } from '../crypto/provider.js'
import { ProtocolError } from '../errors.js'
import { KEY_LENGTH, SIGNATURE_LENGTH, concatBytes, isU32, requireBytes, u32be, utf8 } from './primitives.js'

/** HKDF info of the X3DH shared secret. */
export const X3DH_INFO = 'Talaria X3DH v1'
/** Domain separator of the signed-prekey signature, so that it can never verify as another message. */
export const SIGNED_PREKEY_SIGNATURE_DOMAIN = 'Talaria SignedPreKey v1'
/** Byte that precedes a 32-byte X25519 public key in Encode(PK) (as in the X3DH specification). */
export const X25519_KEY_TYPE = 0x05

const X3DH_INFO_BYTES = utf8(X3DH_INFO)
const SIGNATURE_DOMAIN_BYTES = utf8(SIGNED_PREKEY_SIGNATURE_DOMAIN)
/** F: 32 0xFF bytes, so that the KDF input never equals a plain X25519 output. */
const X3DH_F = new Uint8Array(32).fill(0xff)
const X3DH_SALT = new Uint8Array(32)

/** A device's long-term keys: Ed25519 for signatures, X25519 as the X3DH identity key IK. */
export interface DeviceIdentityKeys {
  /** Ed25519 32-byte seed. */
  signingPrivateKey: Uint8Array
  /** Ed25519 public key, listed in the user's device list. */
  signingPublicKey: Uint8Array
  /** X25519 private scalar of IK. */
  identityPrivateKey: Uint8Array
  /** X25519 public key IK, listed in the user's device list. */
  identityPublicKey: Uint8Array
}

/** An X25519 key pair. */
export interface X25519KeyPair {
  privateKey: Uint8Array
  publicKey: Uint8Array
}

/** A signed prekey with its id and its Ed25519 signature (kept by the device that made it). */
export interface SignedPreKeyPair extends X25519KeyPair {
  id: number
  signature: Uint8Array
}

/** A one-time prekey with its id (kept by the device until consumed). */
export interface OneTimePreKeyPair extends X25519KeyPair {
  id: number
}

/** The public prekey bundle a device publishes (as a signed DHT record) for initiators. */
export interface PreKeyBundle {
  /** Ed25519 public key of the device: verifies `signedPreKeySignature`. */
  signingKey: Uint8Array
  /** X25519 identity key IK of the device. */
  identityKey: Uint8Array
  signedPreKeyId: number
  signedPreKey: Uint8Array
  signedPreKeySignature: Uint8Array
  /** One one-time prekey, when the publisher has any left. */
  oneTimePreKey?: { id: number, publicKey: Uint8Array }
}

/**
 * The X3DH fields of the initiator's first message, carried in clear in the 1:1 envelope so the
 * responder can compute the same secret.
 */
export interface X3dhInitialMessage {
  /** Initiator's X25519 identity key IK_A. */
  identityKey: Uint8Array
  /** Initiator's ephemeral X25519 key EK_A. */
  ephemeralKey: Uint8Array
  /** Id of the responder's signed prekey used. */
  signedPreKeyId: number
  /** Id of the responder's one-time prekey used, absent when the bundle had none. */
  oneTimePreKeyId?: number
}

/** What the initiator gets from X3DH. */
export interface X3dhInitiatorResult {
  /** SK: the 32-byte secret that seeds the Double Ratchet. */
  sharedSecret: Uint8Array
  /** AD = Encode(IK_A) || Encode(IK_B): bound into every ratchet message. */
  associatedData: Uint8Array
  /** Responder's signed prekey: the Double Ratchet's first remote ratchet key. */
  remoteRatchetKey: Uint8Array
  /** Fields to send with the first message. */
  initialMessage: X3dhInitialMessage
}

/** What the responder gets from X3DH. */
export interface X3dhResponderResult {
  sharedSecret: Uint8Array
  associatedData: Uint8Array
  /**
   * Id of the one-time prekey this exchange used, or undefined. The caller MUST delete that
   * prekey's private key once the first message has decrypted (and must not delete it earlier,
   * or anyone could burn prekeys with garbage messages); a second use of it must be refused.
   */
  consumedOneTimePreKeyId: number | undefined
}

/** The prekeys the responder holds that an initial message may name. */
export interface X3dhResponderKeys {
  identity: DeviceIdentityKeys
  /** The signed prekey named by `message.signedPreKeyId` (the current or a recent previous one). */
  signedPreKey: SignedPreKeyPair
  /**
   * The one-time prekey named by `message.oneTimePreKeyId`, looked up by the caller; undefined when
   * the message names none, or when the named one is already consumed (then X3DH fails).
   */
  oneTimePreKey?: OneTimePreKeyPair
}

/** Encode(PK): the type byte 0x05 followed by the 32-byte X25519 public key. */
export function encodeX25519PublicKey (publicKey: Uint8Array): Uint8Array {
  requireBytes(publicKey, KEY_LENGTH, 'X25519 public key')
  const out = new Uint8Array(1 + KEY_LENGTH)
  out[0] = X25519_KEY_TYPE
  out.set(publicKey, 1)
  return out
}

/** Generates a fresh X25519 key pair. */
export function generateX25519KeyPair (crypto: CryptoProvider = defaultCrypto): X25519KeyPair {
  const privateKey = crypto.randomBytes(KEY_LENGTH)
  return { privateKey, publicKey: crypto.x25519PublicKey(privateKey) }
}

/** Generates a device's long-term Ed25519 signing key and X25519 identity key. */
export function generateDeviceIdentityKeys (crypto: CryptoProvider = defaultCrypto): DeviceIdentityKeys {
  const signingPrivateKey = crypto.randomBytes(KEY_LENGTH)
  const identity = generateX25519KeyPair(crypto)
  return {
    signingPrivateKey,
    signingPublicKey: crypto.ed25519PublicKey(signingPrivateKey),
    identityPrivateKey: identity.privateKey,
    identityPublicKey: identity.publicKey
  }
}

/** The bytes a signed-prekey signature covers: domain || IK || u32 id || Encode(SPK). */
function signedPreKeyMessage (identityKey: Uint8Array, id: number, signedPreKey: Uint8Array): Uint8Array {
  return concatBytes(SIGNATURE_DOMAIN_BYTES, encodeX25519PublicKey(identityKey), u32be(id), encodeX25519PublicKey(signedPreKey))
}

function requireId (id: unknown, what: string): number {
  if (!isU32(id)) throw new ProtocolError('ERR_MALFORMED', `${what} must be an integer in [0, 2^32)`)
  return id
}

/** Generates a signed prekey with the given id, signed by the device's Ed25519 key. */
export function generateSignedPreKey (identity: DeviceIdentityKeys, id: number, crypto: CryptoProvider = defaultCrypto): SignedPreKeyPair {
  requireId(id, 'signed prekey id')
  const pair = generateX25519KeyPair(crypto)
  const signature = crypto.ed25519Sign(identity.signingPrivateKey, signedPreKeyMessage(identity.identityPublicKey, id, pair.publicKey))
  return { id, ...pair, signature }
}

/** Generates `count` one-time prekeys with consecutive ids from `firstId`. */
export function generateOneTimePreKeys (firstId: number, count: number, crypto: CryptoProvider = defaultCrypto): OneTimePreKeyPair[] {
  requireId(firstId, 'one-time prekey id')
  requireId(firstId + Math.max(0, count - 1), 'one-time prekey id')
  const out: OneTimePreKeyPair[] = []
  for (let i = 0; i < count; i++) out.push({ id: firstId + i, ...generateX25519KeyPair(crypto) })
  return out
}

/** Builds the public bundle from a device's keys, with at most one one-time prekey. */
export function createPreKeyBundle (identity: DeviceIdentityKeys, signedPreKey: SignedPreKeyPair, oneTimePreKey?: OneTimePreKeyPair): PreKeyBundle {
  const bundle: PreKeyBundle = {
    signingKey: identity.signingPublicKey,
    identityKey: identity.identityPublicKey,
    signedPreKeyId: signedPreKey.id,
    signedPreKey: signedPreKey.publicKey,
    signedPreKeySignature: signedPreKey.signature
  }
  if (oneTimePreKey !== undefined) bundle.oneTimePreKey = { id: oneTimePreKey.id, publicKey: oneTimePreKey.publicKey }
  return bundle
}

/**
 * Checks a bundle's shape and its signed-prekey signature. Throws ERR_MALFORMED for a bad shape and
 * ERR_BAD_SIGNATURE for a signature that does not verify. The caller separately checks that
 * `signingKey` and `identityKey` are in the owner's signed device list.
 */
export function verifyPreKeyBundle (bundle: PreKeyBundle, crypto: CryptoProvider = defaultCrypto): void {
  requireBytes(bundle.signingKey, KEY_LENGTH, 'bundle signing key')
  requireBytes(bundle.identityKey, KEY_LENGTH, 'bundle identity key')
  requireBytes(bundle.signedPreKey, KEY_LENGTH, 'signed prekey')
  requireBytes(bundle.signedPreKeySignature, SIGNATURE_LENGTH, 'signed prekey signature')
  requireId(bundle.signedPreKeyId, 'signed prekey id')
  if (bundle.oneTimePreKey !== undefined) {
    requireId(bundle.oneTimePreKey.id, 'one-time prekey id')
    requireBytes(bundle.oneTimePreKey.publicKey, KEY_LENGTH, 'one-time prekey')
  }
  const message = signedPreKeyMessage(bundle.identityKey, bundle.signedPreKeyId, bundle.signedPreKey)
  if (!crypto.ed25519Verify(bundle.signingKey, message, bundle.signedPreKeySignature)) {
    throw new ProtocolError('ERR_BAD_SIGNATURE', 'signed prekey signature does not verify')
  }
}

/** SK = HKDF(salt = 32 zero bytes, IKM = F || DH1 || DH2 || DH3 [|| DH4], info = X3DH_INFO, 32). */
function deriveSharedSecret (crypto: CryptoProvider, dhs: Uint8Array[]): Uint8Array {
  return crypto.hkdfSha256(concatBytes(X3DH_F, ...dhs), X3DH_SALT, X3DH_INFO_BYTES, KEY_LENGTH)
}

/** AD = Encode(IK_A) || Encode(IK_B), initiator first. */
function associatedData (initiatorIdentityKey: Uint8Array, responderIdentityKey: Uint8Array): Uint8Array {
  return concatBytes(encodeX25519PublicKey(initiatorIdentityKey), encodeX25519PublicKey(responderIdentityKey))
}

/**
 * Initiator side: verifies the bundle, then computes SK with a fresh ephemeral key.
 * DH1 = DH(IK_A, SPK_B), DH2 = DH(EK_A, IK_B), DH3 = DH(EK_A, SPK_B), DH4 = DH(EK_A, OPK_B).
 * The ephemeral private key is not returned: it is used once and dropped.
 */
export function x3dhInitiate (identity: DeviceIdentityKeys, bundle: PreKeyBundle, crypto: CryptoProvider = defaultCrypto): X3dhInitiatorResult {
  verifyPreKeyBundle(bundle, crypto)
  const ephemeral = generateX25519KeyPair(crypto)
  const dhs = [
    crypto.x25519(identity.identityPrivateKey, bundle.signedPreKey),
    crypto.x25519(ephemeral.privateKey, bundle.identityKey),
    crypto.x25519(ephemeral.privateKey, bundle.signedPreKey)
  ]
  const initialMessage: X3dhInitialMessage = {
    identityKey: identity.identityPublicKey,
    ephemeralKey: ephemeral.publicKey,
    signedPreKeyId: bundle.signedPreKeyId
  }
  if (bundle.oneTimePreKey !== undefined) {
    dhs.push(crypto.x25519(ephemeral.privateKey, bundle.oneTimePreKey.publicKey))
    initialMessage.oneTimePreKeyId = bundle.oneTimePreKey.id
  }
  return {
    sharedSecret: deriveSharedSecret(crypto, dhs),
    associatedData: associatedData(identity.identityPublicKey, bundle.identityKey),
    remoteRatchetKey: bundle.signedPreKey,
    initialMessage
  }
}

/**
 * Responder side: computes the same SK from an initial message. Throws ERR_MALFORMED for a bad
 * shape and ERR_BAD_KEY when the message names a signed prekey or one-time prekey other than
 * those given (for a one-time prekey: unknown or already consumed). The result names the one-time
 * prekey to delete. The caller separately checks that `message.identityKey` belongs to the sending
 * device in its owner's device list.
 */
export function x3dhRespond (keys: X3dhResponderKeys, message: X3dhInitialMessage, crypto: CryptoProvider = defaultCrypto): X3dhResponderResult {
  requireBytes(message.identityKey, KEY_LENGTH, 'initiator identity key')
  requireBytes(message.ephemeralKey, KEY_LENGTH, 'initiator ephemeral key')
  requireId(message.signedPreKeyId, 'signed prekey id')
  if (message.oneTimePreKeyId !== undefined) requireId(message.oneTimePreKeyId, 'one-time prekey id')
  if (message.signedPreKeyId !== keys.signedPreKey.id) {
    throw new ProtocolError('ERR_BAD_KEY', 'initial message names another signed prekey')
  }
  const dhs = [
    crypto.x25519(keys.signedPreKey.privateKey, message.identityKey),
    crypto.x25519(keys.identity.identityPrivateKey, message.ephemeralKey),
    crypto.x25519(keys.signedPreKey.privateKey, message.ephemeralKey)
  ]
  let consumedOneTimePreKeyId: number | undefined
  if (message.oneTimePreKeyId !== undefined) {
    const opk = keys.oneTimePreKey
    if (opk === undefined || opk.id !== message.oneTimePreKeyId) {
      throw new ProtocolError('ERR_BAD_KEY', 'initial message names an unknown or consumed one-time prekey')
    }
    dhs.push(crypto.x25519(opk.privateKey, message.ephemeralKey))
    consumedOneTimePreKeyId = opk.id
  }
  return {
    sharedSecret: deriveSharedSecret(crypto, dhs),
    associatedData: associatedData(message.identityKey, keys.identity.identityPublicKey),
    consumedOneTimePreKeyId
  }
}
