/** `talaria send`: connects, sends one message, waits for the node's ack, exits. */
import { isUserId, type UserId } from '../../protocol/ids.js'
import { describeError } from '../describe-error.js'
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from '../exit-codes.js'
import { CliFailure, openClient } from './client-support.js'

/** Seconds `send` waits in total (connect, recipient lookup, node ack) by default. */
export const DEFAULT_SEND_TIMEOUT_S = 30
/** Pause between lookups while the recipient's keys are not yet visible, in milliseconds. */
const LOOKUP_RETRY_MS = 500

/** Flags of `talaria send`. */
export interface SendFlags {
  node: string
  identity: string
  to: string
  timeout?: string
}

/** Runs `talaria send`; prints the logical message id; returns the exit code. */
export async function runSend (flags: SendFlags, text: string): Promise<number> {
  if (!isUserId(flags.to)) {
    process.stderr.write(`talaria: --to: not a user id: ${flags.to}\n`)
    return EXIT_USAGE
  }
  const timeoutS = flags.timeout === undefined ? DEFAULT_SEND_TIMEOUT_S : Number(flags.timeout)
  if (!Number.isFinite(timeoutS) || timeoutS <= 0) {
    process.stderr.write('talaria: --timeout must be a positive number of seconds\n')
    return EXIT_USAGE
  }
  const signal = AbortSignal.timeout(timeoutS * 1000)
  const client = await openClient(flags.node, flags.identity)
  if (typeof client === 'number') return client
  try {
    try {
      await client.connect({ signal })
    } catch (err) {
      throw new CliFailure(describeError(err), EXIT_FAILURE)
    }
    const to = flags.to as UserId
    // a recipient that has just come online may not be visible in the DHT yet: look again
    for (let refresh = false; ; refresh = true) {
      try {
        const devices = await client.devices(to, { refresh, signal })
        if (devices.length > 0) break
      } catch (err) {
        if ((err as { code?: string }).code !== 'ERR_NO_DEVICES') throw err
      }
      if (signal.aborted) throw new CliFailure(`${to} has no reachable device (no published keys found within ${timeoutS} s)`, EXIT_FAILURE)
      await new Promise((resolve) => setTimeout(resolve, LOOKUP_RETRY_MS))
    }
    const id = await client.send(to, text, { signal })
    process.stdout.write(`${id}\n`)
    return EXIT_OK
  } catch (err) {
    process.stderr.write(`talaria: send failed: ${describeError(err)}\n`)
    return err instanceof CliFailure ? err.exitCode : EXIT_FAILURE
  } finally {
    await client.close().catch(() => {})
  }
}
