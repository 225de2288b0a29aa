/** `talaria id`: prints the peer id kept in a data dir. */
import { resolve } from 'node:path'
import { readPeerId } from '../../node/index.js'
import { DEFAULT_SETTINGS, settingsFromEnv, settingsFromFlags } from '../config.js'
import { describeError } from '../describe-error.js'
import { EXIT_FAILURE, EXIT_OK } from '../exit-codes.js'

/** Runs `talaria id`; returns the exit code. */
export async function runId (flags: Record<string, unknown>): Promise<number> {
  const dataDir = resolve(settingsFromFlags(flags).dataDir ?? settingsFromEnv(process.env).dataDir ?? DEFAULT_SETTINGS.dataDir)
  try {
    process.stdout.write(`${await readPeerId(dataDir)}\n`)
    return EXIT_OK
  } catch (err) {
    process.stderr.write(`talaria: ${describeError(err)}\n`)
    return EXIT_FAILURE
  }
}
