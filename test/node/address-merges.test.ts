/**
 * Unit tests of skipRepeatedAddressMerges over a stub peer store: which merges reach the store.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Libp2p, PeerId } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { ADDRESS_MERGE_TTL_MS, skipRepeatedAddressMerges } from '../../node/libp2p.js'

type PeerStore = Libp2p['peerStore']

/** A peer store whose merge records each call and keeps the union of addresses per peer. */
function stubStore (): { store: PeerStore, calls: Array<{ id: string, keys: string[] }> } {
  const calls: Array<{ id: string, keys: string[] }> = []
  const addrs = new Map<string, Set<string>>()
  const store = {
    async merge (id: PeerId, data: { multiaddrs?: Array<{ toString(): string }> }) {
      calls.push({ id: id.toString(), keys: Object.keys(data) })
      const set = addrs.get(id.toString()) ?? new Set<string>()
      for (const a of data.multiaddrs ?? []) set.add(a.toString())
      addrs.set(id.toString(), set)
      return { id, addresses: [...set].map((a) => ({ multiaddr: multiaddr(a), isCertified: false })), protocols: [], metadata: new Map(), tags: new Map() }
    }
  } as unknown as PeerStore
  return { store, calls }
}

const a = multiaddr('/ip4/127.0.0.1/tcp/4001')
const b = multiaddr('/ip4/127.0.0.1/tcp/4002')

describe('repeated address merges from DHT responses', () => {
  it('lets the first merge of a peer\'s addresses through and answers repeats within the TTL without the store', async () => {
    const { store, calls } = stubStore()
    let clock = 1_000
    skipRepeatedAddressMerges(store, () => clock)
    const peer = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const first = await store.merge(peer, { multiaddrs: [a] })
    const again = await store.merge(peer, { multiaddrs: [a] })
    assert.equal(calls.length, 1)
    assert.equal(again, first, 'a skipped merge answers with the peer as the last merge left it')
    // a new address, another peer, or anything besides addresses goes through
    await store.merge(peer, { multiaddrs: [a, b] })
    assert.equal(calls.length, 2)
    await store.merge(peerIdFromPrivateKey(await generateKeyPair('Ed25519')), { multiaddrs: [a] })
    assert.equal(calls.length, 3)
    await store.merge(peer, { multiaddrs: [a], tags: { x: { value: 1 } } })
    await store.merge(peer, { tags: { x: { value: 1 } } })
    assert.equal(calls.length, 5)
    // the subset of what was merged: skipped
    await store.merge(peer, { multiaddrs: [b] })
    assert.equal(calls.length, 5)
    // and once the TTL has passed, merged again
    clock += ADDRESS_MERGE_TTL_MS
    await store.merge(peer, { multiaddrs: [b] })
    assert.equal(calls.length, 6)
  })
})
