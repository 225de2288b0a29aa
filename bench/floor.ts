/**
 * The floors alone: the same 480 B frames through a raw WebSocket relay process and through a raw
 * libp2p stream (TCP + Noise + Yamux) echoed by another process. The messaging scenarios measure
 * these again in their own runs; this scenario is for looking at the floors themselves.
 *
 * Run: npm run bench -- floor [--rate=500] [--latency-count=2500] [--throughput-count=50000]
 */
import { join } from 'node:path'
import { cdfPoints, writeChart } from './lib/chart.js'
import { boundRun } from './lib/cluster.js'
import { measureFloors } from './lib/floor.js'
import { numberArg, RESULTS_DIR, runStamp, writeResult } from './lib/result.js'
import { fmt } from './lib/stats.js'

const settings = {
  frameBytes: numberArg('frame-bytes', 480),
  rate: numberArg('rate', 500),
  latencyCount: numberArg('latency-count', 2500),
  throughputCount: numberArg('throughput-count', 50_000),
  timeoutMs: 60_000
}
boundRun(5 * 60_000, 'floor')
const stamp = runStamp()
const floors = await measureFloors(settings)

console.log(`floors, ${fmt(settings.frameBytes)} B frames; latency at ${fmt(settings.rate)} frames/s\n`)
console.log('| what | p50 ms | p90 ms | p99 ms | p99.9 ms | frames/s |')
console.log('| --- | ---: | ---: | ---: | ---: | ---: |')
for (const [name, f] of [['raw ws relay', floors.ws], ['raw libp2p stream echo', floors.libp2p]] as const) {
  console.log(`| ${name} | ${fmt(f.latency.p50, 3)} | ${fmt(f.latency.p90, 3)} | ${fmt(f.latency.p99, 3)} | ${fmt(f.latency.p999, 3)} | ${fmt(f.throughputPerSec)} |`)
}
const chart = join(RESULTS_DIR, `floor-${stamp}.png`)
await writeChart(chart, {
  title: `Floors: latency CDF at ${settings.rate} frames/s`,
  x: { label: 'latency (ms)', log: true },
  y: { label: 'fraction of frames', min: 0, max: 1 },
  series: [{ name: 'raw ws relay', points: cdfPoints(floors.ws.latencies) }, { name: 'raw libp2p stream', points: cdfPoints(floors.libp2p.latencies) }]
})
const file = await writeResult('floor', stamp, settings, {
  ws: { latency: floors.ws.latency, throughputPerSec: floors.ws.throughputPerSec },
  libp2p: { latency: floors.libp2p.latency, throughputPerSec: floors.libp2p.throughputPerSec }
})
console.log(`\nwrote ${file}\nwrote ${chart}`)
process.exit(0)
