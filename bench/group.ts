/**
 * Group fan-out: one E2E group of `members` users over an M-node mesh (`talaria start`
 * processes). Member clients live in worker processes (bench/group-worker.ts), spread round-robin
 * over the nodes; the owner, also the only sender, lives here on node 0. The owner creates the
 * group with every member (the SDK splits the adds into ops of ≤256 users), the bench waits until
 * every member's view has all members (the invitations carried the owner's sender key), one
 * warm-up message shows every member can read the group, then `messages` messages go out at `rate` per second.
 *
 * Fan-out latency of a message: the receive time of its last member (max over workers, host
 * clock `performance.timeOrigin + performance.now()` in every process) minus its send time. Then a
 * sustained-rate step: the rate doubles until p99 to the last member exceeds 1 s or a member misses
 * a message; the last rate that held is reported.
 *
 * Nodes run with their request rate limits raised (as in the throughput scenario): the owner's
 * invitations and sender-key distribution are ~2 requests per member in a burst.
 *
 * Run: npm run bench -- group [--members=1000] [--nodes=10] [--messages=60] [--rate=1] [--workers=4]
 */
import type { ChildProcess } from 'node:child_process'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { cdfPoints, writeChart } from './lib/chart.js'
import { payload, sdkClient } from './lib/clients.js'
import { boundRun, sleep, spawnNode, startCluster, stopProcess, type Cluster } from './lib/cluster.js'
import { cpuSeconds } from './lib/proc.js'
import { numberArg, RESULTS_DIR, runStamp, writeResult } from './lib/result.js'
import { fmt, paced, summarise, type LatencySummary } from './lib/stats.js'
import type { WorkerCommand, WorkerEvent } from './group-worker.js'
import type { TalariaClient } from '../client/index.js'
import type { GroupId, UserId } from '../protocol/ids.js'

const settings = {
  members: numberArg('members', 1000),
  nodes: numberArg('nodes', 10),
  messages: numberArg('messages', 60),
  rate: numberArg('rate', 1),
  workers: numberArg('workers', 4),
  concurrency: numberArg('concurrency', 6),
  /** The sustained-rate step stops when p99 to the last member exceeds this. */
  stepP99LimitMs: 1000,
  /** Seconds of sending per rate step. */
  stepSeconds: numberArg('step-seconds', 8),
  /** Whole run, hard limit. */
  runLimitMs: numberArg('limit-seconds', 600) * 1000,
  nodeFlags: ['--max-requests-per-second', '100000', '--max-user-requests-per-second', '100000']
}
const TARGET_P99_MS = 100
const started = performance.now()
boundRun(settings.runLimitMs, 'group')
/** Soft deadline: phases stop here so partial figures are written before the hard limit. */
const softDeadline = started + settings.runLimitMs - 45_000
const left = (): number => Math.max(0, softDeadline - performance.now())
const now = (): number => performance.timeOrigin + performance.now()
const stamp = runStamp()
const log = (msg: string): void => { console.log(`[${((performance.now() - started) / 1000).toFixed(0).padStart(3)} s] ${msg}`) }

// ---- workers -----------------------------------------------------------------------------------

interface Worker {
  child: ChildProcess
  users: UserId[]
  connected: number
  failed: number
  firstError?: string
  ready: boolean
  joined: number
  /** Message index → receive time of this worker's last client, once all its clients have it. */
  complete: Map<number, number>
  pendingStats?: (rows: Array<[number, number, number]>) => void
}

function spawnWorker (w: number): Worker {
  const child = spawnNode(['--import', './scripts/register.js', 'bench/group-worker.ts'], { ipc: true })
  const worker: Worker = { child, users: [], connected: 0, failed: 0, ready: false, joined: 0, complete: new Map() }
  child.on('message', (e: WorkerEvent) => {
    if (e.t === 'progress') worker.connected = e.connected
    else if (e.t === 'connected') { worker.users = e.users; worker.connected = e.users.length; worker.failed = e.failed; if (e.firstError !== undefined) worker.firstError = e.firstError; worker.ready = true }
    else if (e.t === 'joined') worker.joined = e.count
    else if (e.t === 'complete') worker.complete.set(e.i, e.last)
    else if (e.t === 'stats') worker.pendingStats?.(e.rows)
    else if (e.t === 'error') { console.error(`worker ${w}: ${e.message}`) }
  })
  child.stdout?.resume()
  return worker
}

const command = (w: Worker, cmd: WorkerCommand): void => { if (w.child.connected) w.child.send(cmd) }

