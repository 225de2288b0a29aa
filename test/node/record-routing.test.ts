/**
 * Unit tests of record lookups over a stubbed DHT: how many copies a lookup waits for, which copy
 * wins, and that the walk ends once the quorum is in. Real meshes: test/node/mesh.test.ts.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { MemoryDatastore } from 'datastore-core'
import { pino } from 'pino'
import { DefaultRecordRouting, type RecordRoutingComponents } from '../../node/record-routing.js'
import { DEFAULT_GET_RECORD_QUORUM } from '../../node/options.js'
import { testUser } from '../helpers/records.js'

const peer = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))

/** A DHT whose get yields one peer response per copy, counting how many it was asked for. */
function stubDht (copies: Uint8Array[]): { dht: RecordRoutingComponents['dht'], served: () => number, ended: () => boolean } {
  let served = 0
  let ended = false
  const dht = {
    async * get () {
      try {
        for (const value of copies) {
          served++
          yield { name: 'PEER_RESPONSE', from: peer, record: { value }, closer: [], providers: [] }
        }
        ended = true
      } finally {
        ended = true
      }
    },
    async * put () {},
    async * findPeer () {}
  } as unknown as RecordRoutingComponents['dht']
  return { dht, served: () => served, ended: () => ended }
}

function routing (dht: RecordRoutingComponents['dht']): DefaultRecordRouting {
  return new DefaultRecordRouting({
    dht,
    datastore: new MemoryDatastore(),
    peerId: peer,
    logger: pino({ level: 'silent' }),
    shutdown: new AbortController().signal,
    isAlone: () => false
  })
}

describe('record lookups wait for a quorum of copies', () => {
  it(`answers after ${DEFAULT_GET_RECORD_QUORUM} copies and ends the walk there`, async () => {
    const alice = testUser()
    const copies = Array.from({ length: 12 }, () => alice.profile(1, 'Alice'))
    const stub = stubDht(copies)
    const record = await routing(stub.dht).getRecord(alice.key)
    assert.equal(record.seq, 1)
    assert.equal(stub.served(), DEFAULT_GET_RECORD_QUORUM)
    assert.ok(stub.ended(), 'the walk was closed')
  })

  it('answers with the newest copy among those it waited for', async () => {
    const bob = testUser()
    const stale = bob.profile(1, 'Bob')
    const stub = stubDht([stale, stale, bob.profile(3, 'Robert'), stale, bob.profile(4, 'never read')])
    const record = await routing(stub.dht).getRecord(bob.key)
    assert.equal(record.seq, 3, 'a newer copy among the first four outvotes the stale ones')
  })

  it('walks to the end when fewer copies exist, and a quorum of Infinity always does', async () => {
    const carol = testUser()
    const few = stubDht([carol.profile(1, 'Carol'), carol.profile(2, 'Caroline')])
    assert.equal((await routing(few.dht).getRecord(carol.key)).seq, 2)
    assert.equal(few.served(), 2)
    const all = stubDht(Array.from({ length: 9 }, (_, i) => carol.profile(i + 1, 'C')))
    assert.equal((await routing(all.dht).getRecord(carol.key, { quorum: Infinity })).seq, 9)
    assert.equal(all.served(), 9)
  })
})
