/**
 * Storage errors. Every failure of the storage layer is a {@link StorageError} with a stable
 * `code`; callers branch on the code, never on the message. The engine's own error, if any,
 * travels in `cause`.
 */
import { TalariaError } from '../protocol/errors.js'

/** Codes of failures raised by the storage layer. Stable: documented in docs/STORAGE.md. */
export type StorageErrorCode =
  /** The data dir was written by a newer Talaria (its schema version is higher than ours). */
  | 'ERR_SCHEMA_NEWER'
  /** The data dir has an older schema version and no migration exists for it. */
  | 'ERR_SCHEMA_OLDER'
  /** The meta file is missing while shards exist, unreadable, or not a valid meta record. */
  | 'ERR_DATA_DIR_CORRUPT'
  /** Another process or instance holds the LevelDB lock of a shard. */
  | 'ERR_LOCKED'
  /** A key or value exceeds the configured maximum size; nothing was written. */
  | 'ERR_TOO_LARGE'
  /** The storage (or engine) is closed or closing. */
  | 'ERR_CLOSED'
  /** A stored value could not be decoded or does not have the expected shape. */
  | 'ERR_CORRUPT'
  /** An argument is out of range or of the wrong shape (for example a negative seq). */
  | 'ERR_INVALID_ARGUMENT'
  /** The engine failed to read or write (disk full, I/O error); see `cause`. */
  | 'ERR_IO'

/** A failure of the storage layer. */
export class StorageError extends TalariaError {
  declare readonly code: StorageErrorCode

  constructor (code: StorageErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options)
    this.name = 'StorageError'
  }
}

/** Wraps an engine failure as `ERR_IO` unless it already is a StorageError. */
export function asStorageError (err: unknown, what: string): StorageError {
  if (err instanceof StorageError) return err
  return new StorageError('ERR_IO', `${what} failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err })
}
