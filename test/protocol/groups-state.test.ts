import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { certifyDevice, createDevice, createUserIdentity, MAX_CLOCK_SKEW_MS, type UserId } from '../../protocol/index.js'
import {
  createGroup, GroupLog, signGroupOp, type GroupKind, type GroupOp, type GroupOpBody, type GroupOpId, type GroupSettings, type GroupState
} from '../../protocol/groups/index.js'
import { code } from '../helpers/errors.js'

const NOW = 1_800_000_000_000

interface Member { user: UserId, device: ReturnType<typeof createDevice> }

function member (): Member {
  const u = createUserIdentity(undefined, NOW)
  const device = createDevice(undefined, NOW)
  device.cert = certifyDevice(u, device, { now: NOW })
  return { user: u.userId, device }
}

const [owner, admin, admin2, alice, bob, carol] = Array.from({ length: 6 }, member) as [Member, Member, Member, Member, Member, Member]

/** A log where `owner` created the group, `admin` and `admin2` are admins and `alice` a member. */
function setup (joinPolicy: GroupSettings['joinPolicy'] = 'invite', kind: GroupKind = 'group'): { log: GroupLog, ops: GroupOp[] } {
  const { op } = createGroup(owner, { kind, settings: { name: 'g', joinPolicy }, now: NOW })
  const log = GroupLog.create(op)
  const ops = [op]
  const push = (o: GroupOp): void => { assert.equal(log.add(o).status, 'applied'); ops.push(o) }
  push(sign(log, owner, { type: 'add', users: [admin.user, admin2.user, alice.user] }))
  push(sign(log, owner, { type: 'role', user: admin.user, role: 'admin' }))
  push(sign(log, owner, { type: 'role', user: admin2.user, role: 'admin' }))
  return { log, ops }
}

function sign (log: GroupLog, who: Member, body: GroupOpBody, parents: GroupOpId[] = log.state.heads, at = NOW): GroupOp {
  return signGroupOp({ group: log.id, parents, body, at }, who)
}

/** Adds an op on the current heads; returns the result. */
function run (log: GroupLog, who: Member, body: GroupOpBody, at = NOW): ReturnType<GroupLog['add']> {
  return log.add(sign(log, who, body, log.state.heads, at))
}

function expectApplied (log: GroupLog, who: Member, body: GroupOpBody): void {
  const r = run(log, who, body)
  assert.equal(r.status, 'applied', `${body.type}: ${r.code ?? ''} ${r.reason ?? ''}`)
}

function expectRejected (log: GroupLog, who: Member, body: GroupOpBody, expected: string): void {
  assert.deepEqual(log.check(who.user, body, NOW)?.code, expected, `check ${body.type}`)
  const r = run(log, who, body)
  assert.equal(r.status, 'rejected', body.type)
  assert.equal(r.code, expected, `${body.type}: ${r.reason ?? ''}`)
}

/** The parts of a state that must agree between nodes. */
function summary (s: GroupState): unknown {
  return {
    members: [...s.members].sort(([a], [b]) => a < b ? -1 : 1),
    invited: [...s.invited].sort(),
    requests: [...s.requests].sort(),
    banned: [...s.banned].sort(),
    muted: [...s.muted ?? []].sort(([a], [b]) => a < b ? -1 : 1),
    settings: s.settings,
    mutedAll: s.mutedAll,
    dismissed: s.dismissed,
    epoch: s.epoch,
    heads: s.heads,
    version: s.version
  }
}

