import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import {
  certifyDevice, createDevice, createGroupGenesis, createUserIdentity, decodeValue, encodeValue, groupGenesisBytes, groupIdFromGenesis,
  ProtocolError
} from '../../protocol/index.js'
import {
  createGroup, decodeGenesisSettings, decodeGroupOp, encodeGenesisSettings, groupOpId, MAX_GROUP_OP_BYTES, MAX_OP_PARENTS,
  parseGroupOpId, signGroupOp, type GroupOpBody, type GroupSettings
} from '../../protocol/groups/index.js'
import { code } from '../helpers/errors.js'

const NOW = 1_800_000_000_000

function member () {
  const u = createUserIdentity(undefined, NOW)
  const device = createDevice(undefined, NOW)
  device.cert = certifyDevice(u, device, { now: NOW })
  return { user: u.userId, device, identity: u }
}

const alice = member()
const bob = member()
const settings: GroupSettings = { name: 'Friends', joinPolicy: 'invite' }
const created = createGroup(alice, { settings, now: NOW })

/** Re-encodes a decoded op wire map with one field changed (no re-signing). */
function tamper (bytes: Uint8Array, change: (o: Record<string, unknown>) => void): Uint8Array {
  const o = decodeValue(bytes, MAX_GROUP_OP_BYTES) as Record<string, unknown>
  change(o)
  return encodeValue(o)
}

describe('genesis settings', () => {
  test('round trip with every optional field', () => {
    const full: GroupSettings = {
      name: 'Room', avatar: new Uint8Array([1, 2]), joinPolicy: 'open', filter: { words: ['bad', 'worse'], mode: 'mask' },
      rateLimit: { messages: 5, windowMs: 1000 }, historyLimit: 100, retentionMs: 86_400_000
    }
    assert.deepEqual(decodeGenesisSettings(encodeGenesisSettings({ kind: 'room', settings: full })), { kind: 'room', settings: full })
  })

  test('limits are enforced', () => {
    assert.equal(code(() => encodeGenesisSettings({ kind: 'group', settings: { name: 'x'.repeat(65), joinPolicy: 'open' } })), 'ERR_TOO_LARGE')
    assert.equal(code(() => encodeGenesisSettings({ kind: 'group', settings: { name: 'x', joinPolicy: 'open', filter: { words: [''], mode: 'block' } } })), 'ERR_MALFORMED')
    assert.equal(code(() => encodeGenesisSettings({ kind: 'group', settings: { name: 'x', joinPolicy: 'open', rateLimit: { messages: 0, windowMs: 1 } } })), 'ERR_MALFORMED')
    assert.equal(code(() => encodeGenesisSettings({ kind: 'group', settings: { name: 'x', joinPolicy: 'open', rateLimit: { messages: 1, windowMs: 3_600_001 } } })), 'ERR_MALFORMED')
    assert.equal(code(() => encodeGenesisSettings({ kind: 'group', settings: { name: 'x', joinPolicy: 'open', historyLimit: 0 } })), 'ERR_MALFORMED')
    assert.equal(code(() => encodeGenesisSettings({ kind: 'group', settings: { name: 'x', joinPolicy: 'open', retentionMs: 366 * 86_400_000 } })), 'ERR_MALFORMED')
    assert.equal(code(() => encodeGenesisSettings({ kind: 'chat' as 'group', settings })), 'ERR_MALFORMED')
    assert.equal(code(() => decodeGenesisSettings(encodeValue({ v: 2, kind: 'group', settings }))), 'ERR_UNSUPPORTED_VERSION')
  })
})

describe('op ids', () => {
  test('derived from the bytes, 33 characters, parsed strictly', () => {
    const id = groupOpId(created.op.bytes)
    assert.equal(id, created.op.id)
    assert.equal(id.length, 33)
    assert.equal(parseGroupOpId(id), id)
    for (const bad of [42, '', id.slice(0, 32), 'g' + id.slice(1), id.toUpperCase(), id.slice(0, 32) + '1']) {
      assert.equal(code(() => parseGroupOpId(bad)), 'ERR_MALFORMED')
    }
  })
})

