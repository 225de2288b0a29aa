/**
 * The directory: users' device lists, devices' prekeys and locations, as signed DHT records behind
 * a short-lived LRU cache, so that sending a message costs no DHT lookup while the cache is warm.
 *
 * It also keeps, per device, the newest valid location record that places the device on this node:
 * the proof mailbox replicas demand before they let this node fetch or delete the device's offline
 * envelopes (see mailbox.ts).
 */
import type { Logger } from 'pino'
import { certificateToWire, isDeviceActive, verifyDeviceList, type DeviceList } from '../../protocol/identity.js'
import type { DeviceId, UserId } from '../../protocol/ids.js'
import { TalariaError } from '../../protocol/errors.js'
import { encodeValue, type WireObject } from '../../protocol/codec.js'
import {
  compareRecords, decodeDevicesPayload, decodeLocationPayload, decodeRecord, recordKey, RECORD_FORMAT_VERSION, validateRecord,
  type LocationEntry, type RecordKind, type SignedRecord
} from '../../protocol/records.js'
import type { CallOptions, DirectoryService } from './contracts.js'

/** How long a device list stays cached, in milliseconds. */
export const DEFAULT_DEVICES_CACHE_TTL_MS = 60_000
/** How long a prekeys record stays cached, in milliseconds. */
export const DEFAULT_PREKEYS_CACHE_TTL_MS = 60_000
/** How long a location stays cached, in milliseconds (locations move when devices reconnect). */
export const DEFAULT_LOCATION_CACHE_TTL_MS = 30_000
/** How long "no such record" is remembered, in milliseconds. */
export const DEFAULT_NEGATIVE_CACHE_TTL_MS = 5_000
/** Most records (and misses) the cache holds; the least recently used go first. */
export const DEFAULT_DIRECTORY_CACHE_SIZE = 10_000
/** Records published in parallel by one `publish` call. */
export const DEFAULT_PUBLISH_CONCURRENCY = 4
/** Devices whose location proof for this node is kept, at most; the least recently stored go first. */
export const DEFAULT_MAX_LOCAL_PROOFS = 10_000

/** What the directory uses: the node's record routing. */
export interface DirectoryComponents {
  /** The best valid record for `key` in the DHT; throws a TalariaError with code ERR_RECORD_NOT_FOUND when none. */
  getRecord: (key: Uint8Array, opts: CallOptions) => Promise<SignedRecord>
  /** Stores a validated record in the DHT. */
  putRecord: (record: Uint8Array, opts: CallOptions) => Promise<void>
  /** This node's peer id: location records naming it are kept as mailbox proofs. None kept when absent. */
  nodeId?: string
  logger: Logger
}

/** Options of the directory. */
export interface DirectoryInit {
  devicesTtlMs?: number
  prekeysTtlMs?: number
  locationTtlMs?: number
  negativeTtlMs?: number
  cacheSize?: number
  publishConcurrency?: number
  /** Devices whose location proof for this node is kept, at most. */
  maxLocalProofs?: number
  /** Clock, ms since the epoch. */
  now?: () => number
}

/** The directory as the delivery service uses it: the contract plus device locations. */
export interface MessagingDirectory extends DirectoryService {
  /** Where `device` is connected, or undefined when it has no current location. Cached. */
  locate(device: DeviceId, opts?: CallOptions): Promise<LocationEntry | undefined>
  /** Drops the cached location of `device` (delivery to it failed). */
  forgetLocation(device: DeviceId): void
  /**
   * The bytes of the newest valid location record of `device` that places it on this node and has
   * not expired, or undefined: the proof mailbox replicas ask for before a fetch or delete.
   */
  localLocationProof(device: DeviceId): Uint8Array | undefined
  /**
   * Calls `listener` each time a newer location record placing `device` on this node arrives (a
   * proof became available or was renewed). Returns a function that removes the listener.
   */
  onLocalLocation(listener: (device: DeviceId) => void): () => void
  /**
   * The device list of `user` as the cache holds it, without a lookup: undefined when the cache has
   * no fresh entry, `{ list: undefined }` when it knows the user has no valid list. A hit is what
   * {@link DirectoryService.getDeviceList} would answer now.
   */
  cachedDeviceList(user: UserId): { list: DeviceList | undefined } | undefined
}

interface LocalProof {
  record: SignedRecord
  /** The proof; absent once a newer record withdrew the device from this node (kept so an older record cannot come back). */
  bytes?: Uint8Array
  /** When the proof stops being accepted: the earlier of the record's and its entry's expiry. */
  validUntil: number
}

interface CacheEntry {
  record?: SignedRecord
  bytes?: Uint8Array
  expiresAt: number
  /** The device list in `record`, once decoded and verified (null: it does not verify). */
  list?: DeviceList | null
}

/** The record's DHT value bytes, rebuilt from the decoded record (its signature covers the canonical fields). */
export function encodeSignedRecord (r: SignedRecord): Uint8Array {
  const wire: WireObject = {
    v: RECORD_FORMAT_VERSION, kind: r.kind, id: r.id, seq: r.seq, issuedAt: r.issuedAt, expiresAt: r.expiresAt,
    payload: r.payload, signer: r.signer, sig: r.sig
  }
  if (r.cert !== undefined) wire.cert = certificateToWire(r.cert)
  return encodeValue(wire)
}

