import '../../node/polyfills.js'
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { noise } from '@chainsafe/libp2p-noise'
import type { Libp2p, Stream } from '@libp2p/interface'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { encodeValue } from '../../protocol/codec.js'
import {
  chunkBytes as chunkBytesOf, decodeDeliverFrame, DELIVER_PROTOCOL, encodeDeliverFrame, encodeMailboxRequest, frame, MAILBOX_PROTOCOL
} from '../../node/messaging/wire.js'
import type { TalariaNode } from '../../node/index.js'
import { DEFAULT_MAILBOX_REQUEST_TIMEOUT_MS } from '../../node/messaging/mailbox.js'
import { DEFAULT_PARTIAL_FRAME_TIMEOUT_MS } from '../../node/messaging/streams.js'
import { firstTcpAddr, startMesh, type CloseAll } from '../helpers/mesh.js'
import { envelope, envelopes, locationRecord, RecordingSink, sinkOf, testDevice } from './fixtures.js'

/** Reads `stream` until it ends or fails; resolves with the bytes read, rejects after `timeoutMs`. */
async function readToEnd (stream: Stream, timeoutMs = 10_000): Promise<Uint8Array[]> {
  const chunks: Uint8Array[] = []
  const timer = setTimeout(() => { stream.abort(new Error('test deadline: the node did not close the stream')) }, timeoutMs)
  try {
    for await (const chunk of stream) chunks.push(chunkBytesOf(chunk))
  } catch (err) {
    if ((err as Error).message.startsWith('test deadline')) throw err
  } finally {
    clearTimeout(timer)
  }
  return chunks
}

const u32 = (n: number): Uint8Array => {
  const b = new Uint8Array(4)
  new DataView(b.buffer).setUint32(0, n)
  return b
}

describe('hostile peers on the messaging protocols', () => {
  let nodes: TalariaNode[] = []
  let closeAll: CloseAll = async () => {}
  let attacker: Libp2p

  before(async () => {
    [nodes, closeAll] = await startMesh(2)
    attacker = await createLibp2p({ transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()] })
    await attacker.start()
  })
  after(async () => {
    await attacker?.stop()
    await closeAll()
  })

  const garbage: Array<[string, Uint8Array]> = [
    ['a length prefix past the limit', u32(0xffffffff)],
    ['bytes that are not MessagePack', frame(new Uint8Array([0xc1, 0xc1, 0xc1]))],
    ['MessagePack of the wrong shape', frame(encodeValue({ t: 'nope', id: -1 }))],
    ['a truncated frame, then the end', u32(100)]
  ]

  for (const protocol of [DELIVER_PROTOCOL, MAILBOX_PROTOCOL]) {
    for (const [what, bytes] of garbage) {
      test(`${protocol}: ${what} → the node closes that stream`, async () => {
        const target = nodes[1] as TalariaNode
        const stream = await attacker.dialProtocol(multiaddr(firstTcpAddr(target)), protocol)
        // bounded past the node's own deadlines (request or partial frame), which would reset the stream
        const reading = readToEnd(stream, Math.max(DEFAULT_MAILBOX_REQUEST_TIMEOUT_MS, DEFAULT_PARTIAL_FRAME_TIMEOUT_MS) + 5_000)
        stream.send(bytes)
        // the peer ends its side; the node must end the stream rather than wait for the rest
        const ends = what.startsWith('a truncated')
        if (ends) await stream.close()
        await reading
        // bad bytes are reset; after the peer's end the node closes too, where a deadline would reset
        if (ends) assert.equal(stream.status, 'closed')
        else assert.notEqual(stream.status, 'open')
      })
    }
  }

  test(`${DELIVER_PROTOCOL}: an ack sent the wrong way closes the stream`, async () => {
    const stream = await attacker.dialProtocol(multiaddr(firstTcpAddr(nodes[1] as TalariaNode)), DELIVER_PROTOCOL)
    stream.send(encodeDeliverFrame({ t: 'ack', id: 1, results: ['stored'] }))
    await readToEnd(stream)
    assert.notEqual(stream.status, 'open')
  })

  test(`${DELIVER_PROTOCOL}: invalid envelopes in a well-formed batch are answered per envelope`, async () => {
    const target = nodes[1] as TalariaNode
    const bob = testDevice()
    const stream = await attacker.dialProtocol(multiaddr(firstTcpAddr(target)), DELIVER_PROTOCOL)
    stream.send(encodeDeliverFrame({ t: 'batch', id: 7, envelopes: [new Uint8Array([1, 2, 3]), envelope(testDevice(), bob, 1).bytes] }))
    let ack: ReturnType<typeof decodeDeliverFrame> | undefined
    for await (const chunk of stream) {
      const bytes = chunkBytesOf(chunk)
      ack = decodeDeliverFrame(bytes.subarray(4))
      break
    }
    assert.deepEqual(ack, { t: 'ack', id: 7, results: ['invalid', 'not-here'] })
    await stream.close()
  })

  test(`${MAILBOX_PROTOCOL}: a put of envelopes for another device is refused`, async () => {
    const target = nodes[1] as TalariaNode
    const alice = testDevice()
    const bob = testDevice()
    const stream = await attacker.dialProtocol(multiaddr(firstTcpAddr(target)), MAILBOX_PROTOCOL)
    stream.send(encodeMailboxRequest({ op: 'put', user: alice.ref.user, device: alice.ref.device, ttlMs: 1000, envelopes: [envelope(alice, bob, 1).bytes] }))
    const chunks = await readToEnd(stream)
    const all = Buffer.concat(chunks)
    assert.match(all.subarray(4).toString('latin1'), /ERR_BAD_REQUEST/)
  })

  test('after all that, the node still delivers across nodes', async () => {
    const [sender, receiver] = nodes as [TalariaNode, TalariaNode]
    const alice = testDevice()
    const bob = testDevice()
    const sink = new RecordingSink()
    const detach = receiver.messaging().delivery.attach(bob.ref, sinkOf(sink))
    try {
      await receiver.messaging().directory.publish([locationRecord(bob, receiver)])
      await sender.messaging().delivery.submit(alice.ref, envelopes(alice, bob, 20))
      await sink.until(() => sink.pushed.length >= 20, '20 pushes')
      assert.equal(sink.pushed.length, 20)
      assert.ok(receiver.getPeers().includes(sender.peerId))
    } finally {
      detach()
    }
  })
})
