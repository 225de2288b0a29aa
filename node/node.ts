/**
 * `createNode`: assembles a Talaria node from its parts and runs them in order — storage, libp2p,
 * messaging (directory, delivery, mailbox), HTTP, the client gateway — closing them in reverse.
 * A bootstrap node runs neither messaging nor the gateway. The node is a thin facade over the
 * services.
 */
import { isIP } from 'node:net'
import { readFileSync } from 'node:fs'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { pino, type Logger } from 'pino'
import { DEFAULT_BOOTSTRAP, validateBootstrapAddrs } from '../bootstrap/index.js'
import { MAX_HISTORY_LIMIT, MAX_RETENTION_MS } from '../protocol/groups/ops.js'
import { MAX_RECORD_LIFETIME_MS } from '../protocol/limits.js'
import type { SignedRecord } from '../protocol/records.js'
import { openStorage, type Storage } from '../storage/index.js'
import { StorageDatastore } from './datastore.js'
import { NodeError } from './errors.js'
import { TypedEmitter } from './events.js'
import { DefaultHttpServer } from './http.js'
import { createTalariaLibp2p, dhtRoutingTableSize, gossipPeerScore, setTopicScoring, type TalariaLibp2p } from './libp2p.js'
import { loadOrCreateNodeKey } from './node-key.js'
import {
  DEFAULT_BOOTSTRAP_DIAL_DELAY_MS,
  DEFAULT_DATA_DIR,
  DEFAULT_HTTP_HOST,
  DEFAULT_HTTP_PORT,
  DEFAULT_INBOUND_CONNECTION_THRESHOLD,
  DEFAULT_LISTEN,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_INCOMING_PENDING_CONNECTIONS,
  DEFAULT_MAILBOX_REPLICAS,
  DEFAULT_MAILBOX_TTL_MS,
  DEFAULT_MAILBOX_WRITE_QUORUM,
  DEFAULT_SHARDS,
  DEFAULT_GROUP_HISTORY_LIMIT,
  DEFAULT_GROUP_RETENTION_MS,
  DEFAULT_MAX_GROUPS,
  DEFAULT_ROOM_HISTORY_LIMIT,
  type NodeRole,
  type TalariaNodeInit
} from './options.js'
import { createClientGateway, type ClientGateway } from './gateway/index.js'
import type { ClientGatewayInit } from './gateway/options.js'
import { createGroups, type Groups } from './groups/index.js'
import type { DefaultGroupService, GroupServiceInit } from './groups/index.js'
import { createMessaging, DEFAULT_MAILBOX_POLL_MAX_MS, DEFAULT_MAILBOX_POLL_MS, type Messaging } from './messaging/index.js'
import { DefaultPubSub, type PubSubRouter } from './pubsub.js'
import { DefaultRecordRouting } from './record-routing.js'
import type {
  AbortOptions,
  FindPeerOptions,
  FoundPeer,
  GetRecordOptions,
  NodeMessaging,
  NodeState,
  NodeStatus,
  PubSubHandler,
  PubSubValidator,
  PublishResult,
  PutRecordResult,
  TalariaNode,
  TalariaNodeEventName,
  TalariaNodeEvents
} from './types.js'

/** The Talaria version, reported by identify and `/status`. */
export const TALARIA_VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version

/** Every key `TalariaNodeInit` has; anything else is a mistake worth reporting. */
const INIT_KEYS = new Set<string>([
  'dataDir', 'listen', 'announce', 'httpPort', 'httpHost', 'bootstrap', 'useDefaultBootstrap', 'mdns', 'role',
  'shards', 'allowPrivateAddresses', 'logger', 'maxConnections', 'inboundConnectionThreshold',
  'maxIncomingPendingConnections', 'mailboxReplicas', 'mailboxTtlMs', 'mailboxWriteQuorum', 'mailboxPollMs', 'mailboxPollMaxMs', 'gateway',
  'groupRetentionMs', 'groupHistoryLimit', 'roomHistoryLimit', 'maxGroups'
])

/** Longest group retention a node accepts: 365 days (the longest a group's own settings may ask). */
const MAX_GROUP_RETENTION_MS = MAX_RETENTION_MS
/** Largest per-group history limit a node accepts. */
const MAX_GROUP_HISTORY_LIMIT = MAX_HISTORY_LIMIT