function errorCode (err: unknown): string {
  return err instanceof TalariaError ? err.code : 'ERR_INTERNAL'
}

/** The default directory over the node's DHT record routing. */
export class DefaultDirectory implements MessagingDirectory {
  private readonly cache = new Map<string, CacheEntry>()
  private readonly inflight = new Map<string, Promise<CacheEntry>>()
  private readonly ttl: Record<RecordKind, number>
  private readonly negativeTtlMs: number
  private readonly cacheSize: number
  private readonly publishConcurrency: number
  private readonly now: () => number
  private readonly localProofs = new Map<string, LocalProof>()
  private readonly maxLocalProofs: number
  private readonly localListeners = new Set<(device: DeviceId) => void>()

  constructor (private readonly components: DirectoryComponents, init: DirectoryInit = {}) {
    const devices = init.devicesTtlMs ?? DEFAULT_DEVICES_CACHE_TTL_MS
    this.ttl = {
      devices,
      prekeys: init.prekeysTtlMs ?? DEFAULT_PREKEYS_CACHE_TTL_MS,
      location: init.locationTtlMs ?? DEFAULT_LOCATION_CACHE_TTL_MS,
      profile: devices,
      group: devices
    }
    this.negativeTtlMs = init.negativeTtlMs ?? DEFAULT_NEGATIVE_CACHE_TTL_MS
    this.cacheSize = init.cacheSize ?? DEFAULT_DIRECTORY_CACHE_SIZE
    this.publishConcurrency = init.publishConcurrency ?? DEFAULT_PUBLISH_CONCURRENCY
    this.now = init.now ?? Date.now
    this.maxLocalProofs = init.maxLocalProofs ?? DEFAULT_MAX_LOCAL_PROOFS
  }

