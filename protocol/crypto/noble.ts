import { chacha20poly1305 } from '@noble/ciphers/chacha.js'
import { ed25519, x25519 } from '@noble/curves/ed25519.js'
import { hkdf } from '@noble/hashes/hkdf.js'
import { hmac } from '@noble/hashes/hmac.js'
import { sha256, sha512 } from '@noble/hashes/sha2.js'
import { ProtocolError } from '../errors.js'
import type { CryptoProvider } from './provider.js'
import { isUsableEd25519PublicKey } from './weak-keys.js'

const EMPTY = new Uint8Array(0)

function randomBytes (length: number): Uint8Array {
  const out = new Uint8Array(length)
  // getRandomValues fills at most 65536 bytes per call
  for (let i = 0; i < length; i += 65536) {
    globalThis.crypto.getRandomValues(out.subarray(i, Math.min(length, i + 65536)))
  }
  return out
}

/** The portable implementation on `@noble/*`: runs anywhere, and is the reference in tests. */
export const nobleCrypto: CryptoProvider = {
  name: 'noble',
  randomBytes,
  sha256: (data) => sha256(data),
  sha512: (data) => sha512(data),
  hmacSha256: (key, data) => hmac(sha256, key, data),
  hkdfSha256: (ikm, salt, info, length) => hkdf(sha256, ikm, salt, info, length),
  ed25519PublicKey: (seed) => ed25519.getPublicKey(seed),
  ed25519Sign: (seed, message) => ed25519.sign(message, seed),
  ed25519Verify (publicKey, message, signature) {
    if (signature.length !== 64 || !isUsableEd25519PublicKey(publicKey)) return false
    try {
      // strict RFC 8032 decoding (not ZIP-215), as OpenSSL does, so both providers agree
      return ed25519.verify(signature, message, publicKey, { zip215: false })
    } catch {
      return false
    }
  },
  x25519PublicKey: (privateKey) => x25519.getPublicKey(privateKey),
  x25519 (privateKey, publicKey) {
    try {
      return x25519.getSharedSecret(privateKey, publicKey)
    } catch (err) {
      throw new ProtocolError('ERR_BAD_KEY', 'X25519 produced a low-order result', { cause: err })
    }
  },
  aeadSeal: (key, nonce, plaintext, aad) => chacha20poly1305(key, nonce, aad ?? EMPTY).encrypt(plaintext),
  aeadOpen (key, nonce, sealed, aad) {
    try {
      return chacha20poly1305(key, nonce, aad ?? EMPTY).decrypt(sealed)
    } catch (err) {
      throw new ProtocolError('ERR_DECRYPT', 'authentication failed', { cause: err })
    }
  }
}