describe('group log basics', () => {
  test('create makes the creator owner', () => {
    const { op, id } = createGroup(owner, { settings: { name: 'g', joinPolicy: 'invite' }, now: NOW })
    const log = GroupLog.create(op)
    assert.equal(log.id, id)
    assert.equal(log.role(owner.user), 'owner')
    assert.deepEqual(log.memberUsers(), [owner.user])
    assert.equal(log.state.kind, 'group')
    assert.equal(log.state.creator, owner.user)
    assert.deepEqual(log.state.heads, [op.id])
    assert.equal(log.state.version, 1)
    assert.equal(log.state.epoch, 0)
    assert.equal(log.status(op.id), 'applied')
    assert.equal(log.size, 1)
  })

  test('a log starts from a create op, and takes ops of its group only', () => {
    const { log } = setup()
    const leave = sign(log, alice, { type: 'leave' })
    assert.equal(code(() => GroupLog.create(leave)), 'ERR_MALFORMED')
    const other = setup().log
    assert.equal(code(() => other.add(leave)), 'ERR_MALFORMED')
  })

  test('a second add of an op is a duplicate', () => {
    const { log, ops } = setup()
    assert.deepEqual(log.add(ops[1]!), { status: 'duplicate', changed: [] })
  })

  test('a second create op of the same group is rejected', () => {
    const { log, ops } = setup()
    const genesis = ops[0]!.body as Extract<GroupOpBody, { type: 'create' }>
    const again = signGroupOp({ group: log.id, parents: [], body: genesis, at: NOW + 1 }, owner)
    log.add(again)
    // the lowest id wins, so every node picks the same genesis whichever it saw first
    const [first, second] = [ops[0]!, again].sort((x, y) => x.id < y.id ? -1 : 1)
    assert.equal(log.status(first!.id), 'applied')
    assert.equal(log.status(second!.id), 'rejected')
    assert.equal(log.rejection(second!.id)?.code, 'ERR_BAD_REQUEST')
    assert.equal(log.state.version, 4)
  })

  test('state snapshots do not change afterwards', () => {
    const { log } = setup()
    const before = log.state
    expectApplied(log, alice, { type: 'leave' })
    assert.ok(before.members.has(alice.user))
    assert.ok(!log.state.members.has(alice.user))
  })
})

