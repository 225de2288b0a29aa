import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { pino } from 'pino'
import { decodeRecord, encodeDevicesPayload, recordKey, signRecord, validateRecord, type SignedRecord } from '../../protocol/records.js'
import { addDeviceToList, certifyDevice } from '../../protocol/identity.js'
import { utf8Decode } from '../../protocol/bytes.js'
import { TalariaError } from '../../protocol/errors.js'
import { DefaultDirectory, encodeSignedRecord } from '../../node/messaging/directory.js'
import type { TalariaNode } from '../../node/index.js'
import { devicesRecord, locationRecord, locationRecordFor, testDevice, withdrawnLocationRecord } from './fixtures.js'

/** A stand-in DHT: a map of key → record bytes, counting lookups. */
function fakeDht () {
  const store = new Map<string, Uint8Array>()
  const calls = { get: 0, put: 0 }
  return {
    store,
    calls,
    components: {
      logger: pino({ level: 'silent' }),
      getRecord: async (key: Uint8Array): Promise<SignedRecord> => {
        calls.get++
        const bytes = store.get(utf8Decode(key))
        if (bytes === undefined) throw new TalariaError('ERR_RECORD_NOT_FOUND', 'none')
        return validateRecord(key, bytes)
      },
      putRecord: async (bytes: Uint8Array): Promise<void> => {
        calls.put++
        const r = decodeRecord(bytes)
        store.set(utf8Decode(recordKey(r.kind, r.id)), bytes)
      }
    }
  }
}

const fakeNode = { peerId: '12D3KooWtest', getMultiaddrs: () => ['/ip4/127.0.0.1/tcp/1'] } as unknown as TalariaNode

