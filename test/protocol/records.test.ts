import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { generateSignedPreKey, verifyPreKeyBundle } from '../../protocol/e2e/index.js'
import {
  prekeyBundleFromRecord, assertNewerRecord, compareRecords, certifyDevice, createDevice, createDeviceList, createGroupGenesis, createUserIdentity, decodeDevicesPayload,
  decodeGroupRecordPayload, decodeLocationPayload, decodePrekeyPayload, decodeProfilePayload, decodeRecord,
  encodeDevicesPayload, encodeGroupRecordPayload, encodeLocationPayload, encodePrekeyPayload, encodeProfilePayload,
  encodeValue, groupGenesisBytes, groupIdFromGenesis, isErrorCode, MAX_RECORD_LIFETIME_MS, parseRecordKey,
  recordKey, selectRecord, signRecord, toX3dhBundle, utf8Encode, validateRecord, verifyDeviceList,
  type RecordInit, type RecordKind
} from '../../protocol/index.js'
import { code } from '../helpers/errors.js'

const NOW = 1_800_000_000_000
const HOUR = 3600_000

const alice = createUserIdentity(undefined, NOW)
const bob = createUserIdentity(undefined, NOW)
const phone = createDevice(undefined, NOW)
const phoneCert = certifyDevice(alice, phone, { now: NOW })
const rootSigner = { seed: alice.rootSeed, publicKey: alice.rootPublicKey }
const phoneSigner = { seed: phone.signingSeed, publicKey: phone.signingPublicKey, cert: phoneCert }

function init (kind: RecordKind, id: string, seq = 1, payload: Uint8Array = new Uint8Array([1, 2, 3])): RecordInit {
  return { kind, id, seq, expiresAt: NOW + HOUR, payload }
}

describe('record keys', () => {
  test('round trip', () => {
    const key = recordKey('location', phone.deviceId)
    assert.equal(new TextDecoder().decode(key), `/talaria/location/${phone.deviceId}`)
    assert.deepEqual(parseRecordKey(key), { kind: 'location', id: phone.deviceId })
  })
  test('bad keys are ERR_MALFORMED', () => {
    for (const k of ['/other/location/u1', '/talaria/nope/u1', '/talaria/location/', '/talaria/location/U1', '/talaria/location', `/talaria/location/${'a'.repeat(65)}`]) {
      assert.equal(code(() => parseRecordKey(utf8Encode(k))), 'ERR_MALFORMED', k)
    }
    assert.equal(code(() => parseRecordKey(new Uint8Array([0x2f, 0xff, 0xfe]))), 'ERR_MALFORMED')
  })
})

