/** Shared fixtures of the storage tests: a temp dir removed after the file's tests. */
import { after } from 'node:test'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** Creates a temp dir for this test file and registers its removal; returns a fresh-subdir maker. */
export async function tempDirs (label: string): Promise<() => string> {
  const root = await mkdtemp(join(tmpdir(), `talaria-${label}-`))
  after(async () => { await rm(root, { recursive: true, force: true }) })
  let n = 0
  return () => join(root, `d${n++}`)
}

/** UTF-8 bytes of a string. */
export const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s)
