/**
 * The Talaria client: one device of one user, connected to one node at a time.
 *
 * Sending: look the recipient up (records verified here, never trusted from the node), keep one
 * Double Ratchet session per peer device (X3DH on the signed prekey to start one), encrypt once per
 * recipient device and once per own other device, assign the per-(device, conversation) `seq`,
 * persist, and resolve when the node has the envelopes durably in its outbox.
 *
 * Receiving: decrypt, persist the session and the envelope's effect in one batch, THEN ack the
 * node; dedupe by logical message id; hand text messages to the application in seq order per
 * (sender device, conversation), asking the sender to resend when a gap outlives a timeout.
 *
 * Every state change (sessions, counters, logs) runs under one lock, so sessions never see two
 * operations at once and seq numbers follow call order; network I/O runs outside it.
 */
import { equalBytes, toHex } from '../protocol/bytes.js'
import type { ClientEvents as WireEvents, EventFrame } from '../protocol/client-protocol.js'
import { authSigningBytes, type ChallengeFrame, type ClientOp as ClientOpName, type ClientOps } from '../protocol/client-protocol.js'
import { decodeValue, encodeValue, expectArray, expectBytes, expectObject, expectString, expectUint } from '../protocol/codec.js'
import { MAX_TEXT_LENGTH, decodeContent, encodeContent, isUnknownContentType, type Content, type TextContent } from '../protocol/content.js'
import { defaultCrypto } from '../protocol/crypto/index.js'
import type { CryptoProvider } from '../protocol/crypto/provider.js'
import {
  createInitiatorSession, createResponderSession, deserializeSession, nextHeader, ratchetDecrypt, ratchetEncrypt, serializeSession,
  x3dhInitiate, x3dhRespond, type PreKeyBundle, type RatchetSession
} from '../protocol/e2e/index.js'
import { decodeEnvelope, encodeEnvelope, envelopeAssociatedData, type DirectEnvelope, type X3dhInit } from '../protocol/envelopes.js'
import { TalariaError } from '../protocol/errors.js'
import { encodeDeviceCertificate, encodeDeviceList, isDeviceActive, verifyDeviceList, type DeviceList } from '../protocol/identity.js'
import { directConversationId, newMessageId, parseConversationId, parseDeviceId, parseMessageId, parseUserId, type ConversationId, type DeviceId, type GroupId, type MessageId, type UserId } from '../protocol/ids.js'
import { MAX_ADDR_LENGTH, MAX_ADDRS_PER_LOCATION, MAX_RECEIPT_IDS } from '../protocol/limits.js'
import {
  decodeDevicesPayload, decodeRecord, encodeDevicesPayload, encodeLocationPayload, encodePrekeyPayload, prekeyBundleFromRecord,
  recordKey, signRecord, validateRecord
} from '../protocol/records.js'
import { DEFAULT_RECONNECT_BASE_MS, DEFAULT_RECONNECT_MAX_MS, backoffDelay } from './backoff.js'
import { Connection, DEFAULT_REQUEST_TIMEOUT_MS, type WebSocketConstructor } from './connection.js'
import { ClientError, abortError } from './errors.js'
import { deviceKeys, type ClientIdentity } from './identity.js'
import { Lock, pad } from './lock.js'
import { OrderingBuffer } from './ordering.js'
import { MemoryStore, type ClientStore, type StoreOp } from './store.js'
import {
  ClientGroups, type CreateGroupOptions, type CreateRoomOptions, type GroupCallOptions, type GroupDirectContent, type GroupEvents
} from './groups.js'
import type { GroupRole, GroupSettings, GroupState } from '../protocol/groups/index.js'

/** The node URL when none is given: a node on this machine with the default HTTP port. */
export const DEFAULT_NODE_URL = 'ws://127.0.0.1:7780/v1'
/** Lifetime of a location record; the client refreshes it at half that. */
export const LOCATION_TTL_MS = 10 * 60 * 1000
/** How often a connected client republishes its location. */
export const DEFAULT_LOCATION_REFRESH_MS = 5 * 60 * 1000
/** Lifetime of the device list and prekey records published at each connect. */
export const DEFAULT_KEY_RECORD_TTL_MS = 7 * 24 * 3600 * 1000
/** How long a looked-up user's devices are reused before the next lookup. */
export const DEFAULT_LOOKUP_CACHE_MS = 30_000
/** How long `send` waits for the node's ack, across reconnects. */
export const DEFAULT_SEND_TIMEOUT_MS = 60_000
/** Logical ids remembered for deduplication (the oldest are forgotten first). */
export const DEFAULT_MAX_SEEN_IDS = 100_000
/** Sent messages kept per conversation to answer resend requests. */
export const DEFAULT_SENT_LOG_SIZE = 1000
/** Delay before a batch of automatic delivered receipts goes out. */
export const DEFAULT_RECEIPT_DELAY_MS = 200
/** Delay before a batch of acks goes out (acks of a burst travel together). */
export const DEFAULT_ACK_DELAY_MS = 5
/** Incoming envelopes queued for processing; the node's push window keeps it far below this. */
export const DEFAULT_MAX_INCOMING_QUEUE = 10_000
/** Sessions kept per peer device (simultaneous session starts create more than one). */
export const MAX_SESSIONS_PER_DEVICE = 4
/** `send` requests in flight at once. */
export const DEFAULT_SEND_PIPELINE = 4
/** Pause before retrying a refused or unanswered `send` when the node gave no hint, in milliseconds. */
export const DEFAULT_SEND_RETRY_MS = 200
/** Lookups retried when the sender of a session-starting envelope cannot be checked. */
const SENDER_LOOKUP_RETRIES = 3
/** Envelope id → logical id entries kept to translate the node's `delivered` events. */
const MAX_DELIVERY_MAP = 20_000
/** Envelope ids remembered in memory to skip duplicate pushes without a decryption attempt. */
const MAX_RECENT_ENVELOPES = 20_000
const SESSION_RECORD_VERSION = 1
/** Bytes of a `send` request frame besides its envelopes: frame fields and list header, generously. */
const SEND_FRAME_OVERHEAD = 1024
/** Bytes one envelope adds to a `send` frame besides its own: its MessagePack bin header. */
const ENVELOPE_ITEM_OVERHEAD = 5

/** How many envelopes, and how many frame bytes of them, one `send` request may carry on `conn`. */
interface SendLimits { count: number, bytes: number }

function sendLimits (conn: Connection): SendLimits {
  const l = conn.challenge.limits
  return { count: Math.max(1, l.maxEnvelopesPerSend), bytes: Math.max(1, l.maxFrameBytes - SEND_FRAME_OVERHEAD) }
}

/** The frame bytes `envelopes` take in a `send` request. */
function envelopesFrameBytes (envelopes: readonly Uint8Array[]): number {
  let n = 0
  for (const e of envelopes) n += e.length + ENVELOPE_ITEM_OVERHEAD
  return n
}

/**
 * Splits envelopes into `send` requests within the node's count and frame-size limits, in order.
 * An envelope alone always fits: the node's frame limit is the largest envelope plus headroom.
 */
function sendBatches (envelopes: readonly Uint8Array[], limits: SendLimits): Uint8Array[][] {
  const out: Uint8Array[][] = []
  let part: Uint8Array[] = []
  let bytes = 0
  for (const e of envelopes) {
    const size = e.length + ENVELOPE_ITEM_OVERHEAD
    if (part.length > 0 && (part.length >= limits.count || bytes + size > limits.bytes)) {
      out.push(part)
      part = []
      bytes = 0
    }
    part.push(e)
    bytes += size
  }
  if (part.length > 0) out.push(part)
  return out
}

