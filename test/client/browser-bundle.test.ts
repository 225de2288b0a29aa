import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'
import { describe, test } from 'node:test'
import { build } from 'esbuild'
import type * as Identity from '../../client/identity.js'

const root = fileURLToPath(new URL('../..', import.meta.url))

describe('client/ bundles for browsers', () => {
  test('esbuild bundles client/index.ts for platform browser: level resolves to IndexedDB, no node: imports', async () => {
    // abstract-level requires 'events'; browser bundlers take it from the `events` npm package,
    // which the application supplies (docs/CLIENT.md): it is the one external allowed here
    const result = await build({
      entryPoints: ['client/index.ts'],
      absWorkingDir: root,
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      metafile: true,
      external: ['events'],
      logLevel: 'silent'
    })
    assert.equal(result.errors.length, 0)
    const inputs = Object.keys(result.metafile.inputs)
    assert.ok(inputs.some((p) => p.endsWith('client/client.ts')), 'the bundle holds the client sources')
    assert.ok(inputs.some((p) => p.includes('browser-level')), 'level resolves to browser-level')
    assert.ok(!inputs.some((p) => p.includes('classic-level')), 'no LevelDB binding')
    assert.ok(!inputs.some((p) => p.startsWith('node:') || p.includes('/ws/')), 'no node: module and no ws among the inputs')
    for (const output of Object.values(result.metafile.outputs)) {
      assert.deepEqual(output.imports.filter((i) => i.path.startsWith('node:') || (i.external && i.path !== 'events')), [], 'no node: import and no external but events')
    }
  })

  test('without process (as in a browser) the identity code runs: create, encode, decode', async () => {
    const result = await build({
      entryPoints: ['client/identity.ts'],
      absWorkingDir: root,
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      define: { 'globalThis.process': 'undefined' },
      logLevel: 'silent'
    })
    const code = result.outputFiles[0]!.text
    const mod = await import('data:text/javascript;base64,' + Buffer.from(code).toString('base64')) as typeof Identity
    const id = mod.createIdentity()
    assert.equal(mod.decodeIdentity(mod.encodeIdentity(id)).user.userId, id.user.userId)
  })
})
