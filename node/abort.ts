/**
 * Deadlines for public async functions: the caller's signal, or a named default timeout, combined
 * with the node's shutdown signal.
 */
import { NodeError } from './errors.js'

/** The signal an operation runs under: the caller's (or `defaultTimeoutMs`) and the shutdown signal. */
export function operationSignal (callerSignal: AbortSignal | undefined, defaultTimeoutMs: number, shutdown?: AbortSignal): AbortSignal {
  const signals = [callerSignal ?? AbortSignal.timeout(defaultTimeoutMs)]
  if (shutdown !== undefined) signals.push(shutdown)
  return AbortSignal.any(signals)
}

/**
 * If `signal` has fired, the typed error for it (ERR_TIMEOUT for a deadline or abort, ERR_NOT_STARTED
 * when the node is stopping), with `cause` the library's error; otherwise `err` unchanged.
 */
export function abortedError (signal: AbortSignal, err: unknown, what: string, shutdown?: AbortSignal): unknown {
  if (!signal.aborted) return err
  if (shutdown?.aborted === true) return new NodeError('ERR_NOT_STARTED', `${what}: the node is stopping`, { cause: err })
  return new NodeError('ERR_TIMEOUT', `${what}: aborted or timed out`, { cause: err })
}