/** A structured logger (pino fits). */
export interface ClientLogger {
  debug(obj: object, msg?: string): void
  info(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
  error(obj: object, msg?: string): void
}

const silentLogger: ClientLogger = { debug () {}, info () {}, warn () {}, error () {} }

/** Options of {@link createClient}. Every option but `identity` has a default. */
export interface ClientInit {
  /** WebSocket URL of the node (default {@link DEFAULT_NODE_URL}). */
  url?: string
  identity: ClientIdentity
  /** Where sessions and state live (default: a MemoryStore). The client opens and closes it. */
  store?: ClientStore
  /** WebSocket constructor (default `globalThis.WebSocket`; pass `ws`'s in Node 20). */
  WebSocket?: WebSocketConstructor
  crypto?: CryptoProvider
  logger?: ClientLogger
  /** Send delivered receipts automatically when messages reach the application (default true). */
  autoDeliveredReceipts?: boolean
  /** Reconnect after a lost connection (default true). */
  reconnect?: boolean
  reconnectBaseMs?: number
  reconnectMaxMs?: number
  /** Reconnect attempts in a row before giving up (default: no limit). */
  maxReconnectAttempts?: number
  connectTimeoutMs?: number
  requestTimeoutMs?: number
  sendTimeoutMs?: number
  /** See client/ordering.ts. */
  gapTimeoutMs?: number
  gapMaxRequests?: number
  locationRefreshMs?: number
  lookupCacheMs?: number
  maxSeenIds?: number
  sentLogSize?: number
  receiptDelayMs?: number
  ackDelayMs?: number
  /**
   * Publish the device list, prekeys and location at connect (default true). A client that only
   * uses rooms passes false: connect is then just `auth`, but nobody can start a 1:1 session with
   * it, so it can neither receive direct messages nor group sender keys.
   */
  publishKeys?: boolean
}

/** A text message as the application sees it. */
export interface ClientMessage {
  /** Logical message id: the same on every device and across resends. */
  id: MessageId
  /** The sending user (this user for copies from an own other device). */
  from: UserId
  fromDevice: DeviceId
  conv: ConversationId
  /** Position in the sender device's stream for this conversation. */
  seq: number
  text: string
  sentAt: number
  /** On copies of what this user sent from another device: the other party. */
  peer?: UserId
}

/** The client's events and their payloads (groups and rooms: see client/groups.ts). */
export interface ClientEvents extends GroupEvents {
  message: ClientMessage
  receipt: { from: UserId, fromDevice: DeviceId, receipt: 'delivered' | 'read', ids: MessageId[] }
  /** Messages this device sent reached the recipient's node inbox or its mailbox replicas. */
  delivered: { ids: MessageId[] }
  connected: { node: string, url: string }
  disconnected: { reason: string }
  error: { error: Error, context: string }
}

/** Options of every async client call. */
export interface CallOptions {
  signal?: AbortSignal
}

/** A connected device. */
export interface TalariaClient {
  readonly userId: UserId
  readonly deviceId: DeviceId
  /** True while authenticated to a node. */
  readonly connected: boolean
  /** Opens the store, connects, authenticates and publishes keys and location; rejects on failure. */
  connect(opts?: CallOptions): Promise<void>
  /** Sends `text` to `to`; resolves with the logical id once the node has it durably. */
  send(to: UserId, text: string, opts?: CallOptions): Promise<MessageId>
  /** Sends read receipts for received messages. */
  markRead(ids: MessageId[], opts?: CallOptions): Promise<void>
  /** The active device ids of `user`, verified (a lookup unless cached). */
  devices(user: UserId, opts?: CallOptions & { refresh?: boolean }): Promise<DeviceId[]>
  /** Creates a group with this user as owner and `members` added; resolves with its id. */
  createGroup(opts: CreateGroupOptions, call?: GroupCallOptions): Promise<GroupId>
  /** Admin+ (anyone when the policy is open): adds users and sends them the group's ops. */
  addMembers(group: GroupId, users: UserId[], call?: GroupCallOptions): Promise<void>
  /** Admin+: removes members; the next message rotates this device's sender key. */
  removeMembers(group: GroupId, users: UserId[], call?: GroupCallOptions): Promise<void>
  /** Leaves a group (the owner cannot: transfer or dismiss instead). */
  leaveGroup(group: GroupId, call?: GroupCallOptions): Promise<void>
  /** Invites users (they may then `joinGroup` whatever the policy) and sends them the group's ops. */
  invite(group: GroupId, users: UserId[], call?: GroupCallOptions): Promise<void>
  /** Asks to join a group whose policy is `approval`. */
  requestJoin(group: GroupId, call?: GroupCallOptions): Promise<void>
  /** Admin+: turns join requests into memberships and sends the users the group's ops. */
  approve(group: GroupId, users: UserId[], call?: GroupCallOptions): Promise<void>
  /** Joins a group that is open or that invited this user. */
  joinGroup(group: GroupId, call?: GroupCallOptions): Promise<void>
  /** Owner: makes a member an admin or an admin a member. */
  setRole(group: GroupId, user: UserId, role: Exclude<GroupRole, 'owner'>, call?: GroupCallOptions): Promise<void>
  /** Admin+: mutes members of lower rank until `untilMs` (ms since the epoch; 0 unmutes). */
  mute(group: GroupId, users: UserId[], untilMs: number, call?: GroupCallOptions): Promise<void>
  /** Admin+: while on, only admins and the owner may send. */
  muteAll(group: GroupId, on: boolean, call?: GroupCallOptions): Promise<void>
  /** Admin+: replaces the settings; fields not given keep their current values. */
  updateGroupSettings(group: GroupId, settings: Partial<GroupSettings>, call?: GroupCallOptions): Promise<void>
  /** Owner: another member becomes owner, this user becomes admin. */
  transferOwnership(group: GroupId, user: UserId, call?: GroupCallOptions): Promise<void>
  /** Admin+: bans users (removing members among them). */
  ban(group: GroupId, users: UserId[], call?: GroupCallOptions): Promise<void>
  /** Admin+: lifts bans. */
  unban(group: GroupId, users: UserId[], call?: GroupCallOptions): Promise<void>
  /** Owner: ends the group. */
  dismissGroup(group: GroupId, call?: GroupCallOptions): Promise<void>
  /** Sends an end-to-end encrypted text to a group; resolves with its id once the node holds it durably. */
  sendGroup(group: GroupId, text: string, call?: GroupCallOptions): Promise<MessageId>
  /** The state of a group or room as this device's own verified log has it; undefined when unknown. */
  group(group: GroupId): GroupState | undefined
  /** Every group and room this device knows. */
  groups(): GroupId[]
  /** Creates a room (public, moderated, not end-to-end encrypted); resolves with its id. */
  createRoom(opts: CreateRoomOptions, call?: GroupCallOptions): Promise<GroupId>
  /** Enters a room: its messages arrive as `roomMessage` events until `leaveRoom`. */
  enterRoom(room: GroupId, call?: GroupCallOptions): Promise<void>
  /** Leaves a room. */
  leaveRoom(room: GroupId, call?: GroupCallOptions): Promise<void>
  /** Sends a signed, plaintext room message; resolves with its id once the node holds it. */
  sendRoom(room: GroupId, text: string, call?: GroupCallOptions): Promise<MessageId>
  on<E extends keyof ClientEvents>(event: E, listener: (payload: ClientEvents[E]) => void): () => void
  /** Flushes acks, closes the connection and the store. */
  close(opts?: CallOptions): Promise<void>
}

/** Creates a client; call `connect()` to start it. */
export function createClient (init: ClientInit): TalariaClient {
  return new DefaultTalariaClient(init)
}

// ---- internals ------------------------------------------------------------------------------

interface SessionEntry {
  session: RatchetSession
  peerUser: UserId
  /** Set on sessions this device started until the peer has answered: envelopes carry it. */
  init?: X3dhInit
  /** For sessions started by the peer: their ephemeral key, so a repeated prekey envelope finds it. */
  initEk?: string
}

interface PeerDevice {
  user: UserId
  device: DeviceId
  exchangeKey: Uint8Array
  bundle?: PreKeyBundle
}

interface Directory {
  list: DeviceList
  devices: Map<DeviceId, PeerDevice>
  at: number
}

interface PendingMessage extends ClientMessage {
  stream: string
  /** Where the sender's stream to this device starts (see TextContent.base). */
  base?: number
}

interface OutJob {
  envelopes: Uint8Array[]
  deadline: number
  signal?: AbortSignal
  resolve: () => void
  reject: (err: Error) => void
}

interface SentEntry {
  id: MessageId
  seq: number
  text: string
  sentAt: number
  to: UserId
}

function x3dhInitOf (m: { identityKey: Uint8Array, ephemeralKey: Uint8Array, signedPreKeyId: number, oneTimePreKeyId?: number }): X3dhInit {
  const init: X3dhInit = { identityKey: m.identityKey, ephemeralKey: m.ephemeralKey, signedPrekeyId: m.signedPreKeyId }
  if (m.oneTimePreKeyId !== undefined) init.oneTimePrekeyId = m.oneTimePreKeyId
  return init
}

class DefaultTalariaClient implements TalariaClient {
  readonly userId: UserId
  readonly deviceId: DeviceId
  private identity: ClientIdentity
  private readonly url: string
  private readonly store: ClientStore
  private readonly crypto: CryptoProvider
  private readonly log: ClientLogger
  private readonly WebSocket: WebSocketConstructor | undefined
  private readonly init: ClientInit
  private readonly listeners = new Map<keyof ClientEvents, Set<(p: never) => void>>()
  private readonly lock = new Lock()
  private readonly sessions = new Map<DeviceId, SessionEntry[]>()
  private readonly directory = new Map<UserId, Directory>()
  private readonly ordering: OrderingBuffer<PendingMessage>
  private conn: Connection | undefined
  private connecting: Promise<void> | undefined
  private closing = false
  private storeOpen = false
  private restored = false
  private reconnectAttempt = 0
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined
  private refreshTimer: ReturnType<typeof setInterval> | undefined
  private readonly waiters = new Set<() => void>()
  private readonly incoming: Uint8Array[] = []
  private processing = false
  private ackQueue: MessageId[] = []
  private ackTimer: ReturnType<typeof setTimeout> | undefined
  private readonly receiptQueue = new Map<DeviceId, { user: UserId, ids: MessageId[] }>()
  private receiptTimer: ReturnType<typeof setTimeout> | undefined
  private readonly deliveryMap = new Map<MessageId, MessageId>()
  private readonly recentEnvelopes = new Map<MessageId, true>()
  private readonly background = new Set<Promise<unknown>>()
  private readonly lookups = new Map<UserId, Promise<Directory>>()
  private outQueue: OutJob[] = []
  private sendsInFlight = 0
  private sendWaiter = false
  private sendPaceTimer: ReturnType<typeof setTimeout> | undefined
  private readonly groupsLayer: ClientGroups

