import '../../node/polyfills.js'
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { noise } from '@chainsafe/libp2p-noise'
import type { Libp2p } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import type { MessageId } from '../../protocol/ids.js'
import type { TalariaNode } from '../../node/index.js'
import { DEFAULT_MAILBOX_POLL_MS } from '../../node/messaging/delivery.js'
import { MAILBOX_NOT_AUTHORIZED, MailboxAuthorizationError, type MailboxRefusalReason } from '../../node/messaging/errors.js'
import { exchange } from '../../node/messaging/streams.js'
import { decodeMailboxResponse, encodeMailboxRequest, MAILBOX_PROTOCOL, type MailboxRequest, type MailboxResponse } from '../../node/messaging/wire.js'
import { forge } from '../helpers/records.js'
import { firstTcpAddr, startMesh, waitUntil, type CloseAll } from '../helpers/mesh.js'
import { envelope, envelopes, heldBy, locationRecord, locationRecordFor, RecordingSink, sinkOf, testDevice, type TestDevice } from './fixtures.js'

/** Sends one mailbox request from `from` to `node` over a real stream and decodes the answer. */
async function ask (from: Libp2p, node: TalariaNode, request: MailboxRequest): Promise<MailboxResponse> {
  const signal = AbortSignal.timeout(10_000)
  const stream = await from.dialProtocol(multiaddr(firstTcpAddr(node)), MAILBOX_PROTOCOL, { signal })
  const body = await exchange(stream, encodeMailboxRequest(request), signal)
  assert.ok(body !== undefined, 'the node answered')
  return decodeMailboxResponse(body)
}

/** A location record of `d` that expired a minute ago, naming `nodeId`. */
function expiredLocation (d: TestDevice, nodeId: string): Uint8Array {
  const now = Date.now()
  return locationRecordFor(d, nodeId, { issuedAt: now - 10 * 60_000, expiresAt: now - 60_000 })
}

