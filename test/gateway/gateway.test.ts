import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { encodeFrame } from '../../protocol/client-protocol.js'
import { encodeValue } from '../../protocol/codec.js'
import { TalariaError } from '../../protocol/errors.js'
import { encodeEnvelope } from '../../protocol/envelopes.js'
import { addDeviceToList, encodeDeviceList, revokeDeviceFromList } from '../../protocol/identity.js'
import { newMessageId, type MessageId } from '../../protocol/ids.js'
import { encodeLocationPayload, encodeProfilePayload, signRecord } from '../../protocol/records.js'
import { DEFAULT_MAX_FRAME_BYTES, DEFAULT_MAX_REQUESTS_PER_SECOND } from '../../node/gateway/index.js'
import { startGateway, TEST_ADDRS, TEST_PEER_ID, TestClient, testDevice, testEnvelope, withTimeout, type TestDevice, type TestGateway } from './harness.js'

function locationRecord (d: TestDevice, seq: number, online: boolean): Uint8Array {
  const expires = Date.now() + 10 * 60_000
  const entries = online ? [{ device: d.device.deviceId, node: TEST_PEER_ID, addrs: TEST_ADDRS, expires }] : []
  return signRecord(
    { kind: 'location', id: d.device.deviceId, seq, expiresAt: expires, payload: encodeLocationPayload(entries) },
    { seed: d.device.signingSeed, publicKey: d.device.signingPublicKey, cert: d.cert }
  )
}

function profileRecord (d: TestDevice, seq: number): Uint8Array {
  return signRecord(
    { kind: 'profile', id: d.user.userId, seq, expiresAt: Date.now() + 60_000, payload: encodeProfilePayload({ displayName: 'test' }) },
    { seed: d.user.rootSeed, publicKey: d.user.rootPublicKey }
  )
}

