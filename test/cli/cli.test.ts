/**
 * The `talaria` command as a user runs it: a real process, real node, real data dir.
 */
import assert from 'node:assert/strict'
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, it } from 'node:test'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const BIN = join(ROOT, 'bin', 'talaria.js')
const LOOPBACK = ['--listen', '/ip4/127.0.0.1/tcp/0', '--listen', '/ip4/127.0.0.1/tcp/0/ws', '--http-host', '127.0.0.1', '--http-port', '0']

interface Run { code: number | null, stdout: string, stderr: string }

function cleanEnv (extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('TALARIA_')) env[k] = v
  return { ...env, ...extra }
}

function spawnCli (args: string[], env: Record<string, string> = {}): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: cleanEnv(env) })
}

async function run (args: string[], env: Record<string, string> = {}): Promise<Run> {
  const child = spawnCli(args, env)
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
  return { code, stdout, stderr }
}

/** Resolves with everything printed so far once stdout contains `marker`. */
async function waitForOutput (child: ChildProcessWithoutNullStreams, marker: string, timeoutMs: number): Promise<string> {
  return await new Promise((resolve, reject) => {
    let out = ''
    let err = ''
    const timer = setTimeout(() => { reject(new Error(`no "${marker}" within ${timeoutMs} ms; stdout=${out} stderr=${err}`)) }, timeoutMs)
    child.stderr.on('data', (d: Buffer) => { err += d.toString() })
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      if (out.includes(marker)) {
        clearTimeout(timer)
        resolve(out)
      }
    })
    child.on('close', (code) => {
      clearTimeout(timer)
      reject(new Error(`exited ${String(code)} before "${marker}"; stdout=${out} stderr=${err}`))
    })
  })
}

describe('talaria command', () => {
  let dir: string
  before(async () => { dir = await mkdtemp(join(tmpdir(), 'talaria-cli-')) })
  after(async () => { await rm(dir, { recursive: true, force: true }) })

  it('shows every flag of start with its default in --help', async () => {
    const { code, stdout } = await run(['start', '--help'])
    assert.equal(code, 0)
    for (const flag of ['--data-dir', '--config', '--listen', '--announce', '--http-port', '--http-host', '--bootstrap', '--mdns', '--shards', '--log-level', '--max-frame-bytes', '--max-requests-per-second', '--max-user-requests-per-second', '--max-connections-per-ip',
      '--group-retention-ms', '--group-history-limit', '--room-history-limit', '--max-groups']) {
      const line = stdout.split('\n').find((l) => l.trimStart().startsWith(flag))
      assert.ok(line !== undefined, `help lists ${flag}`)
    }
    // help wraps to the terminal width: compare with whitespace folded
    const flat = stdout.replace(/\s+/g, ' ')
    assert.match(flat, /default: \.\/\.talaria/)
    assert.match(flat, /default: 7780/)
    assert.match(flat, /default: \/ip4\/0\.0\.0\.0\/tcp\/7700, \/ip4\/0\.0\.0\.0\/tcp\/7701\/ws/)
  })

  it('lists the commands in the top-level --help', async () => {
    const { code, stdout } = await run(['--help'])
    assert.equal(code, 0)
    for (const cmd of ['start', 'bootstrap', 'id']) assert.match(stdout, new RegExp(`^\\s+${cmd}\\b`, 'm'))
  })

  const usageErrors: Array<[string, string[], Record<string, string>, RegExp]> = [
    ['an unknown flag', ['start', '--colour', 'blue'], {}, /unknown option '--colour'/],
    ['an unknown command', ['launch'], {}, /unknown command 'launch'/],
    ['a bad flag value', ['start', '--http-port', 'abc'], {}, /--http-port: expected an integer/],
    ['a bad env value', ['start'], { TALARIA_SHARDS: '0' }, /TALARIA_SHARDS:/],
    ['an unknown env setting', ['start'], { TALARIA_COLOUR: 'blue' }, /TALARIA_COLOUR: unknown environment setting/]
  ]
  for (const [name, args, env, message] of usageErrors) {
    it(`exits 2 naming ${name}`, async () => {
      const { code, stderr } = await run([...args, '--data-dir', join(dir, 'unused')], env)
      assert.equal(code, 2, stderr)
      assert.match(stderr, message)
    })
  }

  it('starts a node that prints its peer id, addresses and HTTP URL, and stops on SIGINT with code 0', async () => {
    const dataDir = join(dir, 'node')
    const child = spawnCli(['start', '--data-dir', dataDir, ...LOOPBACK, '--log-level', 'warn'])
    try {
      const started = Date.now()
      const out = await waitForOutput(child, 'Press Ctrl-C to stop.', 20_000)
      const startMs = Date.now() - started
      const peerId = /peer id\s+(\S+)/.exec(out)?.[1]
      assert.ok(peerId !== undefined && peerId.startsWith('12D3Koo'), out)
      assert.match(out, /listening \/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\//)
      const url = /http\s+(http:\/\/\S+)/.exec(out)?.[1]
      assert.ok(url !== undefined, out)
      const health = await fetch(`${url}/health`)
      assert.equal(health.status, 200)
      const status = await health.json() as unknown
      assert.ok(status !== null && typeof status === 'object')
      // a bound against a hang, not a timing test: start time is measured in BENCHMARKS.md, and a
      // CI machine running the five-node suites beside this one starts a node several times slower
      assert.ok(startMs < 30_000, `started in ${startMs} ms`)

      const stopAt = Date.now()
      const exited = new Promise<number | null>((resolve) => child.on('close', resolve))
      child.kill('SIGINT')
      const code = await exited
      assert.equal(code, 0)
      assert.ok(Date.now() - stopAt < 5000, 'stopped within 5 s')

      const id = await run(['id', '--data-dir', dataDir])
      assert.equal(id.code, 0, id.stderr)
      assert.equal(id.stdout.trim(), peerId)
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL')
    }
  })

  it('refuses a data dir written by a newer schema, naming both versions, with exit code 1', async () => {
    const dataDir = join(dir, 'newer')
    await mkdir(dataDir, { recursive: true })
    await writeFile(join(dataDir, 'storage.json'), JSON.stringify({ schemaVersion: 99, shards: 8, createdAt: Date.now() }))
    const { code, stderr } = await run(['start', '--data-dir', dataDir, ...LOOPBACK, '--log-level', 'silent'])
    assert.equal(code, 1, stderr)
    assert.match(stderr, /^talaria: cannot start: .*99.*ERR_SCHEMA_NEWER/m)
  })

  it('id fails clearly on a data dir without a node key', async () => {
    const { code, stderr } = await run(['id', '--data-dir', join(dir, 'empty')])
    assert.equal(code, 1)
    assert.match(stderr, /^talaria: /)
  })
})