describe('directory (unit, stubbed DHT)', () => {
  test('publish validates each record: bad ones are reported by index, good ones stored', async () => {
    const dht = fakeDht()
    const dir = new DefaultDirectory(dht.components)
    const d = testDevice()
    const good = locationRecord(d, fakeNode)
    const bad = good.slice()
    bad[bad.length - 1] = (bad[bad.length - 1] ?? 0) ^ 1
    const r = await dir.publish([bad, good, new Uint8Array([1, 2, 3])])
    assert.equal(r.stored, 1)
    assert.deepEqual(r.failures.map((f) => f.index), [0, 2])
    assert.ok(r.failures.every((f) => f.code.startsWith('ERR_')))
    assert.equal(dht.calls.put, 1)
  })

  test('locate is cached: one DHT lookup for many calls; a miss is cached briefly; forgetLocation drops it', async () => {
    let now = 1_000_000
    const dht = fakeDht()
    const dir = new DefaultDirectory(dht.components, { now: () => now, negativeTtlMs: 100, locationTtlMs: 1000 })
    const d = testDevice()
    assert.equal(await dir.locate(d.device.deviceId), undefined)
    assert.equal(await dir.locate(d.device.deviceId), undefined)
    assert.equal(dht.calls.get, 1, 'the miss is cached')
    dht.store.set(utf8Decode(recordKey('location', d.device.deviceId)), locationRecord(d, fakeNode))
    now += 101
    assert.equal((await dir.locate(d.device.deviceId))?.node, fakeNode.peerId)
    for (let i = 0; i < 10; i++) await dir.locate(d.device.deviceId)
    assert.equal(dht.calls.get, 2)
    dir.forgetLocation(d.device.deviceId)
    await dir.locate(d.device.deviceId)
    assert.equal(dht.calls.get, 3)
  })

  test('a withdrawn (empty) location record means offline; publishing it replaces the cached one', async () => {
    const dht = fakeDht()
    const dir = new DefaultDirectory(dht.components)
    const d = testDevice()
    await dir.publish([locationRecord(d, fakeNode, 1)])
    assert.equal((await dir.locate(d.device.deviceId))?.node, fakeNode.peerId)
    await dir.publish([withdrawnLocationRecord(d, 2)])
    assert.equal(await dir.locate(d.device.deviceId), undefined)
    // an older record published later does not win in the cache
    await dir.publish([locationRecord(d, fakeNode, 1)])
    assert.equal(await dir.locate(d.device.deviceId), undefined)
  })

  test('lookup returns the device list bytes and nothing for unknown users; concurrent lookups share one DHT query', async () => {
    const dht = fakeDht()
    const dir = new DefaultDirectory(dht.components)
    const d = testDevice()
    const list = devicesRecord(d)
    dht.store.set(utf8Decode(recordKey('devices', d.user.userId)), list)
    const results = await Promise.all(Array.from({ length: 5 }, async () => await dir.lookup(d.user.userId)))
    assert.equal(dht.calls.get, 2, 'one query for the device list, one for the (missing) prekeys')
    for (const r of results) {
      assert.ok(r.deviceList !== undefined)
      assert.equal(decodeRecord(r.deviceList).seq, decodeRecord(list).seq)
      assert.deepEqual(r.prekeys, [])
    }
    assert.equal((await dir.getDeviceList(d.user.userId))?.devices[0]?.deviceId, d.device.deviceId)
    assert.deepEqual(await dir.lookup(testDevice().user.userId), { prekeys: [] })
  })

  test('a cached device list is decoded and verified once per record: repeated reads share it, a newer record replaces it', async () => {
    const dht = fakeDht()
    const dir = new DefaultDirectory(dht.components)
    const d = testDevice()
    dht.store.set(utf8Decode(recordKey('devices', d.user.userId)), devicesRecord(d))
    const first = await dir.getDeviceList(d.user.userId)
    assert.ok(first !== undefined)
    assert.equal(await dir.getDeviceList(d.user.userId), first, 'the same verified object, not a second verification')
    assert.equal(dir.cachedDeviceList(d.user.userId)?.list, first)
    const second = testDevice()
    const newer = addDeviceToList(first, d.user, certifyDevice(d.user, second.device))
    await dir.publish([signRecord(
      { kind: 'devices', id: d.user.userId, seq: newer.seq, expiresAt: Date.now() + 3600_000, payload: encodeDevicesPayload(newer) },
      { seed: d.user.rootSeed, publicKey: d.user.rootPublicKey }
    )])
    const after = dir.cachedDeviceList(d.user.userId)?.list
    assert.equal(after?.seq, first.seq + 1)
    assert.equal(after?.devices.length, 2)
  })

  test('the cache is bounded: the least recently used entry goes first', async () => {
    const dht = fakeDht()
    const dir = new DefaultDirectory(dht.components, { cacheSize: 2 })
    const devices = [testDevice(), testDevice(), testDevice()]
    await dir.publish(devices.map((d) => locationRecord(d, fakeNode)))
    dht.calls.get = 0
    // the first was evicted by the third: it costs a lookup again; the others do not
    await dir.locate(devices[2]!.device.deviceId)
    await dir.locate(devices[1]!.device.deviceId)
    assert.equal(dht.calls.get, 0)
    await dir.locate(devices[0]!.device.deviceId)
    assert.equal(dht.calls.get, 1)
  })

  test('mailbox proofs: the newest record placing a device on this node is kept and announced; a newer one elsewhere or its expiry drops it', async () => {
    let now = Date.now()
    const dht = fakeDht()
    const dir = new DefaultDirectory({ ...dht.components, nodeId: fakeNode.peerId }, { now: () => now })
    const d = testDevice()
    const heard: string[] = []
    const off = dir.onLocalLocation((device) => { heard.push(device) })
    assert.equal(dir.localLocationProof(d.ref.device), undefined)
    const here = locationRecordFor(d, fakeNode.peerId, { seq: 1, entryExpires: now + 60_000 })
    await dir.publish([here])
    assert.deepEqual(dir.localLocationProof(d.ref.device), here)
    assert.deepEqual(heard, [d.ref.device])
    // a record naming another node is no proof here and announces nothing
    const elsewhere = testDevice()
    await dir.publish([locationRecordFor(elsewhere, '12D3KooWelsewhere')])
    assert.equal(dir.localLocationProof(elsewhere.ref.device), undefined)
    assert.deepEqual(heard, [d.ref.device])
    // the entry's expiry ends the proof
    now += 60_001
    assert.equal(dir.localLocationProof(d.ref.device), undefined)
    now -= 60_001
    await dir.publish([locationRecordFor(d, fakeNode.peerId, { seq: 2 })])
    assert.ok(dir.localLocationProof(d.ref.device) !== undefined)
    // withdrawn: the newer empty record drops it, and an older record does not bring it back
    await dir.publish([withdrawnLocationRecord(d, 3)])
    assert.equal(dir.localLocationProof(d.ref.device), undefined)
    await dir.publish([locationRecordFor(d, fakeNode.peerId, { seq: 2 })])
    assert.equal(dir.localLocationProof(d.ref.device), undefined)
    assert.deepEqual(heard, [d.ref.device, d.ref.device])
    off()
    await dir.publish([locationRecordFor(d, fakeNode.peerId, { seq: 4 })])
    assert.equal(heard.length, 2, 'a removed listener hears nothing')
  })

  test('mailbox proofs are bounded: the least recently stored device goes first', async () => {
    const dht = fakeDht()
    const dir = new DefaultDirectory({ ...dht.components, nodeId: fakeNode.peerId }, { maxLocalProofs: 2 })
    const devices = [testDevice(), testDevice(), testDevice()]
    await dir.publish(devices.map((d) => locationRecord(d, fakeNode)))
    assert.deepEqual(devices.map((d) => dir.localLocationProof(d.ref.device) !== undefined), [false, true, true])
  })

  test('encodeSignedRecord rebuilds bytes that validate under the same key', () => {
    const d = testDevice()
    const bytes = locationRecord(d, fakeNode)
    const key = recordKey('location', d.device.deviceId)
    assert.deepEqual(validateRecord(key, encodeSignedRecord(validateRecord(key, bytes))), validateRecord(key, bytes))
  })
})
