/**
 * Typed errors. Every failure Talaria reports carries a stable `code`; callers branch on the code,
 * never on the message. The underlying error, if any, travels in `cause`.
 */

/** Base class of every error Talaria throws on purpose. */
export class TalariaError extends Error {
  /** Stable, documented identifier of this failure; never changes between releases. */
  readonly code: string

  constructor (code: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.name = 'TalariaError'
  }
}

/**
 * Codes of failures raised while decoding, validating or verifying protocol data, as a runtime
 * list so docs/PROTOCOL.md can be checked against it. Codes are stable: never renamed or reused.
 */
export const PROTOCOL_ERROR_CODES = [
  'ERR_TOO_LARGE',
  'ERR_MALFORMED',
  'ERR_UNSUPPORTED_VERSION',
  'ERR_BAD_SIGNATURE',
  'ERR_EXPIRED',
  'ERR_STALE',
  'ERR_KEY_MISMATCH',
  'ERR_DECRYPT',
  'ERR_REPLAY',
  'ERR_TOO_MANY_SKIPPED',
  'ERR_BAD_KEY',
  'ERR_NOT_AUTHORIZED'
] as const

/** Codes of failures raised while decoding, validating or verifying protocol data. */
export type ProtocolErrorCode = typeof PROTOCOL_ERROR_CODES[number]

/** A protocol-level failure: bad bytes, a bad signature, a failed decryption. */
export class ProtocolError extends TalariaError {
  declare readonly code: ProtocolErrorCode

  constructor (code: ProtocolErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options)
    this.name = 'ProtocolError'
  }
}

/** True when `err` is a TalariaError with the given code. */
export function isErrorCode (err: unknown, code: string): boolean {
  return err instanceof TalariaError && err.code === code
}
