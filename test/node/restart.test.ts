import assert from 'node:assert/strict'
import { readFile, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { META_FILE, STORAGE_SCHEMA_VERSION } from '../../storage/index.js'
import { createNode, NODE_KEY_FILE, readPeerId, type TalariaNode } from '../../node/index.js'
import { loopbackInit, meshDataDir, startMesh, tempDataDir } from '../helpers/mesh.js'
import { testUser } from '../helpers/records.js'

describe('node restart', () => {
  it('keeps its peer id and the records it stored, read back from its own store with the network gone', async () => {
    const [nodes, closeAll] = await startMesh(3)
    let restarted: TalariaNode | undefined
    try {
      const [first, second, third] = nodes as [TalariaNode, TalariaNode, TalariaNode]
      const alice = testUser()
      const result = await third.putRecordWithResult(alice.profile(3, 'Alice'))
      // restart a node that received the record over the network, not the one that put it
      const holder = [first, second].find((n) => result.successes.includes(n.peerId))
      assert.ok(holder !== undefined, `no other node stored the record: ${result.successes.join(',')}`)
      const dir = meshDataDir(holder)
      for (const node of nodes) await node.stop()

      assert.equal(await readPeerId(dir), holder.peerId)
      restarted = await createNode(loopbackInit(dir))
      assert.equal(restarted.peerId, holder.peerId)
      await restarted.start()
      assert.deepEqual(restarted.getPeers(), [])
      const record = await restarted.getRecord(alice.key, { offline: true })
      assert.equal(record.seq, 3)
      assert.equal(record.id, alice.user.userId)
    } finally {
      await restarted?.stop()
      await closeAll()
    }
  })

  it('stops idempotently and can start again on the same object', async () => {
    const dir = await tempDataDir()
    const node = await createNode(loopbackInit(dir))
    try {
      await node.start()
      const port = node.httpPort
      await Promise.all([node.stop(), node.stop()])
      await node.stop()
      assert.equal(node.state, 'stopped')
      assert.throws(() => node.httpUrl, { code: 'ERR_NOT_STARTED' })
      await assert.rejects(fetch(`http://127.0.0.1:${port}/health`))
      await node.start()
      assert.equal((await fetch(`${node.httpUrl}/health`)).status, 200)
    } finally {
      await node.stop()
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('creates the node key once, private to its owner', async () => {
    const dir = await tempDataDir()
    try {
      await assert.rejects(readPeerId(dir), { code: 'ERR_NO_NODE_KEY' })
      const [a, b] = await Promise.all([createNode(loopbackInit(dir)), createNode(loopbackInit(dir))])
      assert.equal(a.peerId, b.peerId)
      assert.equal(await readPeerId(dir), a.peerId)
      assert.equal((await stat(join(dir, NODE_KEY_FILE))).mode & 0o777, 0o600)
      await writeFile(join(dir, NODE_KEY_FILE), 'not a key')
      await assert.rejects(readPeerId(dir), { code: 'ERR_BAD_NODE_KEY' })
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('fails to start on a data dir with a newer storage schema, leaving nothing running', async () => {
    const dir = await tempDataDir()
    try {
      const node = await createNode(loopbackInit(dir))
      await node.start()
      await node.stop()
      const metaPath = join(dir, META_FILE)
      const meta = JSON.parse(await readFile(metaPath, 'utf8')) as Record<string, unknown>
      await writeFile(metaPath, JSON.stringify({ ...meta, schemaVersion: STORAGE_SCHEMA_VERSION + 1 }))

      const again = await createNode(loopbackInit(dir))
      await assert.rejects(again.start(), { code: 'ERR_SCHEMA_NEWER' })
      assert.equal(again.state, 'stopped')
      assert.deepEqual(again.getMultiaddrs(), [])
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('rejects unknown options and bad bootstrap addresses before touching the data dir', async () => {
    await assert.rejects(createNode({ dataDir: '/nonexistent/x', colour: 'blue' } as never), { code: 'ERR_INVALID_OPTION' })
    await assert.rejects(createNode({ dataDir: '/nonexistent/x', bootstrap: ['/ip4/127.0.0.1/tcp/1'] }), { code: 'ERR_BAD_BOOTSTRAP_ADDR' })
    await assert.rejects(createNode({ dataDir: '/nonexistent/x', httpPort: 70000 }), { code: 'ERR_INVALID_OPTION' })
  })
})

describe('start rollback', () => {
  it('closes libp2p and storage when the HTTP port is taken, so a later start succeeds', async () => {
    const dir = await tempDataDir()
    const blocker = await createNode(loopbackInit(await tempDataDir()))
    let node: TalariaNode | undefined
    try {
      await blocker.start()
      node = await createNode({ ...loopbackInit(dir), httpPort: blocker.httpPort })
      await assert.rejects(node.start(), { code: 'ERR_HTTP_LISTEN' })
      assert.equal(node.state, 'stopped')
      assert.deepEqual(node.getMultiaddrs(), [])
      // the storage lock was released: the same data dir opens again
      node = await createNode(loopbackInit(dir))
      await node.start()
      assert.equal(node.state, 'started')
    } finally {
      await node?.stop()
      await blocker.stop()
      await rm(dir, { recursive: true, force: true })
    }
  })
})
