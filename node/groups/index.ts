/**
 * The node's groups and rooms: the service the gateway talks to (contracts.ts), assembled from the
 * node's libp2p host, pubsub, storage and directory. The history protocol handler is registered in
 * `start` and removed in `stop`.
 */
import type { PeerId } from '@libp2p/interface'
import type { SingleKadDHT } from '@libp2p/kad-dht'
import { peerIdFromString } from '@libp2p/peer-id'
import type { Logger } from 'pino'
import type { Storage } from '../../storage/index.js'
import { timeoutSignal } from '../abort.js'
import { compareKadDistance as xorCompare, kadId, type TalariaLibp2p } from '../libp2p.js'
import type { CallOptions } from '../messaging/contracts.js'
import type { MessagingDirectory } from '../messaging/directory.js'
import { historyStreamHandler, MAX_INBOUND_HISTORY_STREAMS, MAX_OUTBOUND_HISTORY_STREAMS, requestHistory } from './history.js'
import { DefaultGroupService, type GroupPubSub, type GroupServiceInit } from './service.js'
import { HISTORY_PROTOCOL } from './wire.js'

export type { AuthenticatedDevice, GroupEventName, GroupService, GroupSink } from './contracts.js'
export {
  DefaultGroupService, DEFAULT_HISTORY_PAGE, DEFAULT_SUBSCRIBER_WAIT_MS, DEFAULT_GROUP_SWEEP_INTERVAL_MS, DEFAULT_GROUP_REPLICAS,
  DEFAULT_KEEP_INTERVAL_MS, DEFAULT_MAX_REPLICA_GROUPS, groupReplicaKey
} from './service.js'
export type { GroupServiceInit, GroupServiceComponents, GroupPubSub } from './service.js'
export * from './wire.js'
export { requestHistory, historyStreamHandler, DEFAULT_HISTORY_REQUEST_TIMEOUT_MS, MAX_INBOUND_HISTORY_STREAMS } from './history.js'
export type { HistorySource } from './history.js'

/** Deadline of the DHT walk that finds a group's replicas, in milliseconds. */
export const REPLICA_LOOKUP_TIMEOUT_MS = 10_000

/** What the groups services are built from. */
export interface GroupsComponents {
  libp2p: TalariaLibp2p
  storage: Pick<Storage, 'groups'>
  pubsub: GroupPubSub
  directory: Pick<MessagingDirectory, 'getDeviceList' | 'cachedDeviceList'>
  logger: Logger
  shutdown: AbortSignal
}

/** The running groups services of a node. */
export interface Groups {
  readonly service: DefaultGroupService
  start(opts?: CallOptions): Promise<void>
  stop(): Promise<void>
}

/** Builds the groups service; nothing is registered until `start`. */
export function createGroups (components: GroupsComponents, init: GroupServiceInit = {}): Groups {
  const { libp2p, logger, shutdown } = components
  const clientComponents = {
    dialProtocol: async (peer: Parameters<TalariaLibp2p['dialProtocol']>[0], protocol: string, opts: { signal: AbortSignal }) =>
      await libp2p.dialProtocol(peer, protocol, { signal: opts.signal }),
    shutdown
  }
  /** False for peers known not to serve history (bootstrap nodes); unknown peers count. */
  const servesHistory = async (peer: PeerId): Promise<boolean> => {
    try {
      const protocols = (await libp2p.peerStore.get(peer)).protocols
      return protocols.length === 0 || protocols.includes(HISTORY_PROTOCOL)
    } catch {
      return true
    }
  }
  const rank = async (key: Uint8Array, peers: PeerId[], count: number): Promise<PeerId[]> => {
    const target = kadId(key)
    const unique = new Map(peers.map((p) => [p.toString(), p]))
    const ranked = [...unique.values()].filter((p) => !p.equals(libp2p.peerId))
      .map((p) => ({ p, id: kadId(p.toMultihash().bytes) }))
      .sort((x, y) => xorCompare(target, x.id, y.id))
    const out: PeerId[] = []
    for (const { p } of ranked) {
      if (out.length >= count) break
      if (await servesHistory(p)) out.push(p)
    }
    return out
  }
  const service = new DefaultGroupService({
    groups: components.storage.groups,
    pubsub: components.pubsub,
    directory: components.directory,
    requestHistory: async (peer, req, opts) => await requestHistory(clientComponents, peerIdFromString(peer), req, opts),
    closestPeers: async (key, count, opts) => {
      // a node with no connections has no one to ask, and kad-dht would wait out the deadline
      if (libp2p.getConnections().length === 0) return []
      const signal = timeoutSignal(REPLICA_LOOKUP_TIMEOUT_MS, shutdown, opts.signal)
      const found = new Map<string, PeerId>()
      try {
        for await (const event of libp2p.services.dht.getClosestPeers(key, { signal })) {
          if (event.name === 'FINAL_PEER') found.set(event.peer.id.toString(), event.peer.id)
        }
      } catch (err) {
        logger.debug({ err }, 'group replica lookup ended early')
      } finally {
        signal.clear()
      }
      for (const p of libp2p.getPeers()) found.set(p.toString(), p)
      return (await rank(key, [...found.values()], count)).map((p) => p.toString())
    },
    isNearest: async (key, count) => {
      // the implementation's routing table has closestPeers; the exported interface lists only size
      const table = (libp2p.services.dht as Partial<SingleKadDHT>).routingTable as { closestPeers?: (kadId: Uint8Array, o: { count: number }) => PeerId[] } | undefined
      const known = typeof table?.closestPeers === 'function' ? table.closestPeers(kadId(key), { count: count + 8 }) : []
      const nearest = await rank(key, [...known, ...libp2p.getPeers()], count)
      if (nearest.length < count) return true
      const target = kadId(key)
      return xorCompare(target, kadId(libp2p.peerId.toMultihash().bytes), kadId(nearest[nearest.length - 1]!.toMultihash().bytes)) < 0
    },
    logger: logger.child({ component: 'groups' }),
    shutdown
  }, init)
  let registered = false
  return {
    service,
    async start () {
      await libp2p.handle(HISTORY_PROTOCOL, historyStreamHandler(service.historySource, { logger: logger.child({ component: 'history' }), shutdown }), {
        maxInboundStreams: MAX_INBOUND_HISTORY_STREAMS,
        maxOutboundStreams: MAX_OUTBOUND_HISTORY_STREAMS
      })
      registered = true
      await service.start()
    },
    async stop () {
      await service.stop()
      if (registered) {
        registered = false
        await libp2p.unhandle(HISTORY_PROTOCOL).catch(() => {})
      }
    }
  }
}
