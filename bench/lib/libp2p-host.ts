/**
 * A minimal libp2p host for the stream floor: the transport, encrypter and muxer a Talaria node
 * uses (TCP, Noise, Yamux, as assembled in node/libp2p.ts) and nothing else — no DHT, no
 * gossipsub, no identify — listening on 127.0.0.1.
 */
import { noise } from '@chainsafe/libp2p-noise'
import type { Libp2p } from '@libp2p/interface'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { createLibp2p } from 'libp2p'

/** Protocol of the echo stream. */
export const ECHO_PROTOCOL = '/talaria-bench/echo/1.0.0'

/** Creates and starts a bare host. */
export async function createBareHost (): Promise<Libp2p> {
  return await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionMonitor: { enabled: false }
  })
}
