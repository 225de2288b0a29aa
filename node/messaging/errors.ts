/**
 * Errors of the messaging services. Their codes are client error codes (protocol/client-protocol.ts),
 * so the gateway hands them to clients unchanged.
 */
import type { ClientErrorCode } from '../../protocol/client-protocol.js'
import { TalariaError } from '../../protocol/errors.js'

/** Codes the messaging services raise: a subset of the client error codes. */
export type MessagingErrorCode = Extract<ClientErrorCode,
  'ERR_UNAVAILABLE' | 'ERR_INVALID_ENVELOPE' | 'ERR_INVALID_RECORD' | 'ERR_TIMEOUT' | 'ERR_NOT_FOUND' | 'ERR_BAD_REQUEST' | 'ERR_NOT_SENDER' | 'ERR_INTERNAL'>

/** A failure of the delivery or directory service. */
export class MessagingError extends TalariaError {
  declare readonly code: MessagingErrorCode

  constructor (code: MessagingErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options)
    this.name = 'MessagingError'
  }
}

/** Code a mailbox replica answers when a fetch or delete is not backed by a valid proof. */
export const MAILBOX_NOT_AUTHORIZED = 'ERR_NOT_AUTHORIZED'

/** Why a mailbox replica refused a fetch or delete. */
export type MailboxRefusalReason =
  /** The request carried no location record. */
  | 'missing-proof'
  /** The record failed validation: signature, certificate chain, key, or its time window. */
  | 'invalid-proof'
  /** The record's certificate speaks for another user than the request names. */
  | 'wrong-user'
  /** No live entry of the record names the requesting node for the requested device. */
  | 'wrong-node'

/**
 * A mailbox replica refused a fetch or delete. Node-to-node only, never shown to clients, so its
 * code is the protocol's ERR_NOT_AUTHORIZED rather than a client error code; `reason` says which
 * check failed, for logs and tests.
 */
export class MailboxAuthorizationError extends TalariaError {
  declare readonly code: typeof MAILBOX_NOT_AUTHORIZED
  readonly reason: MailboxRefusalReason

  constructor (reason: MailboxRefusalReason, message: string, options?: { cause?: unknown }) {
    super(MAILBOX_NOT_AUTHORIZED, message, options)
    this.name = 'MailboxAuthorizationError'
    this.reason = reason
  }
}
