/**
 * The client protocol (v1): what a client and the node it connects to exchange over the WebSocket
 * at `/v1`. Binary frames carry MessagePack, text frames carry JSON — the same schema; in JSON,
 * byte fields travel as `{ "$b": "<base64url>" }`.
 *
 * This file is the contract between the node's gateway (`node/gateway/`) and the client SDK
 * (`client/`). The frame codecs and validators live alongside it in this file.
 */
import type { DeviceId, MessageId, UserId } from './ids.js'

/** Version carried in the challenge; a client refuses a node that speaks another. */
export const CLIENT_PROTOCOL_VERSION = 1
/** HTTP path of the client WebSocket. */
export const CLIENT_PATH = '/v1'

/** Limits a node announces in its challenge; each has its own error code when exceeded. */
export interface ClientLimits {
  /** Largest frame the node accepts, in bytes (ERR_FRAME_TOO_LARGE). */
  maxFrameBytes: number
  /** Requests per second per connection (ERR_RATE_LIMITED). */
  maxRequestsPerSecond: number
  /** Requests per second per user across its connections (ERR_USER_RATE_LIMITED). */
  maxUserRequestsPerSecond: number
  /** Envelopes in one `send` (ERR_TOO_MANY_ENVELOPES). */
  maxEnvelopesPerSend: number
  /** Pushed envelopes not yet acked before the node pauses pushing to this connection. */
  maxUnackedPushes: number
}

/** Server → client, first frame on every connection. */
export interface ChallengeFrame {
  t: 'challenge'
  v: number
  /** 32 random bytes the client signs to authenticate. */
  nonce: Uint8Array
  /** The node's peer id, bound into the signature so a challenge cannot be replayed elsewhere. */
  node: string
  /** The node's libp2p multiaddrs, for the client's location record. */
  addrs: string[]
  limits: ClientLimits
  /** Node clock, ms since the epoch. */
  time: number
}

/** Every request operation with its request and response bodies. */
export interface ClientOps {
  /**
   * Authenticates a device. `sig` is the device's Ed25519 signature over
   * `authSigningBytes(nonce, node, user, device)`. The node checks the certificate, the
   * root-signed device list (the device must be active in it, and not revoked in a newer list the
   * node knows) and the signature.
   */
  auth: {
    req: { user: UserId, device: DeviceId, cert: Uint8Array, deviceList: Uint8Array, sig: Uint8Array }
    res: { user: UserId, device: DeviceId, time: number }
  }
  /**
   * Stores signed records (device list, prekeys, location, profile) in the DHT. Each must be
   * valid (`validateRecord`) and about the authenticated user or device.
   */
  publish: {
    /**
     * `onDisconnect`: records the node publishes, unchanged, when this connection closes — the
     * client pre-signs a newer location record with no entries, so its location is withdrawn
     * even though it is gone when that happens.
     */
    req: { records: Uint8Array[], onDisconnect?: Uint8Array[] }
    res: { stored: number, failures: Array<{ index: number, code: string, message: string }> }
  }
  /** The signed records a sender needs to reach `user`: its device list and each active device's prekeys. */
  lookup: {
    req: { user: UserId }
    res: { deviceList?: Uint8Array, prekeys: Uint8Array[] }
  }
  /**
   * Hands encoded DirectEnvelopes to the node. Every `from` must be the authenticated device.
   * The response means: durable in this node's outbox. Idempotent by envelope id.
   */
  send: {
    req: { envelopes: Uint8Array[] }
    res: { accepted: MessageId[] }
  }
  /** The client has durably stored these pushed envelopes; the node may delete them everywhere. */
  ack: {
    req: { ids: MessageId[] }
    res: { removed: number }
  }
  /** Application-level keepalive (browsers cannot send WebSocket pings). */
  ping: {
    req: Record<string, never>
    res: { time: number }
  }
}

/** Name of a request operation. */
export type ClientOp = keyof ClientOps

/** Client → server. `id` is chosen by the client, unique among its requests in flight. */
export interface RequestFrame<Op extends ClientOp = ClientOp> {
  t: 'req'
  id: number
  op: Op
  body: ClientOps[Op]['req']
}

/** Server → client answer to a request. */
export type ResponseFrame<Op extends ClientOp = ClientOp> =
  | { t: 'res', id: number, ok: true, body: ClientOps[Op]['res'] }
  | { t: 'res', id: number, ok: false, error: ClientErrorBody }

/** A typed error as the client sees it; `code` is from docs/ERRORS.md. */
export interface ClientErrorBody {
  code: ClientErrorCode
  message: string
  /** For rate limits: when to try again. */
  retryAfterMs?: number
}

/** Events the node pushes, with their bodies. */
export interface ClientEvents {
  /** An envelope for this device. The client acks it (`ack`) once it is durable on its side. */
  message: { envelope: Uint8Array }
  /** Envelopes this device sent reached the recipient's node inbox or its mailbox replicas. */
  delivered: { ids: MessageId[] }
}

/** Server → client push. */
export interface EventFrame<Ev extends keyof ClientEvents = keyof ClientEvents> {
  t: 'evt'
  ev: Ev
  body: ClientEvents[Ev]
}

/** Any frame. */
export type ClientFrame = ChallengeFrame | RequestFrame | ResponseFrame | EventFrame

/**
 * Client-facing error codes; docs/ERRORS.md documents each and a test holds the two equal.
 * Codes never change meaning between releases.
 */
export const CLIENT_ERROR_CODES = [
  'ERR_BAD_FRAME',
  'ERR_FRAME_TOO_LARGE',
  'ERR_UNKNOWN_OP',
  'ERR_BAD_REQUEST',
  'ERR_NOT_AUTHENTICATED',
  'ERR_ALREADY_AUTHENTICATED',
  'ERR_AUTH_FAILED',
  'ERR_DEVICE_REVOKED',
  'ERR_RATE_LIMITED',
  'ERR_USER_RATE_LIMITED',
  'ERR_TOO_MANY_CONNECTIONS',
  'ERR_TOO_MANY_ENVELOPES',
  'ERR_INVALID_ENVELOPE',
  'ERR_NOT_SENDER',
  'ERR_INVALID_RECORD',
  'ERR_NOT_FOUND',
  'ERR_UNAVAILABLE',
  'ERR_TIMEOUT',
  'ERR_INTERNAL'
] as const

/** A client-facing error code. */
export type ClientErrorCode = typeof CLIENT_ERROR_CODES[number]
