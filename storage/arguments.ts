/**
 * Argument checks shared by the repositories: a bad argument is `ERR_INVALID_ARGUMENT`, thrown
 * before anything is read or written.
 */
import { StorageError } from './errors.js'

/** An `ERR_INVALID_ARGUMENT` error. */
export function invalid (message: string): StorageError {
  return new StorageError('ERR_INVALID_ARGUMENT', message)
}

/** Throws unless `value` is a non-empty string. */
export function checkString (value: unknown, name: string): asserts value is string {
  if (typeof value !== 'string' || value.length === 0) throw invalid(`${name} must be a non-empty string`)
}

/** Throws unless `value` is a non-negative safe integer (times, counters, positions). */
export function checkTime (value: unknown, name: string): asserts value is number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw invalid(`${name} must be a non-negative safe integer`)
}

/** A page size: `limit`, or `fallback` when absent; throws unless it is from 1 to `max`. */
export function resolveLimit (limit: number | undefined, fallback: number, max: number): number {
  const n = limit ?? fallback
  if (!Number.isSafeInteger(n) || n < 1 || n > max) throw invalid(`limit must be an integer from 1 to ${max}`)
  return n
}