/** Longest mailbox re-pull delay a node accepts: a day. */
const MAX_MAILBOX_POLL_MS = 24 * 3600_000

/** Most mailbox replicas a node may ask for (one DHT bucket). */
const MAX_MAILBOX_REPLICAS = 20

/** Options with every default applied. */
interface ResolvedInit {
  dataDir: string
  listen: string[]
  announce: string[]
  httpPort: number
  httpHost: string
  bootstrap: string[]
  mdns: boolean
  role: NodeRole
  shards: number
  allowPrivateAddresses: boolean
  logger: Logger
  maxConnections: number
  inboundConnectionThreshold: number
  maxIncomingPendingConnections: number
  mailboxReplicas: number
  mailboxTtlMs: number
  mailboxWriteQuorum: number
  mailboxPollMs: number
  mailboxPollMaxMs: number
  groups: Required<Pick<GroupServiceInit, 'retentionMs' | 'groupHistoryLimit' | 'roomHistoryLimit' | 'maxGroups'>>
  gateway: ClientGatewayInit
}

function isPrivateIp (ip: string): boolean {
  if (isIP(ip) === 4) {
    const [a = 0, b = 0] = ip.split('.').map(Number)
    return a === 127 || a === 10 || (a === 192 && b === 168) || (a === 172 && b >= 16 && b <= 31) || (a === 169 && b === 254)
  }
  const lower = ip.toLowerCase()
  return lower === '::1' || lower.startsWith('fc') || lower.startsWith('fd') || lower.startsWith('fe80')
}

/** True when every listen address is bound to a loopback or private IP (not a wildcard). */
function listensPrivatelyOnly (listen: readonly string[]): boolean {
  return listen.length > 0 && listen.every((addr) => {
    const host = multiaddr(addr).getComponents()[0]
    return host !== undefined && (host.name === 'ip4' || host.name === 'ip6') && host.value !== undefined && isPrivateIp(host.value)
  })
}

function checkInt (name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new NodeError('ERR_INVALID_OPTION', `${name} must be an integer from ${min} to ${max}, got ${value}`)
  }
  return value
}

function checkMultiaddrs (name: string, list: readonly string[]): string[] {
  for (const addr of list) {
    try {
      multiaddr(addr)
    } catch (err) {
      throw new NodeError('ERR_INVALID_OPTION', `${name}: ${JSON.stringify(addr)} is not a multiaddr`, { cause: err })
    }
  }
  return [...list]
}

