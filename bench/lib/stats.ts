/** Small statistics helpers for benchmarks. */

/** The q-quantile (0..1) of `sorted` (ascending), nearest-rank. */
export function quantile (sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))
  return sorted[rank] ?? Number.NaN
}

/** Latency summary in milliseconds. */
export interface LatencySummary {
  count: number
  p50: number
  p90: number
  p99: number
  p999: number
  max: number
}

/** Summarises latencies given in milliseconds. */
export function summarise (latenciesMs: readonly number[]): LatencySummary {
  const sorted = [...latenciesMs].sort((a, b) => a - b)
  return {
    count: sorted.length,
    p50: quantile(sorted, 0.5),
    p90: quantile(sorted, 0.9),
    p99: quantile(sorted, 0.99),
    p999: quantile(sorted, 0.999),
    max: sorted[sorted.length - 1] ?? Number.NaN
  }
}

/** Formats a number with thousands separators and `digits` decimals. */
export function fmt (n: number, digits = 0): string {
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
}

/**
 * Calls `send(i)` for i = 0..count-1 at `rate` per second, in small bursts on a 5 ms tick, so the
 * offered load is steady without a timer per message. Resolves when all have been sent.
 */
export async function paced (rate: number, count: number, send: (i: number) => void): Promise<void> {
  const start = performance.now()
  let sent = 0
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const due = Math.min(count, Math.floor(((performance.now() - start) / 1000) * rate) + 1)
      while (sent < due) send(sent++)
      if (sent >= count) {
        clearInterval(timer)
        resolve()
      }
    }
    const timer = setInterval(tick, 5)
    tick()
  })
}
