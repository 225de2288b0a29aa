/**
 * Mailbox replicas: the k nodes closest (in the DHT's XOR metric) to a user's mailbox key keep
 * that user's offline envelopes, per device, with a TTL. This file holds both sides of
 * `/talaria/mailbox/1.0.0`: the handler that stores, lists and deletes on this node, and the client
 * that picks the replicas and talks to them (this node may be one of them).
 *
 * Authorization: `fetch` and `delete` must carry the device's own signed location record naming
 * the requesting node (the Noise-authenticated remote peer, or this node for its own requests), so
 * only the node the device is connected to can read or empty its mailbox, and a replica checks it
 * offline. `put` stays open: it only adds ciphertext for a box, and the per-request limits and the
 * TTL bound what a stranger can add; closing it would make senders prove things about recipients.
 */
import { createHash } from 'node:crypto'
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import type { Logger } from 'pino'
import { decodeEnvelope } from '../../protocol/envelopes.js'
import type { DeviceId, MessageId, UserId } from '../../protocol/ids.js'
import { MAX_RECORD_LIFETIME_MS } from '../../protocol/limits.js'
import { TalariaError } from '../../protocol/errors.js'
import { decodeLocationPayload, recordKey, validateRecord, type LocationEntry, type SignedRecord } from '../../protocol/records.js'
import { deviceOwnerKey, type MailboxRepository } from '../../storage/index.js'
import { DEFAULT_MAILBOX_REPLICAS, DEFAULT_MAILBOX_TTL_MS, DEFAULT_MAILBOX_WRITE_QUORUM } from '../options.js'
import type { ArrivalClock } from './clock.js'
import { MAILBOX_NOT_AUTHORIZED, MailboxAuthorizationError } from './errors.js'
import { abortUnlessClosed, exchange, readOneFrame, timeoutSignal, whenClosed, writeFrame } from './streams.js'
import {
  decodeMailboxRequest, decodeMailboxResponse, encodeMailboxRequest, encodeMailboxResponse, MAILBOX_PROTOCOL, MAX_ENVELOPES_PER_FRAME,
  MAX_IDS_PER_FRAME, type MailboxCursor, type MailboxRequest, type MailboxResponse
} from './wire.js'

/** How long a replica set stays cached, in milliseconds. */
export const DEFAULT_REPLICA_CACHE_TTL_MS = 60_000
/** Extra DHT candidates asked for, since bootstrap nodes refuse the mailbox protocol. */
export const REPLICA_CANDIDATE_SLACK = 3
/** Deadline of one replica request, in milliseconds. */
export const DEFAULT_MAILBOX_REQUEST_TIMEOUT_MS = 10_000
/** Deadline of the DHT walk that finds replicas, in milliseconds. */
export const DEFAULT_REPLICA_LOOKUP_TIMEOUT_MS = 10_000
/** Attempts of a background replica write or delete before it is given up (the TTL cleans up). */
export const DEFAULT_MAILBOX_RETRIES = 5
/** Delay before the first background retry, doubled each attempt, in milliseconds. */
export const DEFAULT_MAILBOX_RETRY_DELAY_MS = 500
/** Most background retries waiting at once; past it new ones are dropped (the TTL cleans up). */
export const MAX_BACKGROUND_RETRIES = 10_000
/** Pages read from one replica in one fetch, at most. */
export const MAX_FETCH_PAGES = 100
/** Inbound mailbox streams per connection at once. */
export const MAX_INBOUND_MAILBOX_STREAMS = 64

/** The DHT key of a user's mailbox: sha256('talaria/mailbox/' + userId). */
export function mailboxKey (user: UserId): Uint8Array {
  return createHash('sha256').update('talaria/mailbox/' + user, 'utf8').digest()
}

function kadId (bytes: Uint8Array): Uint8Array {
  return createHash('sha256').update(bytes).digest()
}

function xorCompare (target: Uint8Array, a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < target.length; i++) {
    const da = (a[i] ?? 0) ^ (target[i] ?? 0)
    const db = (b[i] ?? 0) ^ (target[i] ?? 0)
    if (da !== db) return da - db
  }
  return 0
}