/** Applies defaults and validates the whole init; throws NodeError('ERR_INVALID_OPTION'). */
export function resolveNodeInit (init: TalariaNodeInit): ResolvedInit {
  for (const key of Object.keys(init)) {
    if (!INIT_KEYS.has(key)) throw new NodeError('ERR_INVALID_OPTION', `unknown option ${JSON.stringify(key)}`)
  }
  const role = init.role ?? 'node'
  if (role !== 'node' && role !== 'bootstrap') throw new NodeError('ERR_INVALID_OPTION', `role must be 'node' or 'bootstrap'`)
  const listen = checkMultiaddrs('listen', init.listen ?? DEFAULT_LISTEN)
  const extra = init.bootstrap ?? []
  const bootstrap = [...new Set([...(init.useDefaultBootstrap === false ? [] : DEFAULT_BOOTSTRAP), ...extra])]
  const bad = validateBootstrapAddrs(bootstrap)
  if (bad[0] !== undefined) throw bad[0]
  const mailboxReplicas = checkInt('mailboxReplicas', init.mailboxReplicas ?? DEFAULT_MAILBOX_REPLICAS, 1, MAX_MAILBOX_REPLICAS)
  const mailboxPollMs = checkInt('mailboxPollMs', init.mailboxPollMs ?? DEFAULT_MAILBOX_POLL_MS, 0, MAX_MAILBOX_POLL_MS)
  return {
    dataDir: init.dataDir ?? DEFAULT_DATA_DIR,
    listen,
    announce: checkMultiaddrs('announce', init.announce ?? []),
    httpPort: checkInt('httpPort', init.httpPort ?? DEFAULT_HTTP_PORT, 0, 65535),
    httpHost: init.httpHost ?? DEFAULT_HTTP_HOST,
    bootstrap,
    mdns: init.mdns ?? false,
    role,
    shards: checkInt('shards', init.shards ?? DEFAULT_SHARDS, 1, 256),
    allowPrivateAddresses: init.allowPrivateAddresses ?? listensPrivatelyOnly(listen),
    logger: init.logger ?? pino({ level: 'silent' }),
    maxConnections: checkInt('maxConnections', init.maxConnections ?? DEFAULT_MAX_CONNECTIONS, 1, 100_000),
    inboundConnectionThreshold: checkInt('inboundConnectionThreshold', init.inboundConnectionThreshold ?? DEFAULT_INBOUND_CONNECTION_THRESHOLD, 1, 100_000),
    maxIncomingPendingConnections: checkInt('maxIncomingPendingConnections', init.maxIncomingPendingConnections ?? DEFAULT_MAX_INCOMING_PENDING_CONNECTIONS, 1, 100_000),
    mailboxReplicas,
    mailboxTtlMs: checkInt('mailboxTtlMs', init.mailboxTtlMs ?? DEFAULT_MAILBOX_TTL_MS, 1000, MAX_RECORD_LIFETIME_MS),
    mailboxWriteQuorum: checkInt('mailboxWriteQuorum', init.mailboxWriteQuorum ?? Math.min(DEFAULT_MAILBOX_WRITE_QUORUM, mailboxReplicas), 1, mailboxReplicas),
    mailboxPollMs,
    mailboxPollMaxMs: checkInt('mailboxPollMaxMs', init.mailboxPollMaxMs ?? Math.max(DEFAULT_MAILBOX_POLL_MAX_MS, mailboxPollMs), mailboxPollMs, MAX_MAILBOX_POLL_MS),
    groups: {
      retentionMs: checkInt('groupRetentionMs', init.groupRetentionMs ?? DEFAULT_GROUP_RETENTION_MS, 1000, MAX_GROUP_RETENTION_MS),
      groupHistoryLimit: checkInt('groupHistoryLimit', init.groupHistoryLimit ?? DEFAULT_GROUP_HISTORY_LIMIT, 1, MAX_GROUP_HISTORY_LIMIT),
      roomHistoryLimit: checkInt('roomHistoryLimit', init.roomHistoryLimit ?? DEFAULT_ROOM_HISTORY_LIMIT, 1, MAX_GROUP_HISTORY_LIMIT),
      maxGroups: checkInt('maxGroups', init.maxGroups ?? DEFAULT_MAX_GROUPS, 1, 10_000_000)
    },
    gateway: init.gateway ?? {}
  }
}

/** The parts that exist while the node runs; built by start, torn down by stop. */
interface Running {
  storage?: Storage
  datastore?: StorageDatastore
  libp2p?: TalariaLibp2p
  records?: DefaultRecordRouting
  messaging?: Messaging
  groups?: Groups
  http?: DefaultHttpServer
  gateway?: ClientGateway
  shutdown: AbortController
  detach: Array<() => void>
}

/** The default node: a facade over storage, libp2p, record routing, pubsub and HTTP. */
class DefaultTalariaNode implements TalariaNode {
  readonly peerId: string
  readonly role: NodeRole
  private readonly init: ResolvedInit
  private readonly privateKey: PrivateKey
  private readonly log: Logger
  private readonly emitter: TypedEmitter<TalariaNodeEvents>
  private readonly pubsub: DefaultPubSub
  private running: Running | undefined
  private currentState: NodeState = 'stopped'
  private startedAt = 0
  private stopping: Promise<void> | undefined

