/**
 * Group transport: gossipsub against direct fan-out over one long-lived stream per receiving node,
 * for N = 1, 2, 4, 8 receiving nodes and one sending node, on real libp2p nodes in separate
 * processes on 127.0.0.1 (this file run with `--worker`).
 *
 * Every process assembles libp2p as a Talaria node does (`createTalariaLibp2p` of node/libp2p.ts:
 * TCP, Noise, Yamux, kad-dht, identify, ping, and gossipsub with StrictNoSign, content-derived
 * message ids and Talaria's heartbeat and scoring), and drives gossipsub through the node's own
 * `DefaultPubSub` with an accepting topic validator, as the group service does. The group's own
 * validation (signatures, membership) is left out: it costs the same on either transport. Every
 * node subscribes, the sender too (its user is a member). Direct fan-out writes each message as
 * one length-prefixed frame (`frame` of node/messaging/wire.ts) on one long-lived stream per
 * receiving node, as the deliver link does, without its acks (gossipsub has none either).
 *
 * Per N and transport:
 * - latency from the send call to the LAST receiving node, at a fixed rate; send and receive times
 *   are read on the host's monotonic clock (`process.hrtime`), which every process shares;
 * - CPU per message of the sender and of all receiving nodes together, from /proc over the run,
 *   gross and net of each process's idle CPU (measured once, before any traffic);
 * - the highest offered rate held (every message reaches every receiver, p99 under the bound, and
 *   the sender keeps the pace), stepped up from the lowest rate and stopped at the first miss.
 *
 * Topology `full` (default): every node connects to every other, as Talaria nodes sharing a group
 * do, so gossipsub relays between receivers (its real duplicate cost). `star`: receivers connect
 * to the sender only.
 *
 * Run: npm run bench -- transport [--receivers=1,2,4,8] [--rate=200] [--count=1000] [--bytes=1024]
 *   [--rates=250,500,1000,2000,4000,8000] [--step-seconds=1.5] [--p99-ms=50] [--topology=full]
 */
import type { ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Stream } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { MemoryDatastore } from 'datastore-core'
import { pino } from 'pino'
import { createTalariaLibp2p, gossipPeerScore, GOSSIPSUB_HEARTBEAT_MS, setTopicScoring } from '../node/libp2p.js'
import { MAX_INBOUND_DELIVER_STREAMS } from '../node/messaging/deliver-link.js'
import { readFrames } from '../node/messaging/streams.js'
import { frame } from '../node/messaging/wire.js'
import {
  DEFAULT_BOOTSTRAP_DIAL_DELAY_MS,
  DEFAULT_INBOUND_CONNECTION_THRESHOLD,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_INCOMING_PENDING_CONNECTIONS
} from '../node/options.js'
import { DefaultPubSub } from '../node/pubsub.js'
import type { PubSubHandler } from '../node/types.js'
import { writeChart } from './lib/chart.js'
import { boundRun, sleep, spawnNode, stopProcess } from './lib/cluster.js'
import { cpuSeconds } from './lib/proc.js'
import { numberArg, RESULTS_DIR, runStamp, writeResult } from './lib/result.js'
import { fmt, paced, summarise, type LatencySummary } from './lib/stats.js'

const WORKER_FLAG = '--worker'
/** Protocol of the direct fan-out stream. */
const FANOUT_PROTOCOL = '/talaria-bench/fanout/1.0.0'
/** Message header: run (u32), sequence (u32), send time in ms on the monotonic clock (f64). */
const HEADER_BYTES = 16

type Transport = 'gossipsub' | 'direct'
const TRANSPORTS: readonly Transport[] = ['gossipsub', 'direct']

/** Milliseconds on CLOCK_MONOTONIC, one clock for every process of the host. */
const clockMs = (): number => Number(process.hrtime.bigint()) / 1e6

/** What the parent asks a worker. */
type Command =
  | { t: 'dial', addrs: string[] }
  | { t: 'open', addrs: string[] }
  | { t: 'subscribe', topic: string }
  | { t: 'unsubscribe', topic: string }
  | { t: 'topic-peers', topic: string }
  | { t: 'expect', run: number, count: number }
  | { t: 'report', run: number }
  | { t: 'send', run: number, transport: Transport, topic: string, receivers: number, rate: number, count: number, bytes: number }

interface TopicPeers { subscribers: number, mesh: number }
interface SendReport { seconds: number, sendErrors: number, blockedWrites: number }
type Reply = { id: number, ok: true, value?: unknown } | { id: number, ok: false, error: string }
type WorkerEvent = { event: 'ready', addr: string } | { event: 'complete', run: number }

