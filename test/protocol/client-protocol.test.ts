import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import {
  authSigningBytes, CLIENT_ERROR_CODES, ClientProtocolError, decodeFrame, encodeFrame, MAX_REQUEST_ID, parseResponseBody,
  type ClientFrame
} from '../../protocol/client-protocol.js'
import { canonicalEncode, encodeValue } from '../../protocol/codec.js'
import { toBase64url, toHex } from '../../protocol/bytes.js'
import { newMessageId, type DeviceId, type UserId } from '../../protocol/ids.js'
import { createDevice, createUserIdentity } from '../../protocol/identity.js'

const MAX = 64 * 1024
const user = createUserIdentity().userId
const device = createDevice().deviceId
const ids = [newMessageId(), newMessageId()]
const bytes = (n: number, fill = 1): Uint8Array => new Uint8Array(n).fill(fill)

/** One valid frame of every type and every op, so both encodings are exercised on each. */
const samples: ClientFrame[] = [
  {
    t: 'challenge',
    v: 1,
    nonce: bytes(32, 9),
    node: '12D3KooWabc',
    addrs: ['/ip4/127.0.0.1/tcp/7700'],
    limits: { maxFrameBytes: 262144, maxRequestsPerSecond: 200, maxUserRequestsPerSecond: 500, maxEnvelopesPerSend: 100, maxUnackedPushes: 256 },
    time: 1_800_000_000_000
  },
  { t: 'req', id: 1, op: 'auth', body: { user, device, cert: bytes(200), deviceList: bytes(300), sig: bytes(64) } },
  { t: 'req', id: 2, op: 'publish', body: { records: [bytes(10), bytes(0x101)], onDisconnect: [bytes(5)] } },
  { t: 'req', id: 3, op: 'publish', body: { records: [] } },
  { t: 'req', id: 4, op: 'lookup', body: { user } },
  { t: 'req', id: 5, op: 'send', body: { envelopes: [bytes(150)] } },
  { t: 'req', id: 6, op: 'ack', body: { ids } },
  { t: 'req', id: MAX_REQUEST_ID, op: 'ping', body: {} },
  { t: 'res', id: 1, ok: true, body: { user, device, time: 5 } },
  { t: 'res', id: 2, ok: false, error: { code: 'ERR_RATE_LIMITED', message: 'slow down', retryAfterMs: 20 } },
  { t: 'res', id: 0, ok: false, error: { code: 'ERR_BAD_FRAME', message: 'x' } },
  { t: 'evt', ev: 'message', body: { envelope: bytes(100) } },
  { t: 'evt', ev: 'delivered', body: { ids } }
]

function expectCode (fn: () => unknown, code: string, requestId?: number): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ClientProtocolError, `a ClientProtocolError, got ${String(err)}`)
    assert.equal(err.code, code)
    if (requestId !== undefined) assert.equal(err.requestId, requestId)
    return true
  })
}

