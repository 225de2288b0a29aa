/**
 * Summarises V8 CPU profiles (`--cpu-prof`) of bench runs: the share of samples that were idle,
 * and the functions and packages with the most self time, to name a scenario's top costs.
 *
 * Also the inclusive time of Talaria's own functions (any sample with the function on its stack),
 * which names the operations behind library time (a stream write, a LevelDB batch).
 *
 * Run: node --import ./scripts/register.js bench/profile-summary.ts <file.cpuprofile>… [--top=25] [--last-seconds=N] [--skip-last-seconds=M]
 * `--last-seconds` keeps only the profile's last N seconds: a bench's measured phase comes last,
 * after a setup that would otherwise dominate. `--skip-last-seconds` drops the last M seconds
 * too, so the two cut out a window: a setup phase before the measured one.
 */
import { readFileSync } from 'node:fs'
import { numberArg } from './lib/result.js'

interface ProfileNode { id: number, callFrame: { functionName: string, url: string, lineNumber: number }, children?: number[] }
interface Profile { nodes: ProfileNode[], samples: number[], timeDeltas: number[] }

/** Where a script URL comes from: a package name, or a path inside the repository. */
function origin (url: string): string {
  const nm = url.lastIndexOf('node_modules/')
  if (nm >= 0) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/')
    return rest[0]?.startsWith('@') === true ? `${rest[0]}/${rest[1] ?? ''}` : rest[0] ?? url
  }
  if (url.startsWith('node:')) return url
  const repo = /\/(bench|client|node|protocol|storage|cli)\/(.*)$/.exec(url)
  return repo === null ? (url === '' ? '(native/vm)' : url) : `${repo[1] ?? ''}/${repo[2] ?? ''}`
}

const top = numberArg('top', 25)
const lastSeconds = numberArg('last-seconds', 0)
const skipLastSeconds = numberArg('skip-last-seconds', 0)
const OWN = /\/(client|node|protocol|storage)\//
for (const file of process.argv.slice(2).filter((a) => !a.startsWith('--'))) {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const selfUs = new Map<number, number>()
  const parent = new Map<number, number>()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const span = profile.timeDeltas.reduce((a, b) => a + b, 0)
  const from = lastSeconds > 0 ? span - lastSeconds * 1e6 : -Infinity
  const to = span - skipLastSeconds * 1e6
  const inclusive = new Map<string, number>()
  let at = 0
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0
    at += dt
    if (at < from || at > to) return
    selfUs.set(id, (selfUs.get(id) ?? 0) + dt)
    if (byId.get(id)?.callFrame.functionName === '(idle)') return
    const seen = new Set<string>()
    for (let n: number | undefined = id; n !== undefined; n = parent.get(n)) {
      const f = byId.get(n)?.callFrame
      if (f === undefined || !OWN.test(f.url) || f.url.includes('node_modules')) continue
      const key = `${f.functionName === '' ? '(anonymous)' : f.functionName} ${origin(f.url)}:${f.lineNumber + 1}`
      if (seen.has(key)) continue
      seen.add(key)
      inclusive.set(key, (inclusive.get(key) ?? 0) + dt)
    }
  })
  let total = 0
  let idle = 0
  const fns = new Map<string, number>()
  const origins = new Map<string, number>()
  for (const [id, us] of selfUs) {
    const n = byId.get(id)
    if (n === undefined) continue
    total += us
    const name = n.callFrame.functionName
    if (name === '(idle)') { idle += us; continue }
    const where = origin(n.callFrame.url)
    const key = `${name === '' ? '(anonymous)' : name} ${where}:${n.callFrame.lineNumber + 1}`
    fns.set(key, (fns.get(key) ?? 0) + us)
    origins.set(where, (origins.get(where) ?? 0) + us)
  }
  const busy = total - idle
  const pct = (us: number): string => `${(100 * us / busy).toFixed(1)}%`
  console.log(`\n## ${file}\n\n${(total / 1e6).toFixed(1)} s sampled${lastSeconds > 0 ? ` (the last ${lastSeconds} s)` : ''}${skipLastSeconds > 0 ? ` (less the last ${skipLastSeconds} s)` : ''}, ${(100 * idle / total).toFixed(0)}% idle; shares below are of the busy time\n`)
  console.log('| self time | where |\n| ---: | --- |')
  for (const [k, us] of [...origins].sort((a, b) => b[1] - a[1]).slice(0, 12)) console.log(`| ${pct(us)} | ${k} |`)
  console.log('\n| self time | function |\n| ---: | --- |')
  for (const [k, us] of [...fns].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`| ${pct(us)} | ${k} |`)
  console.log('\n| inclusive | Talaria function |\n| ---: | --- |')
  for (const [k, us] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`| ${pct(us)} | ${k} |`)
}
