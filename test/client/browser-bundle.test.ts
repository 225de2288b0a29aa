import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type * as Identity from '../../client/identity.js'
import { bundleForBrowser } from '../helpers/bundle.js'

describe('client/ bundles for browsers', () => {
  test('esbuild bundles client/index.ts for platform browser: level resolves to IndexedDB, no node: imports', async () => {
    // abstract-level requires 'events'; browser bundlers take it from the `events` npm package,
    // which the application supplies (docs/CLIENT.md): it is the one external allowed here
    const result = await bundleForBrowser('client/index.ts', { external: ['events'] })
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
    const result = await bundleForBrowser('client/identity.ts', { define: { 'globalThis.process': 'undefined' } })
    const code = result.outputFiles[0]!.text
    const mod = await import('data:text/javascript;base64,' + Buffer.from(code).toString('base64')) as typeof Identity
    const id = mod.createIdentity()
    assert.equal(mod.decodeIdentity(mod.encodeIdentity(id)).user.userId, id.user.userId)
  })
})