  constructor (init: ResolvedInit, privateKey: PrivateKey) {
    this.init = init
    this.role = init.role
    this.privateKey = privateKey
    this.peerId = peerIdFromPrivateKey(privateKey).toString()
    this.log = init.logger.child({ component: 'node' })
    this.emitter = new TypedEmitter(this.log)
    this.pubsub = new DefaultPubSub({
      logger: init.logger.child({ component: 'pubsub' }),
      onSubscriptionChange: (change) => { this.emitter.emit('topic:subscription-change', change) },
      setTopicScoring: (topic, on) => {
        const pubsub = this.running?.libp2p?.services.pubsub
        if (pubsub !== undefined) setTopicScoring(pubsub, topic, on)
      },
      peerScore: (peerId) => {
        const pubsub = this.running?.libp2p?.services.pubsub
        return pubsub === undefined ? 0 : gossipPeerScore(pubsub, peerId)
      }
    })
  }

  get state (): NodeState {
    return this.currentState
  }

  get httpUrl (): string {
    return this.requireRunning().http?.url ?? this.notStarted()
  }

  get httpPort (): number {
    return this.requireRunning().http?.port ?? this.notStarted()
  }

  private notStarted (): never {
    throw new NodeError('ERR_NOT_STARTED', 'the node is not started')
  }

  private requireRunning (): Running {
    if (this.currentState !== 'started' || this.running === undefined) this.notStarted()
    return this.running
  }

  async start (opts: AbortOptions = {}): Promise<void> {
    if (this.currentState === 'started') return
    if (this.currentState !== 'stopped') {
      throw new NodeError('ERR_BAD_STATE', `cannot start a node that is ${this.currentState}`)
    }
    this.currentState = 'starting'
    const run: Running = { shutdown: new AbortController(), detach: [] }
    this.running = run
    const { init } = this
    try {
      opts.signal?.throwIfAborted()
      run.storage = await openStorage({ dataDir: init.dataDir, shards: init.shards, logger: init.logger.child({ component: 'storage' }) })
      opts.signal?.throwIfAborted()
      const datastore = new StorageDatastore({ store: run.storage.dht })
      await datastore.open()
      run.datastore = datastore
      // a node never dials itself, even when its own address is in the shared bootstrap list
      const bootstrapList = init.bootstrap.filter((addr) => !addr.endsWith(`/p2p/${this.peerId}`))
      const libp2p = await createTalariaLibp2p({
        privateKey: this.privateKey,
        datastore,
        role: init.role,
        listen: init.listen,
        announce: init.announce,
        bootstrapList,
        bootstrapDialDelayMs: DEFAULT_BOOTSTRAP_DIAL_DELAY_MS,
        mdns: init.mdns,
        allowPrivateAddresses: init.allowPrivateAddresses,
        maxConnections: init.maxConnections,
        inboundConnectionThreshold: init.inboundConnectionThreshold,
        maxIncomingPendingConnections: init.maxIncomingPendingConnections,
        version: TALARIA_VERSION
      })
      run.libp2p = libp2p
      this.attachLibp2pEvents(run, libp2p)
      await libp2p.start()
      opts.signal?.throwIfAborted()
      run.records = new DefaultRecordRouting({
        dht: libp2p.services.dht,
        datastore,
        peerId: libp2p.peerId,
        logger: init.logger.child({ component: 'dht' }),
        shutdown: run.shutdown.signal,
        // alone: no bootstrap peer to wait for, no connection, no DHT peer (a first node, or npm
        // start on its own); a node with bootstrap peers waits for them as kad-dht does
        isAlone: () => bootstrapList.length === 0 && dhtRoutingTableSize(libp2p) === 0 && libp2p.getConnections().length === 0
      })
      this.pubsub.start(libp2p.services.pubsub as PubSubRouter, run.shutdown.signal)
      run.detach.push(() => { this.pubsub.stop() })
      if (init.role !== 'bootstrap') {
        const records = run.records
        run.messaging = createMessaging({
          libp2p,
          storage: run.storage,
          getRecord: async (key, o) => await records.getRecord(key, o),
          putRecord: async (record, o) => { await records.putRecord(record, o) },
          logger: init.logger,
          shutdown: run.shutdown.signal
        }, {
          mailbox: { replicas: init.mailboxReplicas, ttlMs: init.mailboxTtlMs, writeQuorum: init.mailboxWriteQuorum },
          delivery: { mailboxPollMs: init.mailboxPollMs, mailboxPollMaxMs: init.mailboxPollMaxMs }
        })
        await run.messaging.start()
        const messaging = run.messaging
        run.groups = createGroups({
          libp2p,
          storage: run.storage,
          pubsub: {
            subscribe: (topic, handler) => { this.pubsub.subscribe(topic, handler) },
            unsubscribe: (topic, handler) => { this.pubsub.unsubscribe(topic, handler) },
            publish: async (topic, data, o) => await this.pubsub.publish(topic, data, o),
            setValidator: (topic, validator) => { this.pubsub.setValidator(topic, validator) },
            removeValidator: (topic) => { this.pubsub.removeValidator(topic) },
            getSubscribers: (topic) => this.pubsub.getSubscribers(topic),
            onSubscriptionChange: (listener) => this.emitter.on('topic:subscription-change', listener)
          },
          directory: messaging.directory,
          logger: init.logger,
          shutdown: run.shutdown.signal
        }, init.groups)
        await run.groups.start()
      }
      run.http = new DefaultHttpServer({
        logger: init.logger.child({ component: 'http' }),
        state: () => this.currentState,
        status: () => this.status()
      }, { host: init.httpHost, port: init.httpPort })
      await run.http.start(opts.signal !== undefined ? { signal: opts.signal } : {})
      if (run.messaging !== undefined) {
        run.gateway = createClientGateway(init.gateway, {
          http: run.http,
          delivery: run.messaging.delivery,
          directory: run.messaging.directory,
          ...(run.groups !== undefined ? { groups: run.groups.service } : {}),
          peerId: this.peerId,
          getMultiaddrs: () => this.getMultiaddrs(),
          logger: init.logger.child({ component: 'gateway' })
        })
        await run.gateway.start(opts.signal !== undefined ? { signal: opts.signal } : {})
      }
    } catch (err) {
      this.log.error({ err }, 'start failed, rolling back')
      await this.teardown(run)
      this.running = undefined
      this.currentState = 'stopped'
      throw err
    }
    this.startedAt = Date.now()
    this.currentState = 'started'
    this.log.info({ peerId: this.peerId, addresses: this.getMultiaddrs(), http: run.http.url, role: this.role }, 'node started')
    this.emitter.emit('started', { peerId: this.peerId })
  }

