/**
 * The native implementation of CryptoProvider on Node's synchronous `crypto` module (OpenSSL):
 * 10-30x faster than the portable one for Ed25519 and X25519 (see FIELD-NOTES.md).
 *
 * The protocol layer must bundle for browsers, so there is no static `node:crypto` import: the
 * module is looked up at run time with `process.getBuiltinModule` (Node >= 20.16), and this file
 * exports `undefined` where that does not exist. The few Node types used are declared locally for
 * the same reason.
 */
import { fromBase64url, toBase64url } from '../bytes.js'
import { ProtocolError } from '../errors.js'
import type { CryptoProvider } from './provider.js'
import { isUsableEd25519PublicKey } from './weak-keys.js'

/** An opaque Node KeyObject. */
interface KeyObject { readonly type: string }

/** An octet-key-pair JSON Web Key (RFC 8037). */
interface OkpJwk { kty: 'OKP', crv: 'Ed25519' | 'X25519', x: string, d?: string }

/** The subset of `node:crypto` this provider uses. */
interface NodeCryptoModule {
  createPrivateKey(key: { key: OkpJwk, format: 'jwk' }): KeyObject
  createPublicKey(key: KeyObject | { key: OkpJwk, format: 'jwk' }): KeyObject & { export(options: { format: 'jwk' }): { x?: unknown } }
  sign(algorithm: null, data: Uint8Array, key: KeyObject): Uint8Array
  verify(algorithm: null, data: Uint8Array, key: KeyObject, signature: Uint8Array): boolean
  diffieHellman(options: { privateKey: KeyObject, publicKey: KeyObject }): Uint8Array
  createHash(algorithm: string): { update(data: Uint8Array): { digest(): Uint8Array } }
  createHmac(algorithm: string, key: Uint8Array): { update(data: Uint8Array): { digest(): Uint8Array } }
  hash?: (algorithm: string, data: Uint8Array, outputEncoding: 'buffer') => Uint8Array
  hkdfSync(digest: string, ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, keylen: number): ArrayBuffer
  createCipheriv(algorithm: 'chacha20-poly1305', key: Uint8Array, iv: Uint8Array, options: { authTagLength: number }): {
    setAAD(aad: Uint8Array, options: { plaintextLength: number }): unknown
    update(data: Uint8Array): Uint8Array
    final(): Uint8Array
    getAuthTag(): Uint8Array
  }
  createDecipheriv(algorithm: 'chacha20-poly1305', key: Uint8Array, iv: Uint8Array, options: { authTagLength: number }): {
    setAAD(aad: Uint8Array, options: { plaintextLength: number }): unknown
    setAuthTag(tag: Uint8Array): unknown
    update(data: Uint8Array): Uint8Array
    final(): Uint8Array
  }
  getRandomValues<T extends Uint8Array>(array: T): T
}

/** Base64url of 32 zero bytes: the ignored `x` of a private JWK (see makeNativeProvider). */
const JWK_PLACEHOLDER_X = 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'

const EMPTY = new Uint8Array(0)
const TAG_LENGTH = 16
// Node's hkdfSync refuses info longer than 1024 bytes; HKDF itself allows any length
const HKDF_NATIVE_MAX_INFO = 1024

/** A plain Uint8Array view of a Buffer, so results compare equal to the portable provider's. */
function plain (b: Uint8Array): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength)
}


/**
 * A small bounded cache of KeyObjects keyed by the raw key bytes: building a KeyObject parses DER
 * and costs more than the signature itself, and the same few keys (this device's, its peers')
 * are used over and over. Oldest entries go first when it is full. Private KeyObjects kept here
 * live no longer than the raw seeds the caller already holds.
 */
class KeyCache {
  private readonly map = new Map<string, KeyObject>()
  constructor (private readonly max: number) {}