  constructor (init: ClientInit) {
    this.init = init
    this.identity = init.identity
    this.userId = init.identity.user.userId
    this.deviceId = init.identity.device.deviceId
    this.url = init.url ?? DEFAULT_NODE_URL
    this.store = init.store ?? new MemoryStore()
    this.crypto = init.crypto ?? defaultCrypto
    this.log = init.logger ?? silentLogger
    this.WebSocket = init.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket
    this.ordering = new OrderingBuffer<PendingMessage>({
      ...(init.gapTimeoutMs !== undefined ? { gapTimeoutMs: init.gapTimeoutMs } : {}),
      ...(init.gapMaxRequests !== undefined ? { gapMaxRequests: init.gapMaxRequests } : {}),
      deliver: (m) => { this.deliverToApp(m) },
      requestGap: (_stream, fromSeq, toSeq, sample) => {
        this.log.info({ from: sample.fromDevice, conv: sample.conv, fromSeq, toSeq }, 'asking the sender to resend a gap')
        this.spawn(this.sendControl(sample.from, sample.fromDevice, sample.conv, { type: 'gap', conv: sample.conv, fromSeq, toSeq }), 'gap request')
      },
      skipped: (stream, fromSeq, toSeq) => {
        this.emitError(new ClientError('ERR_TIMEOUT', `gave up waiting for ${stream} seq ${fromSeq}..${toSeq}`), 'gap')
      }
    })
    this.groupsLayer = new ClientGroups({
      identity: () => this.identity,
      crypto: this.crypto,
      store: this.store,
      log: this.log,
      request: async (op, body, opts) => await this.requestRetrying(undefined, op, body, opts.deadline, opts.signal),
      sendDirect: async (user, device, content, opts) => {
        await this.sendControl(user, device, directConversationId(this.userId, user, this.crypto), content, opts)
      },
      devicesOf: async (user, signal) => await this.devices(user, signal !== undefined ? { signal } : {}),
      emit: (event, payload) => { this.emit(event, payload as ClientEvents[typeof event]) },
      emitError: (error, context) => { this.emitError(error, context) },
      spawn: (p, context) => { this.spawn(p, context) },
      closing: () => this.closing
    }, {
      timeoutMs: init.sendTimeoutMs ?? DEFAULT_SEND_TIMEOUT_MS,
      ...(init.gapTimeoutMs !== undefined ? { gapTimeoutMs: init.gapTimeoutMs } : {}),
      ...(init.gapMaxRequests !== undefined ? { gapMaxRequests: init.gapMaxRequests } : {}),
      ...(init.maxSeenIds !== undefined ? { maxSeenIds: init.maxSeenIds } : {})
    })
  }

  get connected (): boolean {
    return this.conn?.open === true
  }

  on<E extends keyof ClientEvents> (event: E, listener: (payload: ClientEvents[E]) => void): () => void {
    let set = this.listeners.get(event)
    if (set === undefined) { set = new Set(); this.listeners.set(event, set) }
    set.add(listener as (p: never) => void)
    return () => { set.delete(listener as (p: never) => void) }
  }

  private emit<E extends keyof ClientEvents> (event: E, payload: ClientEvents[E]): void {
    for (const l of [...(this.listeners.get(event) ?? [])]) {
      try {
        (l as (p: ClientEvents[E]) => void)(payload)
      } catch (err) {
        // an application listener's failure must not break delivery to the others
        this.log.error({ err, event }, 'event listener threw')
      }
    }
  }

  private emitError (error: Error, context: string): void {
    this.log.warn({ err: error, context }, 'client error')
    this.emit('error', { error, context })
  }

  /** Runs a background task; failures become `error` events. */
  private spawn (p: Promise<unknown>, context: string): void {
    const tracked = p.catch((err: unknown) => {
      if (!this.closing) this.emitError(err instanceof Error ? err : new Error(String(err)), context)
    }).finally(() => { this.background.delete(tracked) })
    this.background.add(tracked)
  }

  // ---- lifecycle ----------------------------------------------------------------------------

  async connect (opts: CallOptions = {}): Promise<void> {
    if (this.closing) throw new ClientError('ERR_CLOSED', 'client is closed')
    if (this.connected) return
    if (this.connecting !== undefined) { await this.connecting; return }
    this.connecting = this.connectOnce(opts.signal)
    try {
      await this.connecting
    } finally {
      this.connecting = undefined
    }
  }

  private async openStore (signal?: AbortSignal): Promise<void> {
    if (this.storeOpen) return
    await this.store.open({ ...(signal !== undefined ? { signal } : {}) })
    this.storeOpen = true
    const bound = await this.store.get('meta', 'device')
    const mine = new TextEncoder().encode(this.deviceId)
    if (bound === undefined) await this.store.batch([{ type: 'put', ns: 'meta', key: 'device', value: mine }])
    else if (!equalBytes(bound, mine)) throw new ClientError('ERR_STORE_MISMATCH', 'this store belongs to another device')
    const list = await this.store.get('meta', 'deviceList')
    if (list !== undefined) {
      try {
        const l = decodeDevicesPayload(list)
        verifyDeviceList(l, this.crypto)
        if (l.userId === this.userId && l.seq > this.identity.deviceList.seq && isDeviceActive(l, this.deviceId)) this.identity = { ...this.identity, deviceList: l }
      } catch (err) {
        this.log.warn({ err }, 'ignoring a stored device list that does not verify')
      }
    }
  }

  /** Re-offers received messages that never reached the application (after a restart). */
  private async restore (): Promise<void> {
    if (this.restored) return
    this.restored = true
    for (const [key, value] of await this.store.list('counters', { gte: 'recv/', lt: 'recv0' })) {
      this.ordering.setNext(key.slice('recv/'.length), expectUint(decodeValue(value, 64), 'counter') + 1)
    }
    for (const [, value] of await this.store.list('pending')) {
      try {
        this.ordering.offer(decodePending(value))
      } catch (err) {
        this.log.warn({ err }, 'dropping an unreadable pending message')
      }
    }
    await this.groupsLayer.start()
  }

  private async connectOnce (signal?: AbortSignal): Promise<void> {
    await this.openStore(signal)
    await this.restore()
    if (this.WebSocket === undefined) throw new ClientError('ERR_BAD_ARGUMENT', 'no WebSocket implementation: pass init.WebSocket')
    const conn = await Connection.open({
      url: this.url,
      WebSocket: this.WebSocket,
      ...(this.init.connectTimeoutMs !== undefined ? { connectTimeoutMs: this.init.connectTimeoutMs } : {}),
      ...(this.init.requestTimeoutMs !== undefined ? { requestTimeoutMs: this.init.requestTimeoutMs } : {}),
      ...(signal !== undefined ? { signal } : {}),
      onEvent: (frame) => { this.onEvent(frame) },
      onClose: (reason) => { this.onClosed(conn, reason) }
    })
    try {
      await this.handshake(conn, signal)
    } catch (err) {
      conn.close('handshake failed')
      throw err
    }
    if (this.closing) { conn.close('client closed'); throw new ClientError('ERR_CLOSED', 'client is closed') }
    this.conn = conn
    this.reconnectAttempt = 0
    const refreshMs = this.init.locationRefreshMs ?? DEFAULT_LOCATION_REFRESH_MS
    clearInterval(this.refreshTimer)
    if (this.init.publishKeys !== false) this.refreshTimer = setInterval(() => { this.spawn(this.publishLocation(conn), 'location refresh') }, refreshMs)
    this.log.info({ node: conn.challenge.node, url: this.url }, 'connected')
    this.emit('connected', { node: conn.challenge.node, url: this.url })
    for (const w of [...this.waiters]) w()
    // what the groups said while this device was away, and rooms entered before a reconnect
    this.spawn(this.groupsLayer.onConnected(), 'group sync')
  }

  private async handshake (conn: Connection, signal?: AbortSignal): Promise<void> {
    const sOpt = signal !== undefined ? { signal } : {}
    const id = this.identity
    const ch = conn.challenge
    const sig = this.crypto.ed25519Sign(id.device.signingSeed, authSigningBytes(ch.nonce, ch.node, this.userId, this.deviceId))
    await conn.request('auth', { user: this.userId, device: this.deviceId, cert: encodeDeviceCertificate(id.device.cert), deviceList: encodeDeviceList(id.deviceList), sig }, sOpt)
    if (this.init.publishKeys === false) return
    // adopt a newer device list of this user if one was published (by another device)
    let publishList = true
    // a failed lookup is not fatal: this device then publishes the list it holds
    const own = await conn.request('lookup', { user: this.userId }, sOpt).catch((err: unknown) => {
      if (signal?.aborted === true) throw err
      this.log.warn({ err }, 'looking up this user\'s own device list failed')
      return { deviceList: undefined, prekeys: [] }
    })
    if (own.deviceList !== undefined) {
      try {
        const list = this.verifyDeviceListRecord(this.userId, own.deviceList)
        if (list.seq > id.deviceList.seq || (list.seq === id.deviceList.seq && equalBytes(list.sig, id.deviceList.sig))) {
          if (!isDeviceActive(list, this.deviceId)) throw new ClientError('ERR_DEVICE_REVOKED', 'this device is not in its user\'s newest device list')
          if (list.seq > id.deviceList.seq) {
            this.identity = { ...this.identity, deviceList: list }
            await this.store.batch([{ type: 'put', ns: 'meta', key: 'deviceList', value: encodeDevicesPayload(list) }])
          }
          publishList = list.seq !== id.deviceList.seq
        }
      } catch (err) {
        if (err instanceof ClientError && err.code === 'ERR_DEVICE_REVOKED') throw err
        this.log.warn({ err }, 'own device list from the node does not verify; publishing ours')
      }
    }
    const now = Date.now()
    const records: Uint8Array[] = []
    const root = { seed: this.identity.user.rootSeed, publicKey: this.identity.user.rootPublicKey }
    const dev = { seed: id.device.signingSeed, publicKey: id.device.signingPublicKey, cert: id.device.cert }
    if (publishList) {
      records.push(signRecord({ kind: 'devices', id: this.userId, seq: this.identity.deviceList.seq, expiresAt: now + DEFAULT_KEY_RECORD_TTL_MS, payload: encodeDevicesPayload(this.identity.deviceList) }, root, { crypto: this.crypto, now }))
    }
    const spk = id.signedPreKey
    records.push(signRecord({
      kind: 'prekeys',
      id: this.deviceId,
      seq: now,
      expiresAt: now + DEFAULT_KEY_RECORD_TTL_MS,
      payload: encodePrekeyPayload({ identityKey: id.device.exchangePublicKey, signedPrekey: { id: spk.id, key: spk.publicKey, sig: spk.signature }, oneTimePrekeys: [] })
    }, dev, { crypto: this.crypto, now }))
    const location = this.locationRecords(ch, now)
    records.push(location.record)
    const res = await conn.request('publish', { records, onDisconnect: [location.withdraw] }, sOpt)
    for (const f of res.failures) this.log.warn({ index: f.index, code: f.code, message: f.message }, 'a record was not published')
    if (res.stored === 0 && res.failures.length > 0) throw new ClientError(res.failures[0]!.code, `publish failed: ${res.failures[0]!.message}`)
  }

