/**
 * Errors of the client SDK. Every failure has a stable `code`: either one of the client protocol's
 * codes the node answered with (docs/ERRORS.md), or one of {@link CLIENT_SDK_ERROR_CODES} raised on
 * this side.
 */
import { TalariaError } from '../protocol/errors.js'

/** Codes the SDK raises itself; stable, never renamed or reused. */
export const CLIENT_SDK_ERROR_CODES = [
  /** Not connected, and the operation cannot wait (or stopped waiting). */
  'ERR_DISCONNECTED',
  /** A request or a send did not complete in time. */
  'ERR_TIMEOUT',
  /** The client was closed. */
  'ERR_CLOSED',
  /** The caller's signal aborted the operation. */
  'ERR_ABORTED',
  /** The node speaks another client protocol version, or sent a frame this client cannot read. */
  'ERR_PROTOCOL',
  /** The recipient has no published, valid device list or no device with valid prekeys. */
  'ERR_NO_DEVICES',
  /** A record from the node failed verification (signature, certificate, keys). */
  'ERR_INVALID_RECORD',
  /** The store belongs to another device identity. */
  'ERR_STORE_MISMATCH',
  /** This device is not (or no longer) in its user's device list. */
  'ERR_DEVICE_REVOKED',
  /** The identity file or value is malformed. */
  'ERR_BAD_IDENTITY',
  /** Bad arguments (e.g. a malformed user id or a text over the limit). */
  'ERR_BAD_ARGUMENT'
] as const

/** A code the SDK raises itself. */
export type ClientSdkErrorCode = typeof CLIENT_SDK_ERROR_CODES[number]

/** An SDK failure: `code` is an SDK code or the client protocol code the node answered with. */
export class ClientError extends TalariaError {
  /** For rate limits: the node's hint of when to retry. */
  readonly retryAfterMs?: number

  constructor (code: string, message: string, options?: { cause?: unknown, retryAfterMs?: number }) {
    super(code, message, options)
    this.name = 'ClientError'
    if (options?.retryAfterMs !== undefined) this.retryAfterMs = options.retryAfterMs
  }
}

/** The error an aborted signal stands for. */
export function abortError (signal: AbortSignal): ClientError {
  return new ClientError('ERR_ABORTED', 'operation aborted', { cause: signal.reason })
}
