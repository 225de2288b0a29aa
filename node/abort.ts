/**
 * Deadlines for the node's async work: the caller's signal, or a timer, combined with the node's
 * shutdown signal.
 *
 * Not `AbortSignal.any([AbortSignal.timeout(ms), other])`: on Node 20 AbortSignal.any holds its
 * sources weakly, and so does the timer behind AbortSignal.timeout, so once a garbage collection
 * has taken the timeout signal the combined one never fires. Here a timer holds the deadline's
 * controller, and a combined signal holds its sources for as long as it lives.
 */
import { setMaxListeners } from 'node:events'
import { NodeError } from './errors.js'

/**
 * A signal with a deadline timer behind it. `clear()` stops the timer once nothing waits on the
 * signal any more (the deadline then never fires); without it the timer lasts until it fires.
 */
export type DeadlineSignal = AbortSignal & { clear: () => void }

/** The sources of each combined signal, kept alive by it: AbortSignal.any holds them only weakly. */
const sourcesOf = new WeakMap<AbortSignal, AbortSignal[]>()

/**
 * Fires when any of `signals` fires; holds them (an inline AbortSignal.timeout among them too) while it lives.
 * Takes any number of listeners: the libraries it is handed to add one per sub-request (a
 * kad-dht query, one per disjoint path and more), bounded by their own fan-out, and Node's
 * default of 10 made every 50-node DHT run log leak warnings that were none.
 */
function anySignal (signals: AbortSignal[]): AbortSignal {
  const combined = AbortSignal.any(signals)
  setMaxListeners(Infinity, combined)
  sourcesOf.set(combined, signals)
  return combined
}

/**
 * A signal that fires after `ms` milliseconds, with a TimeoutError like AbortSignal.timeout's,
 * or when any of `also` fires. Its timer never keeps the process alive; call `clear()` when the
 * work under the signal is done so a long-lived node does not keep a timer per finished request.
 */
export function timeoutSignal (ms: number, ...also: Array<AbortSignal | undefined>): DeadlineSignal {
  const controller = new AbortController()
  // the pending timer holds the controller: the deadline survives any garbage collection
  const timer = setTimeout(() => { controller.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError')) }, ms)
  timer.unref()
  const signal = anySignal([controller.signal, ...also.filter((s) => s !== undefined)])
  return Object.assign(signal, { clear: () => { clearTimeout(timer) } })
}

/**
 * The signal an operation runs under: the caller's (or `defaultTimeoutMs`) and the shutdown
 * signal. Call `clear()` when the operation is done.
 */
export function operationSignal (callerSignal: AbortSignal | undefined, defaultTimeoutMs: number, shutdown?: AbortSignal): DeadlineSignal {
  if (callerSignal === undefined) return timeoutSignal(defaultTimeoutMs, shutdown)
  const signals = shutdown === undefined ? [callerSignal] : [callerSignal, shutdown]
  return Object.assign(anySignal(signals), { clear: () => {} })
}

/**
 * Runs `work` but gives up when `signal` fires, even if `work` itself does not honour the signal
 * (a kad-dht query with no peers waits for its first self-query, which never comes; gossipsub's
 * publish takes no signal). Leaves no listener on `signal` once settled.
 */
export async function untilAborted<T> (work: Promise<T>, signal: AbortSignal): Promise<T> {
  return await new Promise<T>((resolve, reject) => {
    if (signal.aborted) {
      work.catch(() => {})
      reject(signal.reason)
      return
    }
    const onAbort = (): void => { reject(signal.reason) }
    signal.addEventListener('abort', onAbort, { once: true })
    work.then(resolve, reject).finally(() => { signal.removeEventListener('abort', onAbort) })
  })
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