describe('role rules', () => {
  test('invite then join (policy invite)', () => {
    const { log } = setup('invite')
    expectRejected(log, bob, { type: 'join' }, 'ERR_FORBIDDEN')
    expectRejected(log, bob, { type: 'invite', users: [carol.user] }, 'ERR_NOT_MEMBER')
    expectApplied(log, alice, { type: 'invite', users: [bob.user] })
    assert.ok(log.state.invited.has(bob.user))
    expectApplied(log, bob, { type: 'join' })
    assert.equal(log.role(bob.user), 'member')
    assert.ok(!log.state.invited.has(bob.user))
    expectRejected(log, bob, { type: 'join' }, 'ERR_BAD_REQUEST')
  })

  test('request then approve (policy approval)', () => {
    const { log } = setup('approval')
    expectApplied(log, bob, { type: 'request' })
    assert.ok(log.state.requests.has(bob.user))
    expectRejected(log, alice, { type: 'approve', users: [bob.user] }, 'ERR_FORBIDDEN')
    expectRejected(log, admin, { type: 'approve', users: [carol.user] }, 'ERR_BAD_REQUEST')
    expectApplied(log, admin, { type: 'approve', users: [bob.user] })
    assert.ok(log.isMember(bob.user))
    assert.ok(!log.state.requests.has(bob.user))
    expectRejected(log, alice, { type: 'request' }, 'ERR_BAD_REQUEST')
  })

  test('requests need policy approval; joins need open or an invite', () => {
    const { log } = setup('invite')
    expectRejected(log, bob, { type: 'request' }, 'ERR_FORBIDDEN')
    const open = setup('open').log
    expectApplied(open, bob, { type: 'join' })
  })

  test('add: admins, or any member when open; never banned users', () => {
    const { log } = setup('invite')
    expectRejected(log, alice, { type: 'add', users: [bob.user] }, 'ERR_FORBIDDEN')
    expectRejected(log, bob, { type: 'add', users: [carol.user] }, 'ERR_NOT_MEMBER')
    expectApplied(log, admin, { type: 'add', users: [bob.user] })
    expectApplied(log, admin, { type: 'ban', users: [carol.user] })
    expectRejected(log, admin, { type: 'add', users: [carol.user] }, 'ERR_BANNED')
    const open = setup('open').log
    expectApplied(open, alice, { type: 'add', users: [bob.user] })
  })

  test('remove: admin+, ranks no higher than the actor, never the owner', () => {
    const { log } = setup()
    expectRejected(log, alice, { type: 'remove', users: [owner.user] }, 'ERR_FORBIDDEN')
    expectRejected(log, admin, { type: 'remove', users: [owner.user] }, 'ERR_FORBIDDEN')
    expectRejected(log, alice, { type: 'remove', users: [admin.user] }, 'ERR_FORBIDDEN')
    expectRejected(log, admin, { type: 'remove', users: [bob.user] }, 'ERR_BAD_REQUEST')
    expectRejected(log, bob, { type: 'remove', users: [alice.user] }, 'ERR_NOT_MEMBER')
    expectApplied(log, admin, { type: 'remove', users: [alice.user] })
    assert.equal(log.state.epoch, 1)
    expectApplied(log, admin, { type: 'remove', users: [admin2.user] })
    assert.equal(log.state.epoch, 2)
    assert.deepEqual(log.memberUsers(), [owner.user, admin.user].sort())
  })

  test('leave: members but not the owner', () => {
    const { log } = setup()
    expectRejected(log, owner, { type: 'leave' }, 'ERR_FORBIDDEN')
    expectRejected(log, bob, { type: 'leave' }, 'ERR_NOT_MEMBER')
    expectApplied(log, alice, { type: 'leave' })
    assert.equal(log.state.epoch, 1)
  })

  test('role: owner only, members only, not the owner', () => {
    const { log } = setup()
    expectRejected(log, admin, { type: 'role', user: alice.user, role: 'admin' }, 'ERR_FORBIDDEN')
    expectRejected(log, owner, { type: 'role', user: bob.user, role: 'admin' }, 'ERR_BAD_REQUEST')
    expectRejected(log, owner, { type: 'role', user: owner.user, role: 'member' }, 'ERR_FORBIDDEN')
    expectApplied(log, owner, { type: 'role', user: admin.user, role: 'member' })
    assert.equal(log.role(admin.user), 'member')
  })

  test('mute: admin+, lower ranks only; canSend says ERR_MUTED until then', () => {
    const { log } = setup('open')
    expectRejected(log, alice, { type: 'mute', users: [admin.user], until: NOW + 1000 }, 'ERR_FORBIDDEN')
    expectRejected(log, admin, { type: 'mute', users: [admin2.user], until: NOW + 1000 }, 'ERR_FORBIDDEN')
    expectApplied(log, admin, { type: 'mute', users: [alice.user], until: NOW + 1000 })
    assert.equal(log.canSend(alice.user, NOW)?.code, 'ERR_MUTED')
    assert.equal(log.canSend(alice.user, NOW + 1000), null)
    assert.equal(log.state.members.get(alice.user)?.mutedUntil, NOW + 1000)
    expectApplied(log, admin, { type: 'mute', users: [alice.user], until: 0 })
    assert.equal(log.canSend(alice.user, NOW), null)
    assert.equal(log.state.members.get(alice.user)?.mutedUntil, 0)
    // a non-member's mute follows it when it joins
    expectApplied(log, admin, { type: 'mute', users: [bob.user], until: NOW + 1000 })
    assert.equal(log.state.muted?.get(bob.user), NOW + 1000)
    expectApplied(log, bob, { type: 'join' })
    assert.equal(log.state.members.get(bob.user)?.mutedUntil, NOW + 1000)
    assert.equal(log.canSend(bob.user, NOW)?.code, 'ERR_MUTED')
  })

  test('muteAll: only admins and the owner may send', () => {
    const { log } = setup()
    expectRejected(log, alice, { type: 'muteAll', on: true }, 'ERR_FORBIDDEN')
    expectApplied(log, admin, { type: 'muteAll', on: true })
    assert.equal(log.canSend(alice.user, NOW)?.code, 'ERR_MUTED')
    assert.equal(log.canSend(admin.user, NOW), null)
    assert.equal(log.canSend(owner.user, NOW), null)
    expectApplied(log, admin, { type: 'muteAll', on: false })
    assert.equal(log.canSend(alice.user, NOW), null)
  })

  test('settings: admin+', () => {
    const { log } = setup()
    expectRejected(log, alice, { type: 'settings', settings: { name: 'x', joinPolicy: 'open' } }, 'ERR_FORBIDDEN')
    expectApplied(log, admin, { type: 'settings', settings: { name: 'x', joinPolicy: 'open' } })
    assert.deepEqual(log.state.settings, { name: 'x', joinPolicy: 'open' })
    assert.equal(log.state.kind, 'group')
  })

  test('transfer: owner only, to a member', () => {
    const { log } = setup()
    expectRejected(log, admin, { type: 'transfer', user: alice.user }, 'ERR_FORBIDDEN')
    expectRejected(log, owner, { type: 'transfer', user: bob.user }, 'ERR_BAD_REQUEST')
    expectApplied(log, owner, { type: 'transfer', user: alice.user })
    assert.equal(log.role(alice.user), 'owner')
    assert.equal(log.role(owner.user), 'admin')
    expectApplied(log, owner, { type: 'leave' })
  })

  test('ban: admin+, lower ranks, removes members (epoch), blocks joining and sending; unban lifts it', () => {
    const { log } = setup('open')
    expectRejected(log, alice, { type: 'ban', users: [bob.user] }, 'ERR_FORBIDDEN')
    expectRejected(log, admin, { type: 'ban', users: [owner.user] }, 'ERR_FORBIDDEN')
    expectRejected(log, admin, { type: 'ban', users: [admin2.user] }, 'ERR_FORBIDDEN')
    expectApplied(log, admin, { type: 'ban', users: [bob.user] })
    assert.equal(log.state.epoch, 0, 'banning a non-member takes nobody out')
    expectApplied(log, admin, { type: 'ban', users: [alice.user] })
    assert.equal(log.state.epoch, 1)
    assert.ok(!log.isMember(alice.user))
    assert.equal(log.canSend(alice.user, NOW)?.code, 'ERR_BANNED')
    expectRejected(log, alice, { type: 'join' }, 'ERR_BANNED')
    expectRejected(log, alice, { type: 'unban', users: [alice.user] }, 'ERR_NOT_MEMBER')
    expectApplied(log, admin, { type: 'unban', users: [alice.user] })
    expectApplied(log, alice, { type: 'join' })
    assert.equal(log.canSend(alice.user, NOW), null)
  })

  test('dismiss: owner only; then everything is rejected', () => {
    const { log } = setup()
    expectRejected(log, admin, { type: 'dismiss' }, 'ERR_FORBIDDEN')
    expectApplied(log, owner, { type: 'dismiss' })
    assert.equal(log.state.dismissed, true)
    assert.equal(log.state.epoch, 1)
    expectRejected(log, owner, { type: 'add', users: [bob.user] }, 'ERR_GROUP_DISMISSED')
    expectRejected(log, alice, { type: 'leave' }, 'ERR_GROUP_DISMISSED')
    assert.equal(log.canSend(owner.user, NOW)?.code, 'ERR_GROUP_DISMISSED')
  })

  test('canSend in a group: members only', () => {
    const { log } = setup()
    assert.equal(log.canSend(alice.user, NOW), null)
    assert.equal(log.canSend(bob.user, NOW)?.code, 'ERR_NOT_MEMBER')
  })

  test('an op dated before its parents beyond the clock skew is rejected', () => {
    const { log } = setup()
    const r = run(log, alice, { type: 'leave' }, NOW - MAX_CLOCK_SKEW_MS - 1)
    assert.equal(r.status, 'rejected')
    assert.equal(r.code, 'ERR_BAD_REQUEST')
    assert.equal(run(log, alice, { type: 'leave' }, NOW - MAX_CLOCK_SKEW_MS).status, 'applied')
  })
})

