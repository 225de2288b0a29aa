/**
 * The Double Ratchet (Signal's "The Double Ratchet Algorithm", revision 1) with the header in
 * clear, X25519 for the DH ratchet, HKDF-SHA256 for KDF_RK, HMAC-SHA256 for KDF_CK and
 * ChaCha20-Poly1305 for messages.
 *
 * A session is plain data. `ratchetEncrypt` advances it; `ratchetDecrypt` computes every change on
 * the side and writes it into the session only once the message has authenticated, so a forged,
 * replayed or corrupted message leaves the session exactly as it was.
 */
import { defaultCrypto } from '../crypto/index.js'
import type { CryptoProvider } from '../crypto/provider.js'
import { ProtocolError } from '../errors.js'
import {
  KEY_LENGTH, bytesEqual, concatBytes, expandMessageKey, isU32, kdfChain, readU32be, requireBytes,
  toHex, utf8, writeU32be
} from './primitives.js'
import { arrayField, counterField, keyField, optionalKeyField, packPlain, unpackLimited, versionedArray } from './codec.js'
import { generateX25519KeyPair, type X25519KeyPair } from './x3dh.js'

/** Most message keys one chain may skip in a single step (a larger gap is refused). */
export const MAX_SKIP = 1000
/** Most skipped message keys a session keeps; beyond it the oldest are evicted first. */
export const MAX_SKIPPED_KEYS = 2000
/** How many earlier remote ratchet keys a session remembers, to tell replays from new ratchet steps. */
export const MAX_PREVIOUS_CHAINS = 32
/** Largest session AD (X3DH gives 66 bytes); bounds a decoded session. */
export const MAX_SESSION_AD_LENGTH = 1024
/** Largest serialized session accepted by `deserializeSession`. */
export const MAX_SESSION_BYTES = 256 * 1024
/** Version byte of the encoded header. */
export const HEADER_VERSION = 1
/** Encoded header: version (1) || DH public key (32) || pn (u32 BE) || n (u32 BE). */
export const HEADER_LENGTH = 1 + KEY_LENGTH + 4 + 4
/** Version of the serialized session layout. */
export const SESSION_FORMAT_VERSION = 1

/** HKDF info of KDF_RK. */
export const ROOT_KDF_INFO = 'Talaria Ratchet RK v1'
/** HKDF info that expands a 1:1 message key into the AEAD key and nonce. */
export const MESSAGE_KEY_INFO = 'Talaria Ratchet MK v1'

const ROOT_KDF_INFO_BYTES = utf8(ROOT_KDF_INFO)
const MESSAGE_KEY_INFO_BYTES = utf8(MESSAGE_KEY_INFO)
const EMPTY = new Uint8Array(0)

/** The clear-text header of a ratchet message. */
export interface RatchetHeader {
  /** Sender's current ratchet public key. */
  dh: Uint8Array
  /** Number of messages in the sender's previous sending chain. */
  pn: number
  /** Message number in the current sending chain. */
  n: number
}

/** A ratchet message as it travels: the encoded header and the AEAD ciphertext (with tag). */
export interface RatchetMessage {
  /** `encodeHeader(header)`, HEADER_LENGTH bytes. */
  header: Uint8Array
  ciphertext: Uint8Array
}

/** A message key kept for a message that has not arrived yet. */
export interface SkippedMessageKey {
  dh: Uint8Array
  n: number
  messageKey: Uint8Array
}

/** A remote sending chain that has been replaced by a newer one. */
export interface PreviousChain {
  dh: Uint8Array
  /** How many messages the peer sent on it (its pn when it moved on). */
  length: number
}

/** The state of one Double Ratchet session between two devices. */
export interface RatchetSession {
  /** Our current ratchet key pair (DHs). */
  dhSelf: X25519KeyPair
  /** The peer's current ratchet public key (DHr); undefined until the responder hears first. */
  dhRemote: Uint8Array | undefined
  rootKey: Uint8Array
  sendChainKey: Uint8Array | undefined
  recvChainKey: Uint8Array | undefined
  /** Ns, Nr, PN. */
  sendN: number
  recvN: number
  prevSendN: number
  /** X3DH AD, bound into every message. */
  associatedData: Uint8Array
  /** Skipped keys by `skippedKeyId(dh, n)`, in insertion (= eviction) order. */
  skipped: Map<string, SkippedMessageKey>
  /** Most recent last; at most MAX_PREVIOUS_CHAINS. */
  previousChains: PreviousChain[]
}

