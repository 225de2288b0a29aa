/**
 * The one crypto interface of Talaria. Every primitive is synchronous so that the ratchets stay
 * synchronous and cheap; keys are raw bytes in the encodings of the RFCs (32-byte Ed25519 seeds and
 * public keys, 32-byte X25519 scalars and public keys).
 *
 * Two implementations hold to it: the portable one on `@noble/*` (browsers, and the reference), and
 * the native one on Node's `crypto` (hot paths on servers). Tests hold them against each other and
 * against the RFC vectors.
 */
export interface CryptoProvider {
  /** Short name for benchmarks and logs: 'noble' or 'native'. */
  readonly name: string
  randomBytes(length: number): Uint8Array
  /** SHA-256 (FIPS 180-4). */
  sha256(data: Uint8Array): Uint8Array
  /** SHA-512 (FIPS 180-4). */
  sha512(data: Uint8Array): Uint8Array
  /** HMAC-SHA-256 (RFC 2104). */
  hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array
  /** HKDF-SHA-256 (RFC 5869): extract then expand to `length` bytes. */
  hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array
  /** Ed25519 public key (32 bytes) from a 32-byte seed (RFC 8032). */
  ed25519PublicKey(seed: Uint8Array): Uint8Array
  /** Ed25519 signature (64 bytes) over `message` (RFC 8032, pure Ed25519). */
  ed25519Sign(seed: Uint8Array, message: Uint8Array): Uint8Array
  /** Ed25519 verification; false (never a throw) for a malformed key or signature. */
  ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean
  /** X25519 public key from a 32-byte private scalar (RFC 7748). */
  x25519PublicKey(privateKey: Uint8Array): Uint8Array
  /** X25519 shared secret; throws ProtocolError('ERR_BAD_KEY') on an all-zero result. */
  x25519(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array
  /** ChaCha20-Poly1305 AEAD (RFC 8439): returns ciphertext || 16-byte tag. */
  aeadSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad?: Uint8Array): Uint8Array
  /** ChaCha20-Poly1305 open; throws ProtocolError('ERR_DECRYPT') when authentication fails. */
  aeadOpen(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad?: Uint8Array): Uint8Array
}
