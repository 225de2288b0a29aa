/**
 * The group commands as a user runs them: `talaria group create | send | add | remove | leave` and
 * `talaria listen` as real processes against real nodes.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { TalariaNode } from '../../node/index.js'
import { startMesh } from '../helpers/mesh.js'
import { finish, spawnCli, type Run } from '../helpers/cli.js'

const RUN_MS = 90_000

function wsUrl (node: TalariaNode): string {
  return node.httpUrl.replace(/^http/, 'ws') + '/v1'
}


async function run (args: string[]): Promise<Run> {
  return await finish(spawnCli(args), RUN_MS)
}

/** Starts `listen` and resolves once it says it is listening, with the promise of its end (wrapped: a promise would be adopted). */
async function startListen (args: string[]): Promise<{ done: Promise<Run> }> {
  const child = spawnCli(['listen', ...args])
  const listening = new Promise<void>((resolve, reject) => {
    let err = ''
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); if (err.includes('listening as')) resolve() })
    child.on('exit', (code) => { reject(new Error(`listen exited early (${code}): ${err}`)) })
  })
  const done = finish(child, RUN_MS)
  await listening
  return { done }
}

interface Line { group?: string, room?: string, id: string, from: string, seq?: number, text: string }

function lines (out: string): Line[] {
  return out.trim().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Line)
}

describe('talaria group commands against real nodes', () => {
  let dir = ''

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'talaria-cli-group-'))
  })

  after(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('group create with members, group send twice: listeners on both nodes print both messages in order with the group id; add, remove and leave exit 0', async () => {
    const [nodes, closeAll] = await startMesh(2)
    try {
      await roundTrip(nodes)
    } finally {
      await closeAll()
    }
  })

  async function roundTrip (nodes: TalariaNode[]): Promise<void> {
    const files = { alice: join(dir, 'alice.id'), bob: join(dir, 'bob.id'), carol: join(dir, 'carol.id'), dave: join(dir, 'dave.id') }
    const users: Record<string, string> = {}
    for (const [name, file] of Object.entries(files)) {
      const r = await run(['identity', 'new', '--out', file])
      assert.equal(r.code, 0, r.stderr)
      users[name] = r.stdout.trim()
    }
    // a listener's first connection publishes its keys: the members are reachable before the group exists
    const { done: carolDone } = await startListen(['--node', wsUrl(nodes[0]!), '--identity', files.carol, '--count', '2', '--timeout', '80'])
    const { done: bobDone } = await startListen(['--node', wsUrl(nodes[1]!), '--identity', files.bob, '--count', '2', '--timeout', '80'])
    const dave = await run(['listen', '--node', wsUrl(nodes[1]!), '--identity', files.dave, '--timeout', '5'])
    assert.equal(dave.code, 0, dave.stderr)

    const created = await run(['group', 'create', '--node', wsUrl(nodes[0]!), '--identity', files.alice, '--name', 'team', '--members', `${users.bob},${users.carol}`])
    assert.equal(created.code, 0, created.stderr)
    const group = created.stdout.trim()
    assert.match(group, /^g[a-z2-7]{32}$/)

    const texts = ['hello group', 'second: ünïcode ✓']
    for (const text of texts) {
      const s = await run(['group', 'send', '--node', wsUrl(nodes[0]!), '--identity', files.alice, '--group', group, text])
      assert.equal(s.code, 0, s.stderr)
      assert.match(s.stdout.trim(), /^m[a-z2-7]{26}$/)
    }
    for (const [who, done] of [['bob', bobDone], ['carol', carolDone]] as const) {
      const l = await done
      assert.equal(l.code, 0, l.stderr)
      const got = lines(l.stdout)
      assert.deepEqual(got.map((m) => m.text), texts, `${who}: ${l.stderr}`)
      assert.ok(got.every((m) => m.group === group && m.from === users.alice), l.stdout)
      assert.deepEqual(got.map((m) => m.seq), [1, 2])
    }

    const add = await run(['group', 'add', '--node', wsUrl(nodes[0]!), '--identity', files.alice, '--group', group, users.dave!])
    assert.equal(add.code, 0, add.stderr)
    const remove = await run(['group', 'remove', '--node', wsUrl(nodes[0]!), '--identity', files.alice, '--group', group, users.carol!])
    assert.equal(remove.code, 0, remove.stderr)
    const leave = await run(['group', 'leave', '--node', wsUrl(nodes[1]!), '--identity', files.bob, '--group', group])
    assert.equal(leave.code, 0, leave.stderr)
    // bob is no longer a member: the node and the client both refuse
    const refused = await run(['group', 'send', '--node', wsUrl(nodes[1]!), '--identity', files.bob, '--group', group, 'still here?'])
    assert.equal(refused.code, 1)
    assert.match(refused.stderr, /ERR_NOT_MEMBER/)
  }

  it('usage errors exit 2 before connecting', async () => {
    const file = join(dir, 'erin.id')
    assert.equal((await run(['identity', 'new', '--out', file])).code, 0)
    const bad: string[][] = [
      ['group', 'send', '--identity', file, '--group', 'not-a-group', 'x'],
      ['group', 'add', '--identity', file, '--group', 'g' + 'a'.repeat(32), 'not-a-user'],
      ['group', 'create', '--identity', file, '--name', 'x', '--members', 'nobody'],
      ['group', 'create', '--identity', file],
      ['listen', '--identity', file, '--room', 'nowhere']
    ]
    for (const args of bad) {
      const r = await run([...args, '--node', 'ws://127.0.0.1:9/v1'])
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`)
    }
  })
})