/** Polls `done` every 100 ms until it holds or `ms` have passed; true when it held. */
async function until (done: () => boolean, ms: number, progress?: () => void): Promise<boolean> {
  const end = performance.now() + Math.min(ms, left())
  let lastProgress = performance.now()
  while (!done()) {
    if (performance.now() >= end) return false
    await sleep(100)
    if (progress !== undefined && performance.now() - lastProgress > 5000) { lastProgress = performance.now(); progress() }
  }
  return true
}

async function stats (workers: Worker[], from: number, to: number): Promise<Array<Array<[number, number, number]>>> {
  return await Promise.all(workers.map(async (w) => await new Promise<Array<[number, number, number]>>((resolve) => {
    const timer = setTimeout(() => { resolve([]) }, 10_000)
    w.pendingStats = (rows) => { clearTimeout(timer); resolve(rows) }
    command(w, { t: 'stats', from, to })
  })))
}

// ---- one measured phase ------------------------------------------------------------------------

interface Phase {
  rate: number
  count: number
  sent: number
  sendFailures: number
  /** Messages every member got. */
  complete: number
  /** Deliveries missing: member × message pairs not received by the deadline. */
  shortfall: number
  latency: LatencySummary
  latencies: number[]
  /** Messages per second delivered to every member, first send to last complete. */
  deliveredPerSec: number
  /** Member deliveries per second (messages × members). */
  memberDeliveriesPerSec: number
  nodeCpuSeconds: number
  timedOut: boolean
}

let nextIndex = 0

async function phase (owner: TalariaClient, group: GroupId, workers: Worker[], cluster: Cluster, rate: number, count: number, expected: number, drainMs: number): Promise<Phase> {
  const first = nextIndex
  nextIndex += count
  const sentAt = new Map<number, number>()
  let sendFailures = 0
  const cpu0 = cluster.nodes.reduce((s, n) => s + cpuSeconds(n.pid), 0)
  const t0 = now()
  let sending = true
  const sends = paced(rate, count, (k) => {
    if (!sending) return
    const i = first + k
    sentAt.set(i, now())
    owner.sendGroup(group, payload(i)).catch(() => { sendFailures++ })
  })
  await Promise.race([sends, sleep(Math.max(1000, left()))])
  sending = false
  const allDone = (): boolean => workers.every((w) => { for (let i = first; i < first + count; i++) if (!w.complete.has(i)) return false; return true })
  const ok = await until(allDone, drainMs)
  const nodeCpuSeconds = cluster.nodes.reduce((s, n) => s + cpuSeconds(n.pid), 0) - cpu0
  const perWorker = await stats(workers, first, first + count)
  const latencies: number[] = []
  let complete = 0
  let shortfall = 0
  let lastComplete = t0
  for (let i = first; i < first + count; i++) {
    let got = 0
    let last = 0
    for (const rows of perWorker) {
      const r = rows[i - first]
      if (r === undefined) continue
      got += r[1]
      last = Math.max(last, r[2])
    }
    shortfall += Math.max(0, expected - got)
    const sent = sentAt.get(i)
    if (got >= expected && sent !== undefined) {
      complete++
      latencies.push(last - sent)
      lastComplete = Math.max(lastComplete, last)
    }
  }
  const seconds = Math.max(0.001, (lastComplete - t0) / 1000)
  return {
    rate,
    count,
    sent: sentAt.size,
    sendFailures,
    complete,
    shortfall,
    latency: summarise(latencies),
    latencies,
    deliveredPerSec: complete / seconds,
    memberDeliveriesPerSec: complete * expected / seconds,
    nodeCpuSeconds,
    timedOut: !ok
  }
}

const row = (p: Phase): string => `| ${fmt(p.rate)} | ${p.sent}/${p.count} | ${p.complete} | ${fmt(p.shortfall)} | ${fmt(p.latency.p50, 0)} | ${fmt(p.latency.p90, 0)} | ${fmt(p.latency.p99, 0)} | ${fmt(p.latency.max, 0)} | ${fmt(p.deliveredPerSec, 1)} | ${fmt(p.memberDeliveriesPerSec)} | ${fmt(1000 * p.nodeCpuSeconds / Math.max(1, p.complete), 1)} |`
const strip = (p: Phase): Omit<Phase, 'latencies'> => { const { latencies: _, ...rest } = p; return rest }

// ---- the run -----------------------------------------------------------------------------------

const figures: Record<string, unknown> = { completed: false }
const timings: Record<string, number> = {}
figures.timingsSeconds = timings
let measured: Phase | undefined
const steps: Phase[] = []
let failure: string | undefined
let cluster: Cluster | undefined
const workers: Worker[] = []
let owner: TalariaClient | undefined