// ---- worker: one libp2p node assembled as Talaria's ------------------------------------------

async function worker (): Promise<void> {
  const libp2p = await createTalariaLibp2p({
    privateKey: await generateKeyPair('Ed25519'),
    datastore: new MemoryDatastore(),
    role: 'node',
    listen: ['/ip4/127.0.0.1/tcp/0'],
    announce: [],
    bootstrapList: [],
    bootstrapDialDelayMs: DEFAULT_BOOTSTRAP_DIAL_DELAY_MS,
    mdns: false,
    allowPrivateAddresses: true,
    maxConnections: DEFAULT_MAX_CONNECTIONS,
    inboundConnectionThreshold: DEFAULT_INBOUND_CONNECTION_THRESHOLD,
    maxIncomingPendingConnections: DEFAULT_MAX_INCOMING_PENDING_CONNECTIONS,
    version: 'bench'
  })
  await libp2p.start()
  const gossip = libp2p.services.pubsub
  const shutdown = new AbortController()
  const pubsub = new DefaultPubSub({
    logger: pino({ level: 'warn' }, pino.destination({ dest: 2, sync: true })),
    onSubscriptionChange: () => {},
    setTopicScoring: (topic, on) => { setTopicScoring(gossip, topic, on) },
    peerScore: (peerId) => gossipPeerScore(gossip, peerId)
  })
  pubsub.start(gossip, shutdown.signal)

  /** The run being received: latency of each sequence number, -1 until it arrives. */
  let run: { id: number, latencies: Float64Array, got: number } | undefined
  const arrive = (data: Uint8Array): void => {
    const at = clockMs()
    const r = run
    if (r === undefined || data.byteLength < HEADER_BYTES) return
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength)
    const seq = view.getUint32(4)
    if (view.getUint32(0) !== r.id || seq >= r.latencies.length || r.latencies[seq] !== -1) return
    r.latencies[seq] = at - view.getFloat64(8)
    if (++r.got === r.latencies.length) process.send?.({ event: 'complete', run: r.id } satisfies WorkerEvent)
  }
  const onTopic: PubSubHandler = (m) => { arrive(m.data) }
  await libp2p.handle(FANOUT_PROTOCOL, async (stream) => {
    try {
      for await (const body of readFrames(stream)) arrive(body)
    } catch {
      // the sender went away
    }
  }, { maxInboundStreams: MAX_INBOUND_DELIVER_STREAMS })

  let streams: Stream[] = []
  const send = async (cmd: Extract<Command, { t: 'send' }>): Promise<SendReport> => {
    const targets = streams.slice(0, cmd.receivers)
    const publishes: Array<Promise<unknown>> = []
    let sendErrors = 0
    let blockedWrites = 0
    const start = performance.now()
    await paced(cmd.rate, cmd.count, (seq) => {
      const data = new Uint8Array(cmd.bytes)
      const view = new DataView(data.buffer)
      view.setUint32(0, cmd.run)
      view.setUint32(4, seq)
      view.setFloat64(8, clockMs())
      if (cmd.transport === 'gossipsub') {
        publishes.push(pubsub.publish(cmd.topic, data).catch(() => { sendErrors++ }))
        return
      }
      const framed = frame(data)
      for (const s of targets) {
        try {
          if (!s.send(framed)) blockedWrites++
        } catch {
          sendErrors++
        }
      }
    })
    const seconds = (performance.now() - start) / 1000
    await Promise.all(publishes)
    return { seconds, sendErrors, blockedWrites }
  }

  const handle = async (cmd: Command): Promise<unknown> => {
    switch (cmd.t) {
      case 'dial':
        await Promise.all(cmd.addrs.map(async (a) => await libp2p.dial(multiaddr(a))))
        return undefined
      case 'open':
        streams = await Promise.all(cmd.addrs.map(async (a) => await libp2p.dialProtocol(multiaddr(a), FANOUT_PROTOCOL)))
        return undefined
      case 'subscribe':
        pubsub.setValidator(cmd.topic, async () => 'accept' as const)
        pubsub.subscribe(cmd.topic, onTopic)
        return undefined
      case 'unsubscribe':
        pubsub.unsubscribe(cmd.topic)
        pubsub.removeValidator(cmd.topic)
        return undefined
      case 'topic-peers':
        return {
          subscribers: pubsub.getSubscribers(cmd.topic).length,
          mesh: (gossip as unknown as { getMeshPeers: (topic: string) => string[] }).getMeshPeers(cmd.topic).length
        } satisfies TopicPeers
      case 'expect':
        run = { id: cmd.run, latencies: new Float64Array(cmd.count).fill(-1), got: 0 }
        return undefined
      case 'report': {
        const r = run
        run = undefined
        return r?.id === cmd.run ? Array.from(r.latencies) : []
      }
      case 'send':
        return await send(cmd)
    }
  }
  process.on('message', (req: Command & { id: number }) => {
    void handle(req).then(
      (value) => { process.send?.({ id: req.id, ok: true, value } satisfies Reply) },
      (err: unknown) => { process.send?.({ id: req.id, ok: false, error: String(err) } satisfies Reply) }
    )
  })
  let stopping = false
  const stop = (): void => {
    if (stopping) return
    stopping = true
    setTimeout(() => process.exit(1), 5_000).unref()
    shutdown.abort()
    pubsub.stop()
    for (const s of streams) s.abort(new Error('bench over'))
    void Promise.resolve(libp2p.stop()).finally(() => process.exit(0))
  }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
  process.on('disconnect', stop)
  process.send?.({ event: 'ready', addr: libp2p.getMultiaddrs()[0]?.toString() ?? '' } satisfies WorkerEvent)
}

