import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, test } from 'node:test'
import { CLIENT_ERROR_CODES } from '../../protocol/client-protocol.js'

const doc = readFileSync(new URL('../../docs/ERRORS.md', import.meta.url), 'utf8')

describe('docs/ERRORS.md agrees with the code', () => {
  test('the table documents exactly CLIENT_ERROR_CODES, once each, with every column filled', () => {
    const rows = doc.split('\n')
      .filter((l) => l.startsWith('| `ERR_'))
      .map((l) => l.split('|').slice(1, -1).map((c) => c.trim()))
    const documented = rows.map(([code]) => code!.replaceAll('`', ''))
    assert.equal(new Set(documented).size, documented.length, 'no code documented twice')
    assert.deepEqual([...documented].sort(), [...CLIENT_ERROR_CODES].sort())
    for (const row of rows) {
      assert.equal(row.length, 5, `${row[0]} has five columns`)
      for (const cell of row) assert.ok(cell.length > 0, `${row[0]} has no empty column`)
    }
  })
})