describe('validateRecord', () => {
  test('root-signed profile validates and round trips', () => {
    const payload = encodeProfilePayload({ displayName: 'Alice', status: 'hi' })
    const value = signRecord(init('profile', alice.userId, 3, payload), rootSigner, { now: NOW })
    const r = validateRecord(recordKey('profile', alice.userId), value, { now: NOW })
    assert.equal(r.seq, 3)
    assert.equal(r.issuedAt, NOW)
    assert.deepEqual(decodeProfilePayload(r.payload), { displayName: 'Alice', status: 'hi' })
    assert.deepEqual(decodeRecord(value), r)
  })

  test('device-signed location with its certificate validates', () => {
    const payload = encodeLocationPayload([{ device: phone.deviceId, node: '12D3KooWabc', addrs: ['/ip4/127.0.0.1/tcp/4001'], expires: NOW + HOUR }])
    const value = signRecord(init('location', phone.deviceId, 1, payload), phoneSigner, { now: NOW })
    const r = validateRecord(recordKey('location', phone.deviceId), value, { now: NOW })
    assert.equal(decodeLocationPayload(r.payload)[0]?.node, '12D3KooWabc')
    assert.equal(r.cert?.deviceId, phone.deviceId)
  })

  test('forged signature → ERR_BAD_SIGNATURE', () => {
    const value = signRecord(init('profile', alice.userId), rootSigner, { now: NOW })
    const r = decodeRecord(value)
    const sig = r.sig.slice()
    sig[5] = sig[5]! ^ 1
    const forged = encodeValue({ v: 1, kind: r.kind, id: r.id, seq: r.seq, issuedAt: r.issuedAt, expiresAt: r.expiresAt, payload: r.payload, signer: r.signer, sig })
    assert.equal(code(() => validateRecord(recordKey('profile', alice.userId), forged, { now: NOW })), 'ERR_BAD_SIGNATURE')
  })

  test('a payload changed after signing → ERR_BAD_SIGNATURE', () => {
    const r = decodeRecord(signRecord(init('profile', alice.userId), rootSigner, { now: NOW }))
    const forged = encodeValue({ v: 1, kind: r.kind, id: r.id, seq: r.seq + 1, issuedAt: r.issuedAt, expiresAt: r.expiresAt, payload: r.payload, signer: r.signer, sig: r.sig })
    assert.equal(code(() => validateRecord(recordKey('profile', alice.userId), forged, { now: NOW })), 'ERR_BAD_SIGNATURE')
  })

  test('signed by another user’s key → ERR_KEY_MISMATCH', () => {
    const value = signRecord(init('profile', alice.userId), { seed: bob.rootSeed, publicKey: bob.rootPublicKey }, { now: NOW })
    assert.equal(code(() => validateRecord(recordKey('profile', alice.userId), value, { now: NOW })), 'ERR_KEY_MISMATCH')
  })

  test('stored under another key → ERR_KEY_MISMATCH', () => {
    const value = signRecord(init('profile', alice.userId), rootSigner, { now: NOW })
    assert.equal(code(() => validateRecord(recordKey('profile', bob.userId), value, { now: NOW })), 'ERR_KEY_MISMATCH')
    assert.equal(code(() => validateRecord(recordKey('devices', alice.userId), value, { now: NOW })), 'ERR_KEY_MISMATCH')
  })

  test('expired → ERR_EXPIRED; too far ahead or issued in the future → ERR_MALFORMED', () => {
    const value = signRecord(init('profile', alice.userId), rootSigner, { now: NOW })
    assert.equal(code(() => validateRecord(recordKey('profile', alice.userId), value, { now: NOW + HOUR + 1 })), 'ERR_EXPIRED')
    const far = signRecord({ ...init('profile', alice.userId), expiresAt: NOW + MAX_RECORD_LIFETIME_MS + 1 }, rootSigner, { now: NOW })
    assert.equal(code(() => validateRecord(recordKey('profile', alice.userId), far, { now: NOW })), 'ERR_MALFORMED')
    const future = signRecord(init('profile', alice.userId), rootSigner, { now: NOW + 10 * 60_000 })
    assert.equal(code(() => validateRecord(recordKey('profile', alice.userId), future, { now: NOW })), 'ERR_MALFORMED')
  })

  test('location records are keyed by device id: a user id as the id → ERR_MALFORMED', () => {
    const value = signRecord(init('location', alice.userId), phoneSigner, { now: NOW })
    assert.equal(code(() => validateRecord(recordKey('location', alice.userId), value, { now: NOW })), 'ERR_MALFORMED')
  })

  test('location without a certificate (root key alone) → ERR_NOT_AUTHORIZED', () => {
    const value = signRecord(init('location', phone.deviceId), rootSigner, { now: NOW })
    assert.equal(code(() => validateRecord(recordKey('location', phone.deviceId), value, { now: NOW })), 'ERR_NOT_AUTHORIZED')
  })

  test('location signed by the root key with the device certificate validates', () => {
    const value = signRecord(init('location', phone.deviceId), { ...rootSigner, cert: phoneCert }, { now: NOW })
    assert.equal(validateRecord(recordKey('location', phone.deviceId), value, { now: NOW }).cert?.deviceId, phone.deviceId)
  })

  test('location of another device → ERR_KEY_MISMATCH', () => {
    const laptop = createDevice(undefined, NOW)
    const value = signRecord(init('location', laptop.deviceId), phoneSigner, { now: NOW })
    assert.equal(code(() => validateRecord(recordKey('location', laptop.deviceId), value, { now: NOW })), 'ERR_KEY_MISMATCH')
  })

  test('device key with a certificate for another device → ERR_NOT_AUTHORIZED', () => {
    const laptop = createDevice(undefined, NOW)
    const value = signRecord(init('location', phone.deviceId), { seed: laptop.signingSeed, publicKey: laptop.signingPublicKey, cert: phoneCert }, { now: NOW })
    assert.equal(code(() => validateRecord(recordKey('location', phone.deviceId), value, { now: NOW })), 'ERR_NOT_AUTHORIZED')
  })

  test('a certificate with a forged root signature → ERR_BAD_SIGNATURE', () => {
    const badCert = { ...phoneCert, sig: phoneCert.sig.slice() }
    badCert.sig[0] = badCert.sig[0]! ^ 0x80
    const value = signRecord(init('location', phone.deviceId), { ...phoneSigner, cert: badCert }, { now: NOW })
    assert.equal(code(() => validateRecord(recordKey('location', phone.deviceId), value, { now: NOW })), 'ERR_BAD_SIGNATURE')
  })

  test('devices and profile records refuse device signers', () => {
    const value = signRecord(init('devices', alice.userId), phoneSigner, { now: NOW })
    assert.equal(code(() => validateRecord(recordKey('devices', alice.userId), value, { now: NOW })), 'ERR_NOT_AUTHORIZED')
  })

  test('prekeys record: device-signed with its certificate; bundle signature checks', () => {
    const keys = { signingPrivateKey: phone.signingSeed, signingPublicKey: phone.signingPublicKey, identityPrivateKey: phone.exchangePrivateKey, identityPublicKey: phone.exchangePublicKey }
    const spk = generateSignedPreKey(keys, 1)
    const bundle = {
      identityKey: phone.exchangePublicKey,
      signedPrekey: { id: 1, key: spk.publicKey, sig: spk.signature },
      oneTimePrekeys: [{ id: 10, key: new Uint8Array(32).fill(9) }]
    }
    const value = signRecord(init('prekeys', phone.deviceId, 1, encodePrekeyPayload(bundle)), phoneSigner, { now: NOW })
    const r = validateRecord(recordKey('prekeys', phone.deviceId), value, { now: NOW })
    const decoded = decodePrekeyPayload(r.payload)
    assert.deepEqual(decoded, bundle)
    const x3dh = toX3dhBundle(decoded, r.cert!.signingKey)
    assert.equal(x3dh.oneTimePreKey?.id, 10)
    verifyPreKeyBundle(x3dh)
    assert.throws(() => verifyPreKeyBundle(toX3dhBundle(decoded, bob.rootPublicKey)), (err) => isErrorCode(err, 'ERR_BAD_SIGNATURE'))
    assert.equal(toX3dhBundle(decoded, phone.signingPublicKey, 5).oneTimePreKey, undefined)
    assert.deepEqual(prekeyBundleFromRecord(r), x3dh)
    const foreignIdentity = { ...bundle, identityKey: new Uint8Array(32).fill(3) }
    const mismatched = signRecord(init('prekeys', phone.deviceId, 2, encodePrekeyPayload(foreignIdentity)), phoneSigner, { now: NOW })
    assert.equal(code(() => prekeyBundleFromRecord(validateRecord(recordKey('prekeys', phone.deviceId), mismatched, { now: NOW }))), 'ERR_KEY_MISMATCH')
    // root-signed without a certificate cannot say which device it speaks for
    const rootValue = signRecord(init('prekeys', phone.deviceId), rootSigner, { now: NOW })
    assert.equal(code(() => validateRecord(recordKey('prekeys', phone.deviceId), rootValue, { now: NOW })), 'ERR_NOT_AUTHORIZED')
  })

  test('devices record carries a verifiable device list', () => {
    const list = createDeviceList(alice, [phoneCert], { now: NOW })
    const value = signRecord(init('devices', alice.userId, list.seq, encodeDevicesPayload(list)), rootSigner, { now: NOW })
    const r = validateRecord(recordKey('devices', alice.userId), value, { now: NOW })
    const decoded = decodeDevicesPayload(r.payload)
    verifyDeviceList(decoded)
    assert.deepEqual(decoded, list)
  })

  test('group record: creator signs; others need authorizeGroup', () => {
    const genesis = createGroupGenesis(alice.rootPublicKey, new Uint8Array([1]), { now: NOW })
    const groupId = groupIdFromGenesis(groupGenesisBytes(genesis))
    const payload = encodeGroupRecordPayload({ genesis, head: new Uint8Array([4, 5]) })
    const key = recordKey('group', groupId)
    const byCreator = signRecord(init('group', groupId, 1, payload), phoneSigner, { now: NOW })
    assert.deepEqual(decodeGroupRecordPayload(validateRecord(key, byCreator, { now: NOW }).payload).head, new Uint8Array([4, 5]))
    const byBob = signRecord(init('group', groupId, 1, payload), { seed: bob.rootSeed, publicKey: bob.rootPublicKey }, { now: NOW })
    assert.equal(code(() => validateRecord(key, byBob, { now: NOW })), 'ERR_NOT_AUTHORIZED')
    assert.equal(validateRecord(key, byBob, { now: NOW, authorizeGroup: (_r, _p, owner) => owner === bob.userId }).id, groupId)
    const otherGenesis = createGroupGenesis(alice.rootPublicKey, new Uint8Array(0), { now: NOW })
    const wrong = signRecord(init('group', groupId, 1, encodeGroupRecordPayload({ genesis: otherGenesis, head: new Uint8Array(0) })), rootSigner, { now: NOW })
    assert.equal(code(() => validateRecord(key, wrong, { now: NOW })), 'ERR_KEY_MISMATCH')
  })
})

