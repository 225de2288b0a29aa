/** `talaria start` and `talaria bootstrap`: run a node until SIGINT or SIGTERM. */
import { createNode, type NodeRole, type TalariaNode } from '../../node/index.js'
import type { Resolved, Settings } from '../config.js'
import { EXIT_FAILURE, EXIT_OK, STOP_DEADLINE_MS } from '../exit-codes.js'
import { describeError } from '../describe-error.js'
import { createLogger } from '../logger.js'


function banner (role: NodeRole, node: TalariaNode, settings: Settings): string {
  const lines = [
    `Talaria ${role === 'bootstrap' ? 'bootstrap node' : 'node'} started`,
    `  peer id   ${node.peerId}`,
    ...node.getMultiaddrs().map((addr) => `  listening ${addr}`),
    `  http      ${node.httpUrl}`,
    `  data dir  ${settings.dataDir}`,
    'Press Ctrl-C to stop.'
  ]
  return lines.join('\n') + '\n'
}

/** Starts the node with resolved settings, waits for a stop signal; returns the exit code. */
export async function runNode (role: NodeRole, { settings, configFile }: Resolved): Promise<number> {
  const logger = createLogger(settings.logLevel)
  if (configFile !== undefined) logger.info({ configFile }, 'config file read')

  let node: TalariaNode
  try {
    node = await createNode({
      role,
      dataDir: settings.dataDir,
      listen: settings.listen,
      announce: settings.announce,
      httpPort: settings.httpPort,
      httpHost: settings.httpHost,
      bootstrap: settings.bootstrap,
      mdns: settings.mdns,
      shards: settings.shards,
      gateway: {
        maxFrameBytes: settings.maxFrameBytes,
        maxRequestsPerSecond: settings.maxRequestsPerSecond,
        maxUserRequestsPerSecond: settings.maxUserRequestsPerSecond,
        maxConnectionsPerIp: settings.maxConnectionsPerIp
      },
      groupRetentionMs: settings.groupRetentionMs,
      groupHistoryLimit: settings.groupHistoryLimit,
      roomHistoryLimit: settings.roomHistoryLimit,
      maxGroups: settings.maxGroups,
      logger
    })
    await node.start()
  } catch (err) {
    process.stderr.write(`talaria: cannot start: ${describeError(err)}\n`)
    logger.debug({ err }, 'start failed')
    return EXIT_FAILURE
  }
  process.stdout.write(banner(role, node, settings))

  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', () => { resolve('SIGINT') })
    process.once('SIGTERM', () => { resolve('SIGTERM') })
  })
  logger.info({ signal }, 'stopping')
  // A second signal, or a stop that hangs past the deadline, ends the process anyway.
  const deadline = setTimeout(() => {
    process.stderr.write(`talaria: stop took longer than ${STOP_DEADLINE_MS} ms, exiting\n`)
    process.exit(EXIT_FAILURE)
  }, STOP_DEADLINE_MS)
  deadline.unref()
  const forced = (): void => { process.exit(EXIT_FAILURE) }
  process.once('SIGINT', forced)
  process.once('SIGTERM', forced)
  let code: number
  try {
    await node.stop()
    logger.info('stopped')
    code = EXIT_OK
  } catch (err) {
    process.stderr.write(`talaria: stop failed: ${describeError(err)}\n`)
    code = EXIT_FAILURE
  } finally {
    clearTimeout(deadline)
  }
  // Everything is closed; libp2p may still hold a timer for a few seconds after stop. An unref'd
  // timer exits now if anything still keeps the process alive, and never fires otherwise.
  setTimeout(() => process.exit(code), 0).unref()
  return code
}
