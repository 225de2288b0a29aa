/**
 * Counters of the client gateway, read through `stats()`. Plain numbers bumped on the hot path;
 * a metrics exporter can read them when it is scraped.
 */
import type { ClientErrorCode } from '../../protocol/client-protocol.js'

/** A snapshot of the gateway's counters. */
export interface ClientGatewayStats {
  /** Open connections now. */
  connections: number
  /** Authenticated connections now. */
  authenticatedConnections: number
  /** Connections accepted since start. */
  accepted: number
  /** Connections refused (per-IP or total connection limit) since start. */
  refused: number
  /** Successful authentications since start. */
  authenticated: number
  /** Frames received. */
  framesIn: number
  /** Frames sent. */
  framesOut: number
  /** Requests dispatched to a handler. */
  requests: number
  /** Envelopes pushed to devices. */
  pushes: number
  /** Connections terminated by the keepalive. */
  keepaliveTerminations: number
  /** Error responses sent, by code. */
  errors: Partial<Record<ClientErrorCode, number>>
}

/** The gateway's live counters. */
export class GatewayStats {
  accepted = 0
  refused = 0
  authenticated = 0
  framesIn = 0
  framesOut = 0
  requests = 0
  pushes = 0
  keepaliveTerminations = 0
  readonly errors: Partial<Record<ClientErrorCode, number>> = {}

  /** Counts one error response with `code`. */
  count (code: ClientErrorCode): void {
    this.errors[code] = (this.errors[code] ?? 0) + 1
  }

  /** A copy of the counters, with the connection gauges filled in by the caller. */
  snapshot (connections: number, authenticatedConnections: number): ClientGatewayStats {
    return {
      connections,
      authenticatedConnections,
      accepted: this.accepted,
      refused: this.refused,
      authenticated: this.authenticated,
      framesIn: this.framesIn,
      framesOut: this.framesOut,
      requests: this.requests,
      pushes: this.pushes,
      keepaliveTerminations: this.keepaliveTerminations,
      errors: { ...this.errors }
    }
  }
}
