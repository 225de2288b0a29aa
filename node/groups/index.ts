/**
 * The node's groups and rooms: the service the gateway talks to (contracts.ts), assembled from the
 * node's libp2p host, pubsub, storage and directory. The history protocol handler is registered in
 * `start` and removed in `stop`.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import type { Logger } from 'pino'
import type { Storage } from '../../storage/index.js'
import type { TalariaLibp2p } from '../libp2p.js'
import type { CallOptions, DirectoryService } from '../messaging/contracts.js'
import { historyStreamHandler, MAX_INBOUND_HISTORY_STREAMS, MAX_OUTBOUND_HISTORY_STREAMS, requestHistory } from './history.js'
import { DefaultGroupService, type GroupPubSub, type GroupServiceInit } from './service.js'
import { HISTORY_PROTOCOL } from './wire.js'

export type { AuthenticatedDevice, GroupEventName, GroupService, GroupSink } from './contracts.js'
export { DefaultGroupService, DEFAULT_HISTORY_PAGE, DEFAULT_SUBSCRIBER_WAIT_MS, DEFAULT_GROUP_SWEEP_INTERVAL_MS } from './service.js'
export type { GroupServiceInit, GroupServiceComponents, GroupPubSub } from './service.js'
export * from './wire.js'
export { requestHistory, historyStreamHandler, DEFAULT_HISTORY_REQUEST_TIMEOUT_MS, MAX_INBOUND_HISTORY_STREAMS } from './history.js'
export type { HistorySource } from './history.js'

/** What the groups services are built from. */
export interface GroupsComponents {
  libp2p: TalariaLibp2p
  storage: Pick<Storage, 'groups'>
  pubsub: GroupPubSub
  directory: Pick<DirectoryService, 'getDeviceList'>
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
  const service = new DefaultGroupService({
    groups: components.storage.groups,
    pubsub: components.pubsub,
    directory: components.directory,
    requestHistory: async (peer, req, opts) => await requestHistory(clientComponents, peerIdFromString(peer), req, opts),
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
