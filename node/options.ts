/**
 * Options of a Talaria node. Every option is optional; each default is a named constant that the
 * CLI help and the README show.
 */
import type { Logger } from 'pino'

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
}
