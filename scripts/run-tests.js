// Runs every *.test.ts under test/ with Node's test runner, each file in its own process.
// Usage: node scripts/run-tests.js [path-filter ...]
import { spawn } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))

function walk (dir) {
  const out = []
  for (const name of readdirSync(dir)) {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) out.push(...walk(p))
    else if (name.endsWith('.test.ts')) out.push(relative(root, p))
  }
  return out
}

const filters = process.argv.slice(2)
const files = walk(join(root, 'test'))
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort()

if (files.length === 0) {
  process.stderr.write('no test files matched\n')
  process.exit(1)
}

const child = spawn(process.execPath, [
  '--import', './scripts/register.js',
  '--test',
  '--test-concurrency=2',
  '--test-reporter=spec',
  '--test-timeout=300000',
  ...files
], { cwd: root, stdio: 'inherit' })
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)))
