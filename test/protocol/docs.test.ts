import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, test } from 'node:test'
import * as limits from '../../protocol/limits.js'
import { canonicalEncode, PROTOCOL_ERROR_CODES, toHex } from '../../protocol/index.js'

const doc = readFileSync(new URL('../../docs/PROTOCOL.md', import.meta.url), 'utf8')

function tableRows (heading: string): string[][] {
  const start = doc.indexOf(heading)
  assert.ok(start >= 0, `section ${heading} exists`)
  const rest = doc.slice(start + heading.length)
  const next = rest.search(/\n## /)
  const section = next < 0 ? rest : rest.slice(0, next)
  return section.split('\n')
    .filter((l) => l.startsWith('| `'))
    .map((l) => l.split('|').slice(1, -1).map((c) => c.trim()))
}

describe('docs/PROTOCOL.md agrees with the code', () => {
  test('the limits table lists every limit with its value', () => {
    const documented = new Map(tableRows('## 4. Limits').map(([name, value]) => [name!.replaceAll('`', ''), Number(value)]))
    const actual = Object.entries(limits)
    assert.deepEqual([...documented.keys()].sort(), actual.map(([k]) => k).sort())
    for (const [name, value] of actual) assert.equal(documented.get(name), value, name)
  })

  test('the error table lists exactly the protocol error codes', () => {
    const documented = tableRows('## 8. Error codes').map(([code]) => code!.replaceAll('`', ''))
    assert.deepEqual([...documented].sort(), [...PROTOCOL_ERROR_CODES].sort())
  })

  test('the canonical encoding example holds', () => {
    assert.equal(toHex(canonicalEncode(['a', 1, new Uint8Array([1, 2])])), '93a16101c4020102')
    assert.match(doc, /`93 a1 61 01 c4 02 01 02`/)
  })
})
