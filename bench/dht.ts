/**
 * DHT record lookups on a mesh of `talaria start` processes: users publish their device lists and
 * prekeys through their nodes (the SDK's `connect`), then clients on other nodes look them up
 * (`devices(user, { refresh: true })`: the gateway's `lookup`, device list + prekeys).
 *
 * - cold: the first lookup of a user on a node — a DHT query (routing tables already warm);
 * - warm: the same lookup again within a minute — answered by the node's directory cache, not the
 *   DHT (reported as such);
 * then 20% of the nodes are SIGKILLed and both are measured again with users not yet looked up.
 * Lookers sit on nodes that survive; publishers are spread over all nodes.
 *
 * Run: npm run bench -- dht [--nodes=50] [--users=20] [--lookers=20] [--kill-fraction=0.2] [--concurrency=8]
 */
import { join } from 'node:path'
import type { TalariaClient } from '../client/index.js'
import type { UserId } from '../protocol/ids.js'
import { cdfPoints, writeChart } from './lib/chart.js'
import { closeAll, connectEach, sdkClient } from './lib/clients.js'
import { boundRun, sleep, startCluster } from './lib/cluster.js'
import { cpuSeconds } from './lib/proc.js'
import { numberArg, RESULTS_DIR, runStamp, writeResult } from './lib/result.js'
import { fmt, summarise, type LatencySummary } from './lib/stats.js'

const settings = {
  nodes: numberArg('nodes', 50),
  users: numberArg('users', 20),
  lookers: numberArg('lookers', 20),
  killFraction: numberArg('kill-fraction', 0.2),
  concurrency: numberArg('concurrency', 8),
  waveSize: numberArg('wave-size', 5),
  settleMs: numberArg('settle-ms', 10_000),
  lookupTimeoutMs: 15_000
}
boundRun(9 * 60_000, 'dht')
const stamp = runStamp()

// On a 50-node mesh on 2 cores a gateway can time an auth out (10 s); the SDK then leaves a
// rejection nobody awaits, which would end the run. Count them instead and report them.
let unhandled = 0
let firstUnhandled: string | undefined
process.on('unhandledRejection', (err) => {
  unhandled++
  firstUnhandled ??= err instanceof Error ? `${err.name}: ${err.message}` : String(err)
})

interface Phase { name: string, latencies: number[], failures: number, summary: LatencySummary }

/** Looks every user up from every looker whose node did not publish it, `concurrency` at a time. */
async function lookups (name: string, lookers: Array<{ client: TalariaClient, node: number }>, users: Array<{ id: UserId, node: number }>): Promise<Phase> {
  const jobs = lookers.flatMap((l) => users.filter((u) => u.node !== l.node).map((u) => ({ l, u })))
  const latencies: number[] = []
  let failures = 0
  let next = 0
  await Promise.all(Array.from({ length: settings.concurrency }, async () => {
    while (next < jobs.length) {
      const job = jobs[next++]
      if (job === undefined) break
      const t = performance.now()
      try {
        const devices = await job.l.client.devices(job.u.id, { refresh: true, signal: AbortSignal.timeout(settings.lookupTimeoutMs) })
        if (devices.length === 0) throw new Error('no devices')
        latencies.push(performance.now() - t)
      } catch {
        failures++
      }
    }
  }))
  const phase = { name, latencies, failures, summary: summarise(latencies) }
  console.log(`${name}: ${fmt(latencies.length)} lookups, ${failures} failed; p50 ${fmt(phase.summary.p50, 1)} ms, p90 ${fmt(phase.summary.p90, 1)}, p99 ${fmt(phase.summary.p99, 1)}, max ${fmt(phase.summary.max, 1)}`)
  return phase
}

