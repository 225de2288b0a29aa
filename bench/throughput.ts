/**
 * 1:1 throughput: the highest offered rate a node sustains with p99 under a latency bound. Senders
 * on node A write to receivers on node B (so each node carries the whole rate, one sending and one
 * receiving); the offered rate steps up until p99 exceeds the bound, or fewer messages arrive
 * than were offered. Then one run as fast as the nodes take messages (a bounded window in
 * flight), and the floors in the same run.
 *
 * Run: npm run bench -- throughput [--nodes=2] [--pairs=4] [--step-seconds=4] [--p99-ms=50]
 *   [--rates=25,50,100,200,400,700,1000,1500,2000,3000,4000,5000,6000] [--max-failed-steps=4]
 *   [--window=512] [--saturation-count=10000]
 */
import { join } from 'node:path'
import { writeChart } from './lib/chart.js'
import { closeAll, connectAll, crossNodePairs, onArrivals, runPairs, TEXT_BYTES, warmUp, windowed, type PairRun } from './lib/clients.js'
import { boundRun, startCluster } from './lib/cluster.js'
import { measureFloors } from './lib/floor.js'
import { floorFigures, rateRow } from './lib/report.js'
import { numberArg, RESULTS_DIR, runStamp, writeResult } from './lib/result.js'
import { fmt, paced } from './lib/stats.js'

const ratesArg = process.argv.find((a) => a.startsWith('--rates='))?.slice('--rates='.length)
const settings = {
  nodes: numberArg('nodes', 2),
  pairs: numberArg('pairs', 4),
  stepSeconds: numberArg('step-seconds', 4),
  p99BoundMs: numberArg('p99-ms', 50),
  rates: (ratesArg ?? '25,50,100,200,400,700,1000,1500,2000,3000,4000,5000,6000').split(',').map(Number),
  /** Steps run after the first one whose p99 is over the bound, at most. */
  maxFailedSteps: numberArg('max-failed-steps', 4),
  window: numberArg('window', 512),
  saturationCount: numberArg('saturation-count', 10_000),
  textBytes: TEXT_BYTES,
  /** Gateway limits raised so the per-connection request budget is not what is measured. */
  nodeFlags: ['--max-requests-per-second', '100000', '--max-user-requests-per-second', '100000'],
  stepTimeoutMs: 30_000
}
boundRun(9 * 60_000, 'throughput')
const stamp = runStamp()

interface Step { offered: number, achieved: number, run: PairRun, held: boolean }
const steps: Step[] = []
let saturation: PairRun | undefined
const cluster = await startCluster({ nodes: settings.nodes, flags: settings.nodeFlags })
const { pairs, clients } = crossNodePairs(cluster.nodes.map((n) => n.url), settings.pairs)
try {
  await connectAll(clients)
  await warmUp(pairs)
  let failedSteps = 0
  for (const rate of settings.rates) {
    const count = Math.round(rate * settings.stepSeconds)
    const run = await runPairs(pairs, count, settings.stepTimeoutMs, async (send) => { await paced(rate, count, send) })
    const achieved = run.received / Math.max(run.seconds, settings.stepSeconds)
    const held = !run.timedOut && run.failures === 0 && run.latency.p99 <= settings.p99BoundMs
    steps.push({ offered: rate, achieved, run, held })
    console.log(`offered ${fmt(rate)} msg/s: received ${fmt(run.received)}/${fmt(count)} at ${fmt(achieved)} msg/s, p50 ${fmt(run.latency.p50, 1)} ms, p99 ${fmt(run.latency.p99, 1)} ms ${held ? 'held' : 'NOT held'}`)
    // steps past the first failure draw the knee; stop when the nodes fall behind the offer
    if (!held) failedSteps++
    if (failedSteps >= settings.maxFailedSteps || achieved < 0.8 * rate || run.timedOut) break
  }
  saturation = await runPairs(pairs, settings.saturationCount, 120_000, windowed(settings.saturationCount, settings.window, onArrivals(pairs)))
} finally {
  await closeAll(clients)
  await cluster.stop()
}
const floors = await measureFloors({ frameBytes: 480, rate: 500, latencyCount: 2500, throughputCount: 50_000, timeoutMs: 60_000 })

const best = [...steps].reverse().find((s) => s.held)
const saturated = saturation.received / saturation.seconds
console.log(`\n1:1 throughput, ${settings.pairs} pairs from node A to node B (${settings.nodes} nodes), p99 bound ${settings.p99BoundMs} ms\n`)
console.log('| what | Talaria msg/s | raw ws | fraction of ws | raw libp2p stream | fraction of libp2p |\n| --- | ---: | ---: | ---: | ---: | ---: |')
console.log(rateRow(`highest offered rate with p99 ≤ ${settings.p99BoundMs} ms`, best?.offered ?? 0, floors))
console.log(rateRow(`as fast as taken (window ${settings.window})`, saturated, floors))
console.log(`\nlatency at saturation: p50 ${fmt(saturation.latency.p50, 1)} ms, p99 ${fmt(saturation.latency.p99, 1)} ms`)

const chart = join(RESULTS_DIR, `throughput-${stamp}.png`)
await writeChart(chart, {
  title: `1:1 received against offered load (${settings.pairs} pairs, node A → node B)`,
  x: { label: 'offered msg/s', min: 0 },
  y: { label: 'msg/s', min: 0 },
  series: [
    { name: 'received msg/s', points: steps.map((s) => [s.offered, s.achieved] as const) },
    { name: 'offered msg/s', points: steps.map((s) => [s.offered, s.offered] as const) }
  ]
})
const latencyChart = join(RESULTS_DIR, `throughput-latency-${stamp}.png`)
await writeChart(latencyChart, {
  title: `1:1 latency against offered load (${settings.pairs} pairs, node A → node B)`,
  x: { label: 'offered msg/s', min: 0 },
  y: { label: 'send call → message event (ms)', log: true },
  series: [
    { name: 'p99', points: steps.map((s) => [s.offered, s.run.latency.p99] as const) },
    { name: 'p50', points: steps.map((s) => [s.offered, s.run.latency.p50] as const) },
    { name: `bound (${settings.p99BoundMs} ms)`, points: steps.map((s) => [s.offered, settings.p99BoundMs] as const) }
  ]
})
const file = await writeResult('throughput', stamp, settings, {
  steps: steps.map((s) => ({ offered: s.offered, achieved: s.achieved, held: s.held, latency: s.run.latency, failures: s.run.failures, timedOut: s.run.timedOut })),
  highestHeldRate: best?.offered ?? 0,
  saturation: { perSec: saturated, latency: saturation.latency },
  floors: floorFigures(floors)
})
console.log(`\nwrote ${file}\nwrote ${chart}\nwrote ${latencyChart}`)
process.exit(0)