try {
  log(`starting ${settings.nodes} nodes…`)
  let t = performance.now()
  cluster = await startCluster({ nodes: settings.nodes, flags: settings.nodeFlags })
  timings.nodes = (performance.now() - t) / 1000
  const urls = cluster.nodes.map((n) => n.url)

  // member clients (everyone but the owner) in worker processes, round-robin over the nodes
  t = performance.now()
  const memberClients = settings.members - 1
  const per = Math.ceil(memberClients / settings.workers)
  let offset = 1 // the owner is on node 0
  for (let w = 0; w < settings.workers; w++) {
    const count = Math.max(0, Math.min(per, memberClients - w * per))
    if (count === 0) break
    const worker = spawnWorker(w)
    workers.push(worker)
    command(worker, { t: 'start', urls, count, offset, localAddress: `127.0.0.${w + 2}`, concurrency: settings.concurrency })
    offset += count
  }
  owner = sdkClient(urls[0] ?? '', { sendTimeoutMs: 300_000, requestTimeoutMs: 60_000, autoDeliveredReceipts: false })
  owner.on('error', () => {})
  await owner.connect()
  log(`connecting ${fmt(memberClients)} member clients from ${workers.length} workers, ${settings.concurrency} at a time each…`)
  // connecting is DHT-bound (~70 kad RPCs per member: BENCHMARKS.md); keep 5 minutes for the rest
  const allReady = await until(() => workers.every((w) => w.ready), Math.max(300_000, left() - 300_000),
    () => { log(`  connected ${fmt(workers.reduce((s, w) => s + w.connected, 0))}/${fmt(memberClients)}`) })
  timings.connect = (performance.now() - t) / 1000
  const users = workers.flatMap((w) => w.users)
  const failedConnects = workers.reduce((s, w) => s + w.failed, 0)
  figures.connected = users.length
  /** Clients whose connect had been tried (in slices of 25 per worker) when the wait ended. */
  figures.connectAttemptedByDeadline = workers.reduce((s, w) => s + w.connected, 0)
  figures.connectFailures = failedConnects
  log(`connected ${fmt(users.length)} members (${fmt(figures.connectAttemptedByDeadline as number)} attempted) in ${fmt(timings.connect, 1)} s (${failedConnects} failed${workers.find((w) => w.firstError !== undefined)?.firstError !== undefined ? `, first: ${workers.find((w) => w.firstError !== undefined)?.firstError}` : ''})`)
  if (!allReady) throw new Error('member clients did not all connect in time')

  // the group
  t = performance.now()
  const group = await Promise.race([
    owner.createGroup({ name: 'bench', members: users }),
    // the owner's invitation to each member is a 1:1 session (DHT lookups): keep 3 minutes to measure
    sleep(Math.max(300_000, left() - 180_000)).then(() => { throw new Error('createGroup did not finish in time') })
  ])
  timings.createGroup = (performance.now() - t) / 1000
  log(`group created with ${fmt(users.length + 1)} members in ${fmt(timings.createGroup, 1)} s; waiting for every member to see all of them…`)
  t = performance.now()
  const total = users.length + 1
  for (const w of workers) command(w, { t: 'watch', group, members: total })
  const allJoined = await until(() => workers.every((w) => w.joined === w.users.length), 180_000,
    () => { log(`  members with the full group: ${fmt(workers.reduce((s, w) => s + w.joined, 0))}/${fmt(users.length)}`) })
  timings.membership = (performance.now() - t) / 1000
  figures.membersWithFullView = workers.reduce((s, w) => s + w.joined, 0)
  log(`${fmt(figures.membersWithFullView as number)}/${fmt(users.length)} members see ${total} members (${fmt(timings.membership, 1)} s)`)
  if (!allJoined) throw new Error('not every member saw the whole group in time')

  // warm-up: the first message reaches every member once keys and topic subscriptions are in place
  t = performance.now()
  // the sender key goes to every member over 1:1 (a location lookup per device once the cache has
  // expired): keep 2 minutes to measure
  const warm = await phase(owner, group, workers, cluster, 1, 1, users.length, Math.max(240_000, left() - 120_000))
  timings.warmUp = (performance.now() - t) / 1000
  figures.warmUp = strip(warm)
  log(`warm-up (sender key to ${fmt(users.length)} devices + first message): ${fmt(timings.warmUp, 1)} s, ${warm.complete}/1 complete, shortfall ${warm.shortfall}`)
  if (warm.complete !== 1) throw new Error('the warm-up message did not reach every member')

  // the measured run
  log(`sending ${settings.messages} messages at ${settings.rate}/s…`)
  measured = await phase(owner, group, workers, cluster, settings.rate, settings.messages, users.length, 60_000)
  figures.measured = strip(measured)
  log(`measured: ${measured.complete}/${measured.count} to every member, p50 ${fmt(measured.latency.p50, 0)} ms, p99 ${fmt(measured.latency.p99, 0)} ms, shortfall ${measured.shortfall}`)

  // sustained rate: double until p99 to the last member > 1 s or a delivery falls short
  let rate = settings.rate * 2
  while (left() > 60_000) {
    const count = Math.max(20, Math.round(rate * settings.stepSeconds))
    const p = await phase(owner, group, workers, cluster, rate, count, users.length, 30_000)
    steps.push(p)
    log(`step ${fmt(rate)}/s: ${p.complete}/${p.count} complete, p99 ${fmt(p.latency.p99, 0)} ms, shortfall ${fmt(p.shortfall)}, ${fmt(p.deliveredPerSec, 1)} msg/s to every member`)
    if (p.shortfall > 0 || p.sent < p.count || !(p.latency.p99 <= settings.stepP99LimitMs)) break
    rate *= 2
  }
  figures.completed = true
} catch (err) {
  failure = (err as Error).message
  console.error(`bench: ${failure}; writing partial figures`)
} finally {
  await owner?.close().catch(() => {})
  for (const w of workers) command(w, { t: 'close' })
  await Promise.all(workers.map(async (w) => { await stopProcess(w.child, 8000) }))
  await cluster?.stop()
}