  /** A location record pointing at the connected node and its pre-signed, newer, empty successor. */
  private locationRecords (ch: ChallengeFrame, now: number): { record: Uint8Array, withdraw: Uint8Array } {
    const id = this.identity
    const dev = { seed: id.device.signingSeed, publicKey: id.device.signingPublicKey, cert: id.device.cert }
    const addrs = ch.addrs.filter((a) => a.length <= MAX_ADDR_LENGTH).slice(0, MAX_ADDRS_PER_LOCATION)
    const expiresAt = now + LOCATION_TTL_MS
    // seq 2t for the record and 2t+1 for its withdrawal: the withdrawal beats this record, and
    // the next refresh (a later t) beats the withdrawal
    const record = signRecord({ kind: 'location', id: this.deviceId, seq: now * 2, expiresAt, payload: encodeLocationPayload([{ device: this.deviceId, node: ch.node, addrs, expires: expiresAt }]) }, dev, { crypto: this.crypto, now })
    const withdraw = signRecord({ kind: 'location', id: this.deviceId, seq: now * 2 + 1, expiresAt, payload: encodeLocationPayload([]) }, dev, { crypto: this.crypto, now })
    return { record, withdraw }
  }

  private async publishLocation (conn: Connection): Promise<void> {
    if (!conn.open) return
    const { record, withdraw } = this.locationRecords(conn.challenge, Date.now())
    await this.requestRetrying(conn, 'publish', { records: [record], onDisconnect: [withdraw] }, Date.now() + DEFAULT_REQUEST_TIMEOUT_MS)
  }

  private onClosed (conn: Connection, reason: string): void {
    if (this.conn !== conn) return
    this.conn = undefined
    clearInterval(this.refreshTimer)
    this.refreshTimer = undefined
    // unacked pushes come again after a reconnect; acking them then is cheaper than tracking them
    this.ackQueue = []
    this.log.info({ reason }, 'disconnected')
    this.emit('disconnected', { reason })
    if (!this.closing && this.init.reconnect !== false) this.scheduleReconnect()
  }

