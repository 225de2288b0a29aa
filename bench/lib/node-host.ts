/**
 * A node process for benchmarks that need a setting `talaria start` does not expose as a flag (the
 * gateway's total connection cap, its ping interval): it runs the same `createNode` as the CLI
 * with the `TalariaNodeInit` given as JSON in argv[2] and prints the same banner lines, so
 * `cluster.ts` reads both alike. SIGINT or SIGTERM stops it cleanly.
 *
 * Run: node --import ./scripts/register.js bench/lib/node-host.ts '{"dataDir":"…","gateway":{…}}'
 */
import { pino } from 'pino'
import { createNode, type TalariaNodeInit } from '../../node/index.js'

const init = JSON.parse(process.argv[2] ?? '{}') as TalariaNodeInit
const node = await createNode({
  listen: ['/ip4/127.0.0.1/tcp/0'],
  httpHost: '127.0.0.1',
  httpPort: 0,
  mdns: false,
  ...init,
  logger: pino({ level: 'warn' }, pino.destination({ dest: 2, sync: true }))
})
await node.start()
process.stdout.write([
  'Talaria node started (bench host)',
  `  peer id   ${node.peerId}`,
  ...node.getMultiaddrs().map((addr) => `  listening ${addr}`),
  `  http      ${node.httpUrl}`,
  'Press Ctrl-C to stop.'
].join('\n') + '\n')

const stop = async (): Promise<void> => {
  const deadline = setTimeout(() => process.exit(1), 5_000)
  await node.stop()
  clearTimeout(deadline)
  process.exit(0)
}
process.once('SIGINT', () => { void stop() })
process.once('SIGTERM', () => { void stop() })
