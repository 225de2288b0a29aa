/**
 * The `talaria` command. The only place that reads argv, env and config files, prints, and exits.
 */
import { Command, CommanderError, Option } from 'commander'
import { ConfigError, DEFAULT_SETTINGS, LOG_LEVELS, envName, resolveSettings, type Resolved } from './config.js'
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from './exit-codes.js'
import { version } from './version.js'

/** Node URL of the client commands when --node is absent (the client SDK's default, kept here so help does not load the SDK). */
const DEFAULT_CLIENT_NODE_URL = 'ws://127.0.0.1:7780/v1'

function collect (value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value]
}

function fmt (value: unknown): string {
  return Array.isArray(value) ? (value.length === 0 ? 'none' : value.join(', ')) : String(value)
}

/** Settings of `start`/`bootstrap`, resolved before the node modules load so bad settings fail fast. */
function resolveFromFlags (flags: Record<string, unknown>): Resolved {
  return resolveSettings({
    flags,
    env: process.env,
    cwd: process.cwd(),
    ...(typeof flags.config === 'string' ? { configPath: flags.config } : {})
  })
}

/** Adds the node flags to a command; help shows each flag's default and environment variable. */
function nodeOptions (cmd: Command, defaults = DEFAULT_SETTINGS): Command {
  const d = defaults
  return cmd
    .option('--data-dir <path>', `data directory (default: ${d.dataDir}; env ${envName('dataDir')})`)
    .option('--config <file>', 'JSON config file (default: <data-dir>/config.json if present; env TALARIA_CONFIG)')
    .option('--listen <multiaddr>', `libp2p listen address, repeatable (default: ${fmt(d.listen)}; env ${envName('listen')}, comma-separated)`, collect)
    .option('--announce <multiaddr>', `address to announce instead of the listen addresses, repeatable (default: ${fmt(d.announce)}; env ${envName('announce')})`, collect)
    .option('--http-port <port>', `HTTP port for health, status and clients; 0 picks a free port (default: ${d.httpPort}; env ${envName('httpPort')})`)
    .option('--http-host <host>', `HTTP bind address (default: ${d.httpHost}; env ${envName('httpHost')})`)
    .option('--bootstrap <multiaddr>', `peer to join the mesh through, repeatable, added to the shipped list (default: ${fmt(d.bootstrap)}; env ${envName('bootstrap')})`, collect)
    .addOption(new Option('--mdns', `discover peers on the LAN by multicast DNS (default: ${String(d.mdns)}; env ${envName('mdns')})`))
    .addOption(new Option('--no-mdns', 'disable mDNS even if the config enables it').hideHelp())
    .option('--shards <n>', `LevelDB shards of a new data dir (default: ${d.shards}; env ${envName('shards')})`)
    .addOption(new Option('--log-level <level>', `log level: ${LOG_LEVELS.join(', ')} (default: ${d.logLevel}; env ${envName('logLevel')})`))
    .option('--max-frame-bytes <n>', `largest client WebSocket frame (default: ${d.maxFrameBytes}; env ${envName('maxFrameBytes')})`)
    .option('--max-requests-per-second <n>', `client requests per second per connection (default: ${d.maxRequestsPerSecond}; env ${envName('maxRequestsPerSecond')})`)
    .option('--max-user-requests-per-second <n>', `client requests per second per user (default: ${d.maxUserRequestsPerSecond}; env ${envName('maxUserRequestsPerSecond')})`)
    .option('--max-connections-per-ip <n>', `client connections per remote IP (default: ${d.maxConnectionsPerIp}; env ${envName('maxConnectionsPerIp')})`)
    .option('--group-retention-ms <ms>', `how long group and room messages are kept (default: ${d.groupRetentionMs}; env ${envName('groupRetentionMs')})`)
    .option('--group-history-limit <n>', `messages kept per group (default: ${d.groupHistoryLimit}; env ${envName('groupHistoryLimit')})`)
    .option('--room-history-limit <n>', `messages kept per room (default: ${d.roomHistoryLimit}; env ${envName('roomHistoryLimit')})`)
    .option('--max-groups <n>', `group logs held in memory (default: ${d.maxGroups}; env ${envName('maxGroups')})`)
}

/**
 * Builds the command tree. Commands load their modules on demand, so `--help` and usage errors do
 * not pay for loading libp2p.
 */
