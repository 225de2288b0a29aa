/**
 * A mesh of real node processes on 127.0.0.1 for benchmarks: each node is a `talaria start` process
 * (or, when a scenario needs a setting the CLI does not expose, `bench/lib/node-host.ts`, which
 * runs the same `createNode` with extra options) with its own temp data dir. Nodes start in waves,
 * each joining through the first node and the one before it; readiness is read from the banner
 * on stdout. Stopping sends SIGINT, then SIGKILL after a deadline, and removes the data dirs —
 * also when the bench itself is interrupted or throws (see {@link track}).
 *
 * Scenarios (latency, throughput, dht, connections, and later group) build on this file and on
 * `clients.ts`; a new scenario is one file under bench/ plus a line in bench/index.ts.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** Repository root. */
export const ROOT = fileURLToPath(new URL('../..', import.meta.url))
/** Time a node has to print its banner. */
export const DEFAULT_START_TIMEOUT_MS = 60_000
/** Time a node has to exit after SIGINT before it is killed. */
export const DEFAULT_STOP_DEADLINE_MS = 5_000
/** Nodes started at once. */
export const DEFAULT_WAVE_SIZE = 5
/**
 * Extra Node flags for every node process, e.g.
 * BENCH_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof'.
 */
export const NODE_ARGS = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter((a) => a.length > 0)

// ---- cleanup of everything a bench started, whatever way it ends -------------------------------

const children = new Set<ChildProcess>()
const dirs = new Set<string>()
let hooked = false

function killAllNow (): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
  dirs.clear()
}

/**
 * Registers a child process (and optionally a temp dir) to be killed (removed) if the bench exits
 * before it stops them itself: on exit, SIGINT, SIGTERM or an uncaught error.
 */
export function track (child?: ChildProcess, dir?: string): void {
  if (child !== undefined) {
    children.add(child)
    child.once('exit', () => { children.delete(child) })
  }
  if (dir !== undefined) dirs.add(dir)
  if (hooked) return
  hooked = true
  process.once('exit', killAllNow)
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      process.stderr.write(`\nbench: ${sig}, stopping every process it started\n`)
      killAllNow()
      process.exit(130)
    })
  }
}

/** Forgets a temp dir removed by its owner. */
export function untrack (dir: string): void { dirs.delete(dir) }

/** Makes a temp dir removed at exit unless removed before. */
export function tempDir (prefix = 'talaria-bench-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  track(undefined, dir)
  return dir
}

/**
 * Ends the bench with an error after `ms` whatever it is doing, so every run is bounded in time.
 * The exit hook then kills the processes it started.
 */
export function boundRun (ms: number, what: string): void {
  setTimeout(() => {
    process.stderr.write(`bench: ${what} did not finish within ${Math.round(ms / 1000)} s, giving up\n`)
    process.exit(1)
  }, ms).unref()
}

/**
 * Spawns `node <args>` from the repository root with the open-file soft limit raised to the hard
 * limit (a shell `ulimit -n`), so processes holding many sockets get every descriptor allowed.
 */
export function spawnNode (args: string[], opts: { stdin?: 'ignore' | 'pipe', ipc?: boolean, env?: NodeJS.ProcessEnv } = {}): ChildProcess {
  const child = spawn('bash', ['-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"', 'bash', process.execPath, ...args], {
    cwd: ROOT,
    stdio: [opts.stdin ?? 'ignore', 'pipe', 'inherit', ...(opts.ipc === true ? ['ipc' as const] : [])],
    env: opts.env ?? process.env
  })
  track(child)
  return child
}

// ---- one node --------------------------------------------------------------------------------

/** A running node process. */
export interface ClusterNode {
  index: number
  child: ChildProcess
  pid: number
  peerId: string
  /** libp2p multiaddr on 127.0.0.1, with /p2p/. */
  addr: string
  /** Client gateway URL, ws://127.0.0.1:<port>/v1. */
  url: string
  dataDir: string
}

/** How to start one node. */
export interface NodeSpawnInit {
  dataDir: string
  bootstrap?: string[]
  /** Extra `talaria start` flags, e.g. ['--max-requests-per-second', '10000']. */
  flags?: string[]
  /**
   * Run `bench/lib/node-host.ts` with these `createNode` options (JSON) instead of `talaria start`,
   * for settings the CLI does not expose (e.g. the gateway's total connection cap).
   */
  hostInit?: Record<string, unknown>
  startTimeoutMs?: number
}

