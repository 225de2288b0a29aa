/**
 * Options of a Talaria node. Every option is optional; each default is a named constant that the
 * CLI help and the README show.
 */
import type { Logger } from 'pino'
import type { ClientGatewayInit } from './gateway/options.js'

/** Default data directory, relative to the working directory. */
export const DEFAULT_DATA_DIR = './.talaria'
/** Default libp2p listen addresses: TCP 7700 and WebSockets 7701 on all interfaces. */
export const DEFAULT_LISTEN: readonly string[] = ['/ip4/0.0.0.0/tcp/7700', '/ip4/0.0.0.0/tcp/7701/ws']
/** Default port of the node's HTTP server (health, status, later the client WebSocket). */
export const DEFAULT_HTTP_PORT = 7780
/** Default interface the HTTP server binds to. */
export const DEFAULT_HTTP_HOST = '0.0.0.0'
/** Number of LevelDB shards of a new data dir; an existing data dir keeps the number it records. */
export const DEFAULT_SHARDS = 8

/** Default deadline of a DHT record put (store on the closest peers), in milliseconds. */
export const DEFAULT_PUT_RECORD_TIMEOUT_MS = 30_000
/** Default deadline of a DHT record lookup, in milliseconds. */
export const DEFAULT_GET_RECORD_TIMEOUT_MS = 30_000
/**
 * Copies of a record a DHT lookup waits for before it answers with the newest of them (its own
 * store's copy counts as one). Every copy is signed, so the quorum guards freshness only: a peer
 * that missed an update (or withholds one) is outvoted unless all the first responders did.
 * A lookup that finds fewer copies runs the whole walk, as before.
 */
export const DEFAULT_GET_RECORD_QUORUM = 4
/** Default deadline of a DHT peer lookup, in milliseconds. */
export const DEFAULT_FIND_PEER_TIMEOUT_MS = 30_000
/** Default deadline of a gossipsub publish, in milliseconds. */
export const DEFAULT_PUBLISH_TIMEOUT_MS = 10_000
/** Default deadline of `start()` (storage, libp2p listeners, HTTP bind), in milliseconds. */
export const DEFAULT_START_TIMEOUT_MS = 30_000
/** Default deadline of `stop()`, in milliseconds; past it the remaining parts are abandoned. */
export const DEFAULT_STOP_TIMEOUT_MS = 10_000
/** Most connections a node keeps open; past it the connection manager prunes the least valued. */
export const DEFAULT_MAX_CONNECTIONS = 300
/**
 * Inbound connections accepted per second from one IP address. libp2p's default (5) rejects the
 * sixth dial in a second, and on a loopback or LAN mesh every peer shares one address.
 */
export const DEFAULT_INBOUND_CONNECTION_THRESHOLD = 100
/** Inbound connections that may be upgrading (encryption, muxer) at once. libp2p's default is 10. */
export const DEFAULT_MAX_INCOMING_PENDING_CONNECTIONS = 64
/** Delay between start and the first dial of the bootstrap peers, in milliseconds. */
export const DEFAULT_BOOTSTRAP_DIAL_DELAY_MS = 200

/** Nodes that keep each user's mailbox (offline envelopes): the k closest to its mailbox key. */
export const DEFAULT_MAILBOX_REPLICAS = 3
/** How long a mailbox replica keeps an undelivered envelope, in milliseconds (14 days). */
export const DEFAULT_MAILBOX_TTL_MS = 14 * 24 * 3600 * 1000
/**
 * Mailbox replicas that must confirm a write before the envelope counts as delivered; all of them
 * when fewer exist. The others are retried in the background.
 */
export const DEFAULT_MAILBOX_WRITE_QUORUM = 2

/** How long a node keeps group and room messages, in milliseconds (30 days). */
export const DEFAULT_GROUP_RETENTION_MS = 30 * 24 * 3600 * 1000
/** Most messages a node keeps per group; the newest win. */
export const DEFAULT_GROUP_HISTORY_LIMIT = 100_000
/** Most messages a node keeps per room; the newest win. */
export const DEFAULT_ROOM_HISTORY_LIMIT = 1_000
/** Most group logs a node holds in memory (logs of groups it follows always stay). */
export const DEFAULT_MAX_GROUPS = 10_000