/**
 * Checks that a fetch or delete may act on (request.user, request.device) for `requester` (a peer
 * id string): `proof` must be a valid location record of that device (signature, certificate
 * chain to the user, not expired) whose certificate speaks for `request.user` and with a live entry
 * for the device naming `requester`. Throws MailboxAuthorizationError; puts need no proof.
 */
export function authorizeMailboxRequest (request: MailboxRequest, requester: string, now = Date.now()): void {
  if (request.op === 'put') return
  if (request.proof === undefined) throw new MailboxAuthorizationError('missing-proof', `${request.op} carries no location record`)
  let record: SignedRecord
  try {
    record = validateRecord(recordKey('location', request.device), request.proof, { now })
  } catch (err) {
    throw new MailboxAuthorizationError('invalid-proof', 'the location record is not valid for this device', { cause: err })
  }
  // validateRecord already tied the certificate to the device; this ties it to the user asked for
  if (record.cert?.userId !== request.user) throw new MailboxAuthorizationError('wrong-user', 'the location record speaks for another user')
  let entries: LocationEntry[]
  try {
    entries = decodeLocationPayload(record.payload)
  } catch (err) {
    throw new MailboxAuthorizationError('invalid-proof', 'the location payload is malformed', { cause: err })
  }
  if (!entries.some((e) => e.device === request.device && e.node === requester && e.expires > now)) {
    throw new MailboxAuthorizationError('wrong-node', 'the location record does not place the device on the requesting node')
  }
}

/** What the mailbox uses from libp2p and storage. */
export interface MailboxComponents {
  peerId: PeerId
  mailbox: MailboxRepository
  clock: ArrivalClock
  /** Opens a stream to `peer` on `protocol`. */
  dialProtocol: (peer: PeerId, protocol: string, opts: { signal: AbortSignal }) => Promise<Stream>
  /** The DHT's closest peers to `key` (kad-dht `getClosestPeers`, FINAL_PEER ids). */
  getClosestPeers: (key: Uint8Array, opts: { signal: AbortSignal }) => AsyncIterable<PeerId>
  /** Peers this node is connected to: candidates too, so a slow or failed DHT walk still finds replicas. */
  connectedPeers: () => PeerId[]
  /** The protocols a peer announced (identify), or undefined when unknown. */
  peerProtocols: (peer: PeerId) => Promise<string[] | undefined>
  logger: Logger
  /** Fires when the node stops. */
  shutdown: AbortSignal
}

/** Options of the mailbox. */
export interface MailboxInit {
  replicas?: number
  ttlMs?: number
  writeQuorum?: number
  replicaCacheTtlMs?: number
  requestTimeoutMs?: number
  retries?: number
  retryDelayMs?: number
}

/** Outcome of a write or delete sent to several replicas. */
export interface ReplicaResult {
  successes: string[]
  failures: Array<{ peerId: string, error: unknown }>
  /** Replicas asked. */
  replicas: number
}

/** Both sides of the mailbox protocol. */
export class MailboxService {
  private readonly replicaCache = new Map<string, { peers: PeerId[], expiresAt: number }>()
  private readonly k: number
  readonly ttlMs: number
  readonly writeQuorum: number
  private readonly replicaCacheTtlMs: number
  private readonly requestTimeoutMs: number
  private readonly retries: number
  private readonly retryDelayMs: number
  private backgroundRetries = 0
  private readonly timers = new Set<ReturnType<typeof setTimeout>>()

  constructor (private readonly components: MailboxComponents, init: MailboxInit = {}) {
    this.k = init.replicas ?? DEFAULT_MAILBOX_REPLICAS
    this.ttlMs = Math.min(init.ttlMs ?? DEFAULT_MAILBOX_TTL_MS, MAX_RECORD_LIFETIME_MS)
    this.writeQuorum = init.writeQuorum ?? DEFAULT_MAILBOX_WRITE_QUORUM
    this.replicaCacheTtlMs = init.replicaCacheTtlMs ?? DEFAULT_REPLICA_CACHE_TTL_MS
    this.requestTimeoutMs = init.requestTimeoutMs ?? DEFAULT_MAILBOX_REQUEST_TIMEOUT_MS
    this.retries = init.retries ?? DEFAULT_MAILBOX_RETRIES
    this.retryDelayMs = init.retryDelayMs ?? DEFAULT_MAILBOX_RETRY_DELAY_MS
  }

