/**
 * `npm run bench -- <scenario> [options]`: runs one benchmark scenario in its own process, or the
 * quick ones in turn when none is named (the mesh scenarios take minutes each). Benchmarks report
 * figures; they never gate `npm test`.
 */
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

/** Scenario name → script, relative to the repository root. */
const SCENARIOS: Record<string, { script: string, about: string }> = {
  crypto: { script: 'bench/crypto.ts', about: 'E2E crypto and codecs, native vs noble provider (ops/s)' },
  storage: { script: 'bench/storage.ts', about: 'LevelDB: 1 instance vs 8 shards, group commit vs flush per write' },
  floor: { script: 'bench/floor.ts', about: 'the floors alone: the same frames through a raw ws relay and a raw libp2p stream' },
  latency: { script: 'bench/latency.ts', about: '1:1 latency at 500 msg/s across a 10-node mesh, E2E + durable acks, beside the floors' },
  throughput: { script: 'bench/throughput.ts', about: 'highest 1:1 rate a node sustains with p99 under 50 ms, offered load stepped up' },
  connections: { script: 'bench/connections.ts', about: 'idle authenticated client connections held by one node: count, RSS each, keepalive CPU' },
  dht: { script: 'bench/dht.ts', about: 'record lookups on a 50-node mesh, cold and warm, then with 20% of nodes killed' },
  messaging: { script: 'bench/messaging.ts', about: '1:1 across 2 nodes, one pair: latency and sustained msg/s beside the floors (smallest latency/throughput case)' },
  transport: { script: 'bench/transport.ts', about: 'group transport, 1 sender to 1/2/4/8 nodes: gossipsub vs direct fan-out on one stream per node (latency, msg/s, CPU)' },
  group: { script: 'bench/group.ts', about: 'a 1,000-member E2E group over a 10-node mesh: fan-out latency to the last member, sustained msg/s' }
}
/** Scenarios run when none is named: the quick ones (the mesh scenarios take minutes each). */
const DEFAULT_SCENARIOS = ['crypto', 'storage', 'messaging']

const root = fileURLToPath(new URL('..', import.meta.url))
const [name, ...rest] = process.argv.slice(2)

if (name === '--help' || name === '-h' || (name !== undefined && !(name in SCENARIOS))) {
  console.log('usage: npm run bench -- [scenario] [options]\n\nscenarios:')
  for (const [key, s] of Object.entries(SCENARIOS)) console.log(`  ${key.padEnd(10)} ${s.about}`)
  process.exit(name === '--help' || name === '-h' ? 0 : 2)
}

const chosen = name === undefined ? DEFAULT_SCENARIOS : [name]
let failed = false
for (const key of chosen) {
  const scenario = SCENARIOS[key]
  if (scenario === undefined) continue
  console.log(`\n# ${key}: ${scenario.about}\n`)
  const result = spawnSync(process.execPath, ['--import', './scripts/register.js', scenario.script, ...rest], { cwd: root, stdio: 'inherit' })
  if (result.status !== 0) failed = true
}
process.exit(failed ? 1 : 0)