  private attachLibp2pEvents (run: Running, libp2p: TalariaLibp2p): void {
    const onConnect = (evt: CustomEvent<{ toString(): string }>): void => {
      this.emitter.emit('peer:connect', { peerId: evt.detail.toString() })
    }
    const onDisconnect = (evt: CustomEvent<{ toString(): string }>): void => {
      this.emitter.emit('peer:disconnect', { peerId: evt.detail.toString() })
    }
    libp2p.addEventListener('peer:connect', onConnect)
    libp2p.addEventListener('peer:disconnect', onDisconnect)
    run.detach.push(() => {
      libp2p.removeEventListener('peer:connect', onConnect)
      libp2p.removeEventListener('peer:disconnect', onDisconnect)
    })
  }

  /** Closes whatever `run` holds, newest first; every part is closed even when one fails. */
  private async teardown (run: Running): Promise<void> {
    run.shutdown.abort(new NodeError('ERR_NOT_STARTED', 'the node is stopping'))
    const steps: Array<[string, () => Promise<void> | void]> = [
      ['gateway', async () => { await run.gateway?.stop() }],
      ['http', async () => { await run.http?.stop() }],
      ['groups', async () => { await run.groups?.stop() }],
      ['messaging', async () => { await run.messaging?.stop() }],
      ['listeners', () => { for (const detach of run.detach.splice(0).reverse()) detach() }],
      ['libp2p', async () => { await run.libp2p?.stop() }],
      ['peer book', async () => { await run.datastore?.close() }],
      ['storage', async () => { await run.storage?.close() }]
    ]
    let first: unknown
    for (const [part, step] of steps) {
      try {
        await step()
      } catch (err) {
        this.log.error({ err, part }, 'failed to stop')
        first ??= err
      }
    }
    if (first !== undefined) throw first
  }