describe('selectRecord', () => {
  const key = recordKey('profile', alice.userId)
  const v1 = signRecord(init('profile', alice.userId, 1), rootSigner, { now: NOW })
  const v2 = signRecord(init('profile', alice.userId, 2), rootSigner, { now: NOW })
  const v2later = signRecord(init('profile', alice.userId, 2), rootSigner, { now: NOW + 1000 })
  const forgedHigh = signRecord(init('profile', alice.userId, 99), { seed: bob.rootSeed, publicKey: bob.rootPublicKey }, { now: NOW })

  test('stale seq loses', () => {
    assert.equal(selectRecord(key, [v1, v2], { now: NOW + 2000 }), 1)
    assert.equal(selectRecord(key, [v2, v1], { now: NOW + 2000 }), 0)
  })
  test('same seq: later issuedAt wins', () => {
    assert.equal(selectRecord(key, [v2, v2later, v1], { now: NOW + 2000 }), 1)
  })
  test('invalid records never win', () => {
    assert.equal(selectRecord(key, [forgedHigh, v1], { now: NOW + 2000 }), 1)
    assert.equal(selectRecord(key, [new Uint8Array([0xc1]), v1, forgedHigh], { now: NOW + 2000 }), 1)
  })
  test('none valid → 0', () => {
    assert.equal(selectRecord(key, [forgedHigh, new Uint8Array(3)], { now: NOW }), 0)
    assert.equal(selectRecord(key, [], { now: NOW }), 0)
  })
  test('expired records lose to older valid ones', () => {
    const shortLived = signRecord({ ...init('profile', alice.userId, 5), expiresAt: NOW + 10 }, rootSigner, { now: NOW })
    assert.equal(selectRecord(key, [shortLived, v1], { now: NOW + 2000 }), 1)
  })
  test('assertNewerRecord refuses older and equal records with ERR_STALE', () => {
    const a = decodeRecord(v1)
    const b = decodeRecord(v2)
    assertNewerRecord(b, a)
    assert.equal(code(() => assertNewerRecord(a, b)), 'ERR_STALE')
    assert.equal(code(() => assertNewerRecord(b, b)), 'ERR_STALE')
    assert.ok(compareRecords(decodeRecord(v2later), b) > 0)
  })
  test('isErrorCode sees record codes', () => {
    try {
      validateRecord(key, forgedHigh, { now: NOW })
      assert.fail('expected a throw')
    } catch (err) {
      assert.ok(isErrorCode(err, 'ERR_KEY_MISMATCH'))
    }
  })
})