  private scheduleReconnect (): void {
    if (this.reconnectTimer !== undefined || this.closing) return
    const max = this.init.maxReconnectAttempts ?? Infinity
    if (this.reconnectAttempt >= max) {
      this.emitError(new ClientError('ERR_DISCONNECTED', `gave up after ${this.reconnectAttempt} reconnect attempts`), 'reconnect')
      return
    }
    const delay = backoffDelay(this.reconnectAttempt, { baseMs: this.init.reconnectBaseMs ?? DEFAULT_RECONNECT_BASE_MS, maxMs: this.init.reconnectMaxMs ?? DEFAULT_RECONNECT_MAX_MS })
    this.reconnectAttempt++
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined
      if (this.closing || this.connected) return
      this.connect().catch((err: unknown) => {
        const code = err instanceof TalariaError ? err.code : ''
        this.log.warn({ err, attempt: this.reconnectAttempt }, 'reconnect failed')
        if (code === 'ERR_DEVICE_REVOKED' || code === 'ERR_PROTOCOL' || code === 'ERR_STORE_MISMATCH' || code === 'ERR_CLOSED') {
          this.emitError(err as Error, 'reconnect')
          return
        }
        this.scheduleReconnect()
      })
    }, delay)
  }

  /** Resolves when connected; rejects at the deadline or when the client closes. */
  private async whenConnected (deadline: number, signal?: AbortSignal): Promise<Connection> {
    for (;;) {
      if (this.closing) throw new ClientError('ERR_CLOSED', 'client is closed')
      if (signal?.aborted === true) throw abortError(signal)
      const conn = this.conn
      if (conn?.open === true) return conn
      const left = deadline - Date.now()
      if (left <= 0) throw new ClientError('ERR_TIMEOUT', 'not connected before the deadline')
      await new Promise<void>((resolve) => {
        const done = (): void => { clearTimeout(t); this.waiters.delete(done); signal?.removeEventListener('abort', done); resolve() }
        const t = setTimeout(done, left)
        this.waiters.add(done)
        signal?.addEventListener('abort', done, { once: true })
      })
    }
  }

  async close (_opts: CallOptions = {}): Promise<void> {
    if (this.closing) return
    this.closing = true
    clearTimeout(this.reconnectTimer)
    clearInterval(this.refreshTimer)
    clearTimeout(this.receiptTimer)
    clearTimeout(this.sendPaceTimer)
    this.sendPaceTimer = undefined
    for (const w of [...this.waiters]) w()
    this.failExpired(new ClientError('ERR_CLOSED', 'client closed'))
    this.ordering.close()
    this.groupsLayer.close()
    await this.flushAcks().catch(() => {})
    clearTimeout(this.ackTimer)
    // requests still in flight fail at once instead of running into their timeouts
    this.conn?.close('client closed')
    this.conn = undefined
    await Promise.allSettled([...this.background])
    await this.lock.run(async () => {})
    if (this.storeOpen) {
      this.storeOpen = false
      await this.store.close()
    }
  }

  // ---- directory ----------------------------------------------------------------------------

  private verifyDeviceListRecord (user: UserId, bytes: Uint8Array): DeviceList {
    try {
      const r = validateRecord(recordKey('devices', user), bytes, { crypto: this.crypto })
      const list = decodeDevicesPayload(r.payload)
      verifyDeviceList(list, this.crypto)
      if (list.userId !== user) throw new ClientError('ERR_INVALID_RECORD', 'device list of another user')
      return list
    } catch (err) {
      if (err instanceof ClientError) throw err
      throw new ClientError('ERR_INVALID_RECORD', `device list of ${user} does not verify: ${(err as Error).message}`, { cause: err })
    }
  }

  /**
   * A request that waits out rate limits and transient unavailability (the node's hint, else a
   * short pause) until the deadline; other failures are thrown at once.
   */
  private async requestRetrying<Op extends ClientOpName> (fixed: Connection | undefined, op: Op, body: ClientOps[Op]['req'], deadline: number, signal?: AbortSignal): Promise<ClientOps[Op]['res']> {
    for (;;) {
      // without a fixed connection: whichever is current, waiting across reconnects (the ops
      // this is used for are idempotent, so a retry after a lost answer is safe)
      const conn = fixed ?? await this.whenConnected(deadline, signal)
      try {
        return await conn.request(op, body, {
          ...(signal !== undefined ? { signal } : {}),
          ...(fixed === undefined ? { timeoutMs: Math.max(1, Math.min(deadline - Date.now(), this.init.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS)) } : {})
        })
      } catch (err) {
        const code = err instanceof TalariaError ? err.code : ''
        const transient = code === 'ERR_RATE_LIMITED' || code === 'ERR_USER_RATE_LIMITED' || code === 'ERR_UNAVAILABLE' ||
          (fixed === undefined && (code === 'ERR_DISCONNECTED' || code === 'ERR_TIMEOUT'))
        if (!transient || Date.now() >= deadline || this.closing || signal?.aborted === true) throw err
        // a socket that is closing refuses at once while it still looks open: yield to the event
        // loop so its close is processed, rather than spinning on it
        if (code === 'ERR_DISCONNECTED') { await new Promise((resolve) => setTimeout(resolve, 20)); continue }
        const hint = (err as { retryAfterMs?: number }).retryAfterMs ?? DEFAULT_SEND_RETRY_MS
        await new Promise((resolve) => setTimeout(resolve, Math.max(1, Math.min(hint, deadline - Date.now()))))
      }
    }
  }

  /** Looks `user` up through the node and verifies everything: list, certificates, prekeys. */
  private async lookup (user: UserId, signal?: AbortSignal): Promise<Directory> {
    const deadline = Date.now() + (this.init.sendTimeoutMs ?? DEFAULT_SEND_TIMEOUT_MS)
    const conn = await this.whenConnected(deadline, signal)
    const res = await this.requestRetrying(conn, 'lookup', { user }, deadline, signal)
    if (res.deviceList === undefined) throw new ClientError('ERR_NO_DEVICES', `${user} has no published device list`)
    let list = this.verifyDeviceListRecord(user, res.deviceList)
    // our own list may be newer than what the node found in the DHT
    if (user === this.userId && this.identity.deviceList.seq > list.seq) list = this.identity.deviceList
    const devices = new Map<DeviceId, PeerDevice>()
    for (const d of list.devices) devices.set(d.deviceId, { user, device: d.deviceId, exchangeKey: d.exchangeKey })
    for (const bytes of res.prekeys) {
      try {
        const id = decodeRecord(bytes).id
        const r = validateRecord(recordKey('prekeys', id), bytes, { crypto: this.crypto })
        const entry = devices.get(id as DeviceId)
        const cert = r.cert!
        if (entry === undefined || cert.userId !== user) continue
        const listed = list.devices.find((d) => d.deviceId === id)!
        if (!equalBytes(listed.signingKey, cert.signingKey) || !equalBytes(listed.exchangeKey, cert.exchangeKey)) continue
        // signed prekey only: a DHT record cannot hand a one-time prekey to exactly one sender
        entry.bundle = prekeyBundleFromRecord(r, Number.MAX_SAFE_INTEGER, this.crypto)
      } catch (err) {
        this.log.warn({ err, user }, 'skipping a prekey record that does not verify')
      }
    }
    const dir: Directory = { list, devices, at: Date.now() }
    this.directory.set(user, dir)
    return dir
  }

  private async resolve (user: UserId, refresh: boolean, signal?: AbortSignal): Promise<Directory> {
    const cached = this.directory.get(user)
    if (!refresh && cached !== undefined && Date.now() - cached.at < (this.init.lookupCacheMs ?? DEFAULT_LOOKUP_CACHE_MS)) return cached
    // concurrent sends to one user share one lookup instead of each asking the node
    let running = this.lookups.get(user)
    if (running === undefined) {
      running = this.lookup(user, signal).finally(() => { this.lookups.delete(user) })
      this.lookups.set(user, running)
    }
    return await running
  }

  async devices (user: UserId, opts: CallOptions & { refresh?: boolean } = {}): Promise<DeviceId[]> {
    parseUserId(user)
    const dir = await this.resolve(user, opts.refresh === true, opts.signal)
    return [...dir.devices.values()].filter((d) => d.bundle !== undefined || this.hasSendingSession(d.device)).map((d) => d.device)
  }

  /** A device of `user`, verified against its list; refreshes the lookup once when unknown. */
  private async peerDevice (user: UserId, device: DeviceId, signal?: AbortSignal): Promise<PeerDevice | undefined> {
    let dir = await this.resolve(user, false, signal)
    if (!dir.devices.has(device)) dir = await this.resolve(user, true, signal)
    return dir.devices.get(device)
  }

  // ---- sessions -----------------------------------------------------------------------------

  private hasSendingSession (device: DeviceId): boolean {
    return (this.sessions.get(device) ?? []).some((e) => e.session.sendChainKey !== undefined)
  }

  private async loadSessions (device: DeviceId): Promise<SessionEntry[]> {
    let list = this.sessions.get(device)
    if (list !== undefined) return list
    list = []
    const bytes = await this.store.get('sessions', device)
    if (bytes !== undefined) list = decodeSessions(bytes)
    this.sessions.set(device, list)
    return list
  }

  private sessionOp (device: DeviceId, list: SessionEntry[]): StoreOp {
    return { type: 'put', ns: 'sessions', key: device, value: encodeSessions(list) }
  }

  /** A session that can send to `peer`, starting one with X3DH when none can. */
  private async sendingSession (peer: PeerDevice): Promise<SessionEntry> {
    const list = await this.loadSessions(peer.device)
    const usable = list.find((e) => e.session.sendChainKey !== undefined && e.peerUser === peer.user)
    if (usable !== undefined) return usable
    if (peer.bundle === undefined) throw new ClientError('ERR_NO_DEVICES', `no prekeys for device ${peer.device}`)
    const x = x3dhInitiate(deviceKeys(this.identity), peer.bundle, this.crypto)
    const entry: SessionEntry = { session: createInitiatorSession(x, this.crypto), peerUser: peer.user, init: x3dhInitOf(x.initialMessage) }
    list.unshift(entry)
    list.length = Math.min(list.length, MAX_SESSIONS_PER_DEVICE)
    return entry
  }

  /** Encrypts `content` to one device as a complete envelope. */
  private encryptTo (entry: SessionEntry, peer: { user: UserId, device: DeviceId }, conv: ConversationId, seq: number, sentAt: number, content: Content): { id: MessageId, bytes: Uint8Array } {
    const plaintext = encodeContent(content)
    const head: Omit<DirectEnvelope, 'ciphertext'> = {
      kind: 'direct',
      id: newMessageId(this.crypto),
      from: { user: this.userId, device: this.deviceId },
      to: { user: peer.user, device: peer.device },
      conv,
      seq,
      sentAt,
      type: entry.init !== undefined ? 'prekey' : 'message',
      header: nextHeader(entry.session)
    }
    if (entry.init !== undefined) head.init = entry.init
    const m = ratchetEncrypt(entry.session, plaintext, envelopeAssociatedData(head), this.crypto)
    return { id: head.id, bytes: encodeEnvelope({ ...head, header: m.header, ciphertext: m.ciphertext }) }
  }

  // ---- sending ------------------------------------------------------------------------------

  async send (to: UserId, text: string, opts: CallOptions = {}): Promise<MessageId> {
    if (this.closing) throw new ClientError('ERR_CLOSED', 'client is closed')
    try { parseUserId(to) } catch (err) { throw new ClientError('ERR_BAD_ARGUMENT', `not a user id: ${String(to).slice(0, 40)}`, { cause: err }) }
    if (typeof text !== 'string' || text.length > MAX_TEXT_LENGTH) throw new ClientError('ERR_BAD_ARGUMENT', `text must be a string of at most ${MAX_TEXT_LENGTH} characters`)
    const deadline = Date.now() + (this.init.sendTimeoutMs ?? DEFAULT_SEND_TIMEOUT_MS)
    const them = await this.resolve(to, false, opts.signal)
    const targets = [...them.devices.values()].filter((d) => d.bundle !== undefined || this.hasSendingSession(d.device))
    if (targets.length === 0) throw new ClientError('ERR_NO_DEVICES', `${to} has no device with published prekeys`)
    const own = to === this.userId ? [] : [...(await this.resolve(this.userId, false, opts.signal)).devices.values()].filter((d) => d.device !== this.deviceId && (d.bundle !== undefined || this.hasSendingSession(d.device)))
    const conv = directConversationId(this.userId, to, this.crypto)
    const id = newMessageId(this.crypto)
    const envelopes = await this.lock.run(async () => {
      const counterKey = `send/${conv}`
      const seq = (await this.readCounter(counterKey)) + 1
      const sentAt = Date.now()
      const out: Array<{ id: MessageId, bytes: Uint8Array }> = []
      const ops: StoreOp[] = []
      const touched = new Set<DeviceId>()
      for (const peer of [...targets, ...own]) {
        if (peer.device === this.deviceId) continue
        const entry = await this.sendingSession(peer)
        const baseKey = `base/${conv}/${peer.device}`
        let base = await this.readCounter(baseKey)
        if (base === 0) {
          base = seq
          ops.push({ type: 'put', ns: 'counters', key: baseKey, value: encodeValue(base) })
        }
        const content: TextContent = { type: 'text', id, text, sentAt, base }
        if (peer.user === this.userId) content.peer = to
        out.push(this.encryptTo(entry, peer, conv, seq, sentAt, content))
        touched.add(peer.device)
      }
      for (const d of touched) ops.push(this.sessionOp(d, this.sessions.get(d)!))
      ops.push({ type: 'put', ns: 'counters', key: counterKey, value: encodeValue(seq) })
      const logSize = this.init.sentLogSize ?? DEFAULT_SENT_LOG_SIZE
      ops.push({ type: 'put', ns: 'sent', key: `${conv}/${pad(seq)}`, value: encodeValue({ id, seq, text, sentAt, to }) })
      if (seq > logSize) ops.push({ type: 'del', ns: 'sent', key: `${conv}/${pad(seq - logSize)}` })
      await this.commit(ops, touched)
      return out
    })
    for (const e of envelopes) this.remember(this.deliveryMap, e.id, id, MAX_DELIVERY_MAP)
    await this.submit(envelopes.map((e) => e.bytes), deadline, opts.signal)
    return id
  }

  /** Writes a batch; on failure drops the touched sessions from memory so they reload as stored. */
  private async commit (ops: StoreOp[], touched: Iterable<DeviceId>): Promise<void> {
    try {
      await this.store.batch(ops)
    } catch (err) {
      for (const d of touched) this.sessions.delete(d)
      throw err
    }
  }

  private async readCounter (key: string): Promise<number> {
    const v = await this.store.get('counters', key)
    return v === undefined ? 0 : expectUint(decodeValue(v, 64), 'counter')
  }

  private remember<K, V> (map: Map<K, V>, k: K, v: V, max: number): void {
    map.set(k, v)
    if (map.size > max) map.delete(map.keys().next().value as K)
  }

  /**
   * Hands envelopes to the node and resolves once it acked them, across reconnects, until the
   * deadline. Concurrent calls are coalesced: queued envelopes travel together in `send`
   * requests of up to the node's `maxEnvelopesPerSend`, a few requests in flight at once.
   */
  private async submit (envelopes: Uint8Array[], deadline: number, signal?: AbortSignal): Promise<void> {
    if (envelopes.length === 0) return
    await new Promise<void>((resolve, reject) => {
      this.outQueue.push({ envelopes, deadline, resolve, reject, ...(signal !== undefined ? { signal } : {}) })
      this.pumpSends()
    })
  }

  private pumpSends (): void {
    const pipeline = DEFAULT_SEND_PIPELINE
    while (this.sendsInFlight < pipeline && this.outQueue.length > 0) {
      const conn = this.conn
      if (conn?.open !== true) {
        if (this.sendWaiter) return
        this.sendWaiter = true
        const earliest = Math.min(...this.outQueue.map((j) => j.deadline))
        this.whenConnected(earliest).then(() => { this.sendWaiter = false; this.pumpSends() }, (err: unknown) => {
          this.sendWaiter = false
          this.failExpired(err)
          this.pumpSends()
        })
        return
      }
      // out of request budget: wait for it while later sends join this queue, rather than being
      // refused by the node and retried after its hint
      const wait = conn.rateWait()
      if (wait > 0) {
        this.sendPaceTimer ??= setTimeout(() => { this.sendPaceTimer = undefined; this.pumpSends() }, wait)
        return
      }
      const limits = sendLimits(conn)
      const jobs: OutJob[] = []
      let count = 0
      let bytes = 0
      while (this.outQueue.length > 0) {
        const next = this.outQueue[0]!
        const size = envelopesFrameBytes(next.envelopes)
        if (jobs.length > 0 && (count + next.envelopes.length > limits.count || bytes + size > limits.bytes)) break
        jobs.push(this.outQueue.shift()!)
        count += next.envelopes.length
        bytes += size
      }
      this.sendsInFlight++
      this.spawn(this.sendJobs(conn, jobs, limits).finally(() => { this.sendsInFlight--; this.pumpSends() }), 'send')
    }
  }

  /** Rejects queued jobs whose deadline passed (or all, when the client closes). */
  private failExpired (err: unknown): void {
    const now = Date.now()
    const keep: OutJob[] = []
    for (const j of this.outQueue) {
      if (this.closing || j.deadline <= now || j.signal?.aborted === true) j.reject(err instanceof Error ? err : new Error(String(err)))
      else keep.push(j)
    }
    this.outQueue = keep
  }

  private async sendJobs (conn: Connection, jobs: OutJob[], limits: SendLimits): Promise<void> {
    const all = jobs.flatMap((j) => j.envelopes)
    try {
      for (const part of sendBatches(all, limits)) {
        const deadline = Math.min(...jobs.map((j) => j.deadline))
        await conn.request('send', { envelopes: part }, { timeoutMs: Math.max(1, Math.min(deadline - Date.now(), this.init.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS)) })
      }
      for (const j of jobs) j.resolve()
    } catch (err) {
      const code = err instanceof TalariaError ? err.code : ''
      const retryable = code === 'ERR_DISCONNECTED' || code === 'ERR_TIMEOUT' || code === 'ERR_UNAVAILABLE' || code === 'ERR_RATE_LIMITED' || code === 'ERR_USER_RATE_LIMITED'
      const live: OutJob[] = []
      for (const j of jobs) {
        if (!retryable || this.closing || Date.now() >= j.deadline || j.signal?.aborted === true) j.reject(err as Error)
        else live.push(j)
      }
      if (live.length === 0) return
      // sends are idempotent by envelope id: a retry after a lost answer cannot duplicate
      if (code !== 'ERR_DISCONNECTED') {
        const hint = (err as { retryAfterMs?: number }).retryAfterMs ?? DEFAULT_SEND_RETRY_MS
        await new Promise((resolve) => setTimeout(resolve, hint))
      }
      this.outQueue.unshift(...live)
    }
  }

  /** Sends a receipt, a gap request or group content to one device. */
  private async sendControl (user: UserId, device: DeviceId, conv: ConversationId, content: Content, opts: { deadline?: number, signal?: AbortSignal } = {}): Promise<void> {
    const deadline = opts.deadline ?? Date.now() + (this.init.sendTimeoutMs ?? DEFAULT_SEND_TIMEOUT_MS)
    const peer = (await this.loadSessionsFor(device)) ? { user, device, exchangeKey: new Uint8Array(0) } : await this.peerDevice(user, device, opts.signal)
    if (peer === undefined) throw new ClientError('ERR_NO_DEVICES', `device ${device} is not in ${user}'s device list`)
    const env = await this.lock.run(async () => {
      const entry = await this.sendingSession(peer)
      // control messages take no place in the ordered stream: they carry the current seq
      const seq = Math.max(1, await this.readCounter(`send/${conv}`))
      const e = this.encryptTo(entry, peer, conv, seq, Date.now(), content)
      await this.commit([this.sessionOp(device, this.sessions.get(device)!)], [device])
      return e
    })
    await this.submit([env.bytes], deadline, opts.signal)
  }

  private async loadSessionsFor (device: DeviceId): Promise<boolean> {
    await this.lock.run(async () => { await this.loadSessions(device) })
    return this.hasSendingSession(device)
  }

  // ---- groups and rooms (client/groups.ts) ---------------------------------------------------

  private groupsReady (): ClientGroups {
    if (this.closing) throw new ClientError('ERR_CLOSED', 'client is closed')
    return this.groupsLayer
  }

  async createGroup (opts: CreateGroupOptions, call: GroupCallOptions = {}): Promise<GroupId> { return await this.groupsReady().createGroup(opts, call) }
  async addMembers (group: GroupId, users: UserId[], call: GroupCallOptions = {}): Promise<void> { await this.groupsReady().addMembers(group, users, call) }
  async removeMembers (group: GroupId, users: UserId[], call: GroupCallOptions = {}): Promise<void> { await this.groupsReady().removeMembers(group, users, call) }
  async leaveGroup (group: GroupId, call: GroupCallOptions = {}): Promise<void> { await this.groupsReady().leaveGroup(group, call) }
  async invite (group: GroupId, users: UserId[], call: GroupCallOptions = {}): Promise<void> { await this.groupsReady().invite(group, users, call) }
  async requestJoin (group: GroupId, call: GroupCallOptions = {}): Promise<void> { await this.groupsReady().requestJoin(group, call) }
  async approve (group: GroupId, users: UserId[], call: GroupCallOptions = {}): Promise<void> { await this.groupsReady().approve(group, users, call) }
  async joinGroup (group: GroupId, call: GroupCallOptions = {}): Promise<void> { await this.groupsReady().joinGroup(group, call) }
  async setRole (group: GroupId, user: UserId, role: Exclude<GroupRole, 'owner'>, call: GroupCallOptions = {}): Promise<void> { await this.groupsReady().setRole(group, user, role, call) }
  async mute (group: GroupId, users: UserId[], untilMs: number, call: GroupCallOptions = {}): Promise<void> { await this.groupsReady().mute(group, users, untilMs, call) }
  async muteAll (group: GroupId, on: boolean, call: GroupCallOptions = {}): Promise<void> { await this.groupsReady().muteAll(group, on, call) }
  async updateGroupSettings (group: GroupId, settings: Partial<GroupSettings>, call: GroupCallOptions = {}): Promise<void> { await this.groupsReady().updateGroupSettings(group, settings, call) }
  async transferOwnership (group: GroupId, user: UserId, call: GroupCallOptions = {}): Promise<void> { await this.groupsReady().transferOwnership(group, user, call) }
  async ban (group: GroupId, users: UserId[], call: GroupCallOptions = {}): Promise<void> { await this.groupsReady().ban(group, users, call) }
  async unban (group: GroupId, users: UserId[], call: GroupCallOptions = {}): Promise<void> { await this.groupsReady().unban(group, users, call) }
  async dismissGroup (group: GroupId, call: GroupCallOptions = {}): Promise<void> { await this.groupsReady().dismissGroup(group, call) }
  async sendGroup (group: GroupId, text: string, call: GroupCallOptions = {}): Promise<MessageId> { return await this.groupsReady().sendGroup(group, text, call) }
  group (group: GroupId): GroupState | undefined { return this.groupsLayer.group(group) }
  groups (): GroupId[] { return this.groupsLayer.list() }
  async createRoom (opts: CreateRoomOptions, call: GroupCallOptions = {}): Promise<GroupId> { return await this.groupsReady().createRoom(opts, call) }
  async enterRoom (room: GroupId, call: GroupCallOptions = {}): Promise<void> { await this.groupsReady().enterRoom(room, call) }
  async leaveRoom (room: GroupId, call: GroupCallOptions = {}): Promise<void> { await this.groupsReady().leaveRoom(room, call) }
  async sendRoom (room: GroupId, text: string, call: GroupCallOptions = {}): Promise<MessageId> { return await this.groupsReady().sendRoom(room, text, call) }

  async markRead (ids: MessageId[], opts: CallOptions = {}): Promise<void> {
    const byDevice = new Map<DeviceId, { user: UserId, conv: ConversationId, ids: MessageId[] }>()
    for (const id of ids) {
      const v = await this.store.get('seen', id, opts.signal !== undefined ? { signal: opts.signal } : {})
      if (v === undefined) continue
      const s = decodeSeen(v)
      if (s.user === this.userId) continue
      let g = byDevice.get(s.device)
      if (g === undefined) { g = { user: s.user, conv: s.conv, ids: [] }; byDevice.set(s.device, g) }
      g.ids.push(id)
    }
    for (const [device, g] of byDevice) {
      for (let i = 0; i < g.ids.length; i += MAX_RECEIPT_IDS) {
        await this.sendControl(g.user, device, g.conv, { type: 'receipt', receipt: 'read', ids: g.ids.slice(i, i + MAX_RECEIPT_IDS) })
      }
    }
  }

  // ---- receiving ----------------------------------------------------------------------------

  private onEvent (frame: EventFrame): void {
    switch (frame.ev) {
      case 'group': this.groupsLayer.onGroupEvent(frame.body as WireEvents['group']); return
      case 'groupOp': this.spawn(this.groupsLayer.onGroupOp(frame.body as WireEvents['groupOp']), 'group op'); return
      case 'groupLag': this.groupsLayer.onGroupLag(frame.body as WireEvents['groupLag']); return
      default: break
    }
    if (frame.ev === 'message') {
      const body = frame.body as WireEvents['message']
      if (this.incoming.length >= DEFAULT_MAX_INCOMING_QUEUE) {
        // unacked, so the node pushes it again after the next reconnect
        this.log.warn({}, 'incoming queue full: dropping a push')
        return
      }
      this.incoming.push(body.envelope)
      if (!this.processing) this.spawn(this.processIncoming(), 'receive')
      return
    }
    const ids: MessageId[] = []
    for (const envId of (frame.body as WireEvents['delivered']).ids) {
      const logical = this.deliveryMap.get(envId)
      if (logical !== undefined && !ids.includes(logical)) ids.push(logical)
    }
    if (ids.length > 0) this.emit('delivered', { ids })
  }

  private async processIncoming (): Promise<void> {
    this.processing = true
    try {
      for (let bytes = this.incoming.shift(); bytes !== undefined && !this.closing; bytes = this.incoming.shift()) {
        try {
          await this.receive(bytes)
        } catch (err) {
          this.emitError(err instanceof Error ? err : new Error(String(err)), 'receive')
        }
      }
    } finally {
      this.processing = false
    }
  }

  private async receive (bytes: Uint8Array): Promise<void> {
    let env: DirectEnvelope
    try {
      env = decodeEnvelope(bytes)
    } catch (err) {
      // the node checked it on submit; an unreadable push cannot be acked by id, only logged
      this.log.warn({ err }, 'unreadable envelope pushed')
      return
    }
    if (this.recentEnvelopes.has(env.id)) { this.queueAck(env.id); return }
    if (env.to.device !== this.deviceId || env.to.user !== this.userId) {
      this.log.warn({ id: env.id }, 'envelope for another device')
      this.queueAck(env.id)
      return
    }
    // the sender's device must be in its user's verified device list with the key X3DH used;
    // the lookup happens before the lock so a slow node does not stall other work
    let sender: PeerDevice | undefined
    if (env.type === 'prekey' && !(await this.knowsInit(env))) {
      try {
        sender = await this.verifiedSender(env.from.user, env.from.device)
      } catch (err) {
        // the sender could not be checked (the node or the DHT failed us): leave the envelope
        // unacked, so the node pushes it again after the next connect, rather than lose it
        this.log.warn({ err, from: env.from.device }, 'cannot verify the sender now; envelope left for later')
        return
      }
    }
    const result = await this.lock.run(async () => await this.decryptAndStore(env, sender))
    this.remember(this.recentEnvelopes, env.id, true, MAX_RECENT_ENVELOPES)
    this.queueAck(env.id)
    if (result === undefined) return
    const c = result.content
    if (c.type === 'text') {
      if (result.message !== undefined) this.ordering.offer(result.message)
    } else if (c.type === 'receipt') {
      this.emit('receipt', { from: env.from.user, fromDevice: env.from.device, receipt: c.receipt, ids: c.ids })
    } else if (c.type === 'gap') {
      this.spawn(this.resend(env.from.user, env.from.device, c.conv, c.fromSeq, c.toSeq), 'resend')
    } else if (isGroupContent(c)) {
      // kept in the store since the batch above; handled before the next envelope
      await this.groupsLayer.handleDirect(env.from.user, env.from.device, c, env.id)
    }
  }

  /** True when a prekey envelope belongs to a session this device already has (no lookup needed). */
  private async knowsInit (env: DirectEnvelope): Promise<boolean> {
    const ek = env.init === undefined ? undefined : toHex(env.init.ephemeralKey)
    return await this.lock.run(async () => (await this.loadSessions(env.from.device)).some((e) => e.initEk === ek))
  }

  /**
   * The sender device from its user's verified device list, refreshing the lookup when it is
   * unknown; undefined when the list does not hold it. Transient failures are retried a few times
   * and then thrown.
   */
  private async verifiedSender (user: UserId, device: DeviceId): Promise<PeerDevice | undefined> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.peerDevice(user, device)
      } catch (err) {
        const code = err instanceof TalariaError ? err.code : ''
        // a list that does not verify will not verify on a retry either
        if (code === 'ERR_INVALID_RECORD' || attempt >= SENDER_LOOKUP_RETRIES || this.closing) throw err
        await new Promise((resolve) => setTimeout(resolve, DEFAULT_SEND_RETRY_MS * 2 ** attempt))
      }
    }
  }

  /**
   * Decrypts under the lock and stores the session with the envelope's effect in one batch.
   * Returns undefined for envelopes that are dropped (undecryptable, duplicate, not allowed).
   */
  private async decryptAndStore (env: DirectEnvelope, sender: PeerDevice | undefined): Promise<{ content: Content, message?: PendingMessage } | undefined> {
    const list = await this.loadSessions(env.from.device)
    const ad = envelopeAssociatedData(env)
    const msg = { header: env.header, ciphertext: env.ciphertext }
    let plaintext: Uint8Array | undefined
    let used: SessionEntry | undefined
    let created = false
    if (env.init !== undefined) {
      const ek = toHex(env.init.ephemeralKey)
      used = list.find((e) => e.initEk === ek)
      if (used === undefined) {
        const spk = this.identity.signedPreKey
        if (sender === undefined || !equalBytes(sender.exchangeKey, env.init.identityKey)) {
          this.log.warn({ from: env.from.device }, 'prekey envelope from a device its user does not list with that key')
          return undefined
        }
        if (env.init.signedPrekeyId !== spk.id) {
          this.log.warn({ from: env.from.device, spk: env.init.signedPrekeyId }, 'prekey envelope names an unknown signed prekey')
          return undefined
        }
        const x = x3dhRespond({ identity: deviceKeys(this.identity), signedPreKey: spk }, {
          identityKey: env.init.identityKey, ephemeralKey: env.init.ephemeralKey, signedPreKeyId: env.init.signedPrekeyId,
          ...(env.init.oneTimePrekeyId !== undefined ? { oneTimePreKeyId: env.init.oneTimePrekeyId } : {})
        }, this.crypto)
        used = { session: createResponderSession(x, spk), peerUser: env.from.user, initEk: ek }
        created = true
      }
      plaintext = this.tryDecrypt(used, env, msg, ad)
    } else {
      for (const e of list) {
        if (e.peerUser !== env.from.user) continue
        plaintext = this.tryDecrypt(e, env, msg, ad)
        if (plaintext !== undefined) { used = e; break }
      }
    }
    if (plaintext === undefined || used === undefined) {
      // most often a duplicate push whose key is already spent; nothing to keep
      this.log.debug({ id: env.id, from: env.from.device }, 'undecryptable envelope dropped')
      return undefined
    }
    // the peer answered on a session this device started: stop sending the X3DH fields
    if (used.init !== undefined) delete used.init
    if (!created) list.splice(list.indexOf(used), 1)
    list.unshift(used)
    list.length = Math.min(list.length, MAX_SESSIONS_PER_DEVICE)
    const ops: StoreOp[] = [this.sessionOp(env.from.device, list)]
    let content: Content
    try {
      content = decodeContent(plaintext)
    } catch (err) {
      await this.commit(ops, [env.from.device])
      if (!isUnknownContentType(err)) this.log.warn({ err, id: env.id }, 'undecodable content dropped')
      return undefined
    }
    let message: PendingMessage | undefined
    if (content.type === 'text') {
      message = this.checkText(env, content)
      if (message !== undefined && await this.store.get('seen', content.id) !== undefined) message = undefined
      if (message !== undefined) {
        ops.push(...await this.seenOps(content.id, env))
        ops.push({ type: 'put', ns: 'pending', key: `${message.stream}/${pad(message.seq)}`, value: encodePending(message) })
      }
    } else if (content.type === 'gap' && !this.partyOf(content.conv, env.from.user)) {
      await this.commit(ops, [env.from.device])
      return undefined
    } else if (isGroupContent(content)) {
      ops.push(...this.groupsLayer.inboxOps(env.id, env.from, content))
    }
    await this.commit(ops, [env.from.device])
    return message === undefined && content.type === 'text' ? undefined : { content, ...(message !== undefined ? { message } : {}) }
  }

  private tryDecrypt (entry: SessionEntry, env: DirectEnvelope, msg: { header: Uint8Array, ciphertext: Uint8Array }, ad: Uint8Array): Uint8Array | undefined {
    try {
      return ratchetDecrypt(entry.session, msg, ad, this.crypto)
    } catch (err) {
      this.log.debug({ err, id: env.id }, 'session did not decrypt')
      return undefined
    }
  }

  /** True when `user` may speak about conversation `conv`: its other party, or this user's own device. */
  private partyOf (conv: ConversationId, user: UserId): boolean {
    return user === this.userId || directConversationId(this.userId, user, this.crypto) === conv
  }

  /** The pending message for a text, or undefined when its conversation does not match its sender. */
  private checkText (env: DirectEnvelope, c: TextContent): PendingMessage | undefined {
    const other = env.from.user === this.userId ? c.peer : env.from.user
    if (other === undefined || (env.from.user !== this.userId && c.peer !== undefined)) return undefined
    if (directConversationId(this.userId, other, this.crypto) !== env.conv) {
      this.log.warn({ id: env.id }, 'text whose conversation does not match its parties dropped')
      return undefined
    }
    const m: PendingMessage = { stream: `${env.from.device}/${env.conv}`, id: c.id, from: env.from.user, fromDevice: env.from.device, conv: env.conv, seq: env.seq, text: c.text, sentAt: c.sentAt }
    if (c.peer !== undefined) m.peer = c.peer
    if (c.base !== undefined) m.base = c.base
    return m
  }

  /** Ops that mark `id` seen, forgetting the oldest id beyond the bound. */
  private async seenOps (id: MessageId, env: DirectEnvelope): Promise<StoreOp[]> {
    const max = this.init.maxSeenIds ?? DEFAULT_MAX_SEEN_IDS
    const n = (await this.readCounter('seen')) + 1
    const ops: StoreOp[] = [
      { type: 'put', ns: 'seen', key: id, value: encodeValue({ u: env.from.user, d: env.from.device, c: env.conv }) },
      { type: 'put', ns: 'seen-order', key: pad(n), value: new TextEncoder().encode(id) },
      { type: 'put', ns: 'counters', key: 'seen', value: encodeValue(n) }
    ]
    if (n > max) {
      const old = await this.store.get('seen-order', pad(n - max))
      if (old !== undefined) ops.push({ type: 'del', ns: 'seen', key: new TextDecoder().decode(old) }, { type: 'del', ns: 'seen-order', key: pad(n - max) })
    }
    return ops
  }

  private deliverToApp (m: PendingMessage): void {
    const out: ClientMessage = { id: m.id, from: m.from, fromDevice: m.fromDevice, conv: m.conv, seq: m.seq, text: m.text, sentAt: m.sentAt }
    if (m.peer !== undefined) out.peer = m.peer
    this.emit('message', out)
    // persisted after the application saw it: a crash in between shows it again, never loses it
    this.spawn(this.lock.run(async () => {
      const key = `recv/${m.stream}`
      const ops: StoreOp[] = [{ type: 'del', ns: 'pending', key: `${m.stream}/${pad(m.seq)}` }]
      if (m.seq > await this.readCounter(key)) ops.push({ type: 'put', ns: 'counters', key, value: encodeValue(m.seq) })
      await this.store.batch(ops)
    }), 'delivered state')
    if (m.from !== this.userId && this.init.autoDeliveredReceipts !== false) this.queueReceipt(m.from, m.fromDevice, m.id)
  }

  private queueReceipt (user: UserId, device: DeviceId, id: MessageId): void {
    let q = this.receiptQueue.get(device)
    if (q === undefined) { q = { user, ids: [] }; this.receiptQueue.set(device, q) }
    q.ids.push(id)
    if (q.ids.length >= MAX_RECEIPT_IDS) { this.flushReceipts(); return }
    this.receiptTimer ??= setTimeout(() => { this.receiptTimer = undefined; this.flushReceipts() }, this.init.receiptDelayMs ?? DEFAULT_RECEIPT_DELAY_MS)
  }

  private flushReceipts (): void {
    clearTimeout(this.receiptTimer)
    this.receiptTimer = undefined
    for (const [device, q] of this.receiptQueue) {
      const conv = directConversationId(this.userId, q.user, this.crypto)
      for (let i = 0; i < q.ids.length; i += MAX_RECEIPT_IDS) {
        this.spawn(this.sendControl(q.user, device, conv, { type: 'receipt', receipt: 'delivered', ids: q.ids.slice(i, i + MAX_RECEIPT_IDS) }), 'delivered receipt')
      }
    }
    this.receiptQueue.clear()
  }

  private queueAck (id: MessageId): void {
    this.ackQueue.push(id)
    if (this.ackQueue.length >= MAX_RECEIPT_IDS) { this.spawn(this.flushAcks(), 'ack'); return }
    // never sooner than the request budget allows: the acks gathered meanwhile go in one request
    const delay = Math.max(this.init.ackDelayMs ?? DEFAULT_ACK_DELAY_MS, this.conn?.rateWait() ?? 0)
    this.ackTimer ??= setTimeout(() => { this.ackTimer = undefined; this.spawn(this.flushAcks(), 'ack') }, delay)
  }

  private async flushAcks (): Promise<void> {
    clearTimeout(this.ackTimer)
    this.ackTimer = undefined
    const conn = this.conn
    while (this.ackQueue.length > 0 && conn?.open === true) {
      const ids = this.ackQueue.splice(0, MAX_RECEIPT_IDS)
      try {
        await this.requestRetrying(conn, 'ack', { ids }, Date.now() + DEFAULT_REQUEST_TIMEOUT_MS)
      } catch (err) {
        // unacked pushes stall the node's push window: keep them for the next flush on this
        // connection (a new connection gets them pushed again, and the queue is reset then)
        if (this.conn !== conn || !conn.open || this.closing) throw err
        this.ackQueue.unshift(...ids)
        this.log.warn({ err }, 'ack failed; retrying')
        this.ackTimer ??= setTimeout(() => { this.ackTimer = undefined; this.spawn(this.flushAcks(), 'ack') }, DEFAULT_SEND_RETRY_MS)
        return
      }
    }
  }

  /** Answers a gap request: re-encrypts the logged messages to the asking device, same id and seq. */
  private async resend (user: UserId, device: DeviceId, conv: ConversationId, fromSeq: number, toSeq: number): Promise<void> {
    const logSize = this.init.sentLogSize ?? DEFAULT_SENT_LOG_SIZE
    const first = Math.max(fromSeq, toSeq - logSize + 1)
    const entries = (await this.store.list('sent', { gte: `${conv}/${pad(first)}`, lt: `${conv}/${pad(toSeq + 1)}` })).map(([, v]) => decodeSent(v))
    if (entries.length === 0) return
    const peer = (await this.loadSessionsFor(device)) ? { user, device, exchangeKey: new Uint8Array(0) } : await this.peerDevice(user, device)
    if (peer === undefined) return
    this.log.info({ device, conv, fromSeq, toSeq, found: entries.length }, 'resending on request')
    const envs = await this.lock.run(async () => {
      const entry = await this.sendingSession(peer)
      const base = await this.readCounter(`base/${conv}/${device}`)
      const out = entries.map((s) => {
        const content: TextContent = { type: 'text', id: s.id, text: s.text, sentAt: s.sentAt }
        if (base > 0) content.base = base
        if (user === this.userId) content.peer = s.to
        return this.encryptTo(entry, peer, conv, s.seq, s.sentAt, content)
      })
      await this.commit([this.sessionOp(device, this.sessions.get(device)!)], [device])
      return out
    })
    await this.submit(envs.map((e) => e.bytes), Date.now() + (this.init.sendTimeoutMs ?? DEFAULT_SEND_TIMEOUT_MS))
  }
}

