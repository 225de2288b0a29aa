/**
 * The CLI round trip as a user runs it: `talaria identity new` twice, `talaria listen` on one real
 * node, `talaria send` through another, each a real child process.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { TalariaNode } from '../../node/index.js'
import { startMesh, type CloseAll } from '../helpers/mesh.js'
import { finish, spawnCli, type Run } from '../helpers/cli.js'

const RUN_MS = 60_000

function wsUrl (node: TalariaNode): string {
  return node.httpUrl.replace(/^http/, 'ws') + '/v1'
}


async function run (args: string[]): Promise<Run> {
  return await finish(spawnCli(args), RUN_MS)
}

describe('e2e: the CLI client commands against real nodes', () => {
  let nodes: TalariaNode[] = []
  let closeAll: CloseAll = async () => {}
  let dir = ''

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'talaria-cli-e2e-'))
    ;[nodes, closeAll] = await startMesh(3)
  })

  after(async () => {
    await closeAll()
    await rm(dir, { recursive: true, force: true })
  })

  it('identity new ×2, listen on one node, send through another: the listener prints every message in order and exits 0', async () => {
    const aliceFile = join(dir, 'alice.id')
    const bobFile = join(dir, 'bob.id')
    const a = await run(['identity', 'new', '--out', aliceFile])
    const b = await run(['identity', 'new', '--out', bobFile])
    assert.equal(a.code, 0, a.stderr)
    assert.equal(b.code, 0, b.stderr)
    const bob = b.stdout.trim()
    assert.match(a.stdout.trim(), /^u[a-z2-7]{32}$/)
    assert.match(bob, /^u[a-z2-7]{32}$/)
    assert.equal((await stat(bobFile)).mode & 0o777, 0o600)

    const listener = spawnCli(['listen', '--node', wsUrl(nodes[2]!), '--identity', bobFile, '--count', '3', '--timeout', '60'])
    const listening = new Promise<void>((resolve, reject) => {
      let err = ''
      listener.stderr.on('data', (d: Buffer) => { err += d.toString(); if (err.includes('listening as')) resolve() })
      listener.on('exit', (code) => { reject(new Error(`listen exited early (${code}): ${err}`)) })
    })
    const done = finish(listener, RUN_MS)
    await listening

    const texts = ['first message', 'second: ünïcode ✓', 'third "quoted"']
    for (const text of texts) {
      const s = await run(['send', '--node', wsUrl(nodes[0]!), '--identity', aliceFile, '--to', bob, text])
      assert.equal(s.code, 0, s.stderr)
      assert.match(s.stdout.trim(), /^m[a-z2-7]{26}$/)
    }
    const l = await done
    assert.equal(l.code, 0, l.stderr)
    const lines = l.stdout.trim().split('\n').map((line) => JSON.parse(line) as { id: string, from: string, text: string, sentAt: number })
    assert.deepEqual(lines.map((m) => m.text), texts)
    assert.ok(lines.every((m) => m.from === a.stdout.trim() && typeof m.sentAt === 'number' && /^m/.test(m.id)))
  })

  it('listen exits 0 at its timeout with no messages; usage errors exit 2; failures exit 1', async () => {
    const file = join(dir, 'carol.id')
    assert.equal((await run(['identity', 'new', '--out', file])).code, 0)
    const quiet = await run(['listen', '--node', wsUrl(nodes[1]!), '--identity', file, '--timeout', '1'])
    assert.equal(quiet.code, 0, quiet.stderr)
    assert.equal(quiet.stdout, '')
    assert.equal((await run(['send', '--node', wsUrl(nodes[1]!), '--identity', file, 'no recipient'])).code, 2)
    assert.equal((await run(['send', '--node', wsUrl(nodes[1]!), '--identity', file, '--to', 'not-a-user', 'x'])).code, 2)
    assert.equal((await run(['listen', '--identity', file, '--count', 'zero'])).code, 2)
    assert.equal((await run(['identity', 'new', '--out', file])).code, 1, 'refuses to overwrite')
    assert.equal((await run(['send', '--node', 'ws://127.0.0.1:9/v1', '--identity', file, '--to', 'u' + 'a'.repeat(32), 'x', '--timeout', '5'])).code, 1)
  })
})
