import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'
import { describe, test } from 'node:test'
import { build, type BuildFailure } from 'esbuild'
import type * as Protocol from '../../protocol/index.js'
import { bundleForBrowser } from '../helpers/bundle.js'

const root = fileURLToPath(new URL('../..', import.meta.url))

describe('protocol/ bundles for browsers', () => {
  test('esbuild bundles protocol/index.ts for platform browser with no node: imports', async () => {
    const result = await bundleForBrowser('protocol/index.ts')
    assert.equal(result.errors.length, 0)
    assert.equal(result.outputFiles.length, 1)
    const inputs = Object.keys(result.metafile.inputs)
    assert.ok(inputs.some((p) => p.endsWith('protocol/records.ts')), 'the bundle holds the protocol sources')
    assert.ok(!inputs.some((p) => p.startsWith('node:')), 'no node: module among the inputs')
    for (const output of Object.values(result.metafile.outputs)) {
      assert.deepEqual(output.imports.filter((i) => i.path.startsWith('node:') || i.external), [], 'no external or node: imports left')
    }
  })

  test('without process (as in a browser) the bundle falls back to noble and still works', async () => {
    const result = await bundleForBrowser('protocol/index.ts', { define: { 'globalThis.process': 'undefined' } })
    const code = result.outputFiles[0]!.text
    const mod = await import('data:text/javascript;base64,' + Buffer.from(code).toString('base64')) as typeof Protocol
    assert.equal(mod.nativeCrypto, undefined)
    assert.equal(mod.defaultCrypto.name, 'noble')
    const user = mod.createUserIdentity()
    const key = mod.recordKey('profile', user.userId)
    const value = mod.signRecord({ kind: 'profile', id: user.userId, seq: 1, expiresAt: Date.now() + 60_000, payload: mod.encodeProfilePayload({ displayName: 'B' }) }, { seed: user.rootSeed, publicKey: user.rootPublicKey })
    assert.equal(mod.validateRecord(key, value).seq, 1)
  })

  test('the check has teeth: a node: import fails a browser build', async () => {
    await assert.rejects(build({
      stdin: { contents: "import { createHash } from 'node:crypto'\nexport const h = createHash", resolveDir: root, loader: 'ts' },
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      logLevel: 'silent'
    }), (err: BuildFailure) => err.errors.some((e) => e.text.includes('node:crypto')))
  })
})
