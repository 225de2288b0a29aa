/**
 * 1:1 messaging across two node processes, with E2E encryption and durable acks, beside the floor
 * (the same frames through a bare WebSocket relay) measured in the same run.
 *
 * Run: npm run bench -- messaging [--rate=500] [--latency-count=2500] [--throughput-count=10000]
 *
 * Two `talaria start` processes on 127.0.0.1 (temp data dirs, removed afterwards); the sender and
 * the receiver clients live in this process so one clock times send call → message event.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { WebSocket } from 'ws'
import { createClient, createIdentity, MemoryStore, type TalariaClient } from '../client/index.js'
import type { WebSocketConstructor } from '../client/index.js'
import { measureFloor } from './lib/floor.js'
import { fmt, paced, summarise, type LatencySummary } from './lib/stats.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

function arg (name: string, fallback: number): number {
  const hit = process.argv.find((a) => a.startsWith(`--${name}=`))
  return hit === undefined ? fallback : Number(hit.slice(name.length + 3))
}

const RATE = arg('rate', 500)
const LATENCY_COUNT = arg('latency-count', 2500)
const THROUGHPUT_COUNT = arg('throughput-count', 10_000)
const IN_FLIGHT = arg('in-flight', 512)
const TEXT_BYTES = 256
const RUN_TIMEOUT_MS = 120_000
/** Extra Node flags for the node processes, e.g. BENCH_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof'. */
const NODE_ARGS = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter((a) => a.length > 0)

interface NodeProc { child: ChildProcess, url: string, addr: string }

async function startNode (dataDir: string, bootstrap?: string): Promise<NodeProc> {
  const args = ['bin/talaria.js', 'start', '--data-dir', dataDir, '--listen', '/ip4/127.0.0.1/tcp/0',
    '--http-host', '127.0.0.1', '--http-port', '0', '--log-level', 'warn']
  if (bootstrap !== undefined) args.push('--bootstrap', bootstrap)
  const child = spawn(process.execPath, [...NODE_ARGS, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`node did not start: ${out}`)) }, 30_000)
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString()
      const http = /http\s+(http:\/\/\S+)/.exec(out)?.[1]
      const addr = /listening (\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/\S+)/.exec(out)?.[1]
      if (out.includes('Press Ctrl-C') && http !== undefined && addr !== undefined) {
        clearTimeout(timer)
        resolve({ child, url: `${http.replace('http://', 'ws://')}/v1`, addr })
      }
    })
    child.on('exit', (code) => { reject(new Error(`node exited ${String(code)}: ${out}`)) })
  })
}

async function stopNode (node: NodeProc): Promise<void> {
  if (node.child.exitCode !== null) return
  const exited = new Promise((resolve) => node.child.once('exit', resolve))
  node.child.kill('SIGINT')
  await exited
}

function client (url: string): TalariaClient {
  return createClient({ url, identity: createIdentity(), store: new MemoryStore(), WebSocket: WebSocket as unknown as WebSocketConstructor })
}

function payload (i: number): string {
  const head = `${i}:`
  return head + 'x'.repeat(TEXT_BYTES - head.length)
}

/** Sends `count` messages from `alice` to `bob`; `pace` decides when each send call is made. */
async function run (alice: TalariaClient, bob: TalariaClient, first: number, count: number,
  pace: (send: (i: number) => void) => Promise<void>): Promise<{ latency: LatencySummary, seconds: number, failures: number }> {
  const sentAt = new Map<number, number>()
  const latencies: number[] = []
  let failures = 0
  const start = performance.now()
  const received = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`only ${latencies.length} of ${count} messages arrived`)) }, RUN_TIMEOUT_MS)
    const off = bob.on('message', (m) => {
      const i = Number(m.text.slice(0, m.text.indexOf(':')))
      const t = sentAt.get(i)
      if (t === undefined) return
      sentAt.delete(i)
      latencies.push(performance.now() - t)
      if (latencies.length === count) {
        clearTimeout(timer)
        off()
        resolve()
      }
    })
  })
  await pace((k) => {
    const i = first + k
    sentAt.set(i, performance.now())
    alice.send(bob.userId, payload(i)).catch(() => { failures++ })
  })
  await received
  return { latency: summarise(latencies), seconds: (performance.now() - start) / 1000, failures }
}

