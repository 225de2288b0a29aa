/**
 * Child process of the libp2p floor: a bare host (libp2p-host.ts) that writes every byte of an
 * echo stream back on the same stream, respecting backpressure. Prints its multiaddr on stdout;
 * ends when its stdin closes (the parent went away) or on SIGTERM.
 */
import { chunkBytes } from '../../node/messaging/wire.js'
import { createBareHost, ECHO_PROTOCOL } from './libp2p-host.js'

const host = await createBareHost()
await host.handle(ECHO_PROTOCOL, async (stream) => {
  for await (const chunk of stream) {
    if (!stream.send(chunkBytes(chunk))) await stream.onDrain()
  }
  await stream.close()
}, { maxInboundStreams: 4 })
process.stdout.write(`${host.getMultiaddrs()[0]?.toString() ?? ''}\n`)
const stop = (): void => { void Promise.resolve(host.stop()).finally(() => process.exit(0)) }
process.on('SIGTERM', stop)
process.stdin.on('end', stop)
process.stdin.resume()