/** The X3DH outputs an initiator session starts from (an `X3dhInitiatorResult` fits). */
export interface InitiatorSessionInit {
  sharedSecret: Uint8Array
  associatedData: Uint8Array
  /** Responder's signed prekey. */
  remoteRatchetKey: Uint8Array
}

/** The X3DH outputs a responder session starts from (an `X3dhResponderResult` fits). */
export interface ResponderSessionInit {
  sharedSecret: Uint8Array
  associatedData: Uint8Array
}

function skippedKeyId (dh: Uint8Array, n: number): string {
  return `${toHex(dh)}:${n}`
}

/** KDF_RK: HKDF(salt = root key, IKM = DH output, info = ROOT_KDF_INFO) → new root key || chain key. */
function kdfRoot (crypto: CryptoProvider, rootKey: Uint8Array, dhOut: Uint8Array): { rootKey: Uint8Array, chainKey: Uint8Array } {
  const okm = crypto.hkdfSha256(dhOut, rootKey, ROOT_KDF_INFO_BYTES, 2 * KEY_LENGTH)
  return { rootKey: okm.slice(0, KEY_LENGTH), chainKey: okm.slice(KEY_LENGTH) }
}

function checkInit (sharedSecret: Uint8Array, associatedData: Uint8Array): void {
  requireBytes(sharedSecret, KEY_LENGTH, 'shared secret')
  if (!(associatedData instanceof Uint8Array) || associatedData.length > MAX_SESSION_AD_LENGTH) {
    throw new ProtocolError('ERR_MALFORMED', `associated data must be at most ${MAX_SESSION_AD_LENGTH} bytes`)
  }
}

/**
 * Starts the initiator's session (RatchetInitAlice): a fresh ratchet key, DH with the responder's
 * signed prekey, and a sending chain, so the initiator can send at once.
 */
export function createInitiatorSession (init: InitiatorSessionInit, crypto: CryptoProvider = defaultCrypto): RatchetSession {
  checkInit(init.sharedSecret, init.associatedData)
  requireBytes(init.remoteRatchetKey, KEY_LENGTH, 'remote ratchet key')
  const dhSelf = generateX25519KeyPair(crypto)
  const { rootKey, chainKey } = kdfRoot(crypto, init.sharedSecret, crypto.x25519(dhSelf.privateKey, init.remoteRatchetKey))
  return {
    dhSelf,
    dhRemote: init.remoteRatchetKey,
    rootKey,
    sendChainKey: chainKey,
    recvChainKey: undefined,
    sendN: 0,
    recvN: 0,
    prevSendN: 0,
    associatedData: init.associatedData,
    skipped: new Map(),
    previousChains: []
  }
}

/**
 * Starts the responder's session (RatchetInitBob) with its signed prekey pair as the first ratchet
 * key. It cannot send until the initiator's first message has decrypted.
 */
export function createResponderSession (init: ResponderSessionInit, signedPreKey: X25519KeyPair): RatchetSession {
  checkInit(init.sharedSecret, init.associatedData)
  requireBytes(signedPreKey.privateKey, KEY_LENGTH, 'signed prekey private key')
  requireBytes(signedPreKey.publicKey, KEY_LENGTH, 'signed prekey public key')
  return {
    dhSelf: { privateKey: signedPreKey.privateKey, publicKey: signedPreKey.publicKey },
    dhRemote: undefined,
    rootKey: init.sharedSecret,
    sendChainKey: undefined,
    recvChainKey: undefined,
    sendN: 0,
    recvN: 0,
    prevSendN: 0,
    associatedData: init.associatedData,
    skipped: new Map(),
    previousChains: []
  }
}

/** Encodes a header: version || dh || u32 BE pn || u32 BE n (HEADER_LENGTH bytes). */
export function encodeHeader (header: RatchetHeader): Uint8Array {
  requireBytes(header.dh, KEY_LENGTH, 'header DH key')
  if (!isU32(header.pn) || !isU32(header.n)) throw new ProtocolError('ERR_MALFORMED', 'header counters must be u32')
  const out = new Uint8Array(HEADER_LENGTH)
  out[0] = HEADER_VERSION
  out.set(header.dh, 1)
  writeU32be(out, 1 + KEY_LENGTH, header.pn)
  writeU32be(out, 5 + KEY_LENGTH, header.n)
  return out
}

