/**
 * A mailbox replica dies without a clean stop — a real node process killed with SIGKILL while the
 * recipient is offline — and every message still arrives, in order, when the recipient connects
 * to another node.
 */
import assert from 'node:assert/strict'
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { rm } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { after, before, describe, it } from 'node:test'
import WebSocket from 'ws'
import { MemoryStore, createClient, createIdentity, type ClientIdentity, type TalariaClient, type WebSocketConstructor } from '../../client/index.js'
import type { TalariaNode } from '../../node/index.js'
import { collectMessages } from '../client/collect.js'
import { firstTcpAddr, startMesh, tempDataDir, waitUntil, type CloseAll } from '../helpers/mesh.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const WAIT_MS = 60_000

function wsUrl (node: TalariaNode): string {
  return node.httpUrl.replace(/^http/, 'ws') + '/v1'
}

/** Starts `talaria start` as a child process on loopback, joined to `bootstrap`; resolves with its peer id. */
async function startNodeProcess (dataDir: string, bootstrap: string): Promise<{ child: ChildProcessWithoutNullStreams, peerId: string }> {
  const child = spawn(process.execPath, ['bin/talaria.js', 'start', '--data-dir', dataDir, '--listen', '/ip4/127.0.0.1/tcp/0',
    '--http-host', '127.0.0.1', '--http-port', '0', '--bootstrap', bootstrap, '--log-level', 'warn'], { cwd: ROOT })
  let out = ''
  let err = ''
  child.stderr.on('data', (d: Buffer) => { err += d.toString() })
  const peerId = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`node process did not start: ${out} ${err}`)) }, WAIT_MS)
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      const id = /peer id\s+(\S+)/.exec(out)?.[1]
      if (id !== undefined && out.includes('Press Ctrl-C')) {
        clearTimeout(timer)
        resolve(id)
      }
    })
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`node process exited ${String(code)}: ${err}`)) })
  })
  return { child, peerId }
}

describe('e2e: a mailbox replica killed while the recipient is offline', () => {
  let nodes: TalariaNode[] = []
  let closeAll: CloseAll = async () => {}
  let proc: { child: ChildProcessWithoutNullStreams, peerId: string } | undefined
  let procDir = ''
  const clients: TalariaClient[] = []

  before(async () => {
    [nodes, closeAll] = await startMesh(4)
    procDir = await tempDataDir('talaria-killed-')
    proc = await startNodeProcess(procDir, firstTcpAddr(nodes[0]!))
    const id = proc.peerId
    await waitUntil(() => nodes.every((n) => n.getPeers().includes(id)), { timeoutMs: WAIT_MS })
  })

  after(async () => {
    await Promise.allSettled(clients.map(async (c) => { await c.close() }))
    if (proc !== undefined && proc.child.exitCode === null) proc.child.kill('SIGKILL')
    await closeAll()
    await rm(procDir, { recursive: true, force: true })
  })

  it('delivers everything, in order, from the surviving replicas', async () => {
    const victim = proc
    assert.ok(victim !== undefined)
    // a recipient whose mailbox replicas include the process we are going to kill
    let bob: ClientIdentity | undefined
    for (let i = 0; i < 50 && bob === undefined; i++) {
      const candidate = createIdentity()
      const replicas = (await nodes[0]!.messaging().mailbox.replicas(candidate.user.userId)).map((p) => p.toString())
      if (replicas.includes(victim.peerId)) bob = candidate
    }
    assert.ok(bob !== undefined, 'found a recipient whose mailbox the killed node replicates')

    const connect = async (node: TalariaNode, identity: ClientIdentity, store = new MemoryStore()): Promise<TalariaClient> => {
      const client = createClient({ url: wsUrl(node), identity, store, WebSocket: WebSocket as unknown as WebSocketConstructor })
      clients.push(client)
      await client.connect()
      return client
    }
    const bobStore = new MemoryStore()
    const alice = await connect(nodes[0]!, createIdentity())
    const b1 = await connect(nodes[1]!, bob, bobStore)
    const deadline = Date.now() + WAIT_MS
    while ((await alice.devices(bob.user.userId, { refresh: true }).catch(() => [])).length < 1) {
      assert.ok(Date.now() < deadline, 'the recipient became visible through the DHT')
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
    await b1.close()

    const ids: string[] = []
    for (let i = 0; i < 30; i++) ids.push(await alice.send(bob.user.userId, `before kill #${i}`))
    const exited = new Promise((resolve) => victim.child.once('exit', resolve))
    victim.child.kill('SIGKILL')
    await exited
    for (let i = 0; i < 10; i++) ids.push(await alice.send(bob.user.userId, `after kill #${i}`))

    const b2 = createClient({ url: wsUrl(nodes[2]!), identity: bob, store: bobStore, WebSocket: WebSocket as unknown as WebSocketConstructor })
    clients.push(b2)
    const got = collectMessages(b2, ids.length, WAIT_MS)
    got.catch(() => {})
    await b2.connect()
    const msgs = await got
    assert.deepEqual(msgs.map((m) => m.id), ids)
    assert.deepEqual(msgs.map((m) => m.text), [
      ...Array.from({ length: 30 }, (_, i) => `before kill #${i}`),
      ...Array.from({ length: 10 }, (_, i) => `after kill #${i}`)
    ])
  })
})
