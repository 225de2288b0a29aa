/** `talaria identity new`: creates a user with one device and writes its identity file. */
import { writeFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { createIdentity, encodeIdentity } from '../../client/index.js'
import { EXIT_FAILURE, EXIT_OK } from '../exit-codes.js'

/** Runs `talaria identity new --out FILE [--force]`; prints the user id; returns the exit code. */
export async function runIdentityNew (flags: { out: string, force?: boolean }): Promise<number> {
  const path = resolve(flags.out)
  const identity = createIdentity()
  try {
    // 0600 and, unless --force, never over an existing file: an identity holds private keys, and
    // overwriting one would orphan its store and its conversations
    await writeFile(path, encodeIdentity(identity), { mode: 0o600, flag: flags.force === true ? 'w' : 'wx' })
  } catch (err) {
    const code = (err as { code?: string }).code
    process.stderr.write(code === 'EEXIST'
      ? `talaria: ${path} already exists (use --force to replace it)\n`
      : `talaria: cannot write ${path}: ${err instanceof Error ? err.message : String(err)}\n`)
    return EXIT_FAILURE
  }
  process.stdout.write(`${identity.user.userId}\n`)
  return EXIT_OK
}