// ---- parent: drives the workers --------------------------------------------------------------

/** A worker process seen from the parent: request/response over IPC, completion events. */
class Peer {
  private nextId = 1
  private readonly calls = new Map<number, { resolve: (v: unknown) => void, reject: (e: Error) => void }>()
  private readonly completed = new Set<number>()
  private readonly waiting = new Map<number, () => void>()

  private constructor (readonly child: ChildProcess, readonly pid: number, readonly addr: string) {
    child.on('message', (m: Reply | WorkerEvent) => {
      if ('event' in m) {
        if (m.event !== 'complete') return
        this.completed.add(m.run)
        this.waiting.get(m.run)?.()
        return
      }
      const call = this.calls.get(m.id)
      this.calls.delete(m.id)
      if (m.ok) call?.resolve(m.value)
      else call?.reject(new Error(m.error))
    })
  }

  static async start (timeoutMs: number): Promise<Peer> {
    const child = spawnNode(['--import', './scripts/register.js', 'bench/transport.ts', WORKER_FLAG], { ipc: true })
    child.stdout?.resume()
    const addr = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error('a worker did not start in time')) }, timeoutMs)
      child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`a worker exited (${String(code)})`)) })
      child.once('message', (m: WorkerEvent) => {
        clearTimeout(timer)
        if (m.event === 'ready') resolve(m.addr)
        else reject(new Error('unexpected first message of a worker'))
      })
    })
    if (child.pid === undefined) throw new Error('worker without pid')
    return new Peer(child, child.pid, addr)
  }

  async call<T = undefined> (cmd: Command, timeoutMs = 30_000): Promise<T> {
    const id = this.nextId++
    return await new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.calls.delete(id)
        reject(new Error(`worker ${this.pid}: ${cmd.t} timed out`))
      }, timeoutMs)
      this.calls.set(id, {
        resolve: (v) => { clearTimeout(timer); resolve(v as T) },
        reject: (e) => { clearTimeout(timer); reject(e) }
      })
      this.child.send({ ...cmd, id })
    })
  }

  /** Resolves once this worker has received every message of `run`. */
  async completion (run: number): Promise<void> {
    if (this.completed.has(run)) return
    await new Promise<void>((resolve) => this.waiting.set(run, resolve))
    this.waiting.delete(run)
  }
}

/** `p`, or undefined once `ms` have passed. */
async function within<T> (p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const late = new Promise<undefined>((resolve) => { timer = setTimeout(() => { resolve(undefined) }, ms) })
  try {
    return await Promise.race([p, late])
  } finally {
    clearTimeout(timer)
  }
}

/** CPU of a run, in seconds and in microseconds per message, gross and net of idle CPU. */
interface CpuFigures {
  senderSeconds: number
  receiversSeconds: number
  senderUsPerMsg: number
  receiversUsPerMsg: number
  senderNetUsPerMsg: number
  receiversNetUsPerMsg: number
}