describe('client protocol frames', () => {
  test('every sample frame round-trips through MessagePack and JSON', () => {
    for (const frame of samples) {
      for (const format of ['binary', 'text'] as const) {
        const encoded = encodeFrame(frame, format)
        assert.equal(typeof encoded === 'string', format === 'text')
        assert.deepEqual(decodeFrame(encoded, { maxBytes: MAX }), frame, `${frame.t} ${format}`)
      }
    }
  })

  test('JSON carries bytes as {"$b": base64url}, Buffers included', () => {
    const text = encodeFrame({ t: 'evt', ev: 'message', body: { envelope: Buffer.from([0xfb, 0xff]) } }, 'text') as string
    assert.equal(text, '{"t":"evt","ev":"message","body":{"envelope":{"$b":"-_8"}}}')
  })

  test('undefined members are left out of MessagePack frames', () => {
    const frame = { t: 'res', id: 4, ok: true, body: { deviceList: undefined, prekeys: [] } } as unknown as ClientFrame
    assert.deepEqual(decodeFrame(encodeFrame(frame, 'binary'), { maxBytes: MAX }), { t: 'res', id: 4, ok: true, body: { prekeys: [] } })
  })

  test('the size is checked before parsing, in bytes for both encodings', () => {
    expectCode(() => decodeFrame(new Uint8Array(101), { maxBytes: 100 }), 'ERR_FRAME_TOO_LARGE')
    // 40 three-byte characters: 40 UTF-16 units but 120 UTF-8 bytes
    expectCode(() => decodeFrame('"' + 'é'.repeat(20) + '€'.repeat(20) + '"', { maxBytes: 100 }), 'ERR_FRAME_TOO_LARGE')
    expectCode(() => decodeFrame('{"t":"req"'.padEnd(101, ' '), { maxBytes: 100 }), 'ERR_FRAME_TOO_LARGE')
  })

  test('an unknown op is ERR_UNKNOWN_OP with the request id; other faults are ERR_BAD_FRAME', () => {
    expectCode(() => decodeFrame(encodeValue({ t: 'req', id: 9, op: 'fly', body: {} }), { maxBytes: MAX }), 'ERR_UNKNOWN_OP', 9)
    expectCode(() => decodeFrame('{"t":"req","id":9,"op":"fly","body":{}}', { maxBytes: MAX }), 'ERR_UNKNOWN_OP', 9)
    expectCode(() => decodeFrame(encodeValue({ t: 'req', id: 3, op: 'lookup', body: { user: 'nope' } }), { maxBytes: MAX }), 'ERR_BAD_FRAME', 3)
    expectCode(() => decodeFrame(encodeValue({ t: 'req', id: 3, op: 'ack' }), { maxBytes: MAX }), 'ERR_BAD_FRAME', 3)
    expectCode(() => decodeFrame(encodeValue({ t: 'req', id: 0, op: 'ping', body: {} }), { maxBytes: MAX }), 'ERR_BAD_FRAME', 0)
    expectCode(() => decodeFrame(encodeValue({ t: 'req', id: 1.5, op: 'ping', body: {} }), { maxBytes: MAX }), 'ERR_BAD_FRAME', 0)
    expectCode(() => decodeFrame(encodeValue({ t: 'req', id: MAX_REQUEST_ID + 1, op: 'ping', body: {} }), { maxBytes: MAX }), 'ERR_BAD_FRAME', 0)
    expectCode(() => decodeFrame(encodeValue({ t: 'hello' }), { maxBytes: MAX }), 'ERR_BAD_FRAME')
    expectCode(() => decodeFrame(encodeValue([1, 2]), { maxBytes: MAX }), 'ERR_BAD_FRAME')
    expectCode(() => decodeFrame('not json', { maxBytes: MAX }), 'ERR_BAD_FRAME')
    expectCode(() => decodeFrame('', { maxBytes: MAX }), 'ERR_BAD_FRAME')
    expectCode(() => decodeFrame(new Uint8Array(0), { maxBytes: MAX }), 'ERR_BAD_FRAME')
    // a number where bytes belong, and base64 text without the $b wrapper
    expectCode(() => decodeFrame(`{"t":"req","id":2,"op":"send","body":{"envelopes":["${toBase64url(bytes(3))}"]}}`, { maxBytes: MAX }), 'ERR_BAD_FRAME', 2)
    expectCode(() => decodeFrame(encodeValue({ t: 'res', id: 1, ok: false, error: { code: 'ERR_NEW', message: '' } }), { maxBytes: MAX }), 'ERR_BAD_FRAME')
  })

  test('"$b" objects must be exactly one valid base64url string', () => {
    const send = (envelope: string): string => `{"t":"req","id":4,"op":"send","body":{"envelopes":[${envelope}]}}`
    assert.deepEqual((decodeFrame(send('{"$b":"AQID"}'), { maxBytes: MAX }) as { body: unknown }).body, { envelopes: [new Uint8Array([1, 2, 3])] })
    for (const bad of ['{"$b":"AQI="}', '{"$b":"A"}', '{"$b":"AQ+D"}', '{"$b":"AR"}', '{"$b":5}', '{"$b":"AQID","x":1}']) {
      expectCode(() => decodeFrame(send(bad), { maxBytes: MAX }), 'ERR_BAD_FRAME')
    }
    // anywhere in the frame, not only where bytes are expected
    expectCode(() => decodeFrame('{"t":"req","id":1,"op":"ping","body":{"x":{"$b":"%%"}}}', { maxBytes: MAX }), 'ERR_BAD_FRAME')
    expectCode(() => decodeFrame('{"t":"req","id":1,"op":"ping","body":{"__proto__":{"$b":"AQID"}}}', { maxBytes: MAX }), 'ERR_BAD_FRAME')
    expectCode(() => decodeFrame('['.repeat(5000) + ']'.repeat(5000), { maxBytes: MAX }), 'ERR_BAD_FRAME')
  })

  test('parseResponseBody validates a response body for its op', () => {
    assert.deepEqual(parseResponseBody('send', { accepted: ids }), { accepted: ids })
    assert.deepEqual(parseResponseBody('publish', { stored: 1, failures: [{ index: 0, code: 'ERR_INVALID_RECORD', message: 'm' }] }).stored, 1)
    expectCode(() => parseResponseBody('ack', { removed: -1 }, 7), 'ERR_BAD_FRAME', 7)
    expectCode(() => parseResponseBody('lookup', { prekeys: 'x' }), 'ERR_BAD_FRAME')
    const two = [new Uint8Array([1]), new Uint8Array([2])]
    assert.deepEqual(parseResponseBody('groupHistory', { messages: two, masked: [{ i: 1, text: '**' }] }).masked, [{ i: 1, text: '**' }])
    // a masked text must name one of the messages, and there are no more of them than messages
    expectCode(() => parseResponseBody('groupHistory', { messages: two, masked: [{ i: 2, text: '**' }] }), 'ERR_BAD_FRAME')
    expectCode(() => parseResponseBody('groupHistory', { messages: [], masked: [{ i: 0, text: '**' }] }), 'ERR_BAD_FRAME')
    expectCode(() => parseResponseBody('groupHistory', { messages: two, masked: [{ i: 0 }] }), 'ERR_BAD_FRAME')
  })

  test('ClientProtocolError carries a client code and an optional retry hint', () => {
    const e = new ClientProtocolError('ERR_RATE_LIMITED', 'wait', { retryAfterMs: 5, requestId: 2 })
    assert.deepEqual(e.toBody(), { code: 'ERR_RATE_LIMITED', message: 'wait', retryAfterMs: 5 })
    assert.equal(e.requestId, 2)
    assert.ok(CLIENT_ERROR_CODES.includes(e.code))
  })
})

