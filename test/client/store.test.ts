import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LevelStore } from '../../client/level-store.js'
import { MemoryStore } from '../../client/store.js'
import { storeSuite } from './store-suite.js'

storeSuite('MemoryStore', async () => ({ store: new MemoryStore(), cleanup: async () => {} }), { persistent: false })

storeSuite('LevelStore', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'talaria-client-store-'))
  const path = join(dir, 'db')
  return { store: new LevelStore(path), reopen: () => new LevelStore(path), cleanup: async () => { await rm(dir, { recursive: true, force: true }) } }
}, { persistent: true })
