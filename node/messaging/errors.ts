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