/** True for the 1:1 content that carries group state (`senderKey`, `groupInvite`). */
function isGroupContent (c: { type: string }): c is GroupDirectContent {
  return c.type === 'senderKey' || c.type === 'groupInvite'
}

// ---- persisted forms ------------------------------------------------------------------------

function encodeSessions (list: SessionEntry[]): Uint8Array {
  return encodeValue({
    v: SESSION_RECORD_VERSION,
    list: list.map((e) => {
      const o: Record<string, unknown> = { state: serializeSession(e.session), peerUser: e.peerUser }
      if (e.init !== undefined) o.init = { identityKey: e.init.identityKey, ephemeralKey: e.init.ephemeralKey, signedPrekeyId: e.init.signedPrekeyId }
      if (e.initEk !== undefined) o.initEk = e.initEk
      return o
    })
  })
}

function decodeSessions (bytes: Uint8Array): SessionEntry[] {
  const o = expectObject(decodeValue(bytes, MAX_SESSIONS_PER_DEVICE * 300 * 1024), 'sessions')
  return expectArray(o.list, 'sessions.list', MAX_SESSIONS_PER_DEVICE).map((item) => {
    const e = expectObject(item, 'session')
    const entry: SessionEntry = { session: deserializeSession(expectBytes(e.state, 'session.state', 1, 300 * 1024)), peerUser: parseUserId(e.peerUser) }
    if (e.init !== undefined) {
      const i = expectObject(e.init, 'session.init')
      entry.init = { identityKey: expectBytes(i.identityKey, 'init.identityKey', 32, 32), ephemeralKey: expectBytes(i.ephemeralKey, 'init.ephemeralKey', 32, 32), signedPrekeyId: expectUint(i.signedPrekeyId, 'init.signedPrekeyId') }
    }
    if (e.initEk !== undefined) entry.initEk = expectString(e.initEk, 'session.initEk', 64)
    return entry
  })
}

