/**
 * Acceptance tests of 1:1 messaging: REAL nodes (five, on 127.0.0.1) and REAL SDK clients over
 * real WebSockets. One mesh serves every case, in order; the case that stops a node runs last.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readFile, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import WebSocket from 'ws'
import { MemoryStore, addDevice, createClient, createIdentity, type ClientIdentity, type ClientInit, type TalariaClient, type WebSocketConstructor } from '../../client/index.js'
import type { TalariaNode } from '../../node/index.js'
import { collectMessages } from '../client/collect.js'
import { meshDataDir, startMesh, type CloseAll } from '../helpers/mesh.js'

const MARKER = `TALARIA-PLAINTEXT-MARKER-${randomBytes(8).toString('hex')}`
const WAIT_MS = 60_000

/** The node's client WebSocket URL. */
function wsUrl (node: TalariaNode): string {
  return node.httpUrl.replace(/^http/, 'ws') + '/v1'
}

describe('e2e: 1:1 messaging through five real nodes', () => {
  let nodes: TalariaNode[] = []
  let closeAll: CloseAll = async () => {}
  const clients: TalariaClient[] = []
  /** Private keys of every identity used: no node may hold any of them either. */
  const secrets = new Map<string, Buffer>()

  /** A connected client on `node`; closed after the suite. */
  async function connect (node: TalariaNode, identity: ClientIdentity, extra: Partial<ClientInit> = {}): Promise<TalariaClient> {
    secrets.set(`root seed of ${identity.user.userId}`, Buffer.from(identity.user.rootSeed))
    secrets.set(`signing seed of ${identity.device.deviceId}`, Buffer.from(identity.device.signingSeed))
    secrets.set(`exchange key of ${identity.device.deviceId}`, Buffer.from(identity.device.exchangePrivateKey))
    secrets.set(`signed prekey of ${identity.device.deviceId}`, Buffer.from(identity.signedPreKey.privateKey))
    const client = createClient({ url: wsUrl(node), identity, WebSocket: WebSocket as unknown as WebSocketConstructor, ...extra })
    clients.push(client)
    await client.connect()
    return client
  }

  /** Waits until `client` sees `count` devices of `user` (records travel through the DHT). */
  async function seesDevices (client: TalariaClient, user: ClientIdentity, count: number): Promise<void> {
    const deadline = Date.now() + WAIT_MS
    for (;;) {
      const devices = await client.devices(user.user.userId, { refresh: true }).catch(() => [])
      if (devices.length >= count) return
      if (Date.now() > deadline) throw new Error(`${user.user.userId} never showed ${count} devices (saw ${devices.length})`)
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
  }

  before(async () => {
    [nodes, closeAll] = await startMesh(5)
  })

  after(async () => {
    await Promise.allSettled(clients.map(async (c) => { await c.close() }))
    await closeAll()
  })

  it('(a) 1,000 messages from a user on node 1 to a user on node 5 arrive in order, exactly once, with the right plaintext', async () => {
    const alice = createIdentity()
    const bob = createIdentity()
    const a = await connect(nodes[0]!, alice)
    const b = await connect(nodes[4]!, bob)
    await seesDevices(a, bob, 1)
    const n = 1000
    const got = collectMessages(b, n, WAIT_MS * 2)
    got.catch(() => {})
    const started = Date.now()
    const ids = await Promise.all(Array.from({ length: n }, async (_, i) => await a.send(bob.user.userId, `${MARKER} a#${i}`)))
    const acked = Date.now()
    const msgs = await got
    const done = Date.now()
    assert.equal(msgs.length, n)
    assert.deepEqual(msgs.map((m) => m.text), ids.map((_, i) => `${MARKER} a#${i}`))
    assert.deepEqual(msgs.map((m) => m.id), ids)
    assert.deepEqual(msgs.map((m) => m.seq), ids.map((_, i) => i + 1))
    assert.equal(new Set(msgs.map((m) => m.id)).size, n)
    assert.ok(msgs.every((m) => m.from === alice.user.userId && m.fromDevice === alice.device.deviceId))
    process.stderr.write(`# (a) ${n} messages: all acked by node 1 in ${acked - started} ms, all received on node 5 in ${done - started} ms (${Math.round(n / ((done - started) / 1000))} msg/s)\n`)
  })

  it('(b) a recipient offline during 100 sends connects to node 3 and receives all 100 in order', async () => {
    const alice = createIdentity()
    const carol = createIdentity()
    const carolStore = new MemoryStore()
    const a = await connect(nodes[0]!, alice)
    // carol's first connection announces her keys; then she goes offline
    const c1 = await connect(nodes[1]!, carol, { store: carolStore })
    await seesDevices(a, carol, 1)
    await c1.close()
    const ids: string[] = []
    for (let i = 0; i < 100; i++) ids.push(await a.send(carol.user.userId, `${MARKER} b#${i}`))
    const c2 = createClient({ url: wsUrl(nodes[2]!), identity: carol, store: carolStore, WebSocket: WebSocket as unknown as WebSocketConstructor })
    clients.push(c2)
    const got = collectMessages(c2, 100, WAIT_MS)
    got.catch(() => {})
    await c2.connect()
    const msgs = await got
    assert.deepEqual(msgs.map((m) => m.id), ids)
    assert.deepEqual(msgs.map((m) => m.text), ids.map((_, i) => `${MARKER} b#${i}`))
  })

  it('(d) a recipient with two devices on two nodes gets every message on both; the sender\'s second device gets a copy', async () => {
    const { identity: alice1, added: alice2 } = addDevice(createIdentity())
    const { identity: bob1, added: bob2 } = addDevice(createIdentity())
    const a1 = await connect(nodes[0]!, alice1)
    const a2 = await connect(nodes[4]!, alice2)
    const b1 = await connect(nodes[1]!, bob1)
    const b2 = await connect(nodes[3]!, bob2)
    await seesDevices(a1, bob1, 2)
    await seesDevices(a1, alice1, 2)
    const n = 50
    const got1 = collectMessages(b1, n, WAIT_MS)
    got1.catch(() => {})
    const got2 = collectMessages(b2, n, WAIT_MS)
    got2.catch(() => {})
    const copies = collectMessages(a2, n, WAIT_MS)
    copies.catch(() => {})
    const ids: string[] = []
    for (let i = 0; i < n; i++) ids.push(await a1.send(bob1.user.userId, `${MARKER} d#${i}`))
    for (const [who, p] of [['bob device 1', got1], ['bob device 2', got2], ['alice device 2', copies]] as const) {
      const msgs = await p
      assert.deepEqual(msgs.map((m) => m.id), ids, who)
      assert.deepEqual(msgs.map((m) => m.text), ids.map((_, i) => `${MARKER} d#${i}`), who)
    }
    const c = await copies
    assert.ok(c.every((m) => m.peer === bob1.user.userId && m.from === alice1.user.userId), 'copies name the other party')
  })

  it('(c) with one mailbox replica stopped while the recipient is offline, every message still arrives', async () => {
    // a recipient whose mailbox replicas include a node this test can stop: not the sender's
    // node (0) and not the one the recipient reconnects to (2)
    let dave: ClientIdentity | undefined
    let victim: TalariaNode | undefined
    for (let i = 0; i < 30 && victim === undefined; i++) {
      const candidate = createIdentity()
      const replicas = (await nodes[0]!.messaging().mailbox.replicas(candidate.user.userId)).map((p) => p.toString())
      victim = nodes.find((n, idx) => idx !== 0 && idx !== 2 && replicas.includes(n.peerId))
      if (victim !== undefined) dave = candidate
    }
    assert.ok(dave !== undefined && victim !== undefined, 'found a recipient with a stoppable replica')
    const alice = createIdentity()
    const daveStore = new MemoryStore()
    const a = await connect(nodes[0]!, alice)
    const d1 = await connect(nodes[1]!, dave, { store: daveStore })
    await seesDevices(a, dave, 1)
    await d1.close()
    const ids: string[] = []
    for (let i = 0; i < 50; i++) ids.push(await a.send(dave.user.userId, `${MARKER} c#${i}`))
    await victim.stop()
    for (let i = 50; i < 60; i++) ids.push(await a.send(dave.user.userId, `${MARKER} c#${i}`))
    const d2 = createClient({ url: wsUrl(nodes[2]!), identity: dave, store: daveStore, WebSocket: WebSocket as unknown as WebSocketConstructor })
    clients.push(d2)
    const got = collectMessages(d2, 60, WAIT_MS)
    got.catch(() => {})
    await d2.connect()
    const msgs = await got
    assert.deepEqual(msgs.map((m) => m.id), ids)
  })

  it('(e) no node data dir contains the plaintext (nor any private key of the users)', async () => {
    const needle = Buffer.from(MARKER, 'utf8')
    let files = 0
    let bytes = 0
    const hits: string[] = []
    async function scan (dir: string): Promise<void> {
      for (const entry of await readdir(dir, { withFileTypes: true })) {
        const p = join(dir, entry.name)
        if (entry.isDirectory()) { await scan(p); continue }
        if (!entry.isFile()) continue
        const content = await readFile(p)
        files++
        bytes += content.length
        if (content.includes(needle)) hits.push(`${p}: plaintext marker`)
        for (const [what, key] of secrets) if (content.includes(key)) hits.push(`${p}: ${what}`)
      }
    }
    for (const node of nodes) await scan(meshDataDir(node))
    assert.ok(files > 0 && bytes > 0, 'scanned something')
    assert.ok(secrets.size >= 4 * 8, 'secrets of every identity collected')
    assert.deepEqual(hits, [])
    process.stderr.write(`# (e) scanned ${files} files, ${bytes} bytes: no plaintext marker, none of ${secrets.size} private keys\n`)
  })
})
