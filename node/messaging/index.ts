/**
 * The node's 1:1 messaging: the directory, mailbox replicas and delivery, assembled from the
 * node's libp2p host, storage and record routing. Protocol handlers are registered in `start` and
 * removed in `stop`.
 */
import type { PeerId, Stream } from '@libp2p/interface'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import type { Logger } from 'pino'
import type { Storage } from '../../storage/index.js'
import type { TalariaLibp2p } from '../libp2p.js'
import { ArrivalClock } from './clock.js'
import type { CallOptions, DeliveryService, DirectoryService } from './contracts.js'
import { DeliverClient, deliverStreamHandler, MAX_INBOUND_DELIVER_STREAMS, type DeliverLinkInit } from './deliver-link.js'
import { DefaultDeliveryService, type DeliveryInit } from './delivery.js'
import { DefaultDirectory, type DirectoryComponents, type DirectoryInit, type MessagingDirectory } from './directory.js'
import { MailboxService, MAX_INBOUND_MAILBOX_STREAMS, type MailboxInit } from './mailbox.js'
import { DELIVER_PROTOCOL, MAILBOX_PROTOCOL } from './wire.js'

export * from './contracts.js'
export { MessagingError, MailboxAuthorizationError, MAILBOX_NOT_AUTHORIZED, type MessagingErrorCode, type MailboxRefusalReason } from './errors.js'
export { DefaultDirectory, encodeSignedRecord } from './directory.js'
export type { DirectoryComponents, DirectoryInit, MessagingDirectory } from './directory.js'
export {
  DEFAULT_DEVICES_CACHE_TTL_MS, DEFAULT_PREKEYS_CACHE_TTL_MS, DEFAULT_LOCATION_CACHE_TTL_MS, DEFAULT_NEGATIVE_CACHE_TTL_MS,
  DEFAULT_DIRECTORY_CACHE_SIZE, DEFAULT_PUBLISH_CONCURRENCY, DEFAULT_MAX_LOCAL_PROOFS
} from './directory.js'
export { DefaultDeliveryService, orderByConversation } from './delivery.js'
export type { DeliveryComponents, DeliveryInit } from './delivery.js'
export {
  DEFAULT_MAX_QUEUED_ENVELOPES, DEFAULT_DISPATCH_CONCURRENCY, DEFAULT_MAX_BATCH_BYTES, DEFAULT_RETRY_DELAY_MS, DEFAULT_MAX_RETRY_DELAY_MS,
  DEFAULT_MAX_UNACKED_PER_SINK, DEFAULT_MAILBOX_POLL_MS, DEFAULT_MAILBOX_POLL_MAX_MS
} from './delivery.js'
export { MailboxService, mailboxKey, authorizeMailboxRequest } from './mailbox.js'
export type { MailboxComponents, MailboxInit, ReplicaResult } from './mailbox.js'
export { DeliverClient, deliverStreamHandler } from './deliver-link.js'
export type { DeliverLinkInit } from './deliver-link.js'
export { DEFAULT_MAX_IN_FLIGHT_BATCHES, DEFAULT_BATCH_TIMEOUT_MS } from './deliver-link.js'
export { ArrivalClock } from './clock.js'
export * from './wire.js'

/** Options of the messaging services. */
export interface MessagingInit {
  mailbox?: MailboxInit
  delivery?: DeliveryInit
  directory?: DirectoryInit
  deliver?: DeliverLinkInit
}

/** What messaging is built from. */
export interface MessagingComponents {
  libp2p: TalariaLibp2p
  storage: Pick<Storage, 'inbox' | 'outbox' | 'mailbox'>
  getRecord: DirectoryComponents['getRecord']
  putRecord: DirectoryComponents['putRecord']
  logger: Logger
  shutdown: AbortSignal
}

/** The running messaging services of a node. */
export interface Messaging {
  readonly delivery: DeliveryService & DefaultDeliveryService
  readonly directory: DirectoryService & MessagingDirectory
  readonly mailbox: MailboxService
  start(opts?: CallOptions): Promise<void>
  stop(): Promise<void>
}