describe('client gateway: authentication', () => {
  let gw: TestGateway
  before(async () => { gw = await startGateway({ maxAuthFailures: 3 }) })
  after(async () => { await gw.close() })

  it('sends a challenge and authenticates a device over binary frames', async () => {
    const client = await TestClient.connect(gw.url)
    try {
      const c = client.challenge
      assert.equal(c.v, 1)
      assert.equal(c.nonce.length, 32)
      assert.equal(c.node, TEST_PEER_ID)
      assert.deepEqual(c.addrs, TEST_ADDRS)
      assert.equal(c.limits.maxFrameBytes, DEFAULT_MAX_FRAME_BYTES)
      assert.equal(c.limits.maxRequestsPerSecond, DEFAULT_MAX_REQUESTS_PER_SECOND)
      const d = testDevice()
      const res = await client.ok('auth', client.authBody(d))
      assert.equal(res.user, d.user.userId)
      assert.equal(res.device, d.device.deviceId)
      assert.ok(client.binary.every((b) => b), 'every frame binary')
      const sink = gw.delivery.sinks.find((s) => s.device.device === d.device.deviceId)
      assert.ok(sink?.attached, 'a sink is attached for the device')
      assert.equal(typeof (await client.ok('ping', {})).time, 'number')
    } finally {
      await client.close()
    }
    const detached = gw.delivery.sinks.filter((s) => s.attached)
    assert.equal(detached.length, 0, 'the sink is detached on close')
  })

  it('authenticates over JSON text frames and answers in text', async () => {
    const client = await TestClient.connect(gw.url, { format: 'text' })
    try {
      const d = testDevice()
      await client.auth(d)
      assert.equal((await client.ok('lookup', { user: d.user.userId })).prekeys.length, 0)
      assert.ok(client.binary.length >= 3)
      assert.ok(client.binary.every((b) => !b), 'every frame text')
    } finally {
      await client.close()
    }
  })

  it('refuses a bad signature, a wrong user and a device from another list with ERR_AUTH_FAILED', async () => {
    const client = await TestClient.connect(gw.url)
    try {
      const d = testDevice()
      const other = testDevice()
      const badSig = client.authBody(d)
      badSig.sig = badSig.sig.slice()
      badSig.sig[0]! ^= 1
      assert.equal((await client.fails('auth', badSig)).code, 'ERR_AUTH_FAILED')
      // the user field names someone else: the certificate does not match it
      assert.equal((await client.fails('auth', client.authBody(d, { user: other.user.userId }))).code, 'ERR_AUTH_FAILED')
      // still open after two failures; a valid auth works
      await client.auth(d)
    } finally {
      await client.close()
    }
  })

  it('refuses a device revoked in its own list at auth, and disconnects with ERR_DEVICE_REVOKED one a newer list in the directory revokes', async () => {
    const d = testDevice()
    const revoked = revokeDeviceFromList(d.list, d.user, d.device.deviceId)
    const a = await TestClient.connect(gw.url)
    try {
      assert.equal((await a.fails('auth', a.authBody(d, { deviceList: encodeDeviceList(revoked) }))).code, 'ERR_DEVICE_REVOKED')
    } finally {
      await a.close()
    }
    gw.directory.deviceLists.set(d.user.userId, revoked)
    const b = await TestClient.connect(gw.url)
    try {
      // the client presents its older list, in which the device is still active: auth answers from
      // it (this directory caches nothing), and the lookup behind it finds the newer list
      await b.auth(d)
      const revocation = await b.response(0)
      assert.equal(revocation.ok ? undefined : revocation.error.code, 'ERR_DEVICE_REVOKED')
      assert.equal((await withTimeout(b.closed, 'close')).code, 1008)
      assert.ok(!gw.delivery.sinks.some((s) => s.device.device === d.device.deviceId), 'the revoked device was never attached')
    } finally {
      await b.close()
      gw.directory.deviceLists.delete(d.user.userId)
    }
  })

  it('uses the presented device list when the directory cannot be reached', async () => {
    const client = await TestClient.connect(gw.url)
    try {
      gw.directory.getDeviceListError = new TalariaError('ERR_TIMEOUT', 'DHT lookup timed out')
      const d = testDevice()
      await client.auth(d)
      // the failed lookup ends the check: the device is attached as when the list was found
      await client.ok('ping', {})
      assert.ok(gw.delivery.sinks.some((s) => s.device.device === d.device.deviceId && s.attached), 'the device is attached')
    } finally {
      gw.directory.getDeviceListError = undefined
      await client.close()
    }
  })

  it('closes the connection after too many failed authentications', async () => {
    const client = await TestClient.connect(gw.url)
    const d = testDevice()
    const bad = client.authBody(d, { sig: new Uint8Array(64) })
    for (let i = 0; i < 3; i++) assert.equal((await client.fails('auth', bad)).code, 'ERR_AUTH_FAILED')
    assert.equal((await withTimeout(client.closed, 'close')).code, 1008)
  })

  it('answers requests before auth with ERR_NOT_AUTHENTICATED, ping excepted, and refuses a second auth', async () => {
    const client = await TestClient.connect(gw.url)
    try {
      const d = testDevice()
      assert.equal((await client.fails('lookup', { user: d.user.userId })).code, 'ERR_NOT_AUTHENTICATED')
      assert.equal((await client.fails('send', { envelopes: [] })).code, 'ERR_NOT_AUTHENTICATED')
      await client.ok('ping', {})
      await client.auth(d)
      assert.equal((await client.fails('auth', client.authBody(d))).code, 'ERR_ALREADY_AUTHENTICATED')
    } finally {
      await client.close()
    }
  })
})