/** Starts one node process and resolves when its banner says it is ready. */
export async function startNode (index: number, init: NodeSpawnInit): Promise<ClusterNode> {
  const common = ['--import', './scripts/register.js']
  let args: string[]
  if (init.hostInit === undefined) {
    args = [...NODE_ARGS, 'bin/talaria.js', 'start', '--data-dir', init.dataDir, '--listen', '/ip4/127.0.0.1/tcp/0',
      '--http-host', '127.0.0.1', '--http-port', '0', '--log-level', 'warn', ...(init.flags ?? [])]
    for (const b of init.bootstrap ?? []) args.push('--bootstrap', b)
  } else {
    const hostInit = { ...init.hostInit, dataDir: init.dataDir, bootstrap: init.bootstrap ?? [] }
    args = [...NODE_ARGS, ...common, 'bench/lib/node-host.ts', JSON.stringify(hostInit)]
  }
  const child = spawnNode(args)
  let out = ''
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`node ${index} did not start within the deadline: ${out}`)) }, init.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS)
    const onData = (d: Buffer): void => {
      out += d.toString()
      if (!out.includes('Press Ctrl-C')) return
      const http = /http\s+(http:\/\/\S+)/.exec(out)?.[1]
      const addr = /listening (\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/\S+)/.exec(out)?.[1]
      const peerId = /peer id\s+(\S+)/.exec(out)?.[1]
      clearTimeout(timer)
      child.stdout?.off('data', onData)
      child.stdout?.resume()
      if (http === undefined || addr === undefined || peerId === undefined || child.pid === undefined) {
        reject(new Error(`node ${index}: unexpected banner: ${out}`))
        return
      }
      resolve({ index, child, pid: child.pid, peerId, addr, url: `${http.replace('http://', 'ws://')}/v1`, dataDir: init.dataDir })
    }
    child.stdout?.on('data', onData)
    child.once('exit', (code, signal) => { clearTimeout(timer); reject(new Error(`node ${index} exited (${String(code ?? signal)}): ${out}`)) })
  })
}

/** Stops a process: SIGINT, then SIGKILL when it has not exited by the deadline. */
export async function stopProcess (child: ChildProcess, deadlineMs = DEFAULT_STOP_DEADLINE_MS): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => { resolve() }))
  child.kill('SIGINT')
  const timer = setTimeout(() => { child.kill('SIGKILL') }, deadlineMs)
  await exited
  clearTimeout(timer)
}

// ---- a mesh ------------------------------------------------------------------------------------

/** Options of a mesh. */
export interface ClusterInit {
  nodes: number
  /** Extra `talaria start` flags for every node. */
  flags?: string[]
  /** See {@link NodeSpawnInit.hostInit}. */
  hostInit?: Record<string, unknown>
  /** Nodes started at once. Default {@link DEFAULT_WAVE_SIZE}. */
  waveSize?: number
  /** Pause between waves, in milliseconds, so 2 cores are not swamped. Default 500. */
  wavePauseMs?: number
  /** Reports progress (e.g. "started 25/50"). */
  onProgress?: (started: number) => void
}

/** A running mesh. */
export interface Cluster {
  readonly nodes: ClusterNode[]
  /** Nodes not killed. */
  alive(): ClusterNode[]
  /** SIGKILLs node `i` at once (no clean stop), as a crash would. */
  kill(i: number): Promise<void>
  /** Stops every node (SIGINT, then SIGKILL after the deadline) and removes the data dirs. */
  stop(): Promise<void>
}

/**
 * Starts `init.nodes` nodes. Node 0 starts alone; the rest start in waves and join through node 0
 * and the node started just before them (a bootstrap chain), so the mesh is connected from the start.
 */
export async function startCluster (init: ClusterInit): Promise<Cluster> {
  const dir = tempDir()
  const nodes: ClusterNode[] = []
  const killed = new Set<number>()
  const cluster: Cluster = {
    nodes,
    alive: () => nodes.filter((n) => !killed.has(n.index)),
    kill: async (i) => {
      const n = nodes[i]
      if (n === undefined || killed.has(i)) return
      killed.add(i)
      if (n.child.exitCode !== null) return
      const exited = new Promise<void>((resolve) => n.child.once('exit', () => { resolve() }))
      n.child.kill('SIGKILL')
      await exited
    },
    stop: async () => {
      await Promise.all(nodes.map(async (n) => { await stopProcess(n.child) }))
      rmSync(dir, { recursive: true, force: true })
      untrack(dir)
    }
  }
  try {
    const spawnOne = async (i: number): Promise<ClusterNode> => {
      const bootstrap = i === 0 ? [] : [...new Set([nodes[0]?.addr, nodes[Math.max(0, nodes.length - 1)]?.addr])].filter((a): a is string => a !== undefined)
      return await startNode(i, { dataDir: join(dir, `n${i}`), bootstrap, flags: init.flags, hostInit: init.hostInit })
    }
    nodes.push(await spawnOne(0))
    init.onProgress?.(1)
    const wave = init.waveSize ?? DEFAULT_WAVE_SIZE
    for (let i = 1; i < init.nodes; i += wave) {
      const batch = await Promise.all(Array.from({ length: Math.min(wave, init.nodes - i) }, async (_, k) => await spawnOne(i + k)))
      nodes.push(...batch)
      init.onProgress?.(nodes.length)
      if (nodes.length < init.nodes) await sleep(init.wavePauseMs ?? 500)
    }
    return cluster
  } catch (err) {
    await cluster.stop()
    throw err
  }
}

/** Resolves after `ms`. */
export async function sleep (ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms))
}
