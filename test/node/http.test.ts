import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { TalariaNode } from '../../node/index.js'
import { startMesh, type CloseAll } from '../helpers/mesh.js'

describe('node HTTP server', () => {
  let nodes: TalariaNode[] = []
  let closeAll: CloseAll = async () => {}

  before(async () => {
    [nodes, closeAll] = await startMesh(2)
  })
  after(async () => { await closeAll() })

  it('answers /health with 200 ok once started', async () => {
    const res = await fetch(`${nodes[0]!.httpUrl}/health`)
    assert.equal(res.status, 200)
    assert.deepEqual(await res.json(), { status: 'ok' })
  })

  it('reports peer id, addresses, connected peers, shards, version, role and uptime on /status', async () => {
    const [a, b] = nodes as [TalariaNode, TalariaNode]
    const res = await fetch(`${b.httpUrl}/status`)
    assert.equal(res.status, 200)
    const body = await res.json() as Record<string, unknown>
    assert.equal(body.peerId, b.peerId)
    assert.deepEqual(body.addresses, b.getMultiaddrs())
    assert.ok((body.addresses as string[]).every((addr) => addr.startsWith('/ip4/127.0.0.1/') && addr.endsWith(`/p2p/${b.peerId}`)))
    assert.deepEqual(body.peers, [a.peerId])
    assert.equal(body.shards, 2)
    assert.equal(typeof body.dhtPeers, 'number')
    assert.equal(body.version, '0.1.0')
    assert.equal(body.role, 'node')
    assert.equal(typeof body.uptimeSeconds, 'number')
  })

  it('answers 404 JSON for unknown paths and refuses other methods and bodies', async () => {
    const url = nodes[0]!.httpUrl
    const missing = await fetch(`${url}/nope`)
    assert.equal(missing.status, 404)
    assert.equal(((await missing.json()) as { error: string }).error, 'ERR_NOT_FOUND')
    const post = await fetch(`${url}/status`, { method: 'POST', body: 'x' })
    assert.equal(post.status, 405)
    await post.body?.cancel()
  })

  it('exposes the bound ephemeral port', () => {
    assert.ok(nodes[0]!.httpPort > 0)
    assert.equal(nodes[0]!.httpUrl, `http://127.0.0.1:${nodes[0]!.httpPort}`)
  })
})
