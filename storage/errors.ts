/**
 * Storage errors. Every failure of the storage layer is a {@link StorageError} with a stable
 * `code`; callers branch on the code, never on the message. The engine's own error, if any,
 * travels in `cause`.
 */
import { TalariaError } from '../protocol/errors.js'

/**
 * Every code the storage layer raises. Stable, and documented in docs/STORAGE.md (a test keeps the
 * two in agreement): ERR_SCHEMA_NEWER / ERR_SCHEMA_OLDER (data dir schema newer / older, no
 * migration), ERR_DATA_DIR_CORRUPT (meta file invalid or missing beside shards), ERR_LOCKED (shard
 * lock held elsewhere), ERR_TOO_LARGE (key or value over its limit, nothing written), ERR_CLOSED
 * (after close), ERR_CORRUPT (stored value does not decode), ERR_INVALID_ARGUMENT (bad argument),
 * ERR_IO (engine read/write failure, see `cause`).
 */
export const STORAGE_ERROR_CODES = [
  'ERR_SCHEMA_NEWER',
  'ERR_SCHEMA_OLDER',
  'ERR_DATA_DIR_CORRUPT',
  'ERR_LOCKED',
  'ERR_TOO_LARGE',
  'ERR_CLOSED',
  'ERR_CORRUPT',
  'ERR_INVALID_ARGUMENT',
  'ERR_IO'
] as const

/** A code of {@link STORAGE_ERROR_CODES}. */
export type StorageErrorCode = typeof STORAGE_ERROR_CODES[number]

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
