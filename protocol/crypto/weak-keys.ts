/**
 * Ed25519 public-key screening shared by both providers. RFC 8032 verification accepts, under a
 * small-order public key, signatures that verify for every message (e.g. A = R = identity,
 * S = 0) — OpenSSL and noble both do. Such a key proves nothing, so Talaria refuses it, and a
 * non-canonical encoding too, in both providers alike, so they never disagree on a verdict.
 */
import { ed25519 } from '@noble/curves/ed25519.js'

/** True for a 32-byte canonical encoding of a curve point that is not of small order. */
export function isUsableEd25519PublicKey (publicKey: Uint8Array): boolean {
  if (publicKey.length !== 32) return false
  try {
    return !ed25519.Point.fromBytes(publicKey, false).isSmallOrder()
  } catch {
    return false
  }
}