function withPeer (addr: string, peer: PeerId): Multiaddr | undefined {
  try {
    const ma = multiaddr(addr)
    return ma.getComponents().some((c) => c.name === 'p2p') ? ma : ma.encapsulate(`/p2p/${peer.toString()}`)
  } catch {
    return undefined
  }
}

/** Builds the messaging services; nothing is registered until `start`. */
export function createMessaging (components: MessagingComponents, init: MessagingInit = {}): Messaging {
  const { libp2p, storage, logger, shutdown } = components
  const clock = new ArrivalClock()
  const dialProtocol = async (peer: PeerId, protocol: string, opts: { signal: AbortSignal }): Promise<Stream> =>
    await libp2p.dialProtocol(peer, protocol, { signal: opts.signal })
  const directory = new DefaultDirectory({ getRecord: components.getRecord, putRecord: components.putRecord, nodeId: libp2p.peerId.toString(), logger: logger.child({ component: 'directory' }) }, init.directory)
  const mailbox = new MailboxService({
    peerId: libp2p.peerId,
    mailbox: storage.mailbox,
    clock,
    dialProtocol,
    getClosestPeers: async function * (key, opts) {
      // a node with no connections has no one to ask, and kad-dht would wait out the deadline
      if (libp2p.getConnections().length === 0) return
      for await (const event of libp2p.services.dht.getClosestPeers(key, { signal: opts.signal })) {
        if (event.name === 'FINAL_PEER') yield event.peer.id
      }
    },
    connectedPeers: () => libp2p.getPeers(),
    peerProtocols: async (peer) => {
      try {
        return (await libp2p.peerStore.get(peer)).protocols
      } catch {
        return undefined
      }
    },
    logger: logger.child({ component: 'mailbox' }),
    shutdown
  }, init.mailbox)
  const deliverClient = new DeliverClient({ dialProtocol, logger: logger.child({ component: 'deliver' }), shutdown }, init.deliver)
  const delivery = new DefaultDeliveryService({
    peerId: libp2p.peerId,
    inbox: storage.inbox,
    outbox: storage.outbox,
    directory,
    mailbox,
    sendBatch: async (peer, envelopes) => await deliverClient.send(peer, envelopes),
    learnAddrs: async (peer, addrs) => {
      // an open connection is what the deliver stream dials over: merging into the peer store on
      // every batch cost milliseconds per round trip and added nothing
      if (libp2p.getConnections(peer).some((c) => c.status === 'open')) return
      const multiaddrs = addrs.map((a) => withPeer(a, peer)).filter((a): a is Multiaddr => a !== undefined)
      if (multiaddrs.length > 0) await libp2p.peerStore.merge(peer, { multiaddrs })
    },
    clock,
    logger: logger.child({ component: 'delivery' }),
    shutdown
  }, init.delivery)
  const handlerLog = logger.child({ component: 'deliver-handler' })
  let registered = false
  return {
    delivery,
    directory,
    mailbox,
    async start () {
      await libp2p.handle(DELIVER_PROTOCOL, deliverStreamHandler(async (envelopes) => await delivery.receiveBatch(envelopes), { logger: handlerLog, shutdown }), {
        maxInboundStreams: MAX_INBOUND_DELIVER_STREAMS
      })
      registered = true
      await libp2p.handle(MAILBOX_PROTOCOL, mailbox.handleStream, { maxInboundStreams: MAX_INBOUND_MAILBOX_STREAMS })
      await delivery.start()
    },
    async stop () {
      delivery.stop()
      mailbox.stop()
      deliverClient.stop()
      if (registered) {
        registered = false
        await Promise.allSettled([libp2p.unhandle(DELIVER_PROTOCOL), libp2p.unhandle(MAILBOX_PROTOCOL)])
      }
    }
  }
}