/**
 * Decodes a header. Throws ERR_TOO_LARGE or ERR_MALFORMED for a wrong length and
 * ERR_UNSUPPORTED_VERSION for another version byte.
 */
export function decodeHeader (bytes: Uint8Array): RatchetHeader {
  if (!(bytes instanceof Uint8Array)) throw new ProtocolError('ERR_MALFORMED', 'header must be bytes')
  if (bytes.length > HEADER_LENGTH) throw new ProtocolError('ERR_TOO_LARGE', `header exceeds ${HEADER_LENGTH} bytes`)
  if (bytes.length < HEADER_LENGTH) throw new ProtocolError('ERR_MALFORMED', `header must be ${HEADER_LENGTH} bytes`)
  if (bytes[0] !== HEADER_VERSION) throw new ProtocolError('ERR_UNSUPPORTED_VERSION', `header version ${bytes[0] ?? 0}`)
  return {
    dh: bytes.slice(1, 1 + KEY_LENGTH),
    pn: readU32be(bytes, 1 + KEY_LENGTH),
    n: readU32be(bytes, 5 + KEY_LENGTH)
  }
}

/**
 * The encoded header the next `ratchetEncrypt` on this session will use, without changing the
 * session: for callers whose AD covers the header (the 1:1 envelope's associated data does).
 * Throws ERR_BAD_KEY when the session cannot send yet.
 */
export function nextHeader (session: RatchetSession): Uint8Array {
  if (session.sendChainKey === undefined) {
    throw new ProtocolError('ERR_BAD_KEY', 'session has no sending chain until the first message is received')
  }
  return encodeHeader({ dh: session.dhSelf.publicKey, pn: session.prevSendN, n: session.sendN })
}

/** AEAD associated data: u16 BE len(AD) || AD || encoded header || caller AD. */
function messageAad (associatedData: Uint8Array, header: Uint8Array, callerAd: Uint8Array): Uint8Array {
  const prefix = Uint8Array.of((associatedData.length >>> 8) & 0xff, associatedData.length & 0xff)
  return concatBytes(prefix, associatedData, header, callerAd)
}

/**
 * Encrypts `plaintext` and advances the sending chain. `callerAd` binds the envelope's outer
 * fields (conversation id, counter, sender and recipient) so that none can be changed in transit.
 * Throws ERR_BAD_KEY when the session cannot send yet (a responder that has not heard first).
 */
export function ratchetEncrypt (session: RatchetSession, plaintext: Uint8Array, callerAd: Uint8Array = EMPTY, crypto: CryptoProvider = defaultCrypto): RatchetMessage {
  if (session.sendN >= 0xffffffff) throw new ProtocolError('ERR_TOO_LARGE', 'sending chain exhausted')
  const header = nextHeader(session)
  // nextHeader has thrown if there is no sending chain
  const { chainKey, messageKey } = kdfChain(crypto, session.sendChainKey as Uint8Array)
  const { key, nonce } = expandMessageKey(crypto, messageKey, MESSAGE_KEY_INFO_BYTES)
  const ciphertext = crypto.aeadSeal(key, nonce, plaintext, messageAad(session.associatedData, header, callerAd))
  session.sendChainKey = chainKey
  session.sendN += 1
  return { header, ciphertext }
}

/** The part of a session that a decryption may change, computed before anything is committed. */
interface PendingUpdate extends Pick<RatchetSession,
  'dhSelf' | 'dhRemote' | 'rootKey' | 'sendChainKey' | 'recvChainKey' | 'sendN' | 'recvN' | 'prevSendN'> {
  newSkipped: SkippedMessageKey[]
  endedChain: PreviousChain | undefined
}

/** Derives and sets aside the keys of messages recvN .. until-1 of the current receiving chain. */
function skipMessageKeys (crypto: CryptoProvider, w: PendingUpdate, until: number): void {
  if (w.recvChainKey === undefined || w.dhRemote === undefined) return
  if (until - w.recvN > MAX_SKIP) {
    throw new ProtocolError('ERR_TOO_MANY_SKIPPED', `message would skip ${until - w.recvN} keys (limit ${MAX_SKIP})`)
  }
  let chainKey = w.recvChainKey
  while (w.recvN < until) {
    const step = kdfChain(crypto, chainKey)
    w.newSkipped.push({ dh: w.dhRemote, n: w.recvN, messageKey: step.messageKey })
    chainKey = step.chainKey
    w.recvN += 1
  }
  w.recvChainKey = chainKey
}

