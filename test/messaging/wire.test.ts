import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { isErrorCode } from '../../protocol/errors.js'
import { newMessageId } from '../../protocol/ids.js'
import {
  decodeDeliverFrame, decodeMailboxRequest, decodeMailboxResponse, encodeDeliverFrame, encodeMailboxRequest, encodeMailboxResponse,
  frame, FrameReader, FRAME_PREFIX_BYTES, MAX_ENVELOPES_PER_FRAME
} from '../../node/messaging/wire.js'
import { ArrivalClock } from '../../node/messaging/clock.js'
import { orderByConversation } from '../../node/messaging/delivery.js'
import { testDevice } from './fixtures.js'

describe('messaging wire formats (unit)', () => {
  test('frames split across chunks in every way come out whole and in order', () => {
    const bodies = [new Uint8Array([1]), new Uint8Array(300).fill(7), new Uint8Array(0), new Uint8Array([9, 9])]
    const stream = Buffer.concat(bodies.map((b) => frame(b)))
    for (const size of [1, 2, 3, 5, 64, stream.length]) {
      const reader = new FrameReader()
      const out: Uint8Array[] = []
      for (let i = 0; i < stream.length; i += size) out.push(...reader.push(stream.subarray(i, i + size)))
      assert.deepEqual(out.map((b) => Buffer.from(b)), bodies.map((b) => Buffer.from(b)), `chunk size ${size}`)
      assert.equal(reader.pending, 0)
    }
  })

  test('an oversized length prefix is refused before its body arrives', () => {
    const reader = new FrameReader(1024)
    const head = new Uint8Array(FRAME_PREFIX_BYTES)
    new DataView(head.buffer).setUint32(0, 1025)
    assert.throws(() => reader.push(head), (err: unknown) => isErrorCode(err, 'ERR_TOO_LARGE'))
  })

  test('deliver and mailbox frames round trip; bad shapes are ProtocolErrors', () => {
    const batch = { t: 'batch' as const, id: 3, envelopes: [new Uint8Array([1, 2])] }
    assert.deepEqual(decodeDeliverFrame(encodeDeliverFrame(batch).subarray(FRAME_PREFIX_BYTES)), batch)
    const ack = { t: 'ack' as const, id: 3, results: ['stored' as const, 'not-here' as const] }
    assert.deepEqual(decodeDeliverFrame(encodeDeliverFrame(ack).subarray(FRAME_PREFIX_BYTES)), ack)
    const d = testDevice()
    const id = newMessageId()
    const requests = [
      { op: 'put' as const, user: d.ref.user, device: d.ref.device, ttlMs: 5, envelopes: [new Uint8Array([1])] },
      { op: 'fetch' as const, user: d.ref.user, device: d.ref.device, limit: 10, after: { at: 5, id } },
      { op: 'delete' as const, user: d.ref.user, device: d.ref.device, ids: [id] }
    ]
    for (const r of requests) assert.deepEqual(decodeMailboxRequest(encodeMailboxRequest(r).subarray(FRAME_PREFIX_BYTES)), r)
    const res = { ok: true as const, count: 1, envelopes: [new Uint8Array([4])], next: { at: 1, id } }
    assert.deepEqual(decodeMailboxResponse(encodeMailboxResponse(res).subarray(FRAME_PREFIX_BYTES)), res)
    const tooMany = encodeDeliverFrame({ t: 'batch', id: 1, envelopes: Array.from({ length: MAX_ENVELOPES_PER_FRAME + 1 }, () => new Uint8Array([1])) })
    assert.throws(() => decodeDeliverFrame(tooMany.subarray(FRAME_PREFIX_BYTES)), (err: unknown) => isErrorCode(err, 'ERR_MALFORMED') || isErrorCode(err, 'ERR_TOO_LARGE'))
    assert.throws(() => decodeMailboxRequest(encodeMailboxRequest({ ...requests[0]!, user: 'nope' as never }).subarray(FRAME_PREFIX_BYTES)), (err: unknown) => isErrorCode(err, 'ERR_MALFORMED'))
  })

  test('the arrival clock is strictly increasing even within one millisecond', () => {
    const clock = new ArrivalClock(() => 1000)
    const stamps = Array.from({ length: 100 }, () => clock.next())
    assert.ok(stamps.every((s, i) => i === 0 || s > (stamps[i - 1] as number)))
    assert.equal(stamps[0], 1_000_000)
  })

  test('orderByConversation puts each conversation in seq order in the positions it held', () => {
    const items = [
      { conversation: 'a', seq: 2 }, { conversation: 'b', seq: 1 }, { conversation: 'a', seq: 1 }, { conversation: 'b', seq: 3 }, { conversation: 'b', seq: 2 }
    ]
    assert.deepEqual(orderByConversation(items), [
      { conversation: 'a', seq: 1 }, { conversation: 'b', seq: 1 }, { conversation: 'a', seq: 2 }, { conversation: 'b', seq: 2 }, { conversation: 'b', seq: 3 }
    ])
  })
})
