import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, test } from 'node:test'
import * as options from '../../node/gateway/options.js'

const doc = readFileSync(new URL('../../docs/CLIENT-PROTOCOL.md', import.meta.url), 'utf8')

/** `maxFrameBytes` → DEFAULT_MAX_FRAME_BYTES, with the total connection limit's constant named differently. */
function constantName (option: string): string {
  if (option === 'maxConnections') return 'DEFAULT_MAX_CLIENT_CONNECTIONS'
  return 'DEFAULT_' + option.replace(/[A-Z]/g, (c) => '_' + c).toUpperCase()
}

describe('docs/CLIENT-PROTOCOL.md agrees with the code', () => {
  test('the limits table shows each limit with its default', () => {
    const start = doc.indexOf('## 6. Limits')
    assert.ok(start >= 0)
    const section = doc.slice(start, doc.indexOf('\n## ', start + 1))
    const rows = section.split('\n').filter((l) => l.startsWith('| `')).map((l) => l.split('|').slice(1, -1).map((c) => c.trim()))
    assert.ok(rows.length >= 10)
    for (const [name, value] of rows) {
      const constant = constantName(name!.replaceAll('`', ''))
      assert.equal(Number(value), (options as Record<string, unknown>)[constant], `${name} is ${constant}`)
    }
  })
})
