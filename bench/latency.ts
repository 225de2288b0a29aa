/**
 * 1:1 latency across a mesh: messages at a fixed total rate from senders to receivers on other
 * nodes of an N-node mesh (`talaria start` processes), E2E encrypted (X3DH + Double Ratchet), every
 * hop acked only when durable. Then, in the same run, the floors (raw ws relay, raw libp2p stream)
 * with the same rate and count, after the nodes are stopped so they compete for no CPU.
 *
 * Run: npm run bench -- latency [--nodes=10] [--pairs=10] [--rate=500] [--count=5000]
 */
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { cdfPoints, writeChart } from './lib/chart.js'
import { closeAll, connectAll, crossNodePairs, runPairs, TEXT_BYTES, warmUp } from './lib/clients.js'
import { boundRun, startCluster } from './lib/cluster.js'
import { measureFloors } from './lib/floor.js'
import { cpuSeconds } from './lib/proc.js'
import { floorFigures, latencyRows, ratios } from './lib/report.js'
import { numberArg, RESULTS_DIR, runStamp, writeResult } from './lib/result.js'
import { fmt, paced } from './lib/stats.js'

const settings = {
  nodes: numberArg('nodes', 10),
  pairs: numberArg('pairs', 10),
  rate: numberArg('rate', 500),
  count: numberArg('count', 5000),
  textBytes: TEXT_BYTES,
  floorFrameBytes: 480,
  timeoutMs: 120_000
}
boundRun(9 * 60_000, 'latency')
const stamp = runStamp()

console.log(`starting ${settings.nodes} nodes…`)
const cluster = await startCluster({ nodes: settings.nodes })
const { pairs, clients } = crossNodePairs(cluster.nodes.map((n) => n.url), settings.pairs)
let run
let nodeCpuSeconds: number
try {
  await connectAll(clients)
  const warm = await warmUp(pairs)
  console.log(`warm-up: ${warm.received} messages, p50 ${fmt(warm.latency.p50, 1)} ms`)
  // CPU the nodes spend per message is the figure least disturbed by other load on the machine
  const cpuBefore = cluster.nodes.reduce((sum, n) => sum + cpuSeconds(n.pid), 0)
  run = await runPairs(pairs, settings.count, settings.timeoutMs, async (send) => { await paced(settings.rate, settings.count, send) })
  nodeCpuSeconds = cluster.nodes.reduce((sum, n) => sum + cpuSeconds(n.pid), 0) - cpuBefore
} finally {
  await closeAll(clients)
  await cluster.stop()
}
const floors = await measureFloors({ frameBytes: settings.floorFrameBytes, rate: settings.rate, latencyCount: settings.count, throughputCount: 50_000, timeoutMs: 60_000 })

console.log(`\n1:1 at ${fmt(settings.rate)} msg/s over ${settings.pairs} pairs across ${settings.nodes} nodes; ${fmt(run.received)} of ${fmt(settings.count)} received, ${run.failures} send failures${run.timedOut ? ', TIMED OUT' : ''}\n`)
console.log(latencyRows(run.latency, floors).join('\n'))
console.log(`\nnode CPU per message (all nodes, receipts and acks included): ${fmt(1000 * nodeCpuSeconds / Math.max(1, run.received), 3)} ms; load average at the end ${loadavg().map((l) => l.toFixed(1)).join(' ')}`)
const chart = join(RESULTS_DIR, `latency-${stamp}.png`)
await writeChart(chart, {
  title: `1:1 latency CDF at ${settings.rate} msg/s, ${settings.nodes}-node mesh, beside the floors`,
  x: { label: 'send call → message event (ms)', log: true },
  y: { label: 'fraction of messages', min: 0, max: 1 },
  series: [
    { name: `Talaria, ${settings.nodes} nodes (E2E, durable acks)`, points: cdfPoints(run.latencies) },
    { name: 'raw ws relay', points: cdfPoints(floors.ws.latencies) },
    { name: 'raw libp2p stream', points: cdfPoints(floors.libp2p.latencies) }
  ]
})
const file = await writeResult('latency', stamp, settings, {
  talaria: { latency: run.latency, received: run.received, failures: run.failures, timedOut: run.timedOut, seconds: run.seconds, nodeCpuMsPerMessage: 1000 * nodeCpuSeconds / Math.max(1, run.received) },
  floors: floorFigures(floors),
  ratios: ratios(run.latency, floors)
})
console.log(`\nwrote ${file}\nwrote ${chart}`)
process.exit(0)
