/**
 * Signed Talaria records for tests: a valid profile record, a forged one and an expired one.
 */
import { createUserIdentity, type UserIdentity } from '../../protocol/identity.js'
import { encodeProfilePayload, recordKey, signRecord } from '../../protocol/records.js'

/** A user and helpers that sign profile records for it. */
export interface TestUser {
  user: UserIdentity
  key: Uint8Array
  /** A valid profile record with `seq`, expiring `ttlMs` from now. */
  profile(seq: number, displayName: string, ttlMs?: number): Uint8Array
}

/** A fresh user whose profile records tests put and get. */
export function testUser (): TestUser {
  const user = createUserIdentity()
  const key = recordKey('profile', user.userId)
  return {
    user,
    key,
    profile: (seq, displayName, ttlMs = 60_000) => signRecord(
      { kind: 'profile', id: user.userId, seq, expiresAt: Date.now() + ttlMs, payload: encodeProfilePayload({ displayName }) },
      { seed: user.rootSeed, publicKey: user.rootPublicKey }
    )
  }
}

/** `record` with one bit of its signature flipped (the signature is the last field, no cert). */
export function forge (record: Uint8Array): Uint8Array {
  const copy = record.slice()
  copy[copy.length - 1] = (copy[copy.length - 1] ?? 0) ^ 0x01
  return copy
}

/** A profile record of `user` that expired a minute ago. */
export function expiredProfile (user: UserIdentity, seq: number): Uint8Array {
  const issuedAt = Date.now() - 10 * 60_000
  return signRecord(
    { kind: 'profile', id: user.userId, seq, expiresAt: Date.now() - 60_000, payload: encodeProfilePayload({ displayName: 'old' }) },
    { seed: user.rootSeed, publicKey: user.rootPublicKey },
    { now: issuedAt }
  )
}
