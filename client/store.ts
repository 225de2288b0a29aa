/**
 * Client storage. A {@link ClientStore} is a small namespaced key-value store with atomic batches:
 * the SDK keeps ratchet sessions, its identity binding, seen message ids, counters, the sent log
 * and received-but-undelivered messages in it, and writes each incoming envelope's effects (session
 * state, seen id, pending message) in ONE batch before it acks the node.
 *
 * Implementations: {@link MemoryStore} (tests, ephemeral clients) and `LevelStore`
 * (client/level-store.ts: LevelDB in Node, IndexedDB in browsers).
 */
import { ClientError, abortError } from './errors.js'

/** The namespaces the SDK uses; each is a separate keyspace. */
export const STORE_NAMESPACES = [
  'meta', 'sessions', 'seen', 'seen-order', 'counters', 'sent', 'pending',
  'group-ops', 'group-keys', 'group-keydist', 'group-recv', 'group-pending', 'group-seen', 'group-seen-order', 'group-inbox'
] as const
/** A keyspace of a {@link ClientStore}. */
export type StoreNamespace = typeof STORE_NAMESPACES[number]

/** One write of a batch. */
export type StoreOp =
  | { type: 'put', ns: StoreNamespace, key: string, value: Uint8Array }
  | { type: 'del', ns: StoreNamespace, key: string }

/** Range options of {@link ClientStore.list}; keys compare as strings. */
export interface StoreListOptions {
  /** Keys >= gte. */
  gte?: string
  /** Keys < lt. */
  lt?: string
  /** At most this many entries (default: all). */
  limit?: number
  signal?: AbortSignal
}

/** Options every store call accepts. */
export interface StoreCallOptions {
  signal?: AbortSignal
}

/** What the client persists through. Every method may be called before `open` resolves only after it. */
export interface ClientStore {
  /** Opens the store (idempotent). */
  open(opts?: StoreCallOptions): Promise<void>
  /** Closes the store (idempotent). */
  close(opts?: StoreCallOptions): Promise<void>
  /** The value under `key`, or undefined. */
  get(ns: StoreNamespace, key: string, opts?: StoreCallOptions): Promise<Uint8Array | undefined>
  /** Entries of `ns` in key order within the range. */
  list(ns: StoreNamespace, opts?: StoreListOptions): Promise<Array<[string, Uint8Array]>>
  /** Applies every op atomically: all or none. */
  batch(ops: StoreOp[], opts?: StoreCallOptions): Promise<void>
}

function check (signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) throw abortError(signal)
}

/** An in-memory {@link ClientStore}: nothing survives the process. Values are copied in and out. */
export class MemoryStore implements ClientStore {
  private readonly spaces = new Map<StoreNamespace, Map<string, Uint8Array>>()
  private opened = false

  constructor () {
    for (const ns of STORE_NAMESPACES) this.spaces.set(ns, new Map())
  }

  private space (ns: StoreNamespace): Map<string, Uint8Array> {
    if (!this.opened) throw new ClientError('ERR_CLOSED', 'store is not open')
    const s = this.spaces.get(ns)
    if (s === undefined) throw new ClientError('ERR_BAD_ARGUMENT', `unknown namespace ${String(ns)}`)
    return s
  }

  async open (opts: StoreCallOptions = {}): Promise<void> {
    check(opts.signal)
    this.opened = true
  }

  async close (_opts: StoreCallOptions = {}): Promise<void> {
    this.opened = false
  }

  async get (ns: StoreNamespace, key: string, opts: StoreCallOptions = {}): Promise<Uint8Array | undefined> {
    check(opts.signal)
    const v = this.space(ns).get(key)
    return v === undefined ? undefined : v.slice()
  }

  async list (ns: StoreNamespace, opts: StoreListOptions = {}): Promise<Array<[string, Uint8Array]>> {
    check(opts.signal)
    const out: Array<[string, Uint8Array]> = []
    const keys = [...this.space(ns).keys()].sort()
    for (const k of keys) {
      if (opts.gte !== undefined && k < opts.gte) continue
      if (opts.lt !== undefined && k >= opts.lt) break
      out.push([k, this.space(ns).get(k)!.slice()])
      if (opts.limit !== undefined && out.length >= opts.limit) break
    }
    return out
  }

  async batch (ops: StoreOp[], opts: StoreCallOptions = {}): Promise<void> {
    check(opts.signal)
    // validate every op before applying any, so a bad op leaves the store unchanged
    for (const op of ops) this.space(op.ns)
    for (const op of ops) {
      if (op.type === 'put') this.space(op.ns).set(op.key, op.value.slice())
      else this.space(op.ns).delete(op.key)
    }
  }
}