describe('op codec', () => {
  test('create: round trip, the genesis hashes to the id', () => {
    const op = decodeGroupOp(created.op.bytes)
    assert.deepEqual(op, created.op)
    assert.equal(created.id, groupIdFromGenesis(groupGenesisBytes(created.genesis)))
    assert.deepEqual(op.body, { type: 'create', genesis: created.genesis })
    assert.deepEqual(op.parents, [])
  })

  test('every body type round trips', () => {
    const parents = [created.op.id]
    const bodies: GroupOpBody[] = [
      { type: 'invite', users: [bob.user] }, { type: 'request' }, { type: 'approve', users: [bob.user] }, { type: 'join' },
      { type: 'add', users: [bob.user, alice.user] }, { type: 'remove', users: [bob.user] }, { type: 'leave' },
      { type: 'role', user: bob.user, role: 'admin' }, { type: 'mute', users: [bob.user], until: NOW + 1 }, { type: 'muteAll', on: true },
      { type: 'settings', settings: { name: 'n', joinPolicy: 'approval', avatar: new Uint8Array(3) } }, { type: 'transfer', user: bob.user },
      { type: 'ban', users: [bob.user] }, { type: 'unban', users: [bob.user] }, { type: 'dismiss' }
    ]
    for (const body of bodies) {
      const op = signGroupOp({ group: created.id, parents, body, at: NOW }, alice)
      assert.deepEqual(decodeGroupOp(op.bytes), op, body.type)
      assert.deepEqual(op.body, body)
    }
  })

  test('parents are sorted and deduplicated when signing', () => {
    const other = signGroupOp({ group: created.id, parents: [created.op.id], body: { type: 'leave' }, at: NOW }, bob)
    const op = signGroupOp({ group: created.id, parents: [other.id, created.op.id, other.id], body: { type: 'leave' }, at: NOW }, bob)
    assert.deepEqual(op.parents, [other.id, created.op.id].sort())
  })

  test('a device without a certificate cannot sign', () => {
    const d = createDevice()
    assert.equal(code(() => signGroupOp({ group: created.id, parents: [created.op.id], body: { type: 'leave' } }, { user: alice.user, device: d })), 'ERR_MALFORMED')
  })

  const leave = signGroupOp({ group: created.id, parents: [created.op.id], body: { type: 'leave' }, at: NOW }, bob)

  test('a forged signature is ERR_BAD_SIGNATURE', () => {
    const bytes = tamper(leave.bytes, (o) => { const sig = (o.sig as Uint8Array).slice(); sig[0]! ^= 1; o.sig = sig })
    assert.equal(code(() => decodeGroupOp(bytes)), 'ERR_BAD_SIGNATURE')
  })

  test('tampered fields are ERR_BAD_SIGNATURE', () => {
    assert.equal(code(() => decodeGroupOp(tamper(leave.bytes, (o) => { o.at = NOW + 1 }))), 'ERR_BAD_SIGNATURE')
    assert.equal(code(() => decodeGroupOp(tamper(leave.bytes, (o) => { o.body = { type: 'join' } }))), 'ERR_BAD_SIGNATURE')
  })

  test('a certificate of another user is ERR_KEY_MISMATCH', () => {
    const bytes = tamper(leave.bytes, (o) => { o.author = { user: alice.user, device: bob.device.deviceId } })
    assert.equal(code(() => decodeGroupOp(bytes)), 'ERR_KEY_MISMATCH')
    const bytes2 = tamper(leave.bytes, (o) => { o.author = { user: bob.user, device: alice.device.deviceId } })
    assert.equal(code(() => decodeGroupOp(bytes2)), 'ERR_KEY_MISMATCH')
  })

  test('a certificate with a bad root signature is ERR_BAD_SIGNATURE', () => {
    const bytes = tamper(leave.bytes, (o) => { const c = o.cert as Record<string, unknown>; c.issuedAt = NOW + 5 })
    assert.equal(code(() => decodeGroupOp(bytes)), 'ERR_BAD_SIGNATURE')
  })

  test('oversize input is ERR_TOO_LARGE before parsing', () => {
    assert.equal(code(() => decodeGroupOp(new Uint8Array(MAX_GROUP_OP_BYTES + 1))), 'ERR_TOO_LARGE')
  })

  test('bad parents are ERR_MALFORMED', () => {
    const ids = Array.from({ length: MAX_OP_PARENTS + 1 }, (_, i) => groupOpId(new Uint8Array([i]))).sort()
    assert.equal(code(() => decodeGroupOp(tamper(leave.bytes, (o) => { o.parents = [ids[1], ids[0]] }))), 'ERR_MALFORMED')
    assert.equal(code(() => decodeGroupOp(tamper(leave.bytes, (o) => { o.parents = [ids[0], ids[0]] }))), 'ERR_MALFORMED')
    assert.equal(code(() => decodeGroupOp(tamper(leave.bytes, (o) => { o.parents = [] }))), 'ERR_MALFORMED')
    assert.equal(code(() => decodeGroupOp(tamper(leave.bytes, (o) => { o.parents = ['nope'] }))), 'ERR_MALFORMED')
    assert.equal(code(() => decodeGroupOp(tamper(leave.bytes, (o) => { o.parents = ids }))), 'ERR_TOO_LARGE')
    assert.equal(code(() => decodeGroupOp(tamper(created.op.bytes, (o) => { o.parents = [ids[0]] }))), 'ERR_MALFORMED')
  })

  test('bad user lists are ERR_MALFORMED', () => {
    const add = signGroupOp({ group: created.id, parents: [created.op.id], body: { type: 'add', users: [bob.user] }, at: NOW }, alice)
    assert.equal(code(() => decodeGroupOp(tamper(add.bytes, (o) => { o.body = { type: 'add', users: [] } }))), 'ERR_MALFORMED')
    assert.equal(code(() => decodeGroupOp(tamper(add.bytes, (o) => { o.body = { type: 'add', users: [bob.user, bob.user] } }))), 'ERR_MALFORMED')
    assert.equal(code(() => decodeGroupOp(tamper(add.bytes, (o) => { o.body = { type: 'add', users: Array(257).fill(bob.user) } }))), 'ERR_TOO_LARGE')
  })

  test('a non-canonical encoding is ERR_MALFORMED', () => {
    const bytes = tamper(leave.bytes, (o) => { const sig = o.sig; delete o.sig; o.sig = sig; const v = o.v; delete o.v; o.v = v })
    assert.equal(code(() => decodeGroupOp(bytes)), 'ERR_MALFORMED')
  })

  test('a genesis that does not hash to the group id is ERR_KEY_MISMATCH', () => {
    const other = createGroupGenesis(alice.identity.rootPublicKey, created.genesis.settings, { now: NOW })
    // signing decodes what it signs, so the forgery fails there already
    assert.equal(code(() => signGroupOp({ group: created.id, parents: [], body: { type: 'create', genesis: other }, at: NOW }, alice)), 'ERR_KEY_MISMATCH')
    const otherId = groupIdFromGenesis(groupGenesisBytes(other))
    assert.equal(code(() => decodeGroupOp(tamper(created.op.bytes, (o) => { o.group = otherId }))), 'ERR_KEY_MISMATCH')
  })

  test('a create by someone else than the genesis creator is ERR_KEY_MISMATCH', () => {
    assert.equal(code(() => signGroupOp({ group: created.id, parents: [], body: { type: 'create', genesis: created.genesis }, at: NOW }, bob)), 'ERR_KEY_MISMATCH')
  })

  test('a genesis with undecodable settings is ERR_MALFORMED', () => {
    const genesis = createGroupGenesis(alice.identity.rootPublicKey, new Uint8Array([0xc1]), { now: NOW })
    const group = groupIdFromGenesis(groupGenesisBytes(genesis))
    assert.equal(code(() => signGroupOp({ group, parents: [], body: { type: 'create', genesis }, at: NOW }, alice)), 'ERR_MALFORMED')
  })
})

describe('op decoding fuzz', () => {
  test('random bytes only ever throw ProtocolError', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => {
      try { decodeGroupOp(bytes) } catch (err) { assert.ok(err instanceof ProtocolError, String(err)) }
    }), { numRuns: 2000 })
  })

  test('mutated valid ops only ever throw ProtocolError', () => {
    fc.assert(fc.property(fc.nat(created.op.bytes.length - 1), fc.integer({ min: 1, max: 255 }), (i, x) => {
      const bytes = created.op.bytes.slice()
      bytes[i]! ^= x
      try { decodeGroupOp(bytes) } catch (err) { assert.ok(err instanceof ProtocolError, String(err)) }
    }), { numRuns: 1000 })
  })
})

