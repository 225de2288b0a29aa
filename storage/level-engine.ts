/**
 * The two engine implementations: LevelDB on disk (`level`, classic-level on Node) and memory
 * (`memory-level`). Both are abstract-level databases, so one adapter serves both; the compliance
 * suite in test/storage/engine-suite.ts checks they keep the same contract.
 */
import type { AbstractBatchOptions, AbstractLevel } from 'abstract-level'
import { Level } from 'level'
import { MemoryLevel } from 'memory-level'
import { checkRange, PrefixedEngine } from './engine.js'
import type { KvBatchOptions, KvEngine, KvEntry, KvOp, KvRange } from './engine.js'
import { StorageError } from './errors.js'

/** Bytes in, bytes out: the only encoding the storage layer asks of a database. */
/** Batch options as classic-level reads them; abstract-level's own type has no `sync`. */
type BatchOptions = AbstractBatchOptions<Uint8Array, Uint8Array> & { sync?: boolean }

type BytesDb = AbstractLevel<string | Uint8Array | Buffer, Uint8Array, Uint8Array>

function errorCode (err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : undefined
}

/**
 * A plain Uint8Array over the same memory: classic-level hands out Buffers, memory-level plain
 * views; callers get one type whichever engine runs.
 */
function plain (v: Uint8Array): Uint8Array
function plain (v: Uint8Array | undefined): Uint8Array | undefined
function plain (v: Uint8Array | undefined): Uint8Array | undefined {
  return v === undefined || Object.getPrototypeOf(v) === Uint8Array.prototype ? v : new Uint8Array(v.buffer, v.byteOffset, v.byteLength)
}

/** Adapts an abstract-level database to {@link KvEngine}, mapping its errors to StorageErrors. */
class AbstractLevelEngine implements KvEngine {
  private closed = false
  private closing: Promise<void> | undefined

  constructor (private readonly db: BytesDb, private readonly label: string) {}

  private check (): void {
    if (this.closed) throw new StorageError('ERR_CLOSED', `engine ${this.label} is closed`)
  }

  private wrap (err: unknown, what: string): StorageError {
    if (err instanceof StorageError) return err
    if (this.closed || errorCode(err) === 'LEVEL_DATABASE_NOT_OPEN') {
      return new StorageError('ERR_CLOSED', `engine ${this.label} is closed`, { cause: err })
    }
    return new StorageError('ERR_IO', `${what} on ${this.label} failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err })
  }

  async get (key: Uint8Array): Promise<Uint8Array | undefined> {
    this.check()
    try {
      return plain(await this.db.get(key))
    } catch (err) {
      throw this.wrap(err, 'get')
    }
  }

  async getMany (keys: readonly Uint8Array[]): Promise<Array<Uint8Array | undefined>> {
    this.check()
    if (keys.length === 0) return []
    try {
      return (await this.db.getMany([...keys])).map((v) => plain(v))
    } catch (err) {
      throw this.wrap(err, 'getMany')
    }
  }

  async batch (ops: readonly KvOp[], options: KvBatchOptions = {}): Promise<void> {
    this.check()
    if (ops.length === 0) return
    try {
      // memory-level ignores `sync`; classic-level fsyncs the write-ahead log when it is set.
      await this.db.batch(ops.map((op) => op.type === 'put'
        ? { type: 'put' as const, key: op.key, value: op.value }
        : { type: 'del' as const, key: op.key }), { sync: options.sync === true } as BatchOptions)
    } catch (err) {
      throw this.wrap(err, 'batch')
    }
  }

  async * iterate (range: KvRange = {}): AsyncIterable<KvEntry> {
    this.check()
    checkRange(range)
    const opts: { gt?: Uint8Array, gte?: Uint8Array, lt?: Uint8Array, lte?: Uint8Array, limit: number, reverse: boolean } = {
      limit: range.limit === undefined || range.limit < 0 ? -1 : range.limit,
      reverse: range.reverse === true
    }
    if (range.gt !== undefined) opts.gt = range.gt
    if (range.gte !== undefined) opts.gte = range.gte
    if (range.lt !== undefined) opts.lt = range.lt
    if (range.lte !== undefined) opts.lte = range.lte
    if (opts.limit === 0) return
    const it = this.db.iterator(opts)
    try {
      for (;;) {
        let chunk: Array<[Uint8Array, Uint8Array]>
        try {
          chunk = await it.nextv(256)
        } catch (err) {
          throw this.wrap(err, 'iterate')
        }
        if (chunk.length === 0) return
        for (const [k, v] of chunk) yield [plain(k), plain(v)]
      }
    } finally {
      // Runs on completion, on error and when the consumer breaks out early.
      await it.close()
    }
  }

  prefixed (prefix: Uint8Array): KvEngine {
    return new PrefixedEngine(this, prefix)
  }

  async close (): Promise<void> {
    if (this.closing === undefined) {
      this.closed = true
      this.closing = this.db.close()
    }
    await this.closing
  }
}

/**
 * Opens (creating if missing) a LevelDB engine at `location`. A lock held by another instance or
 * process is reported as `ERR_LOCKED`.
 */
export async function openLevelEngine (location: string): Promise<KvEngine> {
  const db = new Level<Uint8Array, Uint8Array>(location, { keyEncoding: 'view', valueEncoding: 'view' })
  try {
    await db.open({ createIfMissing: true })
  } catch (err) {
    const cause = (err as { cause?: unknown } | null)?.cause
    if (errorCode(err) === 'LEVEL_LOCKED' || errorCode(cause) === 'LEVEL_LOCKED') {
      throw new StorageError('ERR_LOCKED', `LevelDB at ${location} is locked: another process or instance has this data dir open`, { cause: err })
    }
    throw new StorageError('ERR_IO', `cannot open LevelDB at ${location}: ${err instanceof Error ? err.message : String(err)}`, { cause: err })
  }
  return new AbstractLevelEngine(db, location)
}

/** Opens an empty in-memory engine (tests, ephemeral nodes). */
export async function openMemoryEngine (label = 'memory'): Promise<KvEngine> {
  const db = new MemoryLevel<Uint8Array, Uint8Array>({ keyEncoding: 'view', valueEncoding: 'view', storeEncoding: 'view' })
  await db.open()
  return new AbstractLevelEngine(db, label)
}
