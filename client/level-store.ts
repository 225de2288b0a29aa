/**
 * A {@link ClientStore} on `level`: LevelDB (classic-level) in Node and IndexedDB (browser-level)
 * in browsers, the same code. One sublevel per namespace; batches span sublevels atomically.
 */
import { Level } from 'level'
import type { AbstractSublevel } from 'abstract-level'
import { ClientError, abortError } from './errors.js'
import type { ClientStore, StoreCallOptions, StoreListOptions, StoreNamespace, StoreOp } from './store.js'

type Db = Level<string, Uint8Array>
type Sub = AbstractSublevel<Db, string | Uint8Array, string, Uint8Array>

/** A persistent client store at `location` (a directory in Node, a database name in browsers). */
export class LevelStore implements ClientStore {
  private readonly db: Db
  private readonly subs = new Map<StoreNamespace, Sub>()

  constructor (location: string) {
    this.db = new Level<string, Uint8Array>(location, { keyEncoding: 'utf8', valueEncoding: 'view' })
  }

  private sub (ns: StoreNamespace): Sub {
    let s = this.subs.get(ns)
    if (s === undefined) {
      s = this.db.sublevel<string, Uint8Array>(ns, { keyEncoding: 'utf8', valueEncoding: 'view' })
      this.subs.set(ns, s)
    }
    return s
  }

  async open (opts: StoreCallOptions = {}): Promise<void> {
    if (opts.signal?.aborted === true) throw abortError(opts.signal)
    await this.db.open()
  }

  async close (_opts: StoreCallOptions = {}): Promise<void> {
    await this.db.close()
  }

  private ready (signal: AbortSignal | undefined): void {
    if (signal?.aborted === true) throw abortError(signal)
    if (this.db.status !== 'open') throw new ClientError('ERR_CLOSED', 'store is not open')
  }

  async get (ns: StoreNamespace, key: string, opts: StoreCallOptions = {}): Promise<Uint8Array | undefined> {
    this.ready(opts.signal)
    const v = await this.sub(ns).get(key)
    return v === undefined ? undefined : new Uint8Array(v)
  }

  async list (ns: StoreNamespace, opts: StoreListOptions = {}): Promise<Array<[string, Uint8Array]>> {
    this.ready(opts.signal)
    const range: { gte?: string, lt?: string, limit?: number } = {}
    if (opts.gte !== undefined) range.gte = opts.gte
    if (opts.lt !== undefined) range.lt = opts.lt
    if (opts.limit !== undefined) range.limit = opts.limit
    const entries = await this.sub(ns).iterator(range).all()
    return entries.map(([k, v]) => [k, new Uint8Array(v)])
  }

  async batch (ops: StoreOp[], opts: StoreCallOptions = {}): Promise<void> {
    this.ready(opts.signal)
    if (ops.length === 0) return
    await this.db.batch(ops.map((op) => op.type === 'put'
      ? { type: 'put' as const, sublevel: this.sub(op.ns), key: op.key, value: op.value }
      : { type: 'del' as const, sublevel: this.sub(op.ns), key: op.key }))
  }
}
