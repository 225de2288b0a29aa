/**
 * `npm run bench -- <scenario> [options]`: runs one benchmark scenario in its own process, or all of
 * them in turn when none is named. Benchmarks report figures; they never gate `npm test`.
 */
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

/** Scenario name → script, relative to the repository root. */
const SCENARIOS: Record<string, { script: string, about: string }> = {
  crypto: { script: 'bench/crypto.ts', about: 'E2E crypto and codecs, native vs noble provider (ops/s)' },
  storage: { script: 'bench/storage.ts', about: 'LevelDB: 1 instance vs 8 shards, group commit vs flush per write' },
  messaging: { script: 'bench/messaging.ts', about: '1:1 latency and sustained msg/s across 2 node processes, E2E + durable acks, beside a raw ws floor' }
}

const root = fileURLToPath(new URL('..', import.meta.url))
const [name, ...rest] = process.argv.slice(2)

if (name === '--help' || name === '-h' || (name !== undefined && !(name in SCENARIOS))) {
  console.log('usage: npm run bench -- [scenario] [options]\n\nscenarios:')
  for (const [key, s] of Object.entries(SCENARIOS)) console.log(`  ${key.padEnd(10)} ${s.about}`)
  process.exit(name === '--help' || name === '-h' ? 0 : 2)
}

const chosen = name === undefined ? Object.keys(SCENARIOS) : [name]
let failed = false
for (const key of chosen) {
  const scenario = SCENARIOS[key]
  if (scenario === undefined) continue
  console.log(`\n# ${key}: ${scenario.about}\n`)
  const result = spawnSync(process.execPath, ['--import', './scripts/register.js', scenario.script, ...rest], { cwd: root, stdio: 'inherit' })
  if (result.status !== 0) failed = true
}
process.exit(failed ? 1 : 0)
