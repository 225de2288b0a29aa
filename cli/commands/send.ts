/**
 * `talaria send`: connects, sends one message, waits for the node's ack, exits. Also what `send`
 * and `listen` share: an identity file, its store next to it (`FILE.store/`, so sessions persist
 * across invocations), and a client on both.
 */
import { readFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import WebSocket from 'ws'
import { LevelStore, createClient, decodeIdentity, type TalariaClient, type WebSocketConstructor } from '../../client/index.js'
import { MAX_CLIENT_IDENTITY_BYTES } from '../../client/identity.js'
import { isUserId, type UserId } from '../../protocol/ids.js'
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from '../exit-codes.js'

/** A failure the CLI reports with its exit code. */
export class CliFailure extends Error {
  constructor (message: string, readonly exitCode: number) {
    super(message)
    this.name = 'CliFailure'
  }
}

/**
 * Loads `identityPath` and creates a client on its store for `url`, not yet connected: the caller
 * subscribes to events first (pushes can arrive as soon as it connects), connects, and closes it.
 */
export async function prepareClient (url: string, identityPath: string): Promise<TalariaClient> {
  const path = resolve(identityPath)
  let bytes: Uint8Array
  try {
    bytes = await readFile(path)
  } catch (err) {
    throw new CliFailure(`cannot read identity ${path}: ${err instanceof Error ? err.message : String(err)}`, 1)
  }
  if (bytes.length > MAX_CLIENT_IDENTITY_BYTES) throw new CliFailure(`${path} is not an identity file (too large)`, 1)
  const identity = decodeIdentity(new Uint8Array(bytes))
  const client = createClient({
    url,
    identity,
    store: new LevelStore(`${path}.store`),
    WebSocket: WebSocket as unknown as WebSocketConstructor,
    // a command is short-lived: a lost connection is a failure to report, not to ride out
    reconnect: false
  })
  return client
}

/** One line for an error: message and code. */
export function describeError (err: unknown): string {
  const code = (err as { code?: unknown }).code
  const message = err instanceof Error ? err.message : String(err)
  return typeof code === 'string' ? `${message} (${code})` : message
}

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
  let client
  try {
    client = await prepareClient(flags.node, flags.identity)
  } catch (err) {
    process.stderr.write(`talaria: ${describeError(err)}\n`)
    return err instanceof CliFailure ? err.exitCode : EXIT_FAILURE
  }
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
