/**
 * Idle authenticated client connections held by one node: how many, bytes of RSS each, and the
 * CPU their keepalives cost. Client connections come from worker processes
 * (connections-worker.ts), each from its own 127.0.0.x source address, each connection a fresh
 * user and device authenticated with the client protocol. The floor, in the same run: the same
 * number of bare connections to a plain `ws` server process.
 *
 * The node is `bench/lib/node-host.ts` (the same `createNode` as `talaria start`) because the
 * gateway's total connection cap (10,000 by default) has no CLI flag. Every process gets the
 * open-file hard limit as its soft limit; the node needs a few hundred descriptors of its own, so
 * the default target stays under the 20,000 of this machine.
 *
 * Run: npm run bench -- connections [--connections=19000] [--workers=4] [--idle-seconds=35]
 */
import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import { writeChart } from './lib/chart.js'
import { boundRun, sleep, spawnNode, startCluster, stopProcess } from './lib/cluster.js'
import { cpuSeconds, openFiles, rssBytes } from './lib/proc.js'
import { numberArg, RESULTS_DIR, runStamp, writeResult } from './lib/result.js'
import { fmt } from './lib/stats.js'
import type { WorkerReport, WorkerTask } from './connections-worker.js'

const settings = {
  connections: numberArg('connections', 19_000),
  workers: numberArg('workers', 4),
  concurrency: numberArg('concurrency', 32),
  idleSeconds: numberArg('idle-seconds', 35),
  settleMs: 5_000,
  openTimeoutMs: 240_000,
  gatewayPingIntervalMs: 30_000
}
boundRun(9 * 60_000, 'connections')
const stamp = runStamp()

interface Held {
  opened: number
  failed: number
  firstError?: string
  /** (connections, RSS bytes) while opening. */
  curve: Array<[number, number]>
  baseRss: number
  rss: number
  fds: number
  workers: ChildProcess[]
}

/** Opens `settings.connections` connections to `url` from worker processes, sampling the server's RSS. */
async function hold (url: string, serverPid: number, auth: boolean): Promise<Held> {
  const baseRss = rssBytes(serverPid)
  const per = Math.ceil(settings.connections / settings.workers)
  const reports: WorkerReport[] = []
  const workers = Array.from({ length: settings.workers }, (_, w) => {
    const child = spawnNode(['--import', './scripts/register.js', 'bench/connections-worker.ts'], { ipc: true })
    reports[w] = { opened: 0, failed: 0, done: false }
    child.on('message', (r: WorkerReport) => { reports[w] = r })
    const task: WorkerTask = { url, count: Math.min(per, settings.connections - w * per), localAddress: `127.0.0.${w + 2}`, auth, concurrency: settings.concurrency }
    child.send(task)
    return child
  })
  const curve: Array<[number, number]> = [[0, baseRss]]
  const deadline = performance.now() + settings.openTimeoutMs
  const sum = (): { opened: number, failed: number } => reports.reduce((a, r) => ({ opened: a.opened + r.opened, failed: a.failed + r.failed }), { opened: 0, failed: 0 })
  while (!reports.every((r) => r.done) && performance.now() < deadline) {
    await sleep(1000)
    curve.push([sum().opened, rssBytes(serverPid)])
  }
  await sleep(settings.settleMs)
  const { opened, failed } = sum()
  const rss = rssBytes(serverPid)
  curve.push([opened, rss])
  const firstError = reports.find((r) => r.firstError !== undefined)?.firstError
  return { opened, failed, ...(firstError !== undefined ? { firstError } : {}), curve, baseRss, rss, fds: openFiles(serverPid), workers }
}

async function release (h: Held): Promise<void> {
  for (const w of h.workers) w.send('close')
  await Promise.all(h.workers.map(async (w) => { await stopProcess(w) }))
}