async function main (): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'talaria-bench-'))
  const nodes: NodeProc[] = []
  const clients: TalariaClient[] = []
  try {
    nodes.push(await startNode(join(dir, 'n1')))
    nodes.push(await startNode(join(dir, 'n2'), nodes[0]?.addr))
    const [n1, n2] = nodes as [NodeProc, NodeProc]
    const bob = client(n2.url)
    const alice = client(n1.url)
    clients.push(bob, alice)
    await bob.connect()
    await alice.connect()

    // warm-up: sessions, caches, streams between the nodes
    await run(alice, bob, 0, 50, async (send) => { await paced(200, 50, send) })

    const latency = await run(alice, bob, 1_000_000, LATENCY_COUNT, async (send) => { await paced(RATE, LATENCY_COUNT, send) })

    // as fast as the node takes them durably, with a bounded window of messages not yet received
    let received = 0
    let sent = 0
    let sendOne: (i: number) => void = () => {}
    let allSent: () => void = () => {}
    const pump = (): void => {
      while (sent - received < IN_FLIGHT && sent < THROUGHPUT_COUNT) sendOne(sent++)
      if (sent >= THROUGHPUT_COUNT) allSent()
    }
    const offCount = bob.on('message', () => { received++; pump() })
    const throughput = await run(alice, bob, 2_000_000, THROUGHPUT_COUNT, async (send) => {
      sendOne = send
      await new Promise<void>((resolve) => { allSent = resolve; pump() })
    })
    offCount()

    for (const c of clients) await c.close()
    clients.length = 0
    for (const n of nodes) await stopNode(n)
    nodes.length = 0

    const floor = await measureFloor({ frameBytes: 480, rate: RATE, latencyCount: LATENCY_COUNT, throughputCount: THROUGHPUT_COUNT * 5, timeoutMs: RUN_TIMEOUT_MS })

    const rows = [
      ['latency at ' + fmt(RATE) + ' msg/s, p50 (ms)', latency.latency.p50, floor.latency.p50],
      ['latency at ' + fmt(RATE) + ' msg/s, p90 (ms)', latency.latency.p90, floor.latency.p90],
      ['latency at ' + fmt(RATE) + ' msg/s, p99 (ms)', latency.latency.p99, floor.latency.p99],
      ['latency at ' + fmt(RATE) + ' msg/s, p99.9 (ms)', latency.latency.p999, floor.latency.p999],
      ['sustained msg/s (window ' + fmt(IN_FLIGHT) + ')', THROUGHPUT_COUNT / throughput.seconds, floor.throughputPerSec],
      ['latency under max load, p50 (ms)', throughput.latency.p50, Number.NaN],
      ['latency under max load, p99 (ms)', throughput.latency.p99, Number.NaN]
    ] as const
    console.log(`1:1 messaging across 2 node processes, E2E + durable acks; Node ${process.version}, ${cpus().length} CPUs; ${TEXT_BYTES} B texts\n`)
    console.log('| what | Talaria | raw ws floor | ratio |')
    console.log('| --- | ---: | ---: | ---: |')
    for (const [what, ours, floorValue] of rows) {
      const digits = what.includes('ms') ? 2 : 0
      const ratio = Number.isNaN(floorValue) ? '' : `${fmt(what.includes('msg/s') && !what.includes('latency') ? floorValue / ours : ours / floorValue, 1)}×`
      console.log(`| ${what} | ${fmt(ours, digits)} | ${Number.isNaN(floorValue) ? '' : fmt(floorValue, digits)} | ${ratio} |`)
    }
    if (latency.failures + throughput.failures > 0) console.log(`\nsend failures: ${latency.failures + throughput.failures}`)

    const resultsDir = join(ROOT, 'bench', 'results')
    await mkdir(resultsDir, { recursive: true })
    const file = join(resultsDir, `messaging-${new Date().toISOString().replace(/[:.]/g, '-')}.json`)
    await writeFile(file, JSON.stringify({
      bench: 'messaging', date: new Date().toISOString(), node: process.version, cpus: cpus().length,
      params: { RATE, LATENCY_COUNT, THROUGHPUT_COUNT, IN_FLIGHT, TEXT_BYTES },
      talaria: { latency: latency.latency, throughput: { perSec: THROUGHPUT_COUNT / throughput.seconds, latency: throughput.latency } },
      floor
    }, null, 2) + '\n')
    console.log(`\nwrote ${file}`)
  } finally {
    for (const c of clients) await c.close().catch(() => {})
    for (const n of nodes) await stopNode(n)
    await rm(dir, { recursive: true, force: true })
  }
}

await main()