export function buildProgram (): Command {
  const program = new Command('talaria')
    .description('Talaria: a decentralized, end-to-end encrypted instant-messaging node')
    .version(version, '-v, --version')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()

  nodeOptions(program.command('start').description('run a Talaria node'))
    .exitOverride()
    .action(async (flags: Record<string, unknown>) => {
      const resolved = resolveFromFlags(flags)
      const { runNode } = await import('./commands/start.js')
      process.exitCode = await runNode('node', resolved)
    })

  nodeOptions(program.command('bootstrap').description('run a bootstrap node: DHT server and peer exchange, no user traffic'))
    .exitOverride()
    .action(async (flags: Record<string, unknown>) => {
      const resolved = resolveFromFlags(flags)
      const { runNode } = await import('./commands/start.js')
      process.exitCode = await runNode('bootstrap', resolved)
    })

  program.command('id')
    .description("print the node's peer id for a data dir")
    .option('--data-dir <path>', `data directory (default: ${DEFAULT_SETTINGS.dataDir}; env ${envName('dataDir')})`)
    .exitOverride()
    .action(async (flags: Record<string, unknown>) => {
      const { runId } = await import('./commands/id.js')
      process.exitCode = await runId(flags)
    })

  const identity = program.command('identity').description('client identities (a user with one device)')
  identity.command('new')
    .description('create a user with one device; writes the identity file (mode 0600) and prints the user id')
    .requiredOption('--out <file>', 'identity file to write (its client store will live in <file>.store/)')
    .option('--force', 'replace an existing file')
    .exitOverride()
    .action(async (flags: { out: string, force?: boolean }) => {
      const { runIdentityNew } = await import('./commands/identity.js')
      process.exitCode = await runIdentityNew(flags)
    })

  program.command('send')
    .description("send one message; exits 0 once the node acknowledged it (durable in the node's outbox)")
    .argument('<text>', 'message text')
    .option('--node <url>', 'node WebSocket URL', DEFAULT_CLIENT_NODE_URL)
    .requiredOption('--identity <file>', 'identity file (from `talaria identity new`)')
    .requiredOption('--to <userId>', 'recipient user id')
    .option('--timeout <seconds>', 'give up after this many seconds (default: 30)')
    .exitOverride()
    .action(async (text: string, flags: { node: string, identity: string, to: string, timeout?: string }) => {
      const { runSend } = await import('./commands/send.js')
      process.exitCode = await runSend(flags, text)
    })

  program.command('listen')
    .description('print received messages (direct, group and room) as JSON lines; exits 0 after --count messages, at --timeout, or on Ctrl-C')
    .option('--node <url>', 'node WebSocket URL', DEFAULT_CLIENT_NODE_URL)
    .requiredOption('--identity <file>', 'identity file (from `talaria identity new`)')
    .option('--count <n>', 'exit after this many messages')
    .option('--timeout <seconds>', 'exit after this many seconds')
    .option('--room <roomId>', 'also enter this room and print its messages, repeatable', collect)
    .exitOverride()
    .action(async (flags: { node: string, identity: string, count?: string, timeout?: string, room?: string[] }) => {
      const { runListen } = await import('./commands/listen.js')
      process.exitCode = await runListen(flags)
    })

  const group = program.command('group').description('end-to-end encrypted groups: create, change membership, send (on the identity\'s store)')
  const groupCommon = (cmd: Command): Command => cmd
    .option('--node <url>', 'node WebSocket URL', DEFAULT_CLIENT_NODE_URL)
    .requiredOption('--identity <file>', 'identity file (from `talaria identity new`)')
    .option('--timeout <seconds>', 'give up after this many seconds (default: 30)')
    .exitOverride()
  groupCommon(group.command('create').description('create a group with this user as owner; prints its id'))
    .requiredOption('--name <name>', 'group name')
    .option('--members <users>', 'user ids to add, comma-separated')
    .action(async (flags: { node: string, identity: string, name: string, members?: string, timeout?: string }) => {
      const { runGroupCreate } = await import('./commands/group.js')
      process.exitCode = await runGroupCreate(flags)
    })
  for (const kind of ['add', 'remove'] as const) {
    groupCommon(group.command(kind).description(kind === 'add' ? 'add members (admins and the owner; anyone when the group is open)' : 'remove members (admins and the owner)'))
      .requiredOption('--group <groupId>', 'group id')
      .argument('<users...>', 'user ids, comma- or space-separated')
      .action(async (users: string[], flags: { node: string, identity: string, group: string, timeout?: string }) => {
        const { runGroupMembers } = await import('./commands/group.js')
        process.exitCode = await runGroupMembers(kind, flags, users)
      })
  }
  groupCommon(group.command('leave').description('leave a group'))
    .requiredOption('--group <groupId>', 'group id')
    .action(async (flags: { node: string, identity: string, group: string, timeout?: string }) => {
      const { runGroupLeave } = await import('./commands/group.js')
      process.exitCode = await runGroupLeave(flags)
    })
  groupCommon(group.command('send').description("send one message to a group; prints its id once the node holds it"))
    .requiredOption('--group <groupId>', 'group id')
    .argument('<text>', 'message text')
    .action(async (text: string, flags: { node: string, identity: string, group: string, timeout?: string }) => {
      const { runGroupSend } = await import('./commands/group.js')
      process.exitCode = await runGroupSend(flags, text)
    })

  return program
}

async function main (): Promise<void> {
  const program = buildProgram()
  try {
    await program.parseAsync(process.argv)
  } catch (err) {
    if (err instanceof CommanderError) {
      // bare `talaria` shows help as an error (commander.help, exit code 1): a usage error
      const ok = err.code === 'commander.helpDisplayed' || err.code === 'commander.version'
      process.exitCode = ok ? EXIT_OK : EXIT_USAGE
      return
    }
    if (err instanceof ConfigError) {
      process.stderr.write(`talaria: ${err.message}\n`)
      process.exitCode = EXIT_USAGE
      return
    }
    process.stderr.write(`talaria: ${err instanceof Error ? err.message : String(err)}\n`)
    process.exitCode = EXIT_FAILURE
  }
}

await main()
