import { after } from 'node:test'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openLevelEngine, openMemoryEngine } from '../../storage/level-engine.js'
import { engineSuite } from './engine-suite.js'

const dir = await mkdtemp(join(tmpdir(), 'talaria-engine-'))
after(async () => { await rm(dir, { recursive: true, force: true }) })

let n = 0
engineSuite({ name: 'level', factory: async () => await openLevelEngine(join(dir, `db-${n++}`)) })
engineSuite({ name: 'memory', factory: async () => await openMemoryEngine() })