describe('auth signing bytes', () => {
  test('are the canonical encoding of the tagged fields, distinct per field', () => {
    const nonce = bytes(32, 3)
    const base = authSigningBytes(nonce, 'peerA', user, device)
    assert.equal(toHex(base), toHex(canonicalEncode(['talaria/auth/v1', nonce, 'peerA', user, device])))
    assert.notEqual(toHex(authSigningBytes(bytes(32, 4), 'peerA', user, device)), toHex(base))
    assert.notEqual(toHex(authSigningBytes(nonce, 'peerB', user, device)), toHex(base))
    assert.notEqual(toHex(authSigningBytes(nonce, 'peerA', createUserIdentity().userId as UserId, device)), toHex(base))
    assert.notEqual(toHex(authSigningBytes(nonce, 'peerA', user, createDevice().deviceId as DeviceId)), toHex(base))
  })
})

describe('decodeFrame under hostile input', () => {
  const RUNS = 1500
  const MAX_CALL_MS = 250
  const validBinary = samples.map((f) => encodeFrame(f, 'binary') as Uint8Array)
  const validText = samples.map((f) => encodeFrame(f, 'text') as string)

  function onlyTyped (input: Uint8Array | string): void {
    const started = performance.now()
    try {
      decodeFrame(input, { maxBytes: 4096 })
    } catch (err) {
      assert.ok(err instanceof ClientProtocolError, `typed error, got ${String(err)}`)
      assert.ok(['ERR_BAD_FRAME', 'ERR_FRAME_TOO_LARGE', 'ERR_UNKNOWN_OP'].includes(err.code), err.code)
    }
    assert.ok(performance.now() - started < MAX_CALL_MS, 'decode is fast')
  }

  test('random bytes and strings yield a frame or a typed error', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), (b) => { onlyTyped(b) }), { numRuns: RUNS })
    fc.assert(fc.property(fc.string({ maxLength: 600, unit: 'binary' }), (s) => { onlyTyped(s) }), { numRuns: RUNS })
    fc.assert(fc.property(fc.json({ maxDepth: 6 }), (s) => { onlyTyped(s) }), { numRuns: RUNS })
  })

  test('mutated valid frames yield a frame or a typed error', () => {
    fc.assert(fc.property(
      fc.nat({ max: validBinary.length - 1 }), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), fc.nat(),
      (which, edits, cut) => {
        const b = validBinary[which]!.slice()
        for (const [pos, value] of edits) b[pos % b.length] = value
        onlyTyped(b)
        onlyTyped(b.subarray(0, cut % (b.length + 1)))
      }
    ), { numRuns: RUNS })
    fc.assert(fc.property(
      fc.nat({ max: validText.length - 1 }), fc.array(fc.tuple(fc.nat(), fc.string({ maxLength: 3 })), { minLength: 1, maxLength: 6 }),
      (which, edits) => {
        let s = validText[which]!
        for (const [pos, insert] of edits) {
          const at = pos % (s.length + 1)
          s = s.slice(0, at) + insert + s.slice(at + 1)
        }
        onlyTyped(s)
      }
    ), { numRuns: RUNS })
  })

  test('structured frames with random field values yield a frame or a typed error', () => {
    const anyValue = fc.oneof(fc.string({ maxLength: 40 }), fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.uint8Array({ maxLength: 70 }),
      fc.array(fc.uint8Array({ maxLength: 10 }), { maxLength: 4 }), fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 }), { maxKeys: 3 }))
    fc.assert(fc.property(
      fc.constantFrom('req', 'res', 'evt', 'challenge'), fc.constantFrom('auth', 'publish', 'lookup', 'send', 'ack', 'ping', 'message', 'delivered'),
      anyValue, fc.dictionary(fc.constantFrom('user', 'device', 'cert', 'deviceList', 'sig', 'records', 'onDisconnect', 'envelopes', 'ids', 'envelope'), anyValue),
      fc.constantFrom('binary', 'text'),
      (t, op, id, body, format) => {
        const frame = { t, id, op, ev: op, ok: id === true, body, error: body }
        const encoded = format === 'text' ? JSON.stringify(frame, (_k, v: unknown) => v instanceof Uint8Array ? { $b: toBase64url(v) } : v) : encodeValue(frame)
        onlyTyped(encoded)
      }
    ), { numRuns: RUNS })
  })
})