/** DHRatchet: new receiving chain from the peer's new key, then a fresh key pair and sending chain. */
function dhRatchet (crypto: CryptoProvider, w: PendingUpdate, header: RatchetHeader): void {
  if (w.dhRemote !== undefined) w.endedChain = { dh: w.dhRemote, length: header.pn }
  w.prevSendN = w.sendN
  w.sendN = 0
  w.recvN = 0
  w.dhRemote = header.dh
  const recv = kdfRoot(crypto, w.rootKey, crypto.x25519(w.dhSelf.privateKey, header.dh))
  w.recvChainKey = recv.chainKey
  w.dhSelf = generateX25519KeyPair(crypto)
  const send = kdfRoot(crypto, recv.rootKey, crypto.x25519(w.dhSelf.privateKey, header.dh))
  w.rootKey = send.rootKey
  w.sendChainKey = send.chainKey
}

function commit (session: RatchetSession, w: PendingUpdate): void {
  session.dhSelf = w.dhSelf
  session.dhRemote = w.dhRemote
  session.rootKey = w.rootKey
  session.sendChainKey = w.sendChainKey
  session.recvChainKey = w.recvChainKey
  session.sendN = w.sendN
  session.recvN = w.recvN
  session.prevSendN = w.prevSendN
  for (const k of w.newSkipped) session.skipped.set(skippedKeyId(k.dh, k.n), k)
  // Map iteration follows insertion order, so the first keys are the oldest.
  for (const id of session.skipped.keys()) {
    if (session.skipped.size <= MAX_SKIPPED_KEYS) break
    session.skipped.delete(id)
  }
  if (w.endedChain !== undefined) {
    session.previousChains.push(w.endedChain)
    if (session.previousChains.length > MAX_PREVIOUS_CHAINS) session.previousChains.shift()
  }
}

/**
 * Decrypts a message and, only if it authenticates, updates the session. Errors (typed, session
 * unchanged): ERR_MALFORMED / ERR_TOO_LARGE / ERR_UNSUPPORTED_VERSION for a bad header,
 * ERR_TOO_MANY_SKIPPED when more than MAX_SKIP keys of a chain would be skipped, ERR_REPLAY when
 * the message's key was already used (or, long skipped, evicted by MAX_SKIPPED_KEYS), ERR_BAD_KEY
 * for a low-order ratchet key, ERR_DECRYPT when the header, caller AD or ciphertext was altered.
 */
export function ratchetDecrypt (session: RatchetSession, message: RatchetMessage, callerAd: Uint8Array = EMPTY, crypto: CryptoProvider = defaultCrypto): Uint8Array {
  const header = decodeHeader(message.header)
  const aad = messageAad(session.associatedData, message.header, callerAd)

  const skippedId = skippedKeyId(header.dh, header.n)
  const skipped = session.skipped.get(skippedId)
  if (skipped !== undefined) {
    const { key, nonce } = expandMessageKey(crypto, skipped.messageKey, MESSAGE_KEY_INFO_BYTES)
    const plaintext = crypto.aeadOpen(key, nonce, message.ciphertext, aad)
    session.skipped.delete(skippedId)
    return plaintext
  }

  const w: PendingUpdate = {
    dhSelf: session.dhSelf,
    dhRemote: session.dhRemote,
    rootKey: session.rootKey,
    sendChainKey: session.sendChainKey,
    recvChainKey: session.recvChainKey,
    sendN: session.sendN,
    recvN: session.recvN,
    prevSendN: session.prevSendN,
    newSkipped: [],
    endedChain: undefined
  }
  if (session.dhRemote === undefined || !bytesEqual(header.dh, session.dhRemote)) {
    const previous = session.previousChains.find((c) => bytesEqual(c.dh, header.dh))
    if (previous !== undefined) {
      // An ended chain gets no new keys: its message was either delivered already or never sent.
      if (header.n < previous.length) throw new ProtocolError('ERR_REPLAY', 'message key of an ended chain already used')
      throw new ProtocolError('ERR_DECRYPT', 'message number beyond the end of its chain')
    }
    skipMessageKeys(crypto, w, header.pn)
    dhRatchet(crypto, w, header)
  } else if (header.n < session.recvN) {
    throw new ProtocolError('ERR_REPLAY', 'message key already used')
  }
  skipMessageKeys(crypto, w, header.n)
  if (w.recvChainKey === undefined) throw new ProtocolError('ERR_DECRYPT', 'no receiving chain')
  const step = kdfChain(crypto, w.recvChainKey)
  w.recvChainKey = step.chainKey
  w.recvN += 1
  const { key, nonce } = expandMessageKey(crypto, step.messageKey, MESSAGE_KEY_INFO_BYTES)
  const plaintext = crypto.aeadOpen(key, nonce, message.ciphertext, aad)
  commit(session, w)
  return plaintext
}

