/**
 * What the client commands (`send`, `listen`) share: an identity file, its store next to it
 * (`FILE.store/`, so sessions persist across invocations), a client on both, and how they report
 * failures.
 */
import { readFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import WebSocket from 'ws'
import { LevelStore, createClient, decodeIdentity, type TalariaClient, type WebSocketConstructor } from '../../client/index.js'
import { MAX_CLIENT_IDENTITY_BYTES } from '../../client/identity.js'
import { describeError } from '../describe-error.js'
import { EXIT_FAILURE, EXIT_USAGE } from '../exit-codes.js'

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


/**
 * {@link prepareClient}, or the exit code after printing why it could not be prepared, so each
 * command handles that failure the same way.
 */
export async function openClient (url: string, identityPath: string): Promise<TalariaClient | number> {
  try {
    return await prepareClient(url, identityPath)
  } catch (err) {
    process.stderr.write(`talaria: ${describeError(err)}\n`)
    return err instanceof CliFailure ? err.exitCode : EXIT_FAILURE
  }
}

/** `value` as a positive number (an integer when `integer`); undefined when absent; CliFailure (usage) otherwise. */
export function positive (value: string | undefined, what: string, integer: boolean): number | undefined {
  if (value === undefined) return undefined
  const n = Number(value)
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) throw new CliFailure(`${what} must be a positive ${integer ? 'integer' : 'number'}`, EXIT_USAGE)
  return n
}
