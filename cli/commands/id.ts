/** `talaria id`: prints the peer id kept in a data dir. */
import { resolve } from 'node:path'
import { readPeerId } from '../../node/index.js'
import { DEFAULT_SETTINGS, settingsFromEnv, settingsFromFlags } from '../config.js'
import { EXIT_FAILURE, EXIT_OK } from '../exit-codes.js'

/** Runs `talaria id`; returns the exit code. */
export async function runId (flags: Record<string, unknown>): Promise<number> {
  const dataDir = resolve(settingsFromFlags(flags).dataDir ?? settingsFromEnv(process.env).dataDir ?? DEFAULT_SETTINGS.dataDir)
  try {
    process.stdout.write(`${await readPeerId(dataDir)}\n`)
    return EXIT_OK
  } catch (err) {
    const code = (err as { code?: string }).code
    process.stderr.write(`talaria: ${err instanceof Error ? err.message : String(err)}${code !== undefined ? ` (${code})` : ''}\n`)
    return EXIT_FAILURE
  }
}