  /** Cancels pending background retries. */
  stop (): void {
    for (const t of this.timers) clearTimeout(t)
    this.timers.clear()
  }

  // ---- server side ------------------------------------------------------------------------

  /** Handles one inbound mailbox stream: one request, one response. Bad input closes this stream only. */
  readonly handleStream = async (stream: Stream, connection: Connection): Promise<void> => {
    const log = this.components.logger
    // the deadline holds until the stream has closed at both ends, not until this function returns:
    // a peer that never ends its side would otherwise keep the stream (and its slot) open
    const signal = timeoutSignal(this.requestTimeoutMs, this.components.shutdown)
    abortUnlessClosed(stream, signal)
    whenClosed(stream, signal.clear)
    try {
      const body = await readOneFrame(stream)
      if (body === undefined) {
        // the peer ended its side without a whole request: end ours too
        await stream.close({ signal })
        return
      }
      let request: MailboxRequest
      try {
        request = decodeMailboxRequest(body)
      } catch (err) {
        log.debug({ err, peer: connection.remotePeer.toString() }, 'bad mailbox request; closing the stream')
        stream.abort(err instanceof Error ? err : new Error('bad request'))
        return
      }
      let response: MailboxResponse
      try {
        // the remote peer id is the one Noise authenticated: the proof must name it
        response = await this.serve(request, connection.remotePeer)
      } catch (err) {
        if (err instanceof MailboxAuthorizationError) {
          log.debug({ reason: err.reason, op: request.op, peer: connection.remotePeer.toString() }, 'mailbox request refused')
        } else {
          log.warn({ err }, 'mailbox request failed')
        }
        response = { ok: false, code: err instanceof TalariaError ? err.code : 'ERR_INTERNAL' }
      }
      await writeFrame(stream, encodeMailboxResponse(response), { signal })
      await stream.close({ signal })
    } catch (err) {
      log.debug({ err }, 'mailbox stream failed')
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    }
  }

  /**
   * Applies one request from `requester` to this node's mailbox store. Fetch and delete throw
   * MailboxAuthorizationError, touching nothing, unless their proof names `requester`.
   */
  async serve (request: MailboxRequest, requester: PeerId): Promise<MailboxResponse> {
    authorizeMailboxRequest(request, requester.toString())
    const owner = deviceOwnerKey(request.user, request.device)
    const { mailbox } = this.components
    if (request.op === 'put') {
      const now = Date.now()
      const expiresAt = now + Math.min(request.ttlMs, this.ttlMs)
      const items: Array<{ id: MessageId, conversation: string, seq: number, body: Uint8Array }> = []
      for (const bytes of request.envelopes) {
        const e = decodeEnvelope(bytes)
        // a replica keeps only what is addressed to the box it is asked to fill
        if (e.to.user !== request.user || e.to.device !== request.device) return { ok: false, code: 'ERR_BAD_REQUEST' }
        items.push({ id: e.id, conversation: e.conv, seq: e.seq, body: bytes })
      }
      const stamps = items.map(() => this.components.clock.next())
      const results = await Promise.all(items.map(async (m, i) => await mailbox.put(owner, { ...m, receivedAt: stamps[i] as number, expiresAt })))
      return { ok: true, count: results.filter((r) => r.created).length }
    }
    if (request.op === 'fetch') {
      const page = await mailbox.list(owner, { limit: request.limit, ...(request.after !== undefined ? { after: { receivedAt: request.after.at, id: request.after.id } } : {}) })
      const now = Date.now()
      const live = page.filter((m) => m.expiresAt === undefined || m.expiresAt > now)
      const last = page[page.length - 1]
      const r: MailboxResponse = { ok: true, count: live.length, envelopes: live.map((m) => m.body) }
      if (page.length === request.limit && last !== undefined) r.next = { at: last.receivedAt, id: last.id as MessageId }
      return r
    }
    return { ok: true, count: await mailbox.delete(owner, request.ids) }
  }