describe('mailbox fetch and delete need the device\'s location record naming the requesting node', () => {
  let nodes: TalariaNode[] = []
  let closeAll: CloseAll = async () => {}
  let attacker: Libp2p | undefined

  before(async () => {
    [nodes, closeAll] = await startMesh(5)
    attacker = await createLibp2p({ transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()] })
    await attacker.start()
  })
  after(async () => {
    await attacker?.stop()
    await closeAll()
  })

  test('each failed check is refused with ERR_NOT_AUTHORIZED and its reason; put needs no proof', async () => {
    const node = nodes[1] as TalariaNode
    const self = peerIdFromString(node.peerId)
    const other = (nodes[2] as TalariaNode).peerId
    const { mailbox } = node.messaging()
    const alice = testDevice()
    const bob = testDevice()
    const mallory = testDevice()
    const put = await mailbox.serve({ op: 'put', user: bob.ref.user, device: bob.ref.device, ttlMs: 60_000, envelopes: [envelope(alice, bob, 1).bytes] }, peerIdFromString(other))
    assert.deepEqual(put, { ok: true, count: 1 })

    const base = { user: bob.ref.user, device: bob.ref.device }
    const cases: Array<[string, Uint8Array | undefined, MailboxRefusalReason, typeof base?]> = [
      ['no proof', undefined, 'missing-proof'],
      ['a proof naming another node', locationRecordFor(bob, other), 'wrong-node'],
      ['an expired record', expiredLocation(bob, node.peerId), 'invalid-proof'],
      ['a live record whose entry expired', locationRecordFor(bob, node.peerId, { entryExpires: Date.now() - 1_000 }), 'wrong-node'],
      ['a record of another device', locationRecordFor(mallory, node.peerId), 'invalid-proof'],
      ['an entry for another device', locationRecordFor(bob, node.peerId, { entryDevice: mallory.ref.device }), 'wrong-node'],
      ['a forged signature', forge(locationRecordFor(bob, node.peerId)), 'invalid-proof'],
      // mallory's own device under bob's user id: her certificate speaks for her, not bob
      ['a device certified for another user', locationRecordFor(mallory, node.peerId), 'wrong-user', { user: bob.ref.user, device: mallory.ref.device }]
    ]
    for (const [what, proof, reason, target] of cases) {
      const box = target ?? base
      const withProof = proof !== undefined ? { proof } : {}
      for (const request of [
        { op: 'fetch', ...box, limit: 10, ...withProof },
        { op: 'delete', ...box, ids: [] as MessageId[], ...withProof }
      ] satisfies MailboxRequest[]) {
        await assert.rejects(mailbox.serve(request, self), (err: unknown) => {
          assert.ok(err instanceof MailboxAuthorizationError, `${what}: a MailboxAuthorizationError`)
          assert.equal(err.code, MAILBOX_NOT_AUTHORIZED)
          assert.equal(err.reason, reason, `${what} (${request.op})`)
          return true
        })
      }
    }
    assert.equal(await heldBy(node, bob), 1, 'the refused requests left the entry in place')
  })

  test('a hostile peer cannot read or delete a device\'s mailbox; the device then gets everything on another node, pulled as soon as it publishes its location', async () => {
    const hostile = attacker as Libp2p
    const hostileId = hostile.peerId.toString()
    const sender = nodes[1] as TalariaNode
    const alice = testDevice()
    const bob = testDevice()
    const mallory = testDevice()
    const aliceSink = new RecordingSink()
    const detachAlice = sender.messaging().delivery.attach(alice.ref, sinkOf(aliceSink))
    try {
      const all = envelopes(alice, bob, 20)
      const ids = all.map((e) => e.envelope.id)
      await sender.messaging().delivery.submit(alice.ref, all)
      await aliceSink.until(() => aliceSink.delivered.size >= 20, '20 delivered to the replicas')
      const holding = async (): Promise<TalariaNode[]> => {
        const counts = await Promise.all(nodes.map(async (n) => await heldBy(n, bob)))
        return nodes.filter((_, i) => counts[i] === 20)
      }
      await waitUntil(async () => (await holding()).length >= 2, { what: 'two replicas hold all 20' })
      const holders = await holding()

      for (const replica of holders) {
        // a genuine record of bob, but naming the replica itself, not the peer that presents it
        const stolen = locationRecordFor(bob, replica.peerId)
        const proofs: Array<[string, Uint8Array | undefined, { user: typeof bob.ref.user, device: typeof bob.ref.device }]> = [
          ['no proof', undefined, bob.ref],
          ['a proof naming another node', stolen, bob.ref],
          ['an expired proof naming the peer', expiredLocation(bob, hostileId), bob.ref],
          ['a proof of another device naming the peer', locationRecordFor(mallory, hostileId), bob.ref],
          ['a proof of another user\'s device naming the peer', locationRecordFor(mallory, hostileId), { user: bob.ref.user, device: mallory.ref.device }]
        ]
        for (const [what, proof, box] of proofs) {
          const withProof = proof !== undefined ? { proof } : {}
          const fetched = await ask(hostile, replica, { op: 'fetch', ...box, limit: 256, ...withProof })
          assert.deepEqual(fetched, { ok: false, code: MAILBOX_NOT_AUTHORIZED }, `fetch with ${what}`)
          const deleted = await ask(hostile, replica, { op: 'delete', ...box, ids, ...withProof })
          assert.deepEqual(deleted, { ok: false, code: MAILBOX_NOT_AUTHORIZED }, `delete with ${what}`)
        }
      }
      for (const replica of holders) assert.equal(await heldBy(replica, bob), 20, 'every entry is still on the replica')

      const host = nodes.find((n) => n !== sender && n !== nodes[0]) as TalariaNode
      const bobSink = new RecordingSink()
      const attachedAt = performance.now()
      const detachBob = host.messaging().delivery.attach(bob.ref, sinkOf(bobSink))
      try {
        // the device attaches before it publishes its location: there is nothing to pull with yet
        assert.equal(host.messaging().directory.localLocationProof(bob.ref.device), undefined)
        await host.messaging().directory.publish([locationRecord(bob, host)])
        await bobSink.until(() => new Set(bobSink.pushed.map((p) => p.id)).size >= 20, '20 distinct pushes', DEFAULT_MAILBOX_POLL_MS - 5_000)
        const ms = performance.now() - attachedAt
        assert.ok(ms < DEFAULT_MAILBOX_POLL_MS / 3, `pulled on the location record, not the ${DEFAULT_MAILBOX_POLL_MS} ms re-pull: ${ms.toFixed(0)} ms`)
        assert.deepEqual([...new Set(bobSink.pushed.map((p) => p.id))].sort(), [...ids].sort())

        // the acks carry the proof: the replicas this node deletes on (its own view of the set,
        // which a forming mesh may make differ from the sender's) accept the deletes
        const asked = new Set((await host.messaging().mailbox.replicas(bob.ref.user)).map(String))
        const deleting = holders.filter((n) => asked.has(n.peerId))
        assert.ok(deleting.length > 0, 'the node deletes on at least one replica holding the envelopes')
        await host.messaging().delivery.ack(bob.ref, ids)
        await waitUntil(async () => (await Promise.all(deleting.map(async (n) => await heldBy(n, bob)))).every((c) => c === 0), { what: 'the replicas deleted the acked envelopes' })
      } finally {
        detachBob()
      }
    } finally {
      detachAlice()
    }
  })
})
