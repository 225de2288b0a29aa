/**
 * The revocation check on real nodes: `auth` answers from the presented device list without
 * waiting on the DHT, and the newer list found in the background disconnects a revoked device
 * before anything reaches it.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { decodeEnvelope } from '../../protocol/envelopes.js'
import { certifyDevice, createDevice, createDeviceList, createUserIdentity, revokeDeviceFromList } from '../../protocol/identity.js'
import { recordKey } from '../../protocol/records.js'
import type { TalariaNode } from '../../node/index.js'
import { startMesh, type CloseAll } from '../helpers/mesh.js'
import { heldBy, locationRecord } from '../messaging/fixtures.js'
import { devicesRecord, TestClient, testDevice, testEnvelope, type TestDevice } from './harness.js'

/** Far below the 10 s auth timeout and the 30 s DHT timeout: an answer this fast did not wait for a lookup. */
const PROMPT_MS = 5_000

function wsUrl (node: TalariaNode): string {
  return node.httpUrl.replace(/^http/, 'ws') + '/v1'
}

/** Two devices of one user, both in `list`. */
function twoDevices (): [TestDevice, TestDevice] {
  const user = createUserIdentity()
  const [a, b] = [createDevice(), createDevice()]
  const [certA, certB] = [certifyDevice(user, a), certifyDevice(user, b)]
  a.cert = certA
  b.cert = certB
  const list = createDeviceList(user, [certA, certB])
  return [
    { user, device: a, cert: certA, list, ref: { user: user.userId, device: a.deviceId } },
    { user, device: b, cert: certB, list, ref: { user: user.userId, device: b.deviceId } }
  ]
}

function isMessage (f: { t: string, ev?: string }): boolean {
  return f.t === 'evt' && f.ev === 'message'
}

describe('gateway on real nodes: a device revoked by a newer list in the DHT', () => {
  let nodes: TalariaNode[] = []
  let closeAll: CloseAll = async () => {}

  before(async () => { [nodes, closeAll] = await startMesh(3) })
  after(async () => { await closeAll() })

  it('is disconnected with ERR_DEVICE_REVOKED after auth and receives no queued message, while its user\'s other device gets its own', async () => {
    const [sending, , receiving] = nodes as [TalariaNode, TalariaNode, TalariaNode]
    const [revoked, kept] = twoDevices()
    const newer = revokeDeviceFromList(revoked.list, revoked.user, revoked.device.deviceId)
    // the newer list is in the DHT, published through another node: the receiving node has no copy cached
    await sending.putRecord(devicesRecord(revoked, newer))

    // one message for each device, queued in the mailbox replicas while both are offline
    const sender = testDevice()
    const toRevoked = testEnvelope(sender.ref, revoked.ref)
    const toKept = testEnvelope(sender.ref, kept.ref)
    const s = await TestClient.connect(wsUrl(sending))
    try {
      await s.auth(sender)
      // a device-list publish waits for the sender's own revocation check, after which its pushes are attached
      await s.ok('publish', { records: [devicesRecord(sender)] })
      assert.deepEqual((await s.ok('send', { envelopes: [toRevoked.bytes, toKept.bytes] })).accepted, [toRevoked.id, toKept.id])
      const delivered = new Set<string>()
      // bounded: each delivered event names at least one of the two ids
      for (let i = 0; i < 2 && delivered.size < 2; i++) for (const id of (await s.event('delivered')).ids) delivered.add(id)
      assert.deepEqual([...delivered].sort(), [toRevoked.id, toKept.id].sort())
    } finally {
      await s.close()
    }

    const r = await TestClient.connect(wsUrl(receiving))
    try {
      // the client presents the older list, in which the device is still active: auth answers from it
      await r.auth(revoked)
      // what a client does next: publish the location the mailbox replicas take as proof
      r.sendRequest('publish', { records: [locationRecord(revoked, receiving)] })
      const revocation = await r.response(0)
      assert.equal(revocation.ok ? undefined : revocation.error.code, 'ERR_DEVICE_REVOKED')
      assert.equal((await r.closed).code, 1008)
      assert.ok(!r.frames.some(isMessage), 'no message reached the revoked device')
    } finally {
      await r.close()
    }
    const held = await Promise.all(nodes.map(async (n) => await heldBy(n, revoked)))
    assert.ok(held.filter((c) => c === 1).length >= 2, `the envelope stays in the mailbox replicas: ${held.join(',')}`)

    // the same steps for the device the newer list keeps, on the same node: its message arrives
    const k = await TestClient.connect(wsUrl(receiving))
    try {
      await k.auth(kept)
      await k.ok('publish', { records: [locationRecord(kept, receiving)] })
      const pushed = await k.event('message')
      assert.equal(decodeEnvelope(pushed.envelope).id, toKept.id)
      await k.ok('ack', { ids: [toKept.id] })
      assert.ok(!k.frames.some((f) => f.t === 'res' && f.id === 0), 'no error for the kept device')
    } finally {
      await k.close()
    }

    // the receiving node now caches the newer list: a reconnect is refused at auth itself
    const again = await TestClient.connect(wsUrl(receiving))
    try {
      assert.equal((await again.fails('auth', again.authBody(revoked))).code, 'ERR_DEVICE_REVOKED')
      assert.ok(!again.frames.some(isMessage))
    } finally {
      await again.close()
    }
  })
})

describe('gateway on real nodes: auth does not wait for the DHT', () => {
  let node: TalariaNode
  let closeAll: CloseAll = async () => {}

  before(async () => {
    // a bootstrap peer that never answers: the node is not alone, so a DHT lookup waits for peers
    // until its deadline instead of reading only the local store
    const ghost = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    const [started, close] = await startMesh(1, { perNode: () => ({ bootstrap: [`/ip4/127.0.0.1/tcp/1/p2p/${ghost}`] }) })
    node = started[0]!
    closeAll = close
  })
  after(async () => { await closeAll() })

  it('answers auth promptly while a lookup of the same device list cannot complete', async () => {
    assert.equal(node.status().dhtPeers, 0)
    const d = testDevice()
    const lookup = new AbortController()
    let settled = false
    const dht = node.getRecord(recordKey('devices', d.user.userId), { signal: lookup.signal }).finally(() => { settled = true })
    dht.catch(() => {})
    const client = await TestClient.connect(wsUrl(node))
    try {
      const started = Date.now()
      await client.auth(d)
      const took = Date.now() - started
      assert.ok(took < PROMPT_MS, `auth answered in ${took} ms`)
      assert.equal(settled, false, 'the DHT lookup of the device list is still running')
      // the connection is authenticated and serves requests while its revocation check waits
      assert.equal(typeof (await client.ok('ping', {})).time, 'number')
    } finally {
      lookup.abort()
      await client.close()
    }
    await assert.rejects(dht)
  })
})
