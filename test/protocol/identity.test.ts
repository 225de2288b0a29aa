import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import {
  addDeviceToList, certifyDevice, createDevice, createDeviceList, createUserIdentity, decodeDeviceCertificate, decodeDeviceIdentity,
  decodeDeviceList, decodeUserIdentity, deviceIdFromKey, encodeDeviceCertificate, encodeDeviceIdentity, encodeDeviceList,
  encodeUserIdentity, isDeviceActive, isErrorCode, nobleCrypto, revokeDeviceFromList, userIdFromKey, verifyDeviceCertificate,
  verifyDeviceList, encodeValue
} from '../../protocol/index.js'

const NOW = 1_800_000_000_000
const has = (code: string) => (err: unknown): boolean => isErrorCode(err, code)

describe('identities', () => {
  const user = createUserIdentity(undefined, NOW)
  const device = createDevice(undefined, NOW)

  test('user and device ids derive from their keys', () => {
    assert.equal(user.userId, userIdFromKey(user.rootPublicKey))
    assert.equal(device.deviceId, deviceIdFromKey(device.signingPublicKey))
    assert.equal(nobleCrypto.x25519PublicKey(device.exchangePrivateKey).toString(), device.exchangePublicKey.toString())
  })

  test('identity files round trip, with and without a certificate', () => {
    assert.deepEqual(decodeUserIdentity(encodeUserIdentity(user)), user)
    assert.deepEqual(decodeDeviceIdentity(encodeDeviceIdentity(device)), device)
    const certified = { ...device, cert: certifyDevice(user, device, { now: NOW }) }
    assert.deepEqual(decodeDeviceIdentity(encodeDeviceIdentity(certified)), certified)
  })

  test('identity files whose parts disagree → ERR_KEY_MISMATCH', () => {
    const other = createUserIdentity(undefined, NOW)
    assert.throws(() => decodeUserIdentity(encodeUserIdentity({ ...user, rootSeed: other.rootSeed })), has('ERR_KEY_MISMATCH'))
    assert.throws(() => decodeUserIdentity(encodeUserIdentity({ ...user, userId: other.userId })), has('ERR_KEY_MISMATCH'))
    const otherDevice = createDevice(undefined, NOW)
    assert.throws(() => decodeDeviceIdentity(encodeDeviceIdentity({ ...device, exchangePrivateKey: otherDevice.exchangePrivateKey })), has('ERR_KEY_MISMATCH'))
    assert.throws(() => decodeDeviceIdentity(encodeDeviceIdentity({ ...device, cert: certifyDevice(user, otherDevice, { now: NOW }) })), has('ERR_KEY_MISMATCH'))
  })

  test('identity files of another type or version are refused', () => {
    assert.throws(() => decodeDeviceIdentity(encodeUserIdentity(user)), has('ERR_MALFORMED'))
    assert.throws(() => decodeUserIdentity(encodeValue({ v: 2, type: 'user' })), has('ERR_UNSUPPORTED_VERSION'))
  })
})

describe('device certificates', () => {
  const user = createUserIdentity(undefined, NOW)
  const device = createDevice(undefined, NOW)
  const cert = certifyDevice(user, device, { now: NOW })

  test('a certificate verifies offline and round trips', () => {
    verifyDeviceCertificate(cert)
    verifyDeviceCertificate(cert, nobleCrypto)
    const decoded = decodeDeviceCertificate(encodeDeviceCertificate(cert))
    assert.deepEqual(decoded, cert)
    verifyDeviceCertificate(decoded)
  })

  test('changed fields or a foreign root → rejected', () => {
    const other = createDevice(undefined, NOW)
    assert.throws(() => verifyDeviceCertificate({ ...cert, exchangeKey: other.exchangePublicKey }), has('ERR_BAD_SIGNATURE'))
    assert.throws(() => verifyDeviceCertificate({ ...cert, issuedAt: NOW + 1 }), has('ERR_BAD_SIGNATURE'))
    assert.throws(() => verifyDeviceCertificate({ ...cert, signingKey: other.signingPublicKey }), has('ERR_KEY_MISMATCH'))
    const mallory = createUserIdentity(undefined, NOW)
    assert.throws(() => verifyDeviceCertificate({ ...cert, rootKey: mallory.rootPublicKey }), has('ERR_KEY_MISMATCH'))
    const signedByMallory = certifyDevice(mallory, device, { now: NOW })
    assert.throws(() => verifyDeviceCertificate({ ...signedByMallory, userId: user.userId, rootKey: user.rootPublicKey }), has('ERR_BAD_SIGNATURE'))
  })
})

describe('device lists', () => {
  const user = createUserIdentity(undefined, NOW)
  const phone = createDevice(undefined, NOW)
  const laptop = createDevice(undefined, NOW)
  const phoneCert = certifyDevice(user, phone, { now: NOW })
  const laptopCert = certifyDevice(user, laptop, { now: NOW })

  test('add and revoke: seq increases, revoked devices are listed, signatures verify', () => {
    const l1 = createDeviceList(user, [phoneCert], { now: NOW })
    assert.equal(l1.seq, 1)
    verifyDeviceList(l1)
    const l2 = addDeviceToList(l1, user, laptopCert, { now: NOW + 1 })
    assert.equal(l2.seq, 2)
    assert.equal(isDeviceActive(l2, laptop.deviceId), true)
    const l3 = revokeDeviceFromList(l2, user, phone.deviceId, { now: NOW + 2 })
    assert.equal(l3.seq, 3)
    assert.equal(isDeviceActive(l3, phone.deviceId), false)
    assert.deepEqual(l3.revoked, [{ deviceId: phone.deviceId, revokedAt: NOW + 2 }])
    verifyDeviceList(l3, nobleCrypto)
    assert.deepEqual(decodeDeviceList(encodeDeviceList(l3)), l3)
    assert.throws(() => addDeviceToList(l3, user, phoneCert), has('ERR_NOT_AUTHORIZED'))
  })

  test('tampered lists and foreign devices → rejected', () => {
    const l1 = createDeviceList(user, [phoneCert], { now: NOW })
    assert.throws(() => verifyDeviceList({ ...l1, seq: 9 }), has('ERR_BAD_SIGNATURE'))
    assert.throws(() => verifyDeviceList({ ...l1, devices: [] }), has('ERR_BAD_SIGNATURE'))
    const other = createUserIdentity(undefined, NOW)
    assert.throws(() => addDeviceToList(l1, user, certifyDevice(other, laptop, { now: NOW })), has('ERR_KEY_MISMATCH'))
    assert.throws(() => revokeDeviceFromList(l1, other, phone.deviceId), has('ERR_KEY_MISMATCH'))
  })
})