const held = [measured, ...steps].filter((p): p is Phase => p !== undefined && p.shortfall === 0 && p.sent === p.count && p.latency.p99 <= settings.stepP99LimitMs)
const sustained = held.length === 0 ? undefined : held.reduce((a, b) => (b.rate > a.rate ? b : a))
if (failure !== undefined) figures.failure = failure
figures.steps = steps.map(strip)
figures.sustainedRate = sustained?.rate ?? null
figures.sustainedDeliveredPerSec = sustained?.deliveredPerSec ?? null
figures.target = { p99Ms: TARGET_P99_MS, met: measured !== undefined && measured.shortfall === 0 && measured.latency.p99 <= TARGET_P99_MS }
figures.loadAverageAtEnd = loadavg()
figures.runSeconds = (performance.now() - started) / 1000

console.log(`\ngroup of ${fmt(settings.members)} over ${settings.nodes} nodes, ${workers.length} client worker processes; setup: nodes ${fmt(timings.nodes ?? NaN, 1)} s, connect ${fmt(timings.connect ?? NaN, 1)} s, createGroup ${fmt(timings.createGroup ?? NaN, 1)} s, membership ${fmt(timings.membership ?? NaN, 1)} s, warm-up ${fmt(timings.warmUp ?? NaN, 1)} s\n`)
console.log('| rate (msg/s) | sent | to every member | missing deliveries | p50 (ms) | p90 (ms) | p99 (ms) | max (ms) | msg/s to all | member deliveries/s | node CPU ms per message |')
console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
for (const p of [measured, ...steps]) if (p !== undefined) console.log(row(p))
console.log(`\nsustained: ${sustained === undefined ? 'no rate held' : `${fmt(sustained.rate)} msg/s offered, ${fmt(sustained.deliveredPerSec, 1)} msg/s to all ${fmt(settings.members)} members`}; target p99 ≤ ${TARGET_P99_MS} ms at ${settings.rate}/s: ${(figures.target as { met: boolean }).met ? 'met' : 'NOT met'}${failure !== undefined ? `; run failed: ${failure}` : ''}`)

let chart: string | undefined
if (measured !== undefined && measured.latencies.length > 0) {
  chart = join(RESULTS_DIR, `group-${stamp}.png`)
  await writeChart(chart, {
    title: `Group fan-out to the last of ${fmt(settings.members)} members, ${settings.nodes} nodes, ${settings.rate} msg/s`,
    x: { label: 'send call → last member\'s groupMessage event (ms)', log: true },
    y: { label: 'fraction of messages', min: 0, max: 1 },
    series: [{ name: `${fmt(settings.members)} members, ${settings.nodes} nodes`, points: cdfPoints(measured.latencies.map((l) => Math.max(0.1, l))) }]
  }).catch((err: unknown) => { console.error(`chart: ${(err as Error).message}`); chart = undefined })
}
const file = await writeResult('group', stamp, { ...settings, targetP99Ms: TARGET_P99_MS }, figures)
console.log(`\nwrote ${file}${chart !== undefined ? `\nwrote ${chart}` : ''}`)
process.exit(failure === undefined ? 0 : 1)