/** Figures of one run of `count` messages at `rate`. */
interface RunFigures {
  rate: number
  count: number
  /** Messages every receiver got. */
  delivered: number
  lost: number
  /** Send call to the last receiver, over the messages every receiver got. */
  latency: LatencySummary
  /** Rate the sender achieved (count / time of its sending loop). */
  achievedRate: number
  /** CPU window: from the first send to the last arrival (or the drain deadline). */
  windowSeconds: number
  /** Every receiver had every message before the drain deadline. */
  completedInWindow: boolean
  cpu: CpuFigures
  sendErrors: number
  blockedWrites: number
  held: boolean
}

interface TransportFigures {
  transport: Transport
  receivers: number
  /** Gossipsub only: topic subscribers and mesh peers the sender saw before the runs. */
  topic?: TopicPeers
  fixed: RunFigures
  steps: RunFigures[]
  /** Highest offered rate held, 0 when the lowest step was not held. */
  sustainedRate: number
  /** The highest step was held: the sustained rate is a lower bound. */
  sustainedAtTopStep: boolean
  /** True when the steps stopped because the run's time budget was spent. */
  stepsCut: boolean
}

async function parent (): Promise<void> {
  const listArg = (name: string, fallback: string): number[] =>
    (process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback).split(',').map(Number)
  const topologyArg = process.argv.find((a) => a.startsWith('--topology='))?.slice('--topology='.length) ?? 'full'
  if (topologyArg !== 'full' && topologyArg !== 'star') throw new Error('--topology: full or star')
  const settings = {
    receivers: listArg('receivers', '1,2,4,8'),
    rate: numberArg('rate', 200),
    count: numberArg('count', 1000),
    bytes: numberArg('bytes', 1024),
    rates: listArg('rates', '250,500,1000,2000,4000,8000'),
    stepSeconds: numberArg('step-seconds', 1.5),
    p99BoundMs: numberArg('p99-ms', 50),
    /** A step is held only when the sender achieved this share of the offered rate. */
    minAchievedShare: 0.9,
    topology: topologyArg,
    warmUpCount: numberArg('warm-up-count', 300),
    idleSeconds: numberArg('idle-seconds', 5),
    /** How long the last arrivals may follow the last send within the CPU window. */
    drainMs: 3_000,
    /** How much longer a run waits for its last arrivals (outside the CPU window) before it counts the rest lost. */
    settleMs: 7_000,
    /** No further rate steps start once the run is this old (the whole run is bounded at 5 min). */
    stepBudgetMs: 3.5 * 60_000,
    startTimeoutMs: 90_000
  }
  if (settings.bytes < HEADER_BYTES) throw new Error(`--bytes: at least ${HEADER_BYTES}`)
  const maxN = Math.max(...settings.receivers)
  const began = performance.now()
  boundRun(5 * 60_000 - 10_000, 'transport')
  const stamp = runStamp()
  const log = (line: string): void => { console.log(`[${fmt((performance.now() - began) / 1000).padStart(3)} s] ${line}`) }

  const peers = await Promise.all(Array.from({ length: maxN + 1 }, async () => await Peer.start(settings.startTimeoutMs)))
  const [sender, ...all] = peers as [Peer, ...Peer[]]
  try {
    log(`started 1 sender + ${maxN} receiving nodes`)
    await Promise.all(all.map(async (p, i) => {
      await p.call({ t: 'dial', addrs: settings.topology === 'full' ? peers.slice(0, i + 1).map((q) => q.addr) : [sender.addr] })
    }))
    await sender.call({ t: 'open', addrs: all.map((p) => p.addr) })
    // let identify, the DHT's first queries and gossipsub's streams settle before measuring
    await sleep(3_000)
    const idle0 = peers.map((p) => cpuSeconds(p.pid))
    await sleep(settings.idleSeconds * 1000)
    const idlePerSecond = peers.map((p, i) => (cpuSeconds(p.pid) - (idle0[i] ?? 0)) / settings.idleSeconds)
    log(`idle CPU per process (s/s): ${idlePerSecond.map((c) => fmt(c, 3)).join(', ')}`)

    let runs = 0
    const measure = async (transport: Transport, topic: string, n: number, rate: number, count: number): Promise<RunFigures> => {
      const run = ++runs
      const receivers = all.slice(0, n)
      await Promise.all(receivers.map(async (p) => { await p.call({ t: 'expect', run, count }) }))
      const done = Promise.all(receivers.map(async (p) => { await p.completion(run) }))
      const involved = [sender, ...receivers]
      const cpu0 = involved.map((p) => cpuSeconds(p.pid))
      const t0 = performance.now()
      const sent = await sender.call<SendReport>({ t: 'send', run, transport, topic, receivers: n, rate, count, bytes: settings.bytes }, (count / rate) * 1000 + 60_000)
      const completedInWindow = (await within(done.then(() => true), settings.drainMs)) === true
      const windowSeconds = (performance.now() - t0) / 1000
      const cpu = involved.map((p, i) => cpuSeconds(p.pid) - (cpu0[i] ?? 0))
      const idle = involved.map((p) => (idlePerSecond[peers.indexOf(p)] ?? 0) * windowSeconds)
      // a backlog (an overloaded step) drains before the next run, and late arrivals still count
      await within(done, settings.settleMs)
      const reports = await Promise.all(receivers.map(async (p) => await p.call<number[]>({ t: 'report', run })))
      const last: number[] = []
      for (let i = 0; i < count; i++) {
        let worst = 0
        for (const r of reports) {
          const v = r[i] ?? -1
          if (v < 0) { worst = -1; break }
          worst = Math.max(worst, v)
        }
        if (worst >= 0) last.push(worst)
      }
      const senderSeconds = cpu[0] ?? 0
      const receiversSeconds = cpu.slice(1).reduce((a, b) => a + b, 0)
      const senderIdle = idle[0] ?? 0
      const receiversIdle = idle.slice(1).reduce((a, b) => a + b, 0)
      const latency = summarise(last)
      const achievedRate = count / Math.max(sent.seconds, count / rate)
      return {
        rate,
        count,
        delivered: last.length,
        lost: count - last.length,
        latency,
        achievedRate,
        windowSeconds,
        completedInWindow,
        cpu: {
          senderSeconds,
          receiversSeconds,
          senderUsPerMsg: (senderSeconds / count) * 1e6,
          receiversUsPerMsg: (receiversSeconds / count) * 1e6,
          senderNetUsPerMsg: ((senderSeconds - senderIdle) / count) * 1e6,
          receiversNetUsPerMsg: ((receiversSeconds - receiversIdle) / count) * 1e6
        },
        sendErrors: sent.sendErrors,
        blockedWrites: sent.blockedWrites,
        held: last.length === count && sent.sendErrors === 0 && latency.p99 <= settings.p99BoundMs && achievedRate >= settings.minAchievedShare * rate
      }
    }

    /** Subscribes the sender and the first `n` receivers to a fresh topic; waits for the mesh. */
    const joinTopic = async (n: number, name: string): Promise<{ topic: string, peers: TopicPeers }> => {
      const topic = `/talaria-bench/transport/${name}`
      await Promise.all([sender, ...all.slice(0, n)].map(async (p) => { await p.call({ t: 'subscribe', topic }) }))
      let seen: TopicPeers = { subscribers: 0, mesh: 0 }
      for (let i = 0; i < 150 && seen.subscribers < n; i++) {
        await sleep(100)
        seen = await sender.call<TopicPeers>({ t: 'topic-peers', topic })
      }
      if (seen.subscribers < n) throw new Error(`the sender saw ${seen.subscribers}/${n} subscribers of ${topic}`)
      // meshes graft on the next heartbeats
      await sleep(3 * GOSSIPSUB_HEARTBEAT_MS)
      return { topic, peers: await sender.call<TopicPeers>({ t: 'topic-peers', topic }) }
    }
    const leaveTopic = async (n: number, topic: string): Promise<void> => {
      await Promise.all([sender, ...all.slice(0, n)].map(async (p) => { await p.call({ t: 'unsubscribe', topic }) }))
    }

    // warm-up: every process runs both paths before anything is recorded
    {
      const { topic } = await joinTopic(maxN, 'warm-up')
      for (const t of TRANSPORTS) await measure(t, topic, maxN, settings.rate, settings.warmUpCount)
      await leaveTopic(maxN, topic)
      log('warmed up')
    }

    const results: TransportFigures[] = []
    for (const n of settings.receivers) {
      for (const transport of TRANSPORTS) {
        const joined = transport === 'gossipsub' ? await joinTopic(n, `n${n}`) : undefined
        const topic = joined?.topic ?? ''
        const fixed = await measure(transport, topic, n, settings.rate, settings.count)
        log(`N=${n} ${transport}: ${fmt(settings.rate)} msg/s, last receiver p50 ${fmt(fixed.latency.p50, 2)} ms, p99 ${fmt(fixed.latency.p99, 2)} ms, lost ${fixed.lost}; CPU µs/msg sender ${fmt(fixed.cpu.senderNetUsPerMsg)}, receivers ${fmt(fixed.cpu.receiversNetUsPerMsg)}`)
        const steps: RunFigures[] = []
        let stepsCut = false
        for (const rate of settings.rates) {
          if (performance.now() - began > settings.stepBudgetMs) { stepsCut = true; break }
          const step = await measure(transport, topic, n, rate, Math.round(rate * settings.stepSeconds))
          steps.push(step)
          log(`  step ${fmt(rate)} msg/s: achieved ${fmt(step.achievedRate)}, lost ${step.lost}, p99 ${fmt(step.latency.p99, 1)} ms, ${step.held ? 'held' : 'NOT held'}`)
          if (!step.held) break
        }
        if (joined !== undefined) await leaveTopic(n, topic)
        const sustainedRate = steps.filter((s) => s.held).reduce((a, s) => Math.max(a, s.rate), 0)
        const sustainedAtTopStep = sustainedRate > 0 && sustainedRate === settings.rates.at(-1)
        results.push({ transport, receivers: n, ...(joined !== undefined ? { topic: joined.peers } : {}), fixed, steps, sustainedRate, sustainedAtTopStep, stepsCut })
      }
    }

    // ---- report -------------------------------------------------------------------------------
    const topMost = (r: TransportFigures): RunFigures | undefined => r.steps.filter((s) => s.held).at(-1)
    console.log(`\n${fmt(settings.bytes)} B messages, one sender, ${settings.topology} topology; latency and CPU at ${fmt(settings.rate)} msg/s over ${fmt(settings.count)} messages (CPU net of idle); highest rate held: all delivered, p99 ≤ ${fmt(settings.p99BoundMs)} ms\n`)
    console.log('| receiving nodes | transport | p50 ms | p99 ms | lost | sender CPU µs/msg | receivers CPU µs/msg (sum) | highest msg/s held | sender / receivers µs/msg there |')
    console.log('| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
    for (const r of results) {
      const top = topMost(r)
      const there = top === undefined ? '–' : `${fmt(top.cpu.senderUsPerMsg)} / ${fmt(top.cpu.receiversUsPerMsg)}`
      const held = r.sustainedRate === 0 ? `< ${fmt(settings.rates[0] ?? 0)}` : `${r.sustainedAtTopStep || r.stepsCut ? '≥ ' : ''}${fmt(r.sustainedRate)}${r.stepsCut ? ' (steps cut)' : ''}`
      console.log(`| ${r.receivers} | ${r.transport} | ${fmt(r.fixed.latency.p50, 2)} | ${fmt(r.fixed.latency.p99, 2)} | ${r.fixed.lost} | ${fmt(r.fixed.cpu.senderNetUsPerMsg)} | ${fmt(r.fixed.cpu.receiversNetUsPerMsg)} | ${held} | ${there} |`)
    }

    const series = (pick: (f: RunFigures) => number, label: string): Array<{ name: string, points: Array<[number, number]> }> =>
      TRANSPORTS.map((t) => ({ name: `${t} ${label}`, points: results.filter((r) => r.transport === t).map((r): [number, number] => [r.receivers, pick(r.fixed)]) }))
    const latencyChart = join(RESULTS_DIR, `transport-${stamp}.png`)
    await writeChart(latencyChart, {
      title: `Send to last receiver at ${settings.rate} msg/s, ${settings.bytes} B`,
      x: { label: 'receiving nodes', min: 0 },
      y: { label: 'latency (ms)', min: 0 },
      series: [...series((f) => f.latency.p50, 'p50'), ...series((f) => f.latency.p99, 'p99')]
    })
    const cpuChart = join(RESULTS_DIR, `transport-cpu-${stamp}.png`)
    await writeChart(cpuChart, {
      title: `CPU per message (net of idle) at ${settings.rate} msg/s`,
      x: { label: 'receiving nodes', min: 0 },
      y: { label: 'CPU µs per message', min: 0 },
      series: [...series((f) => f.cpu.senderNetUsPerMsg, 'sender'), ...series((f) => f.cpu.receiversNetUsPerMsg, 'receivers')]
    })
    const file = await writeResult('transport', stamp, settings, { idleCpuPerSecond: { sender: idlePerSecond[0], receivers: idlePerSecond.slice(1) }, results })
    console.log(`\nwrote ${file}\nwrote ${latencyChart}\nwrote ${cpuChart}`)
  } finally {
    await Promise.all(peers.map(async (p) => { await stopProcess(p.child) }))
  }
}

if (process.argv.includes(WORKER_FLAG)) {
  await worker()
} else {
  await parent()
  process.exit(0)
}