describe('client gateway: requests', () => {
  let gw: TestGateway
  before(async () => { gw = await startGateway({ maxEnvelopesPerSend: 3, maxProtocolViolations: 4 }) })
  after(async () => { await gw.close() })

  it('submits envelopes from the authenticated device and answers accepted after submit resolves', async () => {
    const client = await TestClient.connect(gw.url)
    try {
      const a = testDevice()
      const b = testDevice()
      await client.auth(a)
      const e1 = testEnvelope(a.ref, b.ref, 1)
      const e2 = testEnvelope(a.ref, b.ref, 2)
      let release!: () => void
      const gate = new Promise<void>((resolve) => { release = resolve })
      gw.delivery.onSubmit = async (_sender, envs) => { await gate; return envs.map((e) => e.envelope.id) }
      const id = client.sendRequest('send', { envelopes: [e1.bytes, e2.bytes] })
      await withTimeout((async () => { while (gw.delivery.submitted.length === 0) await new Promise((resolve) => setImmediate(resolve)) })(), 'submit')
      assert.equal(client.frames.some((f) => f.t === 'res' && f.id === id), false, 'no answer before submit resolves')
      release()
      const res = await client.response(id)
      assert.ok(res.ok)
      assert.deepEqual(res.body, { accepted: [e1.id, e2.id] })
      const call = gw.delivery.submitted.at(-1)!
      assert.deepEqual(call.sender, a.ref)
      assert.deepEqual(call.envelopes.map((e) => e.envelope.id), [e1.id, e2.id])
      assert.deepEqual(call.envelopes[0]!.bytes, e1.bytes)
    } finally {
      gw.delivery.onSubmit = undefined
      await client.close()
    }
  })

  it('refuses a forged sender, a bad envelope and too many envelopes', async () => {
    const client = await TestClient.connect(gw.url)
    try {
      const a = testDevice()
      const b = testDevice()
      await client.auth(a)
      const before = gw.delivery.submitted.length
      assert.equal((await client.fails('send', { envelopes: [testEnvelope(b.ref, a.ref).bytes] })).code, 'ERR_NOT_SENDER')
      // same user, another device: still not the authenticated device
      const sibling = testDevice(a.user)
      assert.equal((await client.fails('send', { envelopes: [testEnvelope(sibling.ref, b.ref).bytes] })).code, 'ERR_NOT_SENDER')
      assert.equal((await client.fails('send', { envelopes: [new Uint8Array([0x81, 0xa1, 0x76, 0x01])] })).code, 'ERR_INVALID_ENVELOPE')
      const four = [1, 2, 3, 4].map((seq) => testEnvelope(a.ref, b.ref, seq).bytes)
      assert.equal((await client.fails('send', { envelopes: four })).code, 'ERR_TOO_MANY_ENVELOPES')
      assert.equal(gw.delivery.submitted.length, before, 'nothing reached delivery')
    } finally {
      await client.close()
    }
  })

  it('maps typed service errors to their client code and anything else to ERR_INTERNAL without details', async () => {
    const client = await TestClient.connect(gw.url)
    try {
      const a = testDevice()
      const b = testDevice()
      await client.auth(a)
      gw.delivery.onSubmit = async () => { throw new TalariaError('ERR_UNAVAILABLE', 'outbox is full') }
      const unavailable = await client.fails('send', { envelopes: [testEnvelope(a.ref, b.ref).bytes] })
      assert.equal(unavailable.code, 'ERR_UNAVAILABLE')
      gw.delivery.onSubmit = async () => { throw new Error('secret internal detail') }
      const internal = await client.fails('send', { envelopes: [testEnvelope(a.ref, b.ref).bytes] })
      assert.equal(internal.code, 'ERR_INTERNAL')
      assert.doesNotMatch(internal.message, /secret|at /)
      await client.ok('ping', {})
    } finally {
      gw.delivery.onSubmit = undefined
      await client.close()
    }
  })

  it('answers a malformed frame with ERR_BAD_FRAME and keeps serving the connection', async () => {
    const client = await TestClient.connect(gw.url)
    try {
      client.sendRaw(new Uint8Array([0xc1, 0x00]))
      const bad = await client.response(0)
      assert.ok(!bad.ok && bad.error.code === 'ERR_BAD_FRAME')
      // a request whose body is wrong keeps its id in the answer
      client.sendRaw(encodeValue({ t: 'req', id: 7, op: 'lookup', body: { user: 42 } }))
      const badBody = await client.response(7)
      assert.ok(!badBody.ok && badBody.error.code === 'ERR_BAD_FRAME')
      client.sendRaw(encodeValue({ t: 'req', id: 8, op: 'teleport', body: {} }))
      const unknown = await client.response(8)
      assert.ok(!unknown.ok && unknown.error.code === 'ERR_UNKNOWN_OP')
      assert.equal(typeof (await client.ok('ping', {})).time, 'number')
      // a text frame on a binary connection is answered in text
      client.sendRaw('{"t":"req","id":21,"op":"ping","body":{}}')
      assert.ok((await client.response(21)).ok)
      assert.equal(client.binary.at(-1), false)
    } finally {
      await client.close()
    }
  })

  it('closes a connection after too many protocol violations', async () => {
    const client = await TestClient.connect(gw.url)
    for (let i = 0; i < 4; i++) client.sendRaw('{not json')
    assert.equal((await withTimeout(client.closed, 'close')).code, 1008)
  })

  it('answers lookup from the directory', async () => {
    const client = await TestClient.connect(gw.url)
    try {
      const a = testDevice()
      const b = testDevice()
      gw.directory.deviceLists.set(b.user.userId, b.list)
      await client.auth(a)
      const res = await client.ok('lookup', { user: b.user.userId })
      assert.ok(res.deviceList instanceof Uint8Array && res.deviceList.length > 0)
      assert.deepEqual(res.prekeys, [])
    } finally {
      await client.close()
    }
  })
})