describe('rooms', () => {
  test('anyone not banned may send; joining is open; moderation follows the same rules', () => {
    const { log } = setup('invite', 'room')
    assert.equal(log.state.kind, 'room')
    assert.equal(log.canSend(bob.user, NOW), null)
    expectApplied(log, bob, { type: 'join' })
    expectApplied(log, carol, { type: 'request' })
    expectApplied(log, admin, { type: 'ban', users: [carol.user] })
    assert.equal(log.canSend(carol.user, NOW)?.code, 'ERR_BANNED')
    expectApplied(log, admin, { type: 'mute', users: [carol.user, alice.user], until: NOW + 5 })
    expectApplied(log, admin, { type: 'unban', users: [carol.user] })
    assert.equal(log.canSend(carol.user, NOW)?.code, 'ERR_MUTED', 'non-members of a room can be muted')
    assert.equal(log.canSend(carol.user, NOW + 5), null)
    expectApplied(log, admin, { type: 'muteAll', on: true })
    assert.equal(log.canSend(bob.user, NOW)?.code, 'ERR_MUTED')
    expectRejected(log, bob, { type: 'settings', settings: { name: 'x', joinPolicy: 'open' } }, 'ERR_FORBIDDEN')
  })
})

describe('concurrency', () => {
  test('two admins removing each other: the same state in either order, exactly one remains', () => {
    const { log, ops } = setup()
    const a = sign(log, admin, { type: 'remove', users: [admin2.user] })
    const b = sign(log, admin2, { type: 'remove', users: [admin.user] })
    const logs = [[a, b], [b, a]].map((order) => {
      const l = GroupLog.create(ops[0]!)
      for (const o of [...ops.slice(1), ...order]) l.add(o)
      return l
    })
    assert.deepEqual(summary(logs[0]!.state), summary(logs[1]!.state))
    const s = logs[0]!.state
    assert.equal([admin.user, admin2.user].filter((u) => s.members.has(u)).length, 1)
    const winner = a.id < b.id ? a : b
    assert.equal(logs[0]!.status(winner.id), 'applied')
    assert.equal(logs[1]!.status(winner.id), 'applied')
    assert.equal(s.epoch, 1)
    assert.deepEqual(s.heads, [a.id, b.id].sort())
  })

  test('the owner removing an admin beats the admin\'s concurrent op, whatever the ids', () => {
    for (let i = 0; i < 4; i++) {
      const { log, ops } = setup()
      const mine = sign(log, owner, { type: 'remove', users: [admin.user] }, log.state.heads, NOW + i)
      const theirs = sign(log, admin, { type: 'ban', users: [alice.user] }, log.state.heads, NOW + i)
      for (const order of [[mine, theirs], [theirs, mine]]) {
        const l = GroupLog.create(ops[0]!)
        for (const o of [...ops.slice(1), ...order]) l.add(o)
        assert.equal(l.status(mine.id), 'applied')
        assert.equal(l.status(theirs.id), 'rejected')
        assert.ok(l.isMember(alice.user))
      }
    }
  })

  test('a later add that reorders the past reports the flipped ops', () => {
    const { log } = setup()
    const heads = log.state.heads
    // the admin's op arrives first and is applied; the owner's concurrent removal then wins
    const theirs = sign(log, admin, { type: 'remove', users: [alice.user] }, heads)
    assert.equal(log.add(theirs).status, 'applied')
    const mine = sign(log, owner, { type: 'remove', users: [admin.user] }, heads)
    const r = log.add(mine)
    assert.equal(r.status, 'applied')
    assert.deepEqual(r.changed.map((o) => o.id), [mine.id, theirs.id])
    assert.equal(log.status(theirs.id), 'rejected')
    assert.ok(log.isMember(alice.user))
  })

  test('ops wait for unknown parents and are released when they arrive', () => {
    const { log, ops } = setup()
    const l = GroupLog.create(ops[0]!)
    const later = [...ops.slice(1), sign(log, alice, { type: 'leave' })]
    for (const o of later.slice(1).reverse()) assert.deepEqual(l.add(o), { status: 'pending', changed: [] })
    assert.deepEqual(l.missing(), [later[0]!.id])
    assert.equal(l.size, ops.length)
    assert.equal(l.state.version, 1)
    const r = l.add(later[0]!)
    assert.equal(r.status, 'applied')
    assert.deepEqual(r.changed.map((o) => o.id), later.map((o) => o.id))
    assert.deepEqual(l.missing(), [])
    assert.ok(!l.isMember(alice.user))
    assert.deepEqual(summary(l.state), summary((() => { log.add(later.at(-1)!); return log.state })()))
  })

  test('replaying ops() into a fresh log gives the same state', () => {
    const { log } = setup()
    log.add(sign(log, admin, { type: 'remove', users: [admin2.user] }))
    const side = sign(log, alice, { type: 'invite', users: [bob.user] }, [log.ops()[1]!.id])
    log.add(side)
    log.add(sign(log, bob, { type: 'join' }, [...log.state.heads, 'o'.padEnd(33, 'a') as GroupOpId].sort()))
    const ops = log.ops()
    assert.equal(log.status(ops.at(-1)!.id), 'pending')
    const copy = GroupLog.create(ops[0]!)
    for (const o of ops.slice(1)) copy.add(o)
    assert.deepEqual(summary(copy.state), summary(log.state))
    assert.deepEqual(copy.ops().map((o) => o.id), ops.map((o) => o.id))
  })

  test('convergence: any delivery order of a random history gives the same state', () => {
    const people = [owner, admin, admin2, alice, bob, carol]
    const bodyArb = fc.tuple(fc.nat(15), fc.nat(5), fc.nat(5), fc.boolean())
    const stepArb = fc.record({ author: fc.nat(5), body: bodyArb, parents: fc.array(fc.nat(1000), { minLength: 1, maxLength: 3 }), dt: fc.nat(1000) })
    const toBody = ([kind, t1, t2, flag]: [number, number, number, boolean]): GroupOpBody => {
      const u1 = people[t1]!.user
      const users = t1 === t2 ? [u1] : [u1, people[t2]!.user]
      switch (kind) {
        case 0: return { type: 'invite', users }
        case 1: return { type: 'request' }
        case 2: return { type: 'approve', users }
        case 3: return { type: 'join' }
        case 4: return { type: 'add', users }
        case 5: return { type: 'remove', users }
        case 6: return { type: 'leave' }
        case 7: return { type: 'role', user: u1, role: flag ? 'admin' : 'member' }
        case 8: return { type: 'mute', users, until: flag ? NOW + 10_000 : 0 }
        case 9: return { type: 'muteAll', on: flag }
        case 10: return { type: 'settings', settings: { name: `n${t1}`, joinPolicy: flag ? 'open' : 'approval' } }
        case 11: return { type: 'transfer', user: u1 }
        case 12: return { type: 'ban', users }
        case 13: return { type: 'unban', users }
        case 14: return flag ? { type: 'dismiss' } : { type: 'leave' }
        default: return { type: 'add', users }
      }
    }
    fc.assert(fc.property(fc.array(stepArb, { minLength: 1, maxLength: 25 }), fc.array(fc.nat(), { minLength: 40, maxLength: 40 }), (steps, keys) => {
      const { log, ops } = setup('approval')
      const all = [...ops]
      for (const step of steps) {
        // random parents among recent ops make concurrent branches
        const pool = all.slice(1)
        const parents = [...new Set(step.parents.map((p) => pool[pool.length - 1 - (p % Math.min(pool.length, 6))]!.id))]
        const at = Math.max(...parents.map((p) => all.find((o) => o.id === p)!.at)) + step.dt
        all.push(signGroupOp({ group: log.id, parents, body: toBody(step.body), at }, people[step.author]!))
      }
      const rest = all.slice(1)
      const shuffled = rest.map((o, i) => ({ o, k: keys[i % keys.length]! * 41 + i })).sort((x, y) => x.k - y.k).map((x) => x.o)
      const a = GroupLog.create(all[0]!)
      for (const o of rest) a.add(o)
      const b = GroupLog.create(all[0]!)
      for (const o of shuffled) b.add(o)
      const c = GroupLog.create(all[0]!)
      for (const o of [...rest].reverse()) c.add(o)
      assert.deepEqual(summary(b.state), summary(a.state))
      assert.deepEqual(summary(c.state), summary(a.state))
      assert.deepEqual(b.ops().map((o) => o.id), a.ops().map((o) => o.id))
      for (const o of rest) assert.equal(b.status(o.id), a.status(o.id))
    }), { numRuns: 60 })
  })
})

