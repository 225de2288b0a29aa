/**
 * Public types of the node runtime: the facade, its status and its events.
 */
import type { SignedRecord } from '../protocol/records.js'
import type { DefaultGroupService } from './groups/service.js'
import type { DefaultDeliveryService } from './messaging/delivery.js'
import type { MessagingDirectory } from './messaging/directory.js'
import type { MailboxService } from './messaging/mailbox.js'
import type { NodeRole } from './options.js'

/** The messaging services of a running full node (see {@link TalariaNode.messaging}). */
export interface NodeMessaging {
  /** 1:1 delivery: outbox, routing, inboxes, mailbox replicas, device sinks. */
  readonly delivery: DefaultDeliveryService
  /** Device lists, prekeys and locations behind a cache. */
  readonly directory: MessagingDirectory
  /** Mailbox replicas: this node's store of offline envelopes and the client of the others. */
  readonly mailbox: MailboxService
}

/** Where a node is in its lifecycle. */
export type NodeState = 'stopped' | 'starting' | 'started' | 'stopping'

/** What `GET /status` returns and `status()` reports. */
export interface NodeStatus {
  /** The node's peer id (base58). */
  peerId: string
  /** Multiaddrs the node is reachable at, each ending in /p2p/<peer id>. */
  addresses: string[]
  /** Peer ids of the peers the node has an open connection to. */
  peers: string[]
  /** Peers in the DHT routing table (0 while stopped). */
  dhtPeers: number
  /** Number of storage shards of the data dir (0 while storage is closed). */
  shards: number
  /** Talaria version (package.json). */
  version: string
  role: NodeRole
  /** Whole seconds since the node last finished starting (0 when not started). */
  uptimeSeconds: number
  state: NodeState
}

/** Options every public async function takes, last. */
export interface AbortOptions {
  /** Aborts the operation; without it a named default timeout applies. */
  signal?: AbortSignal
}

/** Options of {@link TalariaNode.getRecord}. */
export interface GetRecordOptions extends AbortOptions {
  /**
   * Read only this node's own DHT store, with no network query (the value this node holds as one
   * of the key's closest peers, or that it put itself).
   */
  offline?: boolean
  /**
   * Answer once this many copies arrived (the newest wins), instead of walking to every closest
   * peer. Default `DEFAULT_GET_RECORD_QUORUM` (node/options.ts); `Infinity` walks the whole way.
   */
  quorum?: number
}

/** Options of {@link TalariaNode.findPeer}. */
export interface FindPeerOptions extends AbortOptions {
  /**
   * Answer from the peer store when it knows the peer (default true). False forces a DHT walk.
   */
  useCache?: boolean
}

/** A peer found through {@link TalariaNode.findPeer}. */
export interface FoundPeer {
  peerId: string
  multiaddrs: string[]
  /** Peer id of the node whose answer located the peer; this node's own id for a cache hit. */
  via: string
}

/** A gossipsub message delivered to a subscriber. */
export interface PubSubMessage {
  topic: string
  data: Uint8Array
  /**
   * Peer id of the publishing node when the message is signed at the gossipsub layer. Talaria
   * publishes unsigned messages (StrictNoSign: applications sign their payloads), so it is absent.
   */
  from?: string
}

/** Verdict of a topic validator: deliver and forward, drop silently, or drop and penalise the sender. */
export type ValidationResult = 'accept' | 'ignore' | 'reject'

/** A message as a topic validator sees it. */
export interface ValidatedMessage {
  topic: string
  data: Uint8Array
  /** The peer that sent it to this node (not necessarily its author). */
  propagationSource: string
}

/** Validates a topic's messages before gossipsub delivers or forwards them. */
export type PubSubValidator = (message: ValidatedMessage) => ValidationResult | Promise<ValidationResult>

/** Handler of a topic subscription. Exceptions are logged and do not reach the network layer. */
export type PubSubHandler = (message: PubSubMessage) => void

/** Result of a publish: the peers the message was sent to directly. */
export interface PublishResult {
  recipients: string[]
}

/** Outcome of a put: the peers that confirmed they store the record, and those that failed. */
export interface PutRecordResult {
  key: Uint8Array
  successes: string[]
  failures: Array<{ peerId: string, error: Error }>
}