function encodePending (m: PendingMessage): Uint8Array {
  return encodeValue({ ...m })
}

function decodePending (bytes: Uint8Array): PendingMessage {
  const o = expectObject(decodeValue(bytes, MAX_TEXT_LENGTH * 3 + 4096), 'pending')
  const m: PendingMessage = {
    stream: expectString(o.stream, 'pending.stream', 128),
    id: parseMessageId(o.id),
    from: parseUserId(o.from),
    fromDevice: parseDeviceId(o.fromDevice),
    conv: parseConversationId(o.conv),
    seq: expectUint(o.seq, 'pending.seq'),
    text: expectString(o.text, 'pending.text', MAX_TEXT_LENGTH),
    sentAt: expectUint(o.sentAt, 'pending.sentAt')
  }
  if (o.peer !== undefined) m.peer = parseUserId(o.peer)
  if (o.base !== undefined) m.base = expectUint(o.base, 'pending.base')
  return m
}

function decodeSeen (bytes: Uint8Array): { user: UserId, device: DeviceId, conv: ConversationId } {
  const o = expectObject(decodeValue(bytes, 1024), 'seen')
  return { user: parseUserId(o.u), device: parseDeviceId(o.d), conv: parseConversationId(o.c) }
}

function decodeSent (bytes: Uint8Array): SentEntry {
  const o = expectObject(decodeValue(bytes, MAX_TEXT_LENGTH * 3 + 4096), 'sent')
  return { id: parseMessageId(o.id), seq: expectUint(o.seq, 'sent.seq'), text: expectString(o.text, 'sent.text', MAX_TEXT_LENGTH), sentAt: expectUint(o.sentAt, 'sent.sentAt'), to: parseUserId(o.to) }
}