  get (bytes: Uint8Array, make: () => KeyObject): KeyObject {
    // a binary string of 32 bytes is a cheap, exact map key
    const id = String.fromCharCode.apply(null, bytes as unknown as number[])
    let key = this.map.get(id)
    if (key === undefined) {
      key = make()
      if (this.map.size >= this.max) {
        const oldest = this.map.keys().next().value
        if (oldest !== undefined) this.map.delete(oldest)
      }
      this.map.set(id, key)
    }
    return key
  }
}

const KEY_CACHE_SIZE = 512

function loadNodeCrypto (): NodeCryptoModule | undefined {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process
  const mod = proc?.getBuiltinModule?.('node:crypto')
  return mod === undefined || mod === null ? undefined : mod as NodeCryptoModule
}

function makeNativeProvider (c: NodeCryptoModule): CryptoProvider {
  const edPrivate = new KeyCache(KEY_CACHE_SIZE)
  const edPublic = new KeyCache(KEY_CACHE_SIZE)
  const xPrivate = new KeyCache(KEY_CACHE_SIZE)
  const xPublic = new KeyCache(KEY_CACHE_SIZE)

  const checkLength = (what: string, key: Uint8Array): void => {
    if (key.length !== 32) throw new ProtocolError('ERR_BAD_KEY', `${what} must be 32 bytes`)
  }
  // Keys are imported as JWK, not DER: OpenSSL 3's DER decoders cost ~450 µs a key on Node 20,
  // the JWK path ~50 µs (public keys ~14 µs), and every DH ratchet step brings fresh keys.
  // A private JWK must carry `x`, but OpenSSL derives the public half from `d` and ignores it
  // (the RFC vectors and the native-vs-noble property tests hold this), so a placeholder is passed.
  const privateJwk = (crv: 'Ed25519' | 'X25519', d: Uint8Array): KeyObject =>
    c.createPrivateKey({ key: { kty: 'OKP', crv, d: toBase64url(d), x: JWK_PLACEHOLDER_X }, format: 'jwk' })
  const publicJwk = (crv: 'Ed25519' | 'X25519', x: Uint8Array): KeyObject =>
    c.createPublicKey({ key: { kty: 'OKP', crv, x: toBase64url(x) }, format: 'jwk' })
  const edPriv = (seed: Uint8Array): KeyObject => {
    checkLength('Ed25519 seed', seed)
    return edPrivate.get(seed, () => privateJwk('Ed25519', seed))
  }
  const xPriv = (key: Uint8Array): KeyObject => {
    checkLength('X25519 private key', key)
    return xPrivate.get(key, () => privateJwk('X25519', key))
  }
  const rawPublic = (priv: KeyObject): Uint8Array => fromBase64url(String(c.createPublicKey(priv).export({ format: 'jwk' }).x))

  const digest = (algorithm: string, data: Uint8Array): Uint8Array =>
    plain(c.hash !== undefined ? c.hash(algorithm, data, 'buffer') : c.createHash(algorithm).update(data).digest())
  const hmacSha256 = (key: Uint8Array, data: Uint8Array): Uint8Array => plain(c.createHmac('sha256', key).update(data).digest())

  // RFC 5869 on HMAC, for the inputs hkdfSync refuses (empty key material, long info)
  const hkdfPortable = (ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array => {
    if (length > 255 * 32) throw new RangeError('HKDF-SHA-256 output is limited to 8160 bytes')
    const prk = hmacSha256(salt.length === 0 ? new Uint8Array(32) : salt, ikm)
    const out = new Uint8Array(length)
    let t: Uint8Array = EMPTY
    for (let i = 0, offset = 0; offset < length; i++) {
      const input = new Uint8Array(t.length + info.length + 1)
      input.set(t)
      input.set(info, t.length)
      input[input.length - 1] = i + 1
      t = hmacSha256(prk, input)
      out.set(t.subarray(0, Math.min(32, length - offset)), offset)
      offset += 32
    }
    return out
  }

  return {
    name: 'native',
    randomBytes (length: number): Uint8Array {
      const out = new Uint8Array(length)
      // getRandomValues fills at most 65536 bytes per call
      for (let i = 0; i < length; i += 65536) c.getRandomValues(out.subarray(i, Math.min(length, i + 65536)))
      return out
    },
    sha256: (data) => digest('sha256', data),
    sha512: (data) => digest('sha512', data),
    hmacSha256,
    hkdfSha256 (ikm, salt, info, length) {
      if (ikm.length === 0 || info.length > HKDF_NATIVE_MAX_INFO) return hkdfPortable(ikm, salt, info, length)
      return new Uint8Array(c.hkdfSync('sha256', ikm, salt, info, length))
    },
    ed25519PublicKey: (seed) => rawPublic(edPriv(seed)),
    ed25519Sign: (seed, message) => plain(c.sign(null, message, edPriv(seed))),
    ed25519Verify (publicKey, message, signature) {
      if (publicKey.length !== 32 || signature.length !== 64) return false
      try {
        const key = edPublic.get(publicKey, () => {
          // screened once per key, when its KeyObject is built; refused keys are never cached
          if (!isUsableEd25519PublicKey(publicKey)) throw new RangeError('small-order or non-canonical Ed25519 key')
          return publicJwk('Ed25519', publicKey)
        })
        return c.verify(null, message, key, signature)
      } catch {
        // a public key that is not a curve point
        return false
      }
    },
    x25519PublicKey: (privateKey) => rawPublic(xPriv(privateKey)),
    x25519 (privateKey, publicKey) {
      checkLength('X25519 public key', publicKey)
      let shared: Uint8Array
      try {
        const pub = xPublic.get(publicKey, () => publicJwk('X25519', publicKey))
        shared = plain(c.diffieHellman({ privateKey: xPriv(privateKey), publicKey: pub }))
      } catch (err) {
        // OpenSSL refuses an all-zero (low-order) result itself
        throw new ProtocolError('ERR_BAD_KEY', 'X25519 failed: low-order or invalid public key', { cause: err })
      }
      let acc = 0
      for (const b of shared) acc |= b
      if (acc === 0) throw new ProtocolError('ERR_BAD_KEY', 'X25519 produced a low-order result')
      return shared
    },
    aeadSeal (key, nonce, plaintext, aad) {
      const cipher = c.createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG_LENGTH })
      cipher.setAAD(aad ?? EMPTY, { plaintextLength: plaintext.length })
      const head = cipher.update(plaintext)
      const tail = cipher.final()
      const tag = cipher.getAuthTag()
      const out = new Uint8Array(head.length + tail.length + TAG_LENGTH)
      out.set(head)
      out.set(tail, head.length)
      out.set(tag, head.length + tail.length)
      return out
    },
    aeadOpen (key, nonce, sealed, aad) {
      try {
        if (sealed.length < TAG_LENGTH) throw new RangeError('sealed data shorter than the tag')
        const body = sealed.subarray(0, sealed.length - TAG_LENGTH)
        const decipher = c.createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG_LENGTH })
        decipher.setAuthTag(sealed.subarray(sealed.length - TAG_LENGTH))
        decipher.setAAD(aad ?? EMPTY, { plaintextLength: body.length })
        const head = decipher.update(body)
        const tail = decipher.final()
        if (tail.length === 0) return plain(head)
        const out = new Uint8Array(head.length + tail.length)
        out.set(head)
        out.set(tail, head.length)
        return out
      } catch (err) {
        throw new ProtocolError('ERR_DECRYPT', 'authentication failed', { cause: err })
      }
    }
  }
}

const nodeCrypto = loadNodeCrypto()

/** The native provider on Node's `crypto`, or undefined where it is unavailable (browsers). */
export const nativeCrypto: CryptoProvider | undefined = nodeCrypto === undefined ? undefined : makeNativeProvider(nodeCrypto)