/** Events of a node, name → payload. */
export interface TalariaNodeEvents {
  /** A first connection to a peer opened. */
  'peer:connect': { peerId: string }
  /** The last connection to a peer closed. */
  'peer:disconnect': { peerId: string }
  /** A peer changed its subscriptions to a topic. */
  'topic:subscription-change': { peerId: string, topic: string, subscribed: boolean }
  /** The node finished starting. */
  started: { peerId: string }
  /** The node finished stopping. */
  stopped: { peerId: string }
}

/** Name of a node event. */
export type TalariaNodeEventName = keyof TalariaNodeEvents

/** A running Talaria node, built by `createNode`. */
export interface TalariaNode {
  /** The node id: the peer id of its libp2p key (base58). */
  readonly peerId: string
  readonly role: NodeRole
  /** Lifecycle state. */
  readonly state: NodeState
  /** Base URL of the HTTP server (`http://host:port`); throws ERR_NOT_STARTED before start. */
  readonly httpUrl: string
  /** Port the HTTP server is bound to; throws ERR_NOT_STARTED before start. */
  readonly httpPort: number
  /** Opens storage, libp2p, messaging, the HTTP server and the client gateway; a failure rolls back what started. */
  start(opts?: AbortOptions): Promise<void>
  /** Closes the gateway, HTTP, messaging, libp2p and storage in that order; idempotent. */
  stop(opts?: AbortOptions): Promise<void>
  /** Multiaddrs the node is reachable at, each ending in /p2p/<peer id>. */
  getMultiaddrs(): string[]
  /** Peer ids of connected peers. */
  getPeers(): string[]
  status(): NodeStatus
  /** Validates a signed record locally, then stores it on the DHT peers closest to its key. */
  putRecord(recordBytes: Uint8Array, opts?: AbortOptions): Promise<void>
  /** Like putRecord, and reports which peers confirmed the store and which failed. */
  putRecordWithResult(recordBytes: Uint8Array, opts?: AbortOptions): Promise<PutRecordResult>
  /** The best valid record for `key` found through the DHT. */
  getRecord(key: Uint8Array, opts?: GetRecordOptions): Promise<SignedRecord>
  /** Locates a peer's addresses through the DHT. */
  findPeer(peerId: string, opts?: FindPeerOptions): Promise<FoundPeer>
  /** Publishes on a gossipsub topic. */
  publish(topic: string, data: Uint8Array, opts?: AbortOptions): Promise<PublishResult>
  /** Subscribes `handler` to `topic`; the node joins the topic on its first handler. */
  subscribe(topic: string, handler: PubSubHandler): void
  /** Removes `handler` (or every handler when omitted); the node leaves the topic on the last. */
  unsubscribe(topic: string, handler?: PubSubHandler): void
  /** Peer ids of the peers known to subscribe to `topic`. */
  getSubscribers(topic: string): string[]
  /**
   * Sets the gossipsub validator of `topic` (replacing any); while it is set the topic is peer
   * scored, so messages it rejects lower their sender's score. Survives a restart.
   */
  setTopicValidator(topic: string, validator: PubSubValidator): void
  /** Removes the validator of `topic`. */
  removeTopicValidator(topic: string): void
  /** The gossipsub score of a peer as this node sees it (0 when unknown or stopped). */
  getPeerScore(peerId: string): number
  /**
   * The messaging services, for the gateway and embedders. Throws NodeError ERR_ROLE on a
   * bootstrap node and ERR_NOT_STARTED before start.
   */
  messaging(): NodeMessaging
  /**
   * The groups and rooms service (node/groups/contracts.ts `GroupService`, plus introspection), for
   * the gateway and embedders. Throws NodeError ERR_ROLE on a bootstrap node and ERR_NOT_STARTED
   * before start.
   */
  groups(): DefaultGroupService
  /** Adds an event listener; returns a function that removes it. */
  on<E extends TalariaNodeEventName>(event: E, listener: (payload: TalariaNodeEvents[E]) => void): () => void
  /** Removes an event listener. */
  off<E extends TalariaNodeEventName>(event: E, listener: (payload: TalariaNodeEvents[E]) => void): void
}
