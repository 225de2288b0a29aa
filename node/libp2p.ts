/**
 * The one place that assembles libp2p. Every libp2p module factory is imported here and nowhere
 * else, so a major upgrade (or switching gossipsub back to `@chainsafe/libp2p-gossipsub`) touches
 * this file only.
 */
import { createHash } from 'node:crypto'
import { noise } from '@chainsafe/libp2p-noise'
import { bootstrap } from '@libp2p/bootstrap'
import { gossipsub, type GossipSub } from '@libp2p/gossipsub'
import { createTopicScoreParams, type TopicScoreParams } from '@libp2p/gossipsub/score'
import { identify, type Identify } from '@libp2p/identify'
import type { Libp2p, PrivateKey } from '@libp2p/interface'
import {
  kadDHT,
  passthroughMapper,
  Record as DhtRecord,
  removePrivateAddressesMapper,
  type KadDHT,
  type SingleKadDHT
} from '@libp2p/kad-dht'
import { mdns } from '@libp2p/mdns'
import { ping, type Ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { webSockets } from '@libp2p/websockets'
import { yamux } from '@libp2p/yamux'
import { Key, type Datastore } from 'interface-datastore'
import { createLibp2p, type Libp2pOptions } from 'libp2p'
import { toString as uint8ArrayToString } from 'uint8arrays/to-string'
import type { NodeRole } from './options.js'
import { selectTalariaRecord, validateTalariaRecord } from './records.js'

/** Talaria's own Kademlia protocol id, so Talaria nodes form their own DHT, apart from IPFS's. */
export const TALARIA_DHT_PROTOCOL = '/talaria/kad/1.0.0'
/** Prefix of kad-dht's keys in the datastore. */
export const DHT_DATASTORE_PREFIX = '/dht'
/** Gossipsub heartbeat: mesh maintenance and gossip emission, in milliseconds. */
export const GOSSIPSUB_HEARTBEAT_MS = 700

/** The libp2p services every Talaria node runs. */
export interface TalariaServices extends Record<string, unknown> {
  identify: Identify
  ping: Ping
  dht: KadDHT
  pubsub: GossipSub
}

/** A libp2p node with Talaria's services. */
export type TalariaLibp2p = Libp2p<TalariaServices>

/** Everything the assembly needs; resolved by the caller (no defaults here). */
export interface TalariaLibp2pInit {
  privateKey: PrivateKey
  datastore: Datastore
  role: NodeRole
  listen: string[]
  announce: string[]
  /** Bootstrap multiaddrs (with /p2p/<peer id>); the bootstrap module is left out when empty. */
  bootstrapList: string[]
  bootstrapDialDelayMs: number
  mdns: boolean
  /** Keep loopback and private addresses in the DHT and trust them in peer scoring. */
  allowPrivateAddresses: boolean
  maxConnections: number
  inboundConnectionThreshold: number
  maxIncomingPendingConnections: number
  /** Reported by identify as the agent version. */
  version: string
}

/** Addresses every peer on one machine or LAN shares; colocation must not count against them. */
const LOCAL_IPS = ['127.0.0.1', '::1']

/** Bytes of a gossip message id: the first 20 bytes of SHA-256 over the message data. */
export const GOSSIP_MESSAGE_ID_BYTES = 20

/**
 * The gossipsub message id of `data`: the first 20 bytes of SHA-256 over it. Messages are unsigned
 * at the gossipsub layer (applications sign their own payloads), so the id must come from the
 * content: the same payload relayed by two peers is one message.
 */
export function gossipMessageIdOf (data: Uint8Array): Uint8Array {
  const digest = createHash('sha256').update(data).digest()
  return new Uint8Array(digest.buffer, digest.byteOffset, GOSSIP_MESSAGE_ID_BYTES)
}

/**
 * Score parameters of a topic whose messages an application validates (group topics): only P4,
 * invalid messages, counts. Its value is the square of the count of rejected messages, decaying
 * by 0.9 a second: one rejected message costs -4 (above the gossip threshold), two -16 (no more
 * gossip to or from it), five -100 (graylisted: every RPC from it is dropped).
 */
export const VALIDATED_TOPIC_SCORE_PARAMS: TopicScoreParams = createTopicScoreParams({
  topicWeight: 1,
  timeInMeshWeight: 0,
  timeInMeshQuantum: 1000,
  timeInMeshCap: 1,
  firstMessageDeliveriesWeight: 0,
  firstMessageDeliveriesDecay: 0.5,
  firstMessageDeliveriesCap: 1,
  meshMessageDeliveriesWeight: 0,
  meshMessageDeliveriesDecay: 0.5,
  meshMessageDeliveriesCap: 1,
  meshMessageDeliveriesThreshold: 0,
  meshMessageDeliveriesWindow: 10,
  meshMessageDeliveriesActivation: 5000,
  meshFailurePenaltyWeight: 0,
  meshFailurePenaltyDecay: 0.5,
  invalidMessageDeliveriesWeight: -4,
  invalidMessageDeliveriesDecay: 0.9
})

/**
 * Turns scoring of `topic` on (with {@link VALIDATED_TOPIC_SCORE_PARAMS}) or off. Gossipsub only
 * counts invalid messages on topics that have score parameters, and group topics are created at
 * run time, so their parameters are added when a validator is registered. Gossipsub reads the
 * parameters map on every lookup, so a change applies at once.
 */
export function setTopicScoring (pubsub: GossipSub, topic: string, on: boolean): void {
  const topics = (pubsub as unknown as ScoredGossipSub).score.params.topics
  if (on) topics[topic] = VALIDATED_TOPIC_SCORE_PARAMS
  else delete topics[topic]
}

/**
 * What the gossipsub implementation has beyond its exported interface: its peer score (the
 * class has it public; the `GossipSub` interface does not list it).
 */
interface ScoredGossipSub {
  score: { params: { topics: Record<string, TopicScoreParams> } }
  getScore(peerId: string): number
}

/** The current gossipsub score of `peerId` as this node sees it (0 for unknown peers). */
export function gossipPeerScore (pubsub: GossipSub, peerId: string): number {
  return (pubsub as unknown as ScoredGossipSub).getScore(peerId)
}

function gossipsubService (init: TalariaLibp2pInit): ReturnType<typeof gossipsub> {
  return gossipsub({
    // Nothing is signed twice: applications sign their payloads (group envelopes and ops carry
    // device signatures), gossipsub messages carry no author, and the id comes from the content.
    globalSignaturePolicy: 'StrictNoSign',
    msgIdFn: (msg) => gossipMessageIdOf(msg.data),
    // Duplicates are recognised by this id before the full one is computed. A cryptographic hash
    // (native, ~1 µs for an envelope), because a forged collision would suppress a real message.
    fastMsgIdFn: (msg) => createHash('sha256').update(msg.data ?? new Uint8Array(0)).digest('base64'),
    // Idempotent sends publish the same payload again: not an error.
    ignoreDuplicatePublishError: true,
    fallbackToFloodsub: false,
    emitSelf: false,
    // A publish with no topic peer yet is not an error for a chat engine: the message also goes
    // to the mailbox path. The facade reports the recipients instead.
    allowPublishToZeroTopicPeers: true,
    // Bootstrap nodes exist to introduce peers: they hand out peers when they prune a mesh.
    doPX: init.role === 'bootstrap',
    heartbeatInterval: GOSSIPSUB_HEARTBEAT_MS,
    scoreParams: {
      topics: {},
      topicScoreCap: 10,
      appSpecificScore: () => 0,
      appSpecificWeight: 10,
      // Many peers behind one IP hints at a Sybil, except on the machine's own addresses.
      IPColocationFactorWeight: -5,
      IPColocationFactorThreshold: 10,
      IPColocationFactorWhitelist: new Set(init.allowPrivateAddresses ? LOCAL_IPS : []),
      behaviourPenaltyWeight: -10,
      behaviourPenaltyThreshold: 0,
      behaviourPenaltyDecay: 0.2,
      decayInterval: 1000,
      decayToZero: 0.01,
      retainScore: 3_600_000
    },
    scoreThresholds: {
      gossipThreshold: -10,
      publishThreshold: -50,
      graylistThreshold: -80,
      acceptPXThreshold: 10,
      opportunisticGraftThreshold: 20
    }
  })
}

/** Builds (does not start) the libp2p node of a Talaria node. */
export async function createTalariaLibp2p (init: TalariaLibp2pInit): Promise<TalariaLibp2p> {
  const peerDiscovery: NonNullable<Libp2pOptions['peerDiscovery']> = []
  if (init.bootstrapList.length > 0) {
    peerDiscovery.push(bootstrap({ list: init.bootstrapList, timeout: init.bootstrapDialDelayMs }))
  }
  if (init.mdns) peerDiscovery.push(mdns())

  const options: Libp2pOptions<TalariaServices> = {
    start: false,
    privateKey: init.privateKey,
    datastore: init.datastore,
    nodeInfo: { name: 'talaria', version: init.version, userAgent: `talaria/${init.version}` },
    addresses: { listen: init.listen, announce: init.announce },
    transports: [tcp(), webSockets()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    peerDiscovery,
    connectionManager: {
      maxConnections: init.maxConnections,
      inboundConnectionThreshold: init.inboundConnectionThreshold,
      maxIncomingPendingConnections: init.maxIncomingPendingConnections
    },
    // Off. Aborting a connection whose ping is late tears gossip meshes apart under load (a lost
    // ping on a saturated link is not a dead peer), and without aborts the monitor only measures
    // round trips nobody reads — with a new ping stream per connection every 10 s, which at 50
    // peers was a large share of an idle node's CPU. Yamux's own keepalive (a ping frame every
    // 30 s, no stream) keeps idle connections open.
    connectionMonitor: { enabled: false },
    services: {
      identify: identify(),
      ping: ping(),
      dht: kadDHT({
        protocol: TALARIA_DHT_PROTOCOL,
        clientMode: false,
        datastorePrefix: DHT_DATASTORE_PREFIX,
        validators: { talaria: validateTalariaRecord },
        selectors: { talaria: selectTalariaRecord },
        peerInfoMapper: init.allowPrivateAddresses ? passthroughMapper : removePrivateAddressesMapper
      }),
      pubsub: gossipsubService(init)
    }
  }
  const libp2p = await createLibp2p(options)
  skipRepeatedAddressMerges(libp2p.peerStore)
  return libp2p
}

/** How long a peer's addresses, once merged into the peer store, are not merged again, in ms. */
export const ADDRESS_MERGE_TTL_MS = 60_000
/** Peers whose last address merge is remembered, at most (least recently merged go first). */
const ADDRESS_MERGE_MEMORY = 4_096

/**
 * Every DHT response names up to 20 closer peers, and libp2p merges each into the peer store: a
 * write lock, a protobuf decode and encode, multiaddr parsing and a `peer:update` event — per
 * peer, per response, ~150 times per record put on a 10-node mesh, and about a third of the CPU
 * of a DHT operation. A merge of nothing but addresses already merged for that peer within
 * {@link ADDRESS_MERGE_TTL_MS} changes nothing the store needs: it answers with the peer as that
 * merge left it. Merges with anything else (tags, metadata, protocols), new addresses, or for a
 * peer not seen lately go through.
 */
export function skipRepeatedAddressMerges (peerStore: Libp2p['peerStore'], now: () => number = Date.now): void {
  const merge = peerStore.merge.bind(peerStore)
  const recent = new Map<string, { addrs: Set<string>, at: number, peer: Awaited<ReturnType<typeof merge>> }>()
  peerStore.merge = async (id, data, opts) => {
    const keys = Object.keys(data)
    if (keys.length !== 1 || keys[0] !== 'multiaddrs' || data.multiaddrs === undefined) return await merge(id, data, opts)
    const key = id.toString()
    const addrs = data.multiaddrs.map((ma) => ma.toString())
    const seen = recent.get(key)
    if (seen !== undefined && now() - seen.at < ADDRESS_MERGE_TTL_MS && addrs.every((a) => seen.addrs.has(a))) return seen.peer
    const peer = await merge(id, data, opts)
    recent.delete(key)
    // what was offered counts as merged even where the store's address filter kept it out
    recent.set(key, { addrs: new Set([...addrs, ...peer.addresses.map((a) => a.multiaddr.toString())]), at: now(), peer })
    if (recent.size > ADDRESS_MERGE_MEMORY) {
      const oldest = recent.keys().next().value
      if (oldest !== undefined) recent.delete(oldest)
    }
    return peer
  }
}

/**
 * Reads the value kad-dht stored in `datastore` for `key`, without any network query, or
 * undefined when there is none. The caller validates it: the store may hold an expired record.
 */
export async function readStoredDhtValue (datastore: Datastore, key: Uint8Array, opts: { signal?: AbortSignal } = {}): Promise<Uint8Array | undefined> {
  const dsKey = new Key(`${DHT_DATASTORE_PREFIX}/record/${uint8ArrayToString(key, 'base32')}`, false)
  let raw: Uint8Array
  try {
    raw = await datastore.get(dsKey, opts)
  } catch (err) {
    if ((err as { name?: unknown }).name === 'NotFoundError') return undefined
    throw err
  }
  return DhtRecord.deserialize(raw).value
}

/**
 * Stores `value` under `key` in this node's own DHT datastore, as kad-dht itself does on a put.
 * Used when the routing table is empty: a lone node still keeps (and serves) its records.
 */
export async function writeStoredDhtValue (datastore: Datastore, key: Uint8Array, value: Uint8Array, opts: { signal?: AbortSignal } = {}): Promise<void> {
  const dsKey = new Key(`${DHT_DATASTORE_PREFIX}/record/${uint8ArrayToString(key, 'base32')}`, false)
  await datastore.put(dsKey, new DhtRecord(key, value, new Date()).serialize(), opts)
}

/** The Kademlia id of a key or a peer id's multihash: SHA-256 of its bytes, as kad-dht computes it. */
export function kadId (bytes: Uint8Array): Uint8Array {
  return createHash('sha256').update(bytes).digest()
}

/** Orders two Kademlia ids by XOR distance to `target`: negative when `a` is nearer. */
export function compareKadDistance (target: Uint8Array, a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < target.length; i++) {
    const da = (a[i] ?? 0) ^ (target[i] ?? 0)
    const db = (b[i] ?? 0) ^ (target[i] ?? 0)
    if (da !== db) return da - db
  }
  return 0
}

/** Number of peers in the DHT routing table (kad-dht exposes it on its single-table flavour). */
export function dhtRoutingTableSize (libp2p: TalariaLibp2p): number {
  return (libp2p.services.dht as Partial<SingleKadDHT>).routingTable?.size ?? 0
}
