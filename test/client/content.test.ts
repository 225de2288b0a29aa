import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { encodeValue } from '../../protocol/codec.js'
import { MAX_CONTENT_BYTES, MAX_TEXT_LENGTH, decodeContent, encodeContent, isUnknownContentType, type Content } from '../../protocol/content.js'
import { directConversationId, newMessageId } from '../../protocol/ids.js'
import { createIdentity } from '../../client/identity.js'

const u1 = createIdentity().user.userId
const u2 = createIdentity().user.userId

describe('content schema', () => {
  it('round-trips every type', () => {
    const samples: Content[] = [
      { type: 'text', id: newMessageId(), text: 'héllo ✓', sentAt: 1_700_000_000_000 },
      { type: 'text', id: newMessageId(), text: '', sentAt: 0, peer: u2, base: 7 },
      { type: 'receipt', receipt: 'read', ids: [newMessageId(), newMessageId()] },
      { type: 'gap', conv: directConversationId(u1, u2), fromSeq: 3, toSeq: 9 }
    ]
    for (const c of samples) assert.deepEqual(decodeContent(encodeContent(c)), c)
  })

  it('checks sizes first and every field', () => {
    assert.throws(() => decodeContent(new Uint8Array(MAX_CONTENT_BYTES + 1)), { code: 'ERR_TOO_LARGE' })
    assert.throws(() => encodeContent({ type: 'text', id: newMessageId(), text: 'x'.repeat(MAX_TEXT_LENGTH + 1), sentAt: 1 }), { code: 'ERR_TOO_LARGE' })
    const bad = [
      { v: 1, type: 'text', id: 'nope', text: 'x', sentAt: 1 },
      { v: 1, type: 'text', id: newMessageId(), text: 5, sentAt: 1 },
      { v: 1, type: 'text', id: newMessageId(), text: 'x', sentAt: -1 },
      { v: 1, type: 'text', id: newMessageId(), text: 'x', sentAt: 1, base: 0 },
      { v: 1, type: 'receipt', receipt: 'seen', ids: [newMessageId()] },
      { v: 1, type: 'receipt', receipt: 'read', ids: [] },
      { v: 1, type: 'gap', conv: directConversationId(u1, u2), fromSeq: 5, toSeq: 4 },
      { v: 1, type: 'gap', conv: directConversationId(u1, u2), fromSeq: 1, toSeq: 1_000_000 },
      { v: 1, type: 3 }
    ]
    for (const o of bad) assert.throws(() => decodeContent(encodeValue(o)), { code: 'ERR_MALFORMED' })
    assert.throws(() => decodeContent(encodeValue({ v: 2, type: 'text' })), { code: 'ERR_UNSUPPORTED_VERSION' })
  })

  it('tells a newer sender\'s unknown type apart from garbage', () => {
    try {
      decodeContent(encodeValue({ v: 1, type: 'reaction', emoji: '+1' }))
      assert.fail('decoded an unknown type')
    } catch (err) {
      assert.equal(isUnknownContentType(err), true)
    }
    try {
      decodeContent(encodeValue({ v: 1, type: 'text' }))
      assert.fail('decoded a bad text')
    } catch (err) {
      assert.equal(isUnknownContentType(err), false)
    }
  })
})