describe('long logs', () => {
  test('a late concurrent op deep in a long log reorders it as a replay from scratch would', () => {
    const { log, ops } = setup('open')
    const chain: GroupOp[] = []
    let heads = log.state.heads
    for (let i = 0; i < 900; i++) {
      // the admin keeps moderating; alice joins and leaves
      const who = i % 3 === 0 ? admin : alice
      const body: GroupOpBody = who === admin ? { type: 'muteAll', on: i % 2 === 0 } : (i % 3 === 1 ? { type: 'leave' } : { type: 'join' })
      const o = signGroupOp({ group: log.id, parents: heads, body, at: NOW + i }, who)
      chain.push(o)
      heads = [o.id]
    }
    // the owner removed the admin early on; nobody saw it until now
    const late = signGroupOp({ group: log.id, parents: [chain[300]!.id], body: { type: 'remove', users: [admin.user] }, at: NOW + 301 }, owner)
    for (const o of chain) log.add(o)
    const statuses = chain.map((o) => log.status(o.id))
    const r = log.add(late)
    assert.equal(r.status, 'applied')
    const flipped = chain.filter((o, i) => log.status(o.id) !== statuses[i])
    assert.ok(flipped.length > 0)
    assert.deepEqual(r.changed.map((o) => o.id).sort(), [late, ...flipped].map((o) => o.id).sort())
    for (const o of chain.slice(0, 301)) assert.equal(log.status(o.id), statuses[chain.indexOf(o)])
    const fresh = GroupLog.create(ops[0]!)
    for (const o of [late, ...chain.slice().reverse(), ...ops.slice(1)]) fresh.add(o)
    assert.deepEqual(summary(fresh.state), summary(log.state))
    assert.deepEqual(fresh.ops().map((o) => o.id), log.ops().map((o) => o.id))
    for (const o of chain) assert.equal(fresh.status(o.id), log.status(o.id))
    // and again: a second late op before the first one
    const later = signGroupOp({ group: log.id, parents: [chain[10]!.id], body: { type: 'role', user: alice.user, role: 'admin' }, at: NOW + 11 }, owner)
    log.add(later)
    fresh.add(later)
    assert.deepEqual(summary(fresh.state), summary(log.state))
    const replay = GroupLog.create(ops[0]!)
    for (const o of log.ops().slice(1)) replay.add(o)
    assert.deepEqual(summary(replay.state), summary(log.state))
    for (const o of chain) assert.equal(replay.status(o.id), log.status(o.id))
  })
})

