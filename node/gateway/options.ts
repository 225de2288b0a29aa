/**
 * Options of the client gateway. Every option is optional; each default is a named constant, and
 * the limits a client must respect are announced in the challenge.
 */
import type { CryptoProvider } from '../../protocol/crypto/provider.js'
import { MAX_ENVELOPE_BYTES } from '../../protocol/limits.js'
import { NodeError } from '../errors.js'

/**
 * Largest frame accepted, in bytes: one largest envelope plus the framing of a `send` request,
 * so any valid envelope can be sent on the defaults.
 */
export const DEFAULT_MAX_FRAME_BYTES = MAX_ENVELOPE_BYTES + 4 * 1024
/** Requests per second per connection (refill rate of its token bucket). */
export const DEFAULT_MAX_REQUESTS_PER_SECOND = 200
/** Requests a connection may make in a burst (size of its token bucket). */
export const DEFAULT_REQUEST_BURST = 400
/** Requests per second per user across all its connections to this node. */
export const DEFAULT_MAX_USER_REQUESTS_PER_SECOND = 500
/** Requests a user may make in a burst across its connections. */
export const DEFAULT_USER_REQUEST_BURST = 1000
/** Open client connections per remote IP address. */
export const DEFAULT_MAX_CONNECTIONS_PER_IP = 256
/** Open client connections in total; each costs a few KB and a file descriptor. */
export const DEFAULT_MAX_CLIENT_CONNECTIONS = 10_000
/** Time a connection has to authenticate before it is closed, in milliseconds. */
export const DEFAULT_AUTH_TIMEOUT_MS = 10_000
/** Interval of WebSocket pings, in milliseconds. */
export const DEFAULT_PING_INTERVAL_MS = 30_000
/** A connection silent (no pong, no frame) for longer than this is terminated, in milliseconds. */
export const DEFAULT_PONG_TIMEOUT_MS = 60_000
/** Protocol violations (bad frames, unknown ops, requests out of turn) before a connection is closed. */
export const DEFAULT_MAX_PROTOCOL_VIOLATIONS = 10
/** Failed `auth` requests before a connection is closed. */
export const DEFAULT_MAX_AUTH_FAILURES = 3
/** Envelopes in one `send`. */
export const DEFAULT_MAX_ENVELOPES_PER_SEND = 100
/** Pushed envelopes not yet acked before pushing pauses. */
export const DEFAULT_MAX_UNACKED_PUSHES = 256
/** Bytes queued on a socket above which pushes pause until it drains. */
export const DEFAULT_PUSH_HIGH_WATER_BYTES = 1024 * 1024
/** Bytes queued on a socket above which the client counts as stalled and is disconnected. */
export const DEFAULT_MAX_SEND_BUFFER_BYTES = 16 * 1024 * 1024
/** Records a connection may leave to publish when it closes (`publish.onDisconnect`). */
export const DEFAULT_MAX_ON_DISCONNECT_RECORDS = 4
/** Requests of one connection being handled at once; more are refused with ERR_UNAVAILABLE. */
export const DEFAULT_MAX_IN_FLIGHT_REQUESTS = 64
/** Deadline of one request's work (directory, delivery), in milliseconds. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000
/** Deadline of publishing a closed connection's `onDisconnect` records, in milliseconds. */
export const DEFAULT_DISCONNECT_PUBLISH_TIMEOUT_MS = 10_000
/**
 * Background device-list lookups (the revocation check after `auth`) the gateway runs at once;
 * more wait in a queue, one entry per user however many of its devices connect.
 */
export const DEFAULT_MAX_REVOCATION_CHECKS = 16
/**
 * Deadline of one revocation check, queue time included, in milliseconds. Past it the presented
 * device list is trusted, as when the DHT cannot be reached, and the held pushes start.
 */
export const DEFAULT_REVOCATION_CHECK_TIMEOUT_MS = 10_000
/** Time `stop()` gives clients to complete the close handshake before their sockets are cut. */
export const DEFAULT_STOP_GRACE_MS = 1000