// the floor: a bare ws server process
const relay = spawnNode(['--import', './scripts/register.js', 'bench/lib/ws-relay.ts'], { stdin: 'pipe' })
const [portChunk] = await once(relay.stdout!, 'data') as [Buffer]
await sleep(1000)
const floor = await hold(`ws://127.0.0.1:${portChunk.toString().trim()}`, relay.pid!, false)
await release(floor)
await stopProcess(relay)
console.log(`bare ws: ${fmt(floor.opened)} connections, ${fmt((floor.rss - floor.baseRss) / floor.opened)} B RSS each`)

// Talaria
const cluster = await startCluster({
  nodes: 1,
  hostInit: {
    useDefaultBootstrap: false,
    gateway: { maxConnections: settings.connections + 1000, maxConnectionsPerIp: settings.connections, pingIntervalMs: settings.gatewayPingIntervalMs }
  }
})
const node = cluster.nodes[0]!
await sleep(3000)
let talaria: Held
let idleCpu: number
try {
  talaria = await hold(node.url, node.pid, true)
  console.log(`Talaria: ${fmt(talaria.opened)} authenticated connections (${fmt(talaria.failed)} failed${talaria.firstError !== undefined ? `, first: ${talaria.firstError}` : ''}), ${fmt((talaria.rss - talaria.baseRss) / talaria.opened)} B RSS each`)
  const cpu0 = cpuSeconds(node.pid)
  await sleep(settings.idleSeconds * 1000)
  idleCpu = cpuSeconds(node.pid) - cpu0
  await release(talaria)
} finally {
  await cluster.stop()
}

const perConn = (h: Held): number => (h.rss - h.baseRss) / Math.max(1, h.opened)
const cpuPct = 100 * idleCpu / settings.idleSeconds
const rounds = settings.idleSeconds * 1000 / settings.gatewayPingIntervalMs
console.log(`\nidle client connections held by one node; ${settings.workers} worker processes on 127.0.0.2–${settings.workers + 1}\n`)
console.log('| what | Talaria (authenticated) | bare ws server | ratio |\n| --- | ---: | ---: | ---: |')
console.log(`| connections held | ${fmt(talaria.opened)} | ${fmt(floor.opened)} | |`)
console.log(`| RSS per connection (B) | ${fmt(perConn(talaria))} | ${fmt(perConn(floor))} | ${fmt(perConn(talaria) / perConn(floor), 1)}× |`)
console.log(`| process RSS with all held (MB) | ${fmt(talaria.rss / 1e6, 1)} | ${fmt(floor.rss / 1e6, 1)} | |`)
console.log(`| open files of the server | ${fmt(talaria.fds)} | ${fmt(floor.fds)} | |`)
console.log(`| CPU while idle (keepalive ping every ${settings.gatewayPingIntervalMs / 1000} s), % of a core | ${fmt(cpuPct, 2)} | | |`)
console.log(`| CPU per connection per ping round (µs) | ${fmt(1e6 * idleCpu / rounds / Math.max(1, talaria.opened), 2)} | | |`)

const chart = join(RESULTS_DIR, `connections-${stamp}.png`)
await writeChart(chart, {
  title: 'Server RSS against idle connections held',
  x: { label: 'connections', min: 0 },
  y: { label: 'RSS (MB)', min: 0 },
  series: [
    { name: 'Talaria node, authenticated clients', points: talaria.curve.map(([n, b]) => [n, b / 1e6] as const) },
    { name: 'bare ws server', points: floor.curve.map(([n, b]) => [n, b / 1e6] as const) }
  ]
})
const strip = (h: Held): Record<string, unknown> => ({ opened: h.opened, failed: h.failed, firstError: h.firstError, baseRss: h.baseRss, rss: h.rss, rssPerConnection: perConn(h), fds: h.fds, curve: h.curve })
const file = await writeResult('connections', stamp, settings, {
  talaria: { ...strip(talaria), idleCpuSeconds: idleCpu, idleCpuPercent: cpuPct },
  floor: strip(floor),
  ratio: perConn(talaria) / perConn(floor)
})
console.log(`\nwrote ${file}\nwrote ${chart}`)
process.exit(0)
