/**
 * 1:1 messaging across two node processes, one sender and one recipient, with E2E encryption and
 * durable acks, beside the floors measured in the same run. The smallest case of `latency` and
 * `throughput` (which run on larger meshes with many pairs), kept for comparison with earlier runs.
 *
 * Run: npm run bench -- messaging [--rate=500] [--latency-count=2500] [--throughput-count=10000] [--in-flight=512]
 */
import { closeAll, connectAll, crossNodePairs, onArrivals, runPairs, TEXT_BYTES, warmUp, windowed } from './lib/clients.js'
import { boundRun, startCluster } from './lib/cluster.js'
import { measureFloors } from './lib/floor.js'
import { floorFigures, latencyRows, rateRow, ratios } from './lib/report.js'
import { numberArg, runStamp, writeResult } from './lib/result.js'
import { fmt, paced } from './lib/stats.js'

const settings = {
  rate: numberArg('rate', 500),
  latencyCount: numberArg('latency-count', 2500),
  throughputCount: numberArg('throughput-count', 10_000),
  inFlight: numberArg('in-flight', 512),
  textBytes: TEXT_BYTES,
  timeoutMs: 120_000
}
boundRun(9 * 60_000, 'messaging')
const stamp = runStamp()
const cluster = await startCluster({ nodes: 2 })
const { pairs, clients } = crossNodePairs(cluster.nodes.map((n) => n.url), 1)
let latency, throughput
try {
  await connectAll(clients)
  await warmUp(pairs, 50)
  latency = await runPairs(pairs, settings.latencyCount, settings.timeoutMs, async (send) => { await paced(settings.rate, settings.latencyCount, send) })
  throughput = await runPairs(pairs, settings.throughputCount, settings.timeoutMs, windowed(settings.throughputCount, settings.inFlight, onArrivals(pairs)))
} finally {
  await closeAll(clients)
  await cluster.stop()
}
const floors = await measureFloors({ frameBytes: 480, rate: settings.rate, latencyCount: settings.latencyCount, throughputCount: settings.throughputCount * 5, timeoutMs: 60_000 })
const perSec = throughput.received / throughput.seconds

console.log(`1:1 messaging across 2 node processes, 1 pair, E2E + durable acks; ${TEXT_BYTES} B texts; latency at ${fmt(settings.rate)} msg/s\n`)
console.log(latencyRows(latency.latency, floors).join('\n'))
console.log('\n| what | Talaria | raw ws | fraction of ws | raw libp2p stream | fraction of libp2p |\n| --- | ---: | ---: | ---: | ---: | ---: |')
console.log(rateRow(`sustained msg/s (window ${settings.inFlight})`, perSec, floors))
console.log(`\nlatency under max load: p50 ${fmt(throughput.latency.p50, 1)} ms, p99 ${fmt(throughput.latency.p99, 1)} ms`)
if (latency.failures + throughput.failures > 0) console.log(`send failures: ${latency.failures + throughput.failures}`)
const file = await writeResult('messaging', stamp, settings, {
  talaria: { latency: latency.latency, throughput: { perSec, latency: throughput.latency } },
  floors: floorFigures(floors),
  ratios: ratios(latency.latency, floors)
})
console.log(`\nwrote ${file}`)
process.exit(0)