  async stop (_opts: AbortOptions = {}): Promise<void> {
    if (this.stopping !== undefined) return await this.stopping
    if (this.currentState === 'stopped' || this.running === undefined) return
    const run = this.running
    this.currentState = 'stopping'
    this.stopping = (async () => {
      try {
        await this.teardown(run)
      } finally {
        this.running = undefined
        this.startedAt = 0
        this.currentState = 'stopped'
        this.stopping = undefined
      }
      this.log.info('node stopped')
      this.emitter.emit('stopped', { peerId: this.peerId })
    })()
    await this.stopping
  }

  getMultiaddrs (): string[] {
    return this.running?.libp2p?.getMultiaddrs().map((ma) => ma.toString()) ?? []
  }

  getPeers (): string[] {
    return this.running?.libp2p?.getPeers().map((p) => p.toString()) ?? []
  }

  status (): NodeStatus {
    return {
      peerId: this.peerId,
      addresses: this.getMultiaddrs(),
      peers: this.getPeers(),
      dhtPeers: this.running?.libp2p !== undefined ? dhtRoutingTableSize(this.running.libp2p) : 0,
      shards: this.running?.storage?.shardCount ?? 0,
      version: TALARIA_VERSION,
      role: this.role,
      uptimeSeconds: this.startedAt === 0 ? 0 : Math.floor((Date.now() - this.startedAt) / 1000),
      state: this.currentState
    }
  }

  private records (): DefaultRecordRouting {
    return this.requireRunning().records ?? this.notStarted()
  }

  async putRecord (recordBytes: Uint8Array, opts: AbortOptions = {}): Promise<void> {
    await this.putRecordWithResult(recordBytes, opts)
  }

  async putRecordWithResult (recordBytes: Uint8Array, opts: AbortOptions = {}): Promise<PutRecordResult> {
    return await this.records().putRecord(recordBytes, opts)
  }

  async getRecord (key: Uint8Array, opts: GetRecordOptions = {}): Promise<SignedRecord> {
    return await this.records().getRecord(key, opts)
  }

  async findPeer (peerId: string, opts: FindPeerOptions = {}): Promise<FoundPeer> {
    return await this.records().findPeer(peerId, opts)
  }

  messaging (): NodeMessaging {
    this.userTraffic('messaging')
    return this.requireRunning().messaging ?? this.notStarted()
  }

  groups (): DefaultGroupService {
    this.userTraffic('groups')
    return this.requireRunning().groups?.service ?? this.notStarted()
  }

  private userTraffic (what: string): void {
    if (this.role === 'bootstrap') throw new NodeError('ERR_ROLE', `a bootstrap node carries no user traffic (${what})`)
  }

  async publish (topic: string, data: Uint8Array, opts: AbortOptions = {}): Promise<PublishResult> {
    this.userTraffic('publish')
    this.requireRunning()
    return await this.pubsub.publish(topic, data, opts)
  }

  subscribe (topic: string, handler: PubSubHandler): void {
    this.userTraffic('subscribe')
    this.pubsub.subscribe(topic, handler)
  }

  unsubscribe (topic: string, handler?: PubSubHandler): void {
    this.pubsub.unsubscribe(topic, handler)
  }

  getSubscribers (topic: string): string[] {
    return this.pubsub.getSubscribers(topic)
  }

  setTopicValidator (topic: string, validator: PubSubValidator): void {
    this.userTraffic('setTopicValidator')
    this.pubsub.setValidator(topic, validator)
  }

  removeTopicValidator (topic: string): void {
    this.pubsub.removeValidator(topic)
  }

  getPeerScore (peerId: string): number {
    return this.pubsub.peerScore(peerId)
  }

  on<E extends TalariaNodeEventName> (event: E, listener: (payload: TalariaNodeEvents[E]) => void): () => void {
    return this.emitter.on(event, listener)
  }

  off<E extends TalariaNodeEventName> (event: E, listener: (payload: TalariaNodeEvents[E]) => void): void {
    this.emitter.off(event, listener)
  }
}

/**
 * Builds a node: validates the options and loads (or creates) the node key. Nothing listens
 * until `start()`.
 */
export async function createNode (init: TalariaNodeInit = {}, opts: AbortOptions = {}): Promise<TalariaNode> {
  const resolved = resolveNodeInit(init)
  const privateKey = await loadOrCreateNodeKey(resolved.dataDir, opts)
  return new DefaultTalariaNode(resolved, privateKey)
}