/** Options of the client gateway. */
export interface ClientGatewayInit {
  /** Default {@link DEFAULT_MAX_FRAME_BYTES}. */
  maxFrameBytes?: number
  /** Default {@link DEFAULT_MAX_REQUESTS_PER_SECOND}. */
  maxRequestsPerSecond?: number
  /** Default {@link DEFAULT_REQUEST_BURST}. */
  requestBurst?: number
  /** Default {@link DEFAULT_MAX_USER_REQUESTS_PER_SECOND}. */
  maxUserRequestsPerSecond?: number
  /** Default {@link DEFAULT_USER_REQUEST_BURST}. */
  userRequestBurst?: number
  /** Default {@link DEFAULT_MAX_CONNECTIONS_PER_IP}. */
  maxConnectionsPerIp?: number
  /** Default {@link DEFAULT_MAX_CLIENT_CONNECTIONS}. */
  maxConnections?: number
  /** Default {@link DEFAULT_AUTH_TIMEOUT_MS}. */
  authTimeoutMs?: number
  /** Default {@link DEFAULT_PING_INTERVAL_MS}. */
  pingIntervalMs?: number
  /** Default {@link DEFAULT_PONG_TIMEOUT_MS}. */
  pongTimeoutMs?: number
  /** Default {@link DEFAULT_MAX_PROTOCOL_VIOLATIONS}. */
  maxProtocolViolations?: number
  /** Default {@link DEFAULT_MAX_AUTH_FAILURES}. */
  maxAuthFailures?: number
  /** Default {@link DEFAULT_MAX_ENVELOPES_PER_SEND}. */
  maxEnvelopesPerSend?: number
  /** Default {@link DEFAULT_MAX_UNACKED_PUSHES}. */
  maxUnackedPushes?: number
  /** Default {@link DEFAULT_PUSH_HIGH_WATER_BYTES}. */
  pushHighWaterBytes?: number
  /** Default {@link DEFAULT_MAX_SEND_BUFFER_BYTES}. */
  maxSendBufferBytes?: number
  /** Default {@link DEFAULT_MAX_ON_DISCONNECT_RECORDS}. */
  maxOnDisconnectRecords?: number
  /** Default {@link DEFAULT_MAX_IN_FLIGHT_REQUESTS}. */
  maxInFlightRequests?: number
  /** Default {@link DEFAULT_REQUEST_TIMEOUT_MS}. */
  requestTimeoutMs?: number
  /** Default {@link DEFAULT_DISCONNECT_PUBLISH_TIMEOUT_MS}. */
  disconnectPublishTimeoutMs?: number
  /** Default {@link DEFAULT_STOP_GRACE_MS}. */
  stopGraceMs?: number
  /** Default {@link DEFAULT_MAX_REVOCATION_CHECKS}. */
  maxRevocationChecks?: number
  /** Default {@link DEFAULT_REVOCATION_CHECK_TIMEOUT_MS}. */
  revocationCheckTimeoutMs?: number
  /** Signature checks; default the protocol layer's default provider. */
  crypto?: CryptoProvider
}

/** The resolved options: every limit set. */
export type ClientGatewayConfig = Required<Omit<ClientGatewayInit, 'crypto'>> & Pick<ClientGatewayInit, 'crypto'>

const DEFAULTS: Required<Omit<ClientGatewayInit, 'crypto'>> = {
  maxFrameBytes: DEFAULT_MAX_FRAME_BYTES,
  maxRequestsPerSecond: DEFAULT_MAX_REQUESTS_PER_SECOND,
  requestBurst: DEFAULT_REQUEST_BURST,
  maxUserRequestsPerSecond: DEFAULT_MAX_USER_REQUESTS_PER_SECOND,
  userRequestBurst: DEFAULT_USER_REQUEST_BURST,
  maxConnectionsPerIp: DEFAULT_MAX_CONNECTIONS_PER_IP,
  maxConnections: DEFAULT_MAX_CLIENT_CONNECTIONS,
  authTimeoutMs: DEFAULT_AUTH_TIMEOUT_MS,
  pingIntervalMs: DEFAULT_PING_INTERVAL_MS,
  pongTimeoutMs: DEFAULT_PONG_TIMEOUT_MS,
  maxProtocolViolations: DEFAULT_MAX_PROTOCOL_VIOLATIONS,
  maxAuthFailures: DEFAULT_MAX_AUTH_FAILURES,
  maxEnvelopesPerSend: DEFAULT_MAX_ENVELOPES_PER_SEND,
  maxUnackedPushes: DEFAULT_MAX_UNACKED_PUSHES,
  pushHighWaterBytes: DEFAULT_PUSH_HIGH_WATER_BYTES,
  maxSendBufferBytes: DEFAULT_MAX_SEND_BUFFER_BYTES,
  maxOnDisconnectRecords: DEFAULT_MAX_ON_DISCONNECT_RECORDS,
  maxInFlightRequests: DEFAULT_MAX_IN_FLIGHT_REQUESTS,
  requestTimeoutMs: DEFAULT_REQUEST_TIMEOUT_MS,
  disconnectPublishTimeoutMs: DEFAULT_DISCONNECT_PUBLISH_TIMEOUT_MS,
  stopGraceMs: DEFAULT_STOP_GRACE_MS,
  maxRevocationChecks: DEFAULT_MAX_REVOCATION_CHECKS,
  revocationCheckTimeoutMs: DEFAULT_REVOCATION_CHECK_TIMEOUT_MS
}

/** Applies defaults and validates the whole init; throws NodeError('ERR_INVALID_OPTION'). */
export function resolveGatewayConfig (init: ClientGatewayInit): ClientGatewayConfig {
  for (const key of Object.keys(init)) {
    if (key !== 'crypto' && !Object.hasOwn(DEFAULTS, key)) throw new NodeError('ERR_INVALID_OPTION', `unknown gateway option ${JSON.stringify(key)}`)
  }
  const config: ClientGatewayConfig = { ...DEFAULTS, crypto: init.crypto }
  for (const key of Object.keys(DEFAULTS) as Array<keyof typeof DEFAULTS>) {
    const value = init[key] ?? DEFAULTS[key]
    if (!Number.isSafeInteger(value) || value < 1) throw new NodeError('ERR_INVALID_OPTION', `gateway option ${key} must be a positive integer, got ${value}`)
    config[key] = value
  }
  return config
}