describe('scale', () => {
  test('5,000 ops in order and 2,000 out of order stay fast', () => {
    const { log, ops } = setup('open')
    const many: GroupOp[] = []
    let heads = log.state.heads
    for (let i = 0; i < 5000; i++) {
      const body: GroupOpBody = i % 2 === 0 ? { type: 'mute', users: [alice.user], until: NOW + i } : { type: 'muteAll', on: i % 4 === 1 }
      const o = signGroupOp({ group: log.id, parents: heads, body, at: NOW + i }, i % 3 === 0 ? owner : admin)
      many.push(o)
      heads = [o.id]
    }
    let t = performance.now()
    for (const o of many) assert.equal(log.add(o).status, 'applied')
    const inOrder = performance.now() - t
    const fresh = GroupLog.create(ops[0]!)
    for (const o of ops.slice(1)) fresh.add(o)
    const subset = many.slice(0, 2000)
    const keyed = subset.map((o, i) => ({ o, k: (i * 7919) % 2003 })).sort((x, y) => x.k - y.k).map((x) => x.o)
    t = performance.now()
    for (const o of keyed) fresh.add(o)
    const outOfOrder = performance.now() - t
    assert.equal(fresh.state.version, ops.length + 2000)
    assert.deepEqual(fresh.state.heads, [subset.at(-1)!.id])
    // timings are logged, not asserted: CI machines vary
    process.stdout.write(`# 5000 in order: ${inOrder.toFixed(0)} ms; 2000 out of order: ${outOfOrder.toFixed(0)} ms\n`)
  })
})
