/**
 * Reconnect delays: exponential with "equal jitter" (half fixed, half random), capped. The fixed
 * half keeps a lower bound so a flapping node is not hammered; the random half spreads the clients
 * of a restarted node over time instead of reconnecting all at once.
 */

/** First reconnect delay, in milliseconds. */
export const DEFAULT_RECONNECT_BASE_MS = 250
/** Longest reconnect delay, in milliseconds. */
export const DEFAULT_RECONNECT_MAX_MS = 30_000

/** Options of {@link backoffDelay}. */
export interface BackoffOptions {
  baseMs?: number
  maxMs?: number
}

/**
 * The delay before reconnect attempt `attempt` (0 for the first): a value in
 * [cap / 2, cap] where cap = min(maxMs, baseMs * 2^attempt). `random` returns [0, 1).
 */
export function backoffDelay (attempt: number, opts: BackoffOptions = {}, random: () => number = Math.random): number {
  const base = opts.baseMs ?? DEFAULT_RECONNECT_BASE_MS
  const max = opts.maxMs ?? DEFAULT_RECONNECT_MAX_MS
  // 2^31 already exceeds any sane cap; clamping the exponent keeps the arithmetic finite
  const cap = Math.min(max, base * 2 ** Math.min(Math.max(0, attempt), 31))
  const half = cap / 2
  return Math.round(half + half * Math.min(Math.max(random(), 0), 1))
}
