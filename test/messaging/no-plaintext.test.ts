import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import {
  createInitiatorSession, createPreKeyBundle, createResponderSession, generateSignedPreKey, nextHeader, ratchetDecrypt, ratchetEncrypt,
  x3dhInitiate, x3dhRespond, type DeviceIdentityKeys, type RatchetSession
} from '../../protocol/e2e/index.js'
import { decodeEnvelope, encodeEnvelope, envelopeAssociatedData, type DirectEnvelope } from '../../protocol/envelopes.js'
import type { DeviceIdentity } from '../../protocol/identity.js'
import { directConversationId, newMessageId } from '../../protocol/ids.js'
import type { SubmittedEnvelope, TalariaNode } from '../../node/index.js'
import { meshDataDir, startMesh, type CloseAll } from '../helpers/mesh.js'
import { locationRecord, RecordingSink, sinkOf, testDevice, withdrawnLocationRecord } from './fixtures.js'

function e2eKeys (d: DeviceIdentity): DeviceIdentityKeys {
  return { signingPrivateKey: d.signingSeed, signingPublicKey: d.signingPublicKey, identityPrivateKey: d.exchangePrivateKey, identityPublicKey: d.exchangePublicKey }
}

/** Every file under `dir`, recursively (bounded depth). */
async function files (dir: string, depth = 0): Promise<string[]> {
  if (depth > 8) return []
  const out: string[] = []
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) out.push(...await files(path, depth + 1))
    else if (entry.isFile()) out.push(path)
  }
  return out
}

/** Files under `dirs` whose bytes contain `needle`. */
async function filesContaining (dirs: string[], needle: Uint8Array): Promise<string[]> {
  const hits: string[] = []
  for (const dir of dirs) {
    for (const path of await files(dir)) {
      if ((await readFile(path)).indexOf(needle) >= 0) hits.push(path)
    }
  }
  return hits
}

describe('nodes never hold plaintext', () => {
  let nodes: TalariaNode[] = []
  let closeAll: CloseAll = async () => {}

  before(async () => {
    [nodes, closeAll] = await startMesh(4)
  })
  after(async () => { await closeAll() })

  test('a marker inside real ratchet-encrypted messages appears in no file of any node, online or via the mailbox', async () => {
    const marker = `TALARIA-PLAINTEXT-MARKER-${randomBytes(8).toString('hex')}`
    const alice = testDevice()
    const bob = testDevice()
    const spk = generateSignedPreKey(e2eKeys(bob.device), 1)
    const init = x3dhInitiate(e2eKeys(alice.device), createPreKeyBundle(e2eKeys(bob.device), spk))
    const session = createInitiatorSession(init)
    let seq = 0
    const encrypt = (text: string): SubmittedEnvelope => {
      seq++
      const head: Omit<DirectEnvelope, 'ciphertext'> = {
        kind: 'direct',
        id: newMessageId(),
        from: alice.ref,
        to: bob.ref,
        conv: directConversationId(alice.ref.user, bob.ref.user),
        seq,
        sentAt: Date.now(),
        type: seq === 1 ? 'prekey' : 'message',
        ...(seq === 1
          ? { init: { identityKey: init.initialMessage.identityKey, ephemeralKey: init.initialMessage.ephemeralKey, signedPrekeyId: init.initialMessage.signedPreKeyId } }
          : {}),
        header: nextHeader(session)
      }
      const m = ratchetEncrypt(session, new TextEncoder().encode(`${text} ${marker}`), envelopeAssociatedData(head))
      const e: DirectEnvelope = { ...head, header: m.header, ciphertext: m.ciphertext }
      return { envelope: e, bytes: encodeEnvelope(e) }
    }

    const [senderNode, onlineNode, , offlineHost] = nodes as [TalariaNode, TalariaNode, TalariaNode, TalariaNode]
    const { delivery } = senderNode.messaging()
    const received: Uint8Array[] = []
    // online: over the deliver stream into node 2's inbox
    const sink = new RecordingSink()
    const detach = onlineNode.messaging().delivery.attach(bob.ref, sinkOf(sink))
    await onlineNode.messaging().directory.publish([locationRecord(bob, onlineNode)])
    await delivery.submit(alice.ref, Array.from({ length: 10 }, (_, i) => encrypt(`online ${i}`)))
    await sink.until(() => sink.pushed.length >= 10, '10 online pushes')
    received.push(...sink.pushed.map((p) => p.bytes))
    detach()
    // the device went away: a newer, empty location record withdraws it
    await onlineNode.messaging().directory.publish([withdrawnLocationRecord(bob)])
    senderNode.messaging().directory.forgetLocation(bob.device.deviceId)
    // offline: through the mailbox replicas, then pulled on node 4
    const senderSink = new RecordingSink()
    const detachAlice = delivery.attach(alice.ref, sinkOf(senderSink))
    const offline = Array.from({ length: 10 }, (_, i) => encrypt(`offline ${i}`))
    await delivery.submit(alice.ref, offline)
    await senderSink.until(() => offline.every((e) => senderSink.delivered.has(e.envelope.id)), 'the offline batch delivered')
    detachAlice()
    const later = new RecordingSink()
    const detachLater = offlineHost.messaging().delivery.attach(bob.ref, sinkOf(later))
    await offlineHost.messaging().directory.publish([locationRecord(bob, offlineHost)])
    await later.until(() => offline.every((e) => later.pushed.some((p) => p.id === e.envelope.id)), 'the offline batch pulled')
    received.push(...offline.map((e) => later.pushed.find((p) => p.id === e.envelope.id)?.bytes as Uint8Array))
    detachLater()

    // Bob can read them: the bytes really are the encrypted messages
    const first = decodeEnvelope(received[0] as Uint8Array)
    assert.ok(first.init !== undefined)
    const bobSession: RatchetSession = createResponderSession(x3dhRespond({ identity: e2eKeys(bob.device), signedPreKey: spk }, {
      identityKey: first.init.identityKey, ephemeralKey: first.init.ephemeralKey, signedPreKeyId: first.init.signedPrekeyId
    }), spk)
    const texts = received.map((bytes) => {
      const { ciphertext, ...rest } = decodeEnvelope(bytes)
      return new TextDecoder().decode(ratchetDecrypt(bobSession, { header: rest.header, ciphertext }, envelopeAssociatedData(rest)))
    })
    assert.equal(texts.filter((t) => t.endsWith(marker)).length, 20)

    // stop every node so LevelDB logs and tables are on disk, then scan every file
    const dirs = nodes.map((n) => meshDataDir(n))
    await Promise.all(nodes.map(async (n) => { await n.stop() }))
    assert.deepEqual(await filesContaining(dirs, Buffer.from(marker, 'utf8')), [])
    // the scan does see stored envelopes: their ids are in clear on some node
    assert.ok((await filesContaining(dirs, Buffer.from(offline[0]?.envelope.id ?? 'x', 'utf8'))).length > 0)
  })
})
