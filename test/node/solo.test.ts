/**
 * A node alone — the first node of a mesh, or `npm start` on its own — keeps and serves records
 * at once, instead of waiting on a DHT query that has no peer to ask.
 */
import assert from 'node:assert/strict'
import { rm } from 'node:fs/promises'
import { after, before, describe, it } from 'node:test'
import { createNode, type TalariaNode } from '../../node/index.js'
import { isErrorCode } from '../../protocol/errors.js'
import { loopbackInit, startMesh, tempDataDir, waitUntil } from '../helpers/mesh.js'
import { testUser } from '../helpers/records.js'

/** Far below the 30 s DHT timeouts: an answer this fast did not wait for a query. */
const PROMPT_MS = 5_000

describe('a node without DHT peers', () => {
  let node: TalariaNode
  let dir: string

  before(async () => {
    dir = await tempDataDir()
    node = await createNode(loopbackInit(dir))
    await node.start()
  })

  after(async () => {
    await node.stop()
    await rm(dir, { recursive: true, force: true })
  })

  it('keeps a put record and reads it back promptly', async () => {
    assert.equal(node.status().dhtPeers, 0)
    const u = testUser()
    const started = Date.now()
    const result = await node.putRecordWithResult(u.profile(1, 'alone'))
    assert.deepEqual(result.successes, [])
    const record = await node.getRecord(u.key)
    assert.equal(record.seq, 1)
    assert.ok(Date.now() - started < PROMPT_MS, `answered in ${Date.now() - started} ms`)
  })

  it('keeps the newer of two records', async () => {
    const u = testUser()
    await node.putRecord(u.profile(2, 'newer'))
    await node.putRecord(u.profile(1, 'older'))
    assert.equal((await node.getRecord(u.key)).seq, 2)
  })

  it('answers ERR_RECORD_NOT_FOUND promptly for a key nobody stored', async () => {
    const started = Date.now()
    await assert.rejects(node.getRecord(testUser().key), (err: unknown) => isErrorCode(err, 'ERR_RECORD_NOT_FOUND'))
    assert.ok(Date.now() - started < PROMPT_MS, `answered in ${Date.now() - started} ms`)
  })

  it('serves what it kept alone to a node that joins later', async () => {
    const u = testUser()
    await node.putRecord(u.profile(3, 'kept'))
    const [[joiner], closeAll] = await startMesh(1, { perNode: () => ({ bootstrap: [node.getMultiaddrs()[0] ?? ''] }) })
    try {
      assert.ok(joiner !== undefined)
      await waitUntil(() => joiner.status().dhtPeers > 0 && node.status().dhtPeers > 0)
      assert.equal((await joiner.getRecord(u.key)).seq, 3)
    } finally {
      await closeAll()
    }
  })
})