describe('client gateway: records', () => {
  let gw: TestGateway
  before(async () => { gw = await startGateway({ maxOnDisconnectRecords: 2 }) })
  after(async () => { await gw.close() })

  it('publishes valid records about the device and user, refuses others with ERR_INVALID_RECORD', async () => {
    const client = await TestClient.connect(gw.url)
    try {
      const a = testDevice()
      const stranger = testDevice()
      await client.auth(a)
      const mine = [locationRecord(a, 1, true), profileRecord(a, 1)]
      const res = await client.ok('publish', { records: [mine[0]!, locationRecord(stranger, 1, true), mine[1]!, profileRecord(stranger, 1), new Uint8Array([1, 2, 3])] })
      assert.equal(res.stored, 2)
      assert.deepEqual(res.failures.map((f) => [f.index, f.code]), [[1, 'ERR_INVALID_RECORD'], [3, 'ERR_INVALID_RECORD'], [4, 'ERR_INVALID_RECORD']])
      assert.deepEqual(gw.directory.published.at(-1), mine)
      const tooMany = await client.fails('publish', { records: [], onDisconnect: [1, 2, 3].map((s) => locationRecord(a, s, false)) })
      assert.equal(tooMany.code, 'ERR_BAD_REQUEST')
    } finally {
      await client.close()
    }
  })

  it('publishes the onDisconnect records when the connection closes', async () => {
    const client = await TestClient.connect(gw.url)
    const a = testDevice()
    await client.auth(a)
    const offline = locationRecord(a, 2, false)
    const res = await client.ok('publish', { records: [locationRecord(a, 1, true)], onDisconnect: [offline, locationRecord(testDevice(), 2, false)] })
    assert.deepEqual(res.failures.map((f) => [f.index, f.code]), [[2, 'ERR_INVALID_RECORD']])
    const published = gw.directory.published.length
    const next = gw.directory.nextPublish()
    await client.close()
    await next
    assert.equal(gw.directory.published.length, published + 1)
    assert.deepEqual(gw.directory.published.at(-1), [offline])
  })
})