  // ---- client side ------------------------------------------------------------------------

  /** The replicas of `user`'s mailbox: the k closest peers that serve mailboxes, this node included. */
  async replicas (user: UserId): Promise<PeerId[]> {
    const cached = this.replicaCache.get(user)
    if (cached !== undefined && cached.expiresAt > Date.now()) return cached.peers
    const key = mailboxKey(user)
    const target = kadId(key)
    const self = this.components.peerId
    const found = new Map<string, PeerId>([[self.toString(), self]])
    const signal = timeoutSignal(DEFAULT_REPLICA_LOOKUP_TIMEOUT_MS, this.components.shutdown)
    try {
      for await (const peer of this.components.getClosestPeers(key, { signal })) {
        found.set(peer.toString(), peer)
        if (found.size > 20 + REPLICA_CANDIDATE_SLACK) break
      }
    } catch (err) {
      this.components.logger.debug({ err, user }, 'replica lookup ended early')
    } finally {
      signal.clear()
    }
    if (this.components.shutdown.aborted) throw new TalariaError('ERR_UNAVAILABLE', 'the node is stopping')
    for (const peer of this.components.connectedPeers()) found.set(peer.toString(), peer)
    const ranked = [...found.values()].map((p) => ({ p, id: kadId(p.toMultihash().bytes) }))
      .sort((a, b) => xorCompare(target, a.id, b.id))
    const peers: PeerId[] = []
    for (const { p } of ranked) {
      if (peers.length >= this.k) break
      if (!p.equals(self)) {
        const protocols = await this.components.peerProtocols(p)
        // bootstrap nodes (and anything that does not serve mailboxes) announce no mailbox protocol
        if (protocols !== undefined && protocols.length > 0 && !protocols.includes(MAILBOX_PROTOCOL)) continue
      }
      peers.push(p)
    }
    // a set that is only this node is not worth caching: the mesh is probably still forming
    if (peers.length > 1) this.replicaCache.set(user, { peers, expiresAt: Date.now() + this.replicaCacheTtlMs })
    return peers
  }

  /** Forgets the cached replica set of `user`. */
  forgetReplicas (user: UserId): void {
    this.replicaCache.delete(user)
  }

  private async request (peer: PeerId, request: MailboxRequest): Promise<MailboxResponse & { ok: true }> {
    if (peer.equals(this.components.peerId)) {
      const r = await this.serve(request, this.components.peerId)
      if (!r.ok) throw new TalariaError(r.code, 'local mailbox refused the request')
      return r
    }
    const signal = timeoutSignal(this.requestTimeoutMs, this.components.shutdown)
    let stream: Stream
    try {
      stream = await this.components.dialProtocol(peer, MAILBOX_PROTOCOL, { signal })
    } catch (err) {
      signal.clear()
      throw err
    }
    // the deadline watches the stream until it closes (exchange keeps watching after it returns)
    whenClosed(stream, signal.clear)
    const body = await exchange(stream, encodeMailboxRequest(request), signal)
    if (body === undefined) throw new TalariaError('ERR_UNAVAILABLE', `replica ${peer.toString()} closed the stream without answering`)
    const r = decodeMailboxResponse(body)
    if (!r.ok) throw new TalariaError(r.code, `replica ${peer.toString()} refused the request`)
    return r
  }