  async publish (records: Uint8Array[], opts: CallOptions = {}): Promise<{ stored: number, failures: Array<{ index: number, code: string, message: string }> }> {
    const failures: Array<{ index: number, code: string, message: string }> = []
    const valid: Array<{ index: number, bytes: Uint8Array, record: SignedRecord }> = []
    records.forEach((bytes, index) => {
      try {
        const decoded = decodeRecord(bytes)
        const record = validateRecord(recordKey(decoded.kind, decoded.id), bytes)
        valid.push({ index, bytes, record })
      } catch (err) {
        failures.push({ index, code: errorCode(err), message: err instanceof Error ? err.message : String(err) })
      }
    })
    let stored = 0
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < valid.length) {
        const item = valid[next++] as { index: number, bytes: Uint8Array, record: SignedRecord }
        // cache first: the node itself answers from it even when the DHT put is slow or fails
        this.remember(item.record, item.bytes)
        if (item.record.kind === 'location') this.noteLocation(item.record, item.bytes)
        try {
          await this.components.putRecord(item.bytes, opts)
          stored++
        } catch (err) {
          failures.push({ index: item.index, code: errorCode(err), message: err instanceof Error ? err.message : String(err) })
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(this.publishConcurrency, valid.length) }, worker))
    failures.sort((a, b) => a.index - b.index)
    return { stored, failures }
  }

  async getDeviceList (user: UserId, opts: CallOptions = {}): Promise<DeviceList | undefined> {
    return this.deviceListOf(await this.fetch('devices', user, opts), user)
  }

  cachedDeviceList (user: UserId): { list: DeviceList | undefined } | undefined {
    const entry = this.fresh(DefaultDirectory.cacheKey('devices', user))
    return entry === undefined ? undefined : { list: this.deviceListOf(entry, user) }
  }

  /** The verified device list of `user` in a devices entry, or undefined when it holds none. */
  private deviceListOf (entry: CacheEntry, user: UserId): DeviceList | undefined {
    if (entry.record === undefined) return undefined
    // verified once per cached record (a newer record is a new entry): group traffic asks for the
    // sender's list on every message, and each check is several signature verifications
    if (entry.list === undefined) {
      try {
        const list = decodeDevicesPayload(entry.record.payload)
        verifyDeviceList(list)
        entry.list = list
      } catch (err) {
        this.components.logger.debug({ err, user }, 'device list record with an invalid payload')
        entry.list = null
      }
    }
    return entry.list !== null && entry.list.userId === user ? entry.list : undefined
  }

  async lookup (user: UserId, opts: CallOptions = {}): Promise<{ deviceList?: Uint8Array, prekeys: Uint8Array[] }> {
    const entry = await this.fetch('devices', user, opts)
    const list = await this.getDeviceList(user, opts)
    if (list === undefined || entry.bytes === undefined) return { prekeys: [] }
    const active = list.devices.filter((d) => isDeviceActive(list, d.deviceId))
    const prekeys = await Promise.all(active.map(async (d) => (await this.fetch('prekeys', d.deviceId, opts)).bytes))
    return { deviceList: entry.bytes, prekeys: prekeys.filter((b): b is Uint8Array => b !== undefined) }
  }

  async locate (device: DeviceId, opts: CallOptions = {}): Promise<LocationEntry | undefined> {
    const entry = await this.fetch('location', device, opts)
    if (entry.record === undefined) return undefined
    try {
      const now = this.now()
      return decodeLocationPayload(entry.record.payload).find((e) => e.device === device && e.expires > now)
    } catch {
      return undefined
    }
  }

  forgetLocation (device: DeviceId): void {
    this.cache.delete(DefaultDirectory.cacheKey('location', device))
  }

  localLocationProof (device: DeviceId): Uint8Array | undefined {
    const proof = this.localProofs.get(device)
    if (proof === undefined) return undefined
    if (proof.validUntil <= this.now()) {
      this.localProofs.delete(device)
      return undefined
    }
    return proof.bytes
  }

  onLocalLocation (listener: (device: DeviceId) => void): () => void {
    this.localListeners.add(listener)
    return () => { this.localListeners.delete(listener) }
  }

  /**
   * Keeps a validated location record as this node's proof for its device when it is the newest
   * seen and places the device here; a newer record that does not (withdrawn, moved) drops the proof.
   */
  private noteLocation (record: SignedRecord, bytes: Uint8Array): void {
    const nodeId = this.components.nodeId
    if (nodeId === undefined) return
    const device = record.id as DeviceId
    const current = this.localProofs.get(device)
    if (current !== undefined && compareRecords(record, current.record) <= 0) return
    const now = this.now()
    let entry: LocationEntry | undefined
    try {
      entry = decodeLocationPayload(record.payload).find((e) => e.device === device && e.node === nodeId && e.expires > now)
    } catch (err) {
      this.components.logger.debug({ err, device }, 'location record with an invalid payload')
    }
    this.localProofs.delete(device)
    if (entry === undefined) {
      // withdrawn or moved: remember the newer record only where a proof was, so replays of older ones stay out
      if (current !== undefined) this.localProofs.set(device, { record, validUntil: record.expiresAt })
      return
    }
    this.localProofs.set(device, { record, bytes, validUntil: Math.min(record.expiresAt, entry.expires) })
    while (this.localProofs.size > this.maxLocalProofs) {
      const oldest = this.localProofs.keys().next().value
      if (oldest === undefined) break
      this.localProofs.delete(oldest)
    }
    for (const listener of [...this.localListeners]) {
      try {
        listener(device)
      } catch (err) {
        this.components.logger.warn({ err, device }, 'a local location listener threw')
      }
    }
  }

  private static cacheKey (kind: RecordKind, id: string): string {
    return `${kind}/${id}`
  }

  /** Caches `record` unless a newer one is cached already. */
  private remember (record: SignedRecord, bytes: Uint8Array): void {
    const key = DefaultDirectory.cacheKey(record.kind, record.id)
    const current = this.cache.get(key)
    if (current?.record !== undefined && current.expiresAt > this.now() && compareRecords(record, current.record) < 0) return
    this.put(key, { record, bytes, expiresAt: Math.min(this.now() + this.ttl[record.kind], record.expiresAt) })
  }

  private put (key: string, entry: CacheEntry): void {
    this.cache.delete(key)
    this.cache.set(key, entry)
    while (this.cache.size > this.cacheSize) {
      const oldest = this.cache.keys().next().value
      if (oldest === undefined) break
      this.cache.delete(oldest)
    }
  }

  /** The unexpired cache entry for `key`, moved to the young end of the LRU order; undefined when none. */
  private fresh (key: string): CacheEntry | undefined {
    const hit = this.cache.get(key)
    if (hit === undefined || hit.expiresAt <= this.now()) return undefined
    this.cache.delete(key)
    this.cache.set(key, hit)
    return hit
  }

  /** The cached entry for (kind, id), or one DHT lookup shared by every concurrent caller. */
  private async fetch (kind: RecordKind, id: string, opts: CallOptions): Promise<CacheEntry> {
    const key = DefaultDirectory.cacheKey(kind, id)
    const hit = this.fresh(key)
    if (hit !== undefined) return hit
    let pending = this.inflight.get(key)
    if (pending === undefined) {
      pending = this.resolve(kind, id, key, opts).finally(() => { this.inflight.delete(key) })
      this.inflight.set(key, pending)
    }
    return await pending
  }

  private async resolve (kind: RecordKind, id: string, key: string, opts: CallOptions): Promise<CacheEntry> {
    try {
      const record = await this.components.getRecord(recordKey(kind, id), opts)
      const bytes = encodeSignedRecord(record)
      this.remember(record, bytes)
      if (record.kind === 'location') this.noteLocation(record, bytes)
      return this.cache.get(key) ?? { record, bytes, expiresAt: 0 }
    } catch (err) {
      if (err instanceof TalariaError && err.code === 'ERR_RECORD_NOT_FOUND') {
        const miss: CacheEntry = { expiresAt: this.now() + this.negativeTtlMs }
        this.put(key, miss)
        return miss
      }
      this.components.logger.debug({ err, kind, id }, 'directory lookup failed')
      return { expiresAt: 0 }
    }
  }
}