describe('client gateway: limits', () => {
  it('answers a frame over the limit with ERR_FRAME_TOO_LARGE and closes only that connection', async () => {
    const gw = await startGateway({ maxFrameBytes: 4096 })
    const big = await TestClient.connect(gw.url)
    const other = await TestClient.connect(gw.url)
    try {
      big.sendRaw(encodeFrame({ t: 'req', id: 1, op: 'publish', body: { records: [new Uint8Array(5000)] } }, 'binary'))
      const res = await big.response(0)
      assert.ok(!res.ok && res.error.code === 'ERR_FRAME_TOO_LARGE')
      assert.equal((await withTimeout(big.closed, 'close')).code, 1009)
      assert.equal(typeof (await other.ok('ping', {})).time, 'number')
      assert.equal(gw.gateway.connectionCount(), 1)
    } finally {
      await other.close()
      await gw.close()
    }
  })

  it('rate-limits a request flood on one connection with ERR_RATE_LIMITED and a retry hint', async () => {
    const gw = await startGateway({ maxRequestsPerSecond: 1, requestBurst: 5 })
    const client = await TestClient.connect(gw.url)
    try {
      const ids = Array.from({ length: 10 }, () => client.sendRequest('ping', {}))
      const answers = await Promise.all(ids.map(async (id) => await client.response(id)))
      assert.equal(answers.filter((r) => r.ok).length, 5)
      const limited = answers.filter((r) => !r.ok)
      assert.equal(limited.length, 5)
      for (const r of limited) {
        assert.ok(!r.ok && r.error.code === 'ERR_RATE_LIMITED')
        assert.ok(r.error.retryAfterMs !== undefined && r.error.retryAfterMs > 0 && r.error.retryAfterMs <= 1000)
      }
    } finally {
      await client.close()
      await gw.close()
    }
  })

  it('rate-limits a user across its connections with ERR_USER_RATE_LIMITED', async () => {
    const gw = await startGateway({ maxUserRequestsPerSecond: 1, userRequestBurst: 6 })
    const a = testDevice()
    const a2 = testDevice(a.user)
    a.list = a2.list = addDeviceToList(a.list, a.user, a2.cert)
    const c1 = await TestClient.connect(gw.url)
    const c2 = await TestClient.connect(gw.url)
    try {
      await c1.auth(a)
      await c2.auth(a2)
      const sent = [...Array.from({ length: 4 }, () => [c1, c1.sendRequest('ping', {})] as const), ...Array.from({ length: 4 }, () => [c2, c2.sendRequest('ping', {})] as const)]
      const answers = await Promise.all(sent.map(async ([c, id]) => await c.response(id)))
      assert.equal(answers.filter((r) => r.ok).length, 6)
      const limited = answers.filter((r) => !r.ok)
      assert.equal(limited.length, 2)
      for (const r of limited) assert.ok(!r.ok && r.error.code === 'ERR_USER_RATE_LIMITED' && (r.error.retryAfterMs ?? 0) > 0)
    } finally {
      await c1.close()
      await c2.close()
      await gw.close()
    }
  })

  it('refuses connections over the per-IP limit with ERR_TOO_MANY_CONNECTIONS and close 1008', async () => {
    const gw = await startGateway({ maxConnectionsPerIp: 2 })
    const c1 = await TestClient.connect(gw.url)
    const c2 = await TestClient.connect(gw.url)
    try {
      const c3 = await TestClient.connect(gw.url)
      const refused = await c3.response(0)
      assert.ok(!refused.ok && refused.error.code === 'ERR_TOO_MANY_CONNECTIONS')
      assert.equal((await withTimeout(c3.closed, 'close')).code, 1008)
      await c1.close()
      const c4 = await TestClient.connect(gw.url)
      assert.equal(c4.challenge.node, TEST_PEER_ID, 'a slot freed by a close is usable again')
      await c4.close()
      assert.equal(gw.gateway.stats().refused, 1)
    } finally {
      await c2.close()
      await gw.close()
    }
  })

  it('answers ERR_TIMEOUT when a request outlives its deadline, and aborts the work under it with a TimeoutError', async () => {
    const gw = await startGateway({ requestTimeoutMs: 150 })
    const client = await TestClient.connect(gw.url)
    try {
      const a = testDevice()
      await client.auth(a)
      let reason: unknown
      gw.delivery.onSubmit = async (_sender, _envs, opts) => await new Promise<MessageId[]>((_resolve, reject) => {
        opts?.signal?.addEventListener('abort', () => { reason = opts.signal?.reason; reject(opts.signal?.reason) }, { once: true })
      })
      const res = await client.response(client.sendRequest('send', { envelopes: [testEnvelope(a.ref, testDevice().ref, 1).bytes] }))
      assert.ok(!res.ok && res.error.code === 'ERR_TIMEOUT')
      assert.equal((reason as DOMException).name, 'TimeoutError')
      // the connection goes on serving
      assert.ok((await client.response(client.sendRequest('ping', {}))).ok)
    } finally {
      await client.close()
      await gw.close()
    }
  })

  it('aborts the requests in flight when their connection closes', async () => {
    const gw = await startGateway()
    const client = await TestClient.connect(gw.url)
    try {
      const a = testDevice()
      await client.auth(a)
      const aborted: Array<Promise<void>> = []
      gw.delivery.onSubmit = async (_sender, _envs, opts) => {
        const signal = opts?.signal
        assert.ok(signal !== undefined && !signal.aborted)
        aborted.push(new Promise<void>((resolve) => { signal.addEventListener('abort', () => { resolve() }, { once: true }) }))
        return await new Promise<MessageId[]>(() => {})
      }
      for (let i = 1; i <= 3; i++) client.sendRequest('send', { envelopes: [testEnvelope(a.ref, testDevice().ref, i).bytes] })
      await withTimeout((async () => { while (aborted.length < 3) await new Promise((resolve) => setImmediate(resolve)) })(), '3 submits')
      await client.close()
      await withTimeout(Promise.all(aborted), 'every in-flight request aborted')
    } finally {
      await gw.close()
    }
  })

  it('closes a connection that does not authenticate in time', async () => {
    const gw = await startGateway({ authTimeoutMs: 100 })
    try {
      const client = await TestClient.connect(gw.url)
      const res = await client.response(0)
      assert.ok(!res.ok && res.error.code === 'ERR_TIMEOUT')
      assert.equal((await withTimeout(client.closed, 'close')).code, 1008)
    } finally {
      await gw.close()
    }
  })

  it('terminates a client that stops answering pings and keeps one that answers', async () => {
    const gw = await startGateway({ pingIntervalMs: 50, pongTimeoutMs: 200 })
    const mute = await TestClient.connect(gw.url, { autoPong: false })
    const alive = await TestClient.connect(gw.url)
    try {
      const started = Date.now()
      const closed = await withTimeout(mute.closed, 'keepalive termination')
      assert.equal(closed.code, 1006, 'terminated without a close handshake')
      assert.ok(Date.now() - started >= 150, 'not before the pong timeout')
      assert.equal(typeof (await alive.ok('ping', {})).time, 'number')
      assert.equal(gw.gateway.stats().keepaliveTerminations, 1)
    } finally {
      await alive.close()
      await gw.close()
    }
  })
})