  /**
   * Stores envelopes for (user, device) on every replica. Resolves once the write quorum confirmed
   * (or every replica answered); the replicas that failed are retried in the background.
   */
  async put (user: UserId, device: DeviceId, envelopes: Uint8Array[]): Promise<ReplicaResult> {
    const replicas = await this.replicas(user)
    const result: ReplicaResult = { successes: [], failures: [], replicas: replicas.length }
    const chunks: Uint8Array[][] = []
    for (let i = 0; i < envelopes.length; i += MAX_ENVELOPES_PER_FRAME) chunks.push(envelopes.slice(i, i + MAX_ENVELOPES_PER_FRAME))
    const quorum = Math.min(this.writeQuorum, replicas.length)
    await new Promise<void>((resolve) => {
      let answered = 0
      if (replicas.length === 0) resolve()
      for (const peer of replicas) {
        void (async () => {
          try {
            for (const chunk of chunks) await this.request(peer, { op: 'put', user, device, ttlMs: this.ttlMs, envelopes: chunk })
            result.successes.push(peer.toString())
          } catch (err) {
            result.failures.push({ peerId: peer.toString(), error: err })
            this.retryLater(peer, chunks.map((chunk) => ({ op: 'put', user, device, ttlMs: this.ttlMs, envelopes: chunk })), 1)
          }
          answered++
          if (result.successes.length >= quorum || answered === replicas.length) resolve()
        })()
      }
    })
    if (result.failures.length > 0) this.forgetReplicas(user)
    return { successes: [...result.successes], failures: [...result.failures], replicas: result.replicas }
  }

  /**
   * Deletes ids of (user, device) on every replica, in the background with bounded retries.
   * `proof` is the device's location record naming this node (see {@link authorizeMailboxRequest}).
   */
  deleteInBackground (user: UserId, device: DeviceId, ids: MessageId[], proof: Uint8Array): void {
    void (async () => {
      let replicas: PeerId[]
      try {
        replicas = await this.replicas(user)
      } catch {
        return
      }
      const requests: MailboxRequest[] = []
      for (let i = 0; i < ids.length; i += MAX_IDS_PER_FRAME) requests.push({ op: 'delete', user, device, ids: ids.slice(i, i + MAX_IDS_PER_FRAME), proof })
      await Promise.all(replicas.map(async (peer) => {
        try {
          for (const r of requests) await this.request(peer, r)
        } catch (err) {
          this.retryLater(peer, requests, 1, err)
        }
      }))
    })()
  }

  private retryLater (peer: PeerId, requests: MailboxRequest[], attempt: number, err?: unknown): void {
    // the same proof is refused again: the TTL removes what the delete left
    if (err instanceof TalariaError && err.code === MAILBOX_NOT_AUTHORIZED) {
      this.components.logger.debug({ err, peer: peer.toString() }, 'replica refused the mailbox request; not retried')
      return
    }
    if (attempt > this.retries || this.components.shutdown.aborted || this.backgroundRetries >= MAX_BACKGROUND_RETRIES) return
    this.backgroundRetries++
    const timer = setTimeout(() => {
      this.timers.delete(timer)
      this.backgroundRetries--
      void (async () => {
        try {
          for (const r of requests) await this.request(peer, r)
        } catch (err) {
          this.retryLater(peer, requests, attempt + 1, err)
        }
      })()
    }, this.retryDelayMs * 2 ** (attempt - 1))
    timer.unref()
    this.timers.add(timer)
  }

  /**
   * Every envelope the reachable replicas hold for (user, device), one list per replica. `proof` is
   * the device's location record naming this node (see {@link authorizeMailboxRequest}).
   */
  async fetchAll (user: UserId, device: DeviceId, proof: Uint8Array): Promise<Uint8Array[][]> {
    const replicas = await this.replicas(user)
    const lists = await Promise.all(replicas.map(async (peer) => {
      const out: Uint8Array[] = []
      let after: MailboxCursor | undefined
      try {
        for (let page = 0; page < MAX_FETCH_PAGES; page++) {
          const r = await this.request(peer, { op: 'fetch', user, device, limit: MAX_ENVELOPES_PER_FRAME, proof, ...(after !== undefined ? { after } : {}) })
          out.push(...(r.envelopes ?? []))
          if (r.next === undefined) break
          after = r.next
        }
      } catch (err) {
        this.components.logger.debug({ err, peer: peer.toString() }, 'mailbox fetch from a replica failed')
      }
      return out
    }))
    return lists
  }
}

/** Resolves a peer id string, or undefined when it is not one. */
export function parsePeerId (id: string): PeerId | undefined {
  try {
    return peerIdFromString(id)
  } catch {
    return undefined
  }
}
