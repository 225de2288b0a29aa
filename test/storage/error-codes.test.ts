import assert from 'node:assert/strict'
import { test } from 'node:test'
import { readFile } from 'node:fs/promises'
import { STORAGE_ERROR_CODES } from '../../storage/index.js'

test('docs/STORAGE.md documents exactly the storage error codes', async () => {
  const doc = await readFile(new URL('../../docs/STORAGE.md', import.meta.url), 'utf8')
  const section = doc.split('## Error codes')[1]?.split('\n## ')[0] ?? ''
  const documented = [...section.matchAll(/^\| `(ERR_[A-Z_]+)` \|/gm)].map((m) => m[1]).sort()
  assert.deepEqual(documented, [...STORAGE_ERROR_CODES].sort())
})