/** What a node is for: a full node, or a bootstrap node (DHT server, no user traffic). */
export type NodeRole = 'node' | 'bootstrap'

/** Everything `createNode` accepts. */
export interface TalariaNodeInit {
  /** Data directory: node key, config, shards. Default {@link DEFAULT_DATA_DIR}. */
  dataDir?: string
  /** libp2p listen multiaddrs. Default {@link DEFAULT_LISTEN}. */
  listen?: string[]
  /** Extra multiaddrs to announce instead of the listen addresses (public address behind NAT). */
  announce?: string[]
  /** HTTP port; 0 picks a free port. Default {@link DEFAULT_HTTP_PORT}. */
  httpPort?: number
  /** HTTP bind address. Default {@link DEFAULT_HTTP_HOST}. */
  httpHost?: string
  /** Multiaddrs of peers to join the mesh through, added to the shipped list in `bootstrap/`. */
  bootstrap?: string[]
  /** Use the shipped bootstrap list from `bootstrap/` (default true; tests turn it off). */
  useDefaultBootstrap?: boolean
  /** Discover peers on the LAN by mDNS (multicast). Default false. */
  mdns?: boolean
  /** Full node or bootstrap node. Default 'node'. */
  role?: NodeRole
  /** Shards of a new data dir. Default {@link DEFAULT_SHARDS}. */
  shards?: number
  /**
   * Keep loopback and private addresses in the DHT (needed for meshes on one machine or a LAN).
   * Default: true when every listen address is loopback or private, else false.
   */
  allowPrivateAddresses?: boolean
  /** Root logger; each component gets a child. Default: a silent logger. */
  logger?: Logger
  /** Most open connections. Default {@link DEFAULT_MAX_CONNECTIONS}. */
  maxConnections?: number
  /** Inbound connections per second per IP. Default {@link DEFAULT_INBOUND_CONNECTION_THRESHOLD}. */
  inboundConnectionThreshold?: number
  /** Inbound connections upgrading at once. Default {@link DEFAULT_MAX_INCOMING_PENDING_CONNECTIONS}. */
  maxIncomingPendingConnections?: number
  /** Mailbox replicas per user. Default {@link DEFAULT_MAILBOX_REPLICAS}. */
  mailboxReplicas?: number
  /** Lifetime of an envelope in a mailbox replica, in milliseconds. Default {@link DEFAULT_MAILBOX_TTL_MS}. */
  mailboxTtlMs?: number
  /** Replica confirmations a mailbox write needs. Default {@link DEFAULT_MAILBOX_WRITE_QUORUM}. */
  mailboxWriteQuorum?: number
  /**
   * First delay before an attached device's mailbox is pulled again, in milliseconds, doubled after
   * each pull that finds nothing new; 0 turns re-pulls off. Default 30 s (`DEFAULT_MAILBOX_POLL_MS`).
   */
  mailboxPollMs?: number
  /** Longest delay between re-pulls of an attached device's mailbox, in milliseconds. Default 10 min (`DEFAULT_MAILBOX_POLL_MAX_MS`). */
  mailboxPollMaxMs?: number
  /** How long group and room messages are kept, in milliseconds. Default {@link DEFAULT_GROUP_RETENTION_MS}. */
  groupRetentionMs?: number
  /** Messages kept per group. Default {@link DEFAULT_GROUP_HISTORY_LIMIT}. */
  groupHistoryLimit?: number
  /** Messages kept per room. Default {@link DEFAULT_ROOM_HISTORY_LIMIT}. */
  roomHistoryLimit?: number
  /** Group logs held in memory. Default {@link DEFAULT_MAX_GROUPS}. */
  maxGroups?: number
  /** Options of the client gateway (WebSocket at /v1), passed through unchanged. */
  gateway?: ClientGatewayInit
}