describe('client gateway: pushes', () => {
  let gw: TestGateway
  before(async () => { gw = await startGateway({ maxUnackedPushes: 2 }) })
  after(async () => { await gw.close() })

  it('pushes envelopes until the window is full, then drains after an ack', async () => {
    const client = await TestClient.connect(gw.url)
    try {
      const a = testDevice()
      await client.auth(a)
      const sink = gw.delivery.sinks.find((s) => s.device.device === a.device.deviceId)!.sink
      const [m1, m2, m3] = [newMessageId(), newMessageId(), newMessageId()]
      const env = testEnvelope(testDevice().ref, a.ref).bytes
      assert.equal(sink.push(m1, env), true)
      assert.equal(sink.push(m2, env), true)
      assert.equal(sink.push(m3, env), false, 'window of 2 is full')
      assert.deepEqual((await client.event('message')).envelope, env)
      await client.event('message')
      const drained = gw.delivery.nextDrain()
      assert.deepEqual(await client.ok('ack', { ids: [m1] }), { removed: 1 })
      await drained
      assert.deepEqual(gw.delivery.acked.at(-1), { device: a.ref, ids: [m1] })
      assert.equal(sink.push(m3, env), true, 'room again after the ack')
      await client.event('message')
      sink.delivered([m1])
      assert.deepEqual(await client.event('delivered'), { ids: [m1] })
    } finally {
      await client.close()
    }
  })
})

describe('client gateway: socket backpressure', () => {
  it('stops pushing while the socket buffer is over its high-water mark and drains once it empties', async () => {
    const gw = await startGateway({ pushHighWaterBytes: 64 * 1024, maxUnackedPushes: 1000 })
    const client = await TestClient.connect(gw.url)
    try {
      const a = testDevice()
      await client.auth(a)
      const sink = gw.delivery.sinks.find((s) => s.device.device === a.device.deviceId)!.sink
      const big = encodeEnvelope({ ...testEnvelope(testDevice().ref, a.ref).envelope, ciphertext: new Uint8Array(200 * 1024) })
      // the client stops reading: kernel buffers fill, then the gateway's own buffer grows
      client.ws.pause()
      let pushed = 0
      while (pushed < 500 && sink.push(newMessageId(), big)) pushed++
      assert.ok(pushed < 500, `push refused once the buffer is full (after ${pushed})`)
      assert.ok(pushed > 0)
      const drained = gw.delivery.nextDrain()
      client.ws.resume()
      await drained
      for (let i = 0; i < pushed; i++) await client.event('message')
      assert.equal(sink.push(newMessageId(), big), true, 'room again after the drain')
    } finally {
      await client.close()
      await gw.close()
    }
  })
})

describe('client gateway: lifecycle', () => {
  it('stop closes every connection and publishes their onDisconnect records before it resolves', async () => {
    const gw = await startGateway()
    const client = await TestClient.connect(gw.url)
    const a = testDevice()
    await client.auth(a)
    const offline = locationRecord(a, 2, false)
    await client.ok('publish', { records: [], onDisconnect: [offline] })
    await gw.gateway.stop()
    assert.deepEqual(gw.directory.published.at(-1), [offline])
    assert.equal((await withTimeout(client.closed, 'close')).code, 1001)
    assert.equal(gw.gateway.connectionCount(), 0)
    await assert.rejects(TestClient.connect(gw.url), 'no new connection after stop')
    await gw.close()
  })
})
