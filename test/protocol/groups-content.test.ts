import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import {
  CONTENT_TYPES, decodeContent, encodeContent, isUnknownContentType, MAX_CONTENT_BYTES, MAX_GROUP_INVITE_OPS, type Content
} from '../../protocol/content.js'
import {
  certifyDevice, createDevice, createSenderKey, createUserIdentity, encodeSenderKeyDistribution, encodeValue, ProtocolError, senderKeyDistribution
} from '../../protocol/index.js'
import { createGroup, decodeGroupOp, MAX_GROUP_OP_BYTES } from '../../protocol/groups/index.js'
import { code } from '../helpers/errors.js'

const user = createUserIdentity()
const device = createDevice()
device.cert = certifyDevice(user, device)
const { id: group, op } = createGroup({ user: user.userId, device }, { settings: { name: 'g', joinPolicy: 'invite' } })
const distribution = encodeSenderKeyDistribution(senderKeyDistribution(createSenderKey()))

describe('group content types inside 1:1 sessions', () => {
  test('both are known content types', () => {
    assert.ok(CONTENT_TYPES.includes('senderKey'))
    assert.ok(CONTENT_TYPES.includes('groupInvite'))
  })

  test('senderKey round trip and validation', () => {
    const c: Content = { type: 'senderKey', group, epoch: 3, distribution }
    assert.deepEqual(decodeContent(encodeContent(c)), c)
    assert.equal(code(() => encodeContent({ ...c, distribution: distribution.subarray(1) })), 'ERR_MALFORMED')
    assert.equal(code(() => encodeContent({ ...c, group: 'gnope' as typeof group })), 'ERR_MALFORMED')
    assert.equal(code(() => encodeContent({ ...c, epoch: -1 })), 'ERR_MALFORMED')
    assert.equal(code(() => decodeContent(encodeValue({ v: 1, type: 'senderKey', group, epoch: 1 }))), 'ERR_MALFORMED')
  })

  test('groupInvite round trip; the ops decode on the other side', () => {
    const c: Content = { type: 'groupInvite', group, ops: [op.bytes] }
    const back = decodeContent(encodeContent(c))
    assert.deepEqual(back, c)
    assert.equal(back.type === 'groupInvite' && decodeGroupOp(back.ops[0]!).id, op.id)
  })

  test('groupInvite may carry the inviter\'s sender key; a malformed key is refused either way', () => {
    const c: Content = { type: 'groupInvite', group, ops: [op.bytes], senderKey: { epoch: 2, distribution } }
    assert.deepEqual(decodeContent(encodeContent(c)), c)
    assert.equal(code(() => encodeContent({ ...c, senderKey: { epoch: 2, distribution: distribution.subarray(1) } })), 'ERR_MALFORMED')
    assert.equal(code(() => encodeContent({ ...c, senderKey: { epoch: -1, distribution } })), 'ERR_MALFORMED')
    assert.equal(code(() => decodeContent(encodeValue({ v: 1, type: 'groupInvite', group, ops: [op.bytes], senderKey: { epoch: 1 } }))), 'ERR_MALFORMED')
    assert.equal(code(() => decodeContent(encodeValue({ v: 1, type: 'groupInvite', group, ops: [op.bytes], senderKey: 'k' }))), 'ERR_MALFORMED')
  })

  test('groupInvite limits: non-empty, at most MAX_GROUP_INVITE_OPS, each op and the whole bounded', () => {
    assert.equal(code(() => encodeContent({ type: 'groupInvite', group, ops: [] })), 'ERR_MALFORMED')
    assert.equal(code(() => encodeContent({ type: 'groupInvite', group, ops: Array(MAX_GROUP_INVITE_OPS + 1).fill(op.bytes) })), 'ERR_TOO_LARGE')
    assert.equal(code(() => encodeContent({ type: 'groupInvite', group, ops: [new Uint8Array(MAX_GROUP_OP_BYTES + 1)] })), 'ERR_TOO_LARGE')
    const big = new Uint8Array(MAX_GROUP_OP_BYTES)
    assert.equal(code(() => encodeContent({ type: 'groupInvite', group, ops: Array(Math.ceil(MAX_CONTENT_BYTES / big.length) + 1).fill(big) })), 'ERR_TOO_LARGE')
  })

  test('an unknown type is still recognisable as such', () => {
    try {
      decodeContent(encodeValue({ v: 1, type: 'groupPoll', group }))
      assert.fail('expected a throw')
    } catch (err) {
      assert.ok(isUnknownContentType(err))
    }
  })

  test('random bytes only ever throw ProtocolError', () => {
    const sample = encodeContent({ type: 'senderKey', group, epoch: 1, distribution })
    fc.assert(fc.property(fc.nat(sample.length - 1), fc.integer({ min: 1, max: 255 }), (i, x) => {
      const bytes = sample.slice()
      bytes[i]! ^= x
      try { decodeContent(bytes) } catch (err) { assert.ok(err instanceof ProtocolError, String(err)) }
    }), { numRuns: 1000 })
  })
})