/**
 * Serializes a session: a MessagePack array
 * [version, dhSelfPriv, dhSelfPub, dhRemote|nil, rootKey, sendCK|nil, recvCK|nil, Ns, Nr, PN, AD,
 *  [[dh, n, mk]...] (oldest first), [[dh, length]...] (oldest first)].
 * The output holds secrets: store it encrypted at rest.
 */
export function serializeSession (session: RatchetSession): Uint8Array {
  const skipped: unknown[] = []
  for (const k of session.skipped.values()) skipped.push([k.dh, k.n, k.messageKey])
  return packPlain([
    SESSION_FORMAT_VERSION,
    session.dhSelf.privateKey,
    session.dhSelf.publicKey,
    session.dhRemote ?? null,
    session.rootKey,
    session.sendChainKey ?? null,
    session.recvChainKey ?? null,
    session.sendN,
    session.recvN,
    session.prevSendN,
    session.associatedData,
    skipped,
    session.previousChains.map((c) => [c.dh, c.length])
  ])
}

/**
 * Restores a session from `serializeSession` output. Throws ERR_TOO_LARGE beyond
 * MAX_SESSION_BYTES or the entry bounds, ERR_UNSUPPORTED_VERSION for another layout version and
 * ERR_MALFORMED for anything else that is not a well-formed session.
 */
export function deserializeSession (bytes: Uint8Array): RatchetSession {
  const value = versionedArray(unpackLimited(bytes, MAX_SESSION_BYTES, 'session'), SESSION_FORMAT_VERSION, 13, 'session')
  const [, dhPriv, dhPub, dhRemote, rootKey, sendCk, recvCk, sendN, recvN, prevSendN, ad, skippedRaw, prevRaw] = value
  if (!(ad instanceof Uint8Array) || ad.length > MAX_SESSION_AD_LENGTH) throw new ProtocolError('ERR_MALFORMED', 'session AD')
  const skipped = new Map<string, SkippedMessageKey>()
  for (const entry of arrayField(skippedRaw, MAX_SKIPPED_KEYS, 'skipped keys')) {
    if (!Array.isArray(entry) || entry.length !== 3) throw new ProtocolError('ERR_MALFORMED', 'skipped key entry')
    const k = { dh: keyField(entry[0], 'skipped DH key'), n: counterField(entry[1], 'skipped n'), messageKey: keyField(entry[2], 'skipped message key') }
    skipped.set(skippedKeyId(k.dh, k.n), k)
  }
  const previousChains: PreviousChain[] = []
  for (const entry of arrayField(prevRaw, MAX_PREVIOUS_CHAINS, 'previous chains')) {
    if (!Array.isArray(entry) || entry.length !== 2) throw new ProtocolError('ERR_MALFORMED', 'previous chain entry')
    previousChains.push({ dh: keyField(entry[0], 'previous chain key'), length: counterField(entry[1], 'previous chain length') })
  }
  return {
    dhSelf: { privateKey: keyField(dhPriv, 'ratchet private key'), publicKey: keyField(dhPub, 'ratchet public key') },
    dhRemote: optionalKeyField(dhRemote, 'remote ratchet key'),
    rootKey: keyField(rootKey, 'root key'),
    sendChainKey: optionalKeyField(sendCk, 'sending chain key'),
    recvChainKey: optionalKeyField(recvCk, 'receiving chain key'),
    sendN: counterField(sendN, 'Ns'),
    recvN: counterField(recvN, 'Nr'),
    prevSendN: counterField(prevSendN, 'PN'),
    associatedData: new Uint8Array(ad),
    skipped,
    previousChains
  }
}
