/**
 * Result files: `bench/results/<scenario>-<iso time>.json` with the machine, the versions of the
 * networking stack, the settings and the figures of one run.
 */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { cpus, freemem, loadavg, release, totalmem, type as osType } from 'node:os'
import { join } from 'node:path'
import { ROOT } from './cluster.js'

/** Packages whose installed version each result records. */
export const RECORDED_PACKAGES = ['libp2p', '@libp2p/gossipsub', '@libp2p/kad-dht', '@libp2p/yamux', '@chainsafe/libp2p-noise', '@libp2p/tcp', 'ws', 'classic-level'] as const

/** Directory of result files and charts. */
export const RESULTS_DIR = join(ROOT, 'bench', 'results')

/** The machine a run happened on. */
export function machine (): Record<string, unknown> {
  const cpu = cpus()
  return {
    cpus: cpu.length,
    cpuModel: cpu[0]?.model,
    memoryBytes: totalmem(),
    freeMemoryBytes: freemem(),
    loadAverage: loadavg(),
    node: process.version,
    os: `${osType()} ${release()}`
  }
}

/** Installed versions of {@link RECORDED_PACKAGES} (read from node_modules, so what really ran). */
export function versions (): Record<string, string> {
  const out: Record<string, string> = {}
  for (const name of RECORDED_PACKAGES) {
    try {
      out[name] = (JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version
    } catch {
      out[name] = 'not installed'
    }
  }
  const own = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }
  out.talaria = own.version
  out.commit = process.env.BENCH_COMMIT ?? gitCommit()
  return out
}

/** The checkout's commit, marked `-dirty` when tracked files differ from it, or 'unknown'. */
function gitCommit (): string {
  try {
    const head = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() !== ''
    return dirty ? `${head}-dirty` : head
  } catch {
    return 'unknown'
  }
}

/** File-name stamp of one run: ISO time with ':' and '.' replaced. */
export function runStamp (date = new Date()): string {
  return date.toISOString().replace(/[:.]/g, '-')
}

/** Writes the result of one run and returns its path. */
export async function writeResult (scenario: string, stamp: string, settings: Record<string, unknown>, figures: Record<string, unknown>): Promise<string> {
  await mkdir(RESULTS_DIR, { recursive: true })
  const file = join(RESULTS_DIR, `${scenario}-${stamp}.json`)
  await writeFile(file, JSON.stringify({ scenario, date: new Date().toISOString(), machine: machine(), versions: versions(), settings, figures }, null, 2) + '\n')
  return file
}

/** Reads `--name=value` from argv as a number, or `fallback`. */
export function numberArg (name: string, fallback: number): number {
  const hit = process.argv.find((a) => a.startsWith(`--${name}=`))
  if (hit === undefined) return fallback
  const n = Number(hit.slice(name.length + 3))
  if (!Number.isFinite(n)) throw new Error(`--${name}: not a number`)
  return n
}