const started = performance.now()
const cluster = await startCluster({
  nodes: settings.nodes,
  waveSize: settings.waveSize,
  wavePauseMs: 1000,
  onProgress: (n) => { process.stdout.write(`started ${n}/${settings.nodes} nodes\n`) }
})
const startSeconds = (performance.now() - started) / 1000
console.log(` in ${fmt(startSeconds, 1)} s`)
const killCount = Math.round(settings.nodes * settings.killFraction)
// the last `killCount` nodes die; lookers sit on the others
const survivors = settings.nodes - killCount
const clients: TalariaClient[] = []
const phases: Phase[] = []
let idleCpuPercentPerNode: number | undefined
let setupFailures = 0
try {
  // a mesh's own upkeep (DHT refresh, gossipsub heartbeats, pings) grows with its size: on 2 cores
  // it decides whether a 50-node mesh fits at all, so it is measured before any lookup
  const cpu0 = cluster.nodes.reduce((sum, n) => sum + cpuSeconds(n.pid), 0)
  await sleep(settings.settleMs)
  idleCpuPercentPerNode = 100 * (cluster.nodes.reduce((sum, n) => sum + cpuSeconds(n.pid), 0) - cpu0) / (settings.settleMs / 1000) / settings.nodes
  console.log(`idle mesh: ${fmt(idleCpuPercentPerNode, 1)}% of a core per node, ${fmt(idleCpuPercentPerNode * settings.nodes / 100, 2)} cores in all`)
  const publish = async (offset: number): Promise<Array<{ id: UserId, node: number }>> => {
    const made = Array.from({ length: settings.users }, (_, k) => {
      const node = (offset + k * 7) % settings.nodes
      return { client: sdkClient(cluster.nodes[node]?.url ?? ''), node }
    })
    clients.push(...made.map((m) => m.client))
    const { connected, failed, firstError } = await connectEach(made.map((m) => m.client), 4)
    if (failed > 0) console.log(`${failed} of ${made.length} publishers could not connect (first: ${firstError?.message ?? ''}); their users are left out`)
    setupFailures += failed
    return made.filter((m) => connected.includes(m.client)).map((m) => ({ id: m.client.userId, node: m.node }))
  }
  const publishStart = performance.now()
  const before = await publish(0)
  const after = await publish(3)
  console.log(`published ${before.length + after.length} users in ${fmt((performance.now() - publishStart) / 1000, 1)} s`)
  const lookers = Array.from({ length: settings.lookers }, (_, k) => {
    const node = Math.floor(k * survivors / settings.lookers)
    return { client: sdkClient(cluster.nodes[node]?.url ?? ''), node }
  })
  clients.push(...lookers.map((l) => l.client))
  const looked = await connectEach(lookers.map((l) => l.client), 4)
  if (looked.failed > 0) console.log(`${looked.failed} of ${lookers.length} lookers could not connect (first: ${looked.firstError?.message ?? ''}); left out`)
  setupFailures += looked.failed
  const ready = lookers.filter((l) => looked.connected.includes(l.client))

  phases.push(await lookups('cold (DHT query), all nodes up', ready, before))
  phases.push(await lookups('warm (node cache), all nodes up', ready, before))
  for (let i = survivors; i < settings.nodes; i++) await cluster.kill(i)
  console.log(`killed ${killCount} of ${settings.nodes} nodes`)
  phases.push(await lookups(`cold (DHT query), ${killCount} nodes killed`, ready, after))
  phases.push(await lookups(`warm (node cache), ${killCount} nodes killed`, ready, after))
} finally {
  await closeAll(clients)
  await cluster.stop()
}

console.log(`\nrecord lookups (device list + prekeys) through a node's gateway, ${settings.nodes}-node mesh\n`)
console.log('| phase | lookups | failed | p50 ms | p90 ms | p99 ms | max ms |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |')
for (const p of phases) console.log(`| ${p.name} | ${fmt(p.latencies.length)} | ${p.failures} | ${fmt(p.summary.p50, 1)} | ${fmt(p.summary.p90, 1)} | ${fmt(p.summary.p99, 1)} | ${fmt(p.summary.max, 1)} |`)
const chart = join(RESULTS_DIR, `dht-${stamp}.png`)
await writeChart(chart, {
  title: `Record lookup latency CDF, ${settings.nodes}-node mesh`,
  x: { label: 'lookup (ms)', log: true },
  y: { label: 'fraction of lookups', min: 0, max: 1 },
  series: phases.map((p) => ({ name: p.name, points: cdfPoints(p.latencies) }))
})
if (unhandled > 0) console.log(`\nclient rejections nobody awaited: ${unhandled} (first: ${firstUnhandled ?? ''})`)
const file = await writeResult('dht', stamp, settings, {
  startSeconds,
  idleCpuPercentPerNode: idleCpuPercentPerNode ?? null,
  setupFailures,
  unhandledClientRejections: unhandled,
  phases: phases.map((p) => ({ name: p.name, failures: p.failures, latency: p.summary }))
})
console.log(`\nwrote ${file}\nwrote ${chart}`)
process.exit(0)
