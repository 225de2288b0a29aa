/** `talaria send`: connects, sends one message, waits for the node's ack, exits. */
import { isUserId, type UserId } from '../../protocol/ids.js'
import { EXIT_USAGE } from '../exit-codes.js'
import { runConnected, waitReachable } from './client-support.js'

/** Seconds `send` waits in total (connect, recipient lookup, node ack) by default. */
export const DEFAULT_SEND_TIMEOUT_S = 30

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
  return await runConnected(flags, 'send', timeoutS, async (client, signal) => {
    const to = flags.to as UserId
    await waitReachable(client, to, signal, timeoutS)
    return await client.send(to, text, { signal })
  })
}
