/** Markdown tables for benchmark output, with ratios to the floors measured in the same run. */
import type { Floors } from './floor.js'
import { fmt, type LatencySummary } from './stats.js'

const QUANTILES = [['p50', 'p50'], ['p90', 'p90'], ['p99', 'p99'], ['p99.9', 'p999']] as const

/** Rows "latency pXX" of Talaria beside both floors, with Talaria / floor ratios. */
export function latencyRows (ours: LatencySummary, floors: Floors): string[] {
  const rows = ['| latency (ms) | Talaria | raw ws | ratio to ws | raw libp2p stream | ratio to libp2p |', '| --- | ---: | ---: | ---: | ---: | ---: |']
  for (const [name, key] of QUANTILES) {
    const t = ours[key]
    rows.push(`| ${name} | ${fmt(t, 2)} | ${fmt(floors.ws.latency[key], 2)} | ${fmt(t / floors.ws.latency[key], 1)}× | ${fmt(floors.libp2p.latency[key], 2)} | ${fmt(t / floors.libp2p.latency[key], 1)}× |`)
  }
  return rows
}

/** One row "msg/s" of Talaria beside both floors, as fractions of the floors. */
export function rateRow (what: string, ours: number, floors: Floors): string {
  return `| ${what} | ${fmt(ours)} | ${fmt(floors.ws.throughputPerSec)} | 1/${fmt(floors.ws.throughputPerSec / ours, 0)} | ${fmt(floors.libp2p.throughputPerSec)} | 1/${fmt(floors.libp2p.throughputPerSec / ours, 0)} |`
}

/** Ratios of a latency summary to both floors, for result files. */
export function ratios (ours: LatencySummary, floors: Floors): Record<string, { ws: number, libp2p: number }> {
  const out: Record<string, { ws: number, libp2p: number }> = {}
  for (const [name, key] of QUANTILES) out[name] = { ws: ours[key] / floors.ws.latency[key], libp2p: ours[key] / floors.libp2p.latency[key] }
  return out
}

/** Floors without their raw latencies, for result files. */
export function floorFigures (floors: Floors): Record<string, unknown> {
  return {
    ws: { latency: floors.ws.latency, throughputPerSec: floors.ws.throughputPerSec },
    libp2p: { latency: floors.libp2p.latency, throughputPerSec: floors.libp2p.throughputPerSec }
  }
}
