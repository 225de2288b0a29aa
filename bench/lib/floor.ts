/**
 * The floors: the same frames through a bare WebSocket relay in another process, and through a
 * bare libp2p stream (TCP + Noise + Yamux) echoed by another process, measured the same way as the
 * messaging scenarios (send call to receive event, one process holding both ends). Every Talaria
 * figure is read as a ratio to these, measured in the same run.
 */
import { once } from 'node:events'
import { multiaddr } from '@multiformats/multiaddr'
import { WebSocket } from 'ws'
import { chunkBytes } from '../../node/messaging/wire.js'
import { spawnNode, stopProcess } from './cluster.js'
import { ECHO_PROTOCOL, createBareHost } from './libp2p-host.js'
import { paced, summarise, type LatencySummary } from './stats.js'

/** What to measure. */
export interface FloorInit {
  frameBytes: number
  rate: number
  latencyCount: number
  throughputCount: number
  timeoutMs: number
}

/** Floor figures. */
export interface FloorResult {
  latency: LatencySummary
  /** Every latency, in milliseconds (for CDF charts). */
  latencies: number[]
  throughputPerSec: number
}

/** Both floors. */
export interface Floors { ws: FloorResult, libp2p: FloorResult }

/** A way to send numbered frames and be told when each arrives back in this process. */
interface Link {
  send: (frame: Uint8Array) => void
  /** Resolves when the sender may write again (its buffer is below its high-water mark). */
  ready: () => Promise<void> | undefined
  onFrame: (cb: (index: number) => void) => void
  close: () => Promise<void>
}

/** Latency at a fixed rate, then the highest rate the link drains. */
async function measureLink (link: Link, init: FloorInit): Promise<FloorResult> {
  const frame = (i: number): Uint8Array => {
    const f = new Uint8Array(init.frameBytes)
    new DataView(f.buffer).setUint32(0, i)
    return f
  }
  const sentAt = new Float64Array(init.latencyCount)
  const latencies: number[] = []
  let got = 0
  let notify: () => void = () => {}
  link.onFrame((i) => {
    if (i < init.latencyCount) latencies.push(performance.now() - (sentAt[i] ?? 0))
    else got++
    notify()
  })
  const until = async (done: () => boolean, what: string): Promise<void> => {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error(`${what} timed out`)) }, init.timeoutMs)
      notify = () => { if (done()) { clearTimeout(timer); resolve() } }
      notify()
    })
  }
  await paced(init.rate, init.latencyCount, (i) => {
    sentAt[i] = performance.now()
    link.send(frame(i))
  })
  await until(() => latencies.length === init.latencyCount, 'floor latency run')

  const start = performance.now()
  for (let i = 0; i < init.throughputCount; i++) {
    link.send(frame(init.latencyCount + i))
    const wait = link.ready()
    if (wait !== undefined) await wait
  }
  await until(() => got === init.throughputCount, 'floor throughput run')
  const seconds = (performance.now() - start) / 1000
  await link.close()
  return { latency: summarise(latencies), latencies, throughputPerSec: init.throughputCount / seconds }
}

async function open (url: string): Promise<WebSocket> {
  const ws = new WebSocket(url)
  await once(ws, 'open')
  return ws
}

/** The raw `ws` floor: a relay process forwards each frame from one socket to the other. */
export async function measureWsFloor (init: FloorInit): Promise<FloorResult> {
  const child = spawnNode(['--import', './scripts/register.js', 'bench/lib/ws-relay.ts'], { stdin: 'pipe' })
  try {
    const [chunk] = await once(child.stdout!, 'data') as [Buffer]
    const url = `ws://127.0.0.1:${chunk.toString().trim()}`
    const sender = await open(url)
    const receiver = await open(url)
    return await measureLink({
      send: (f) => { sender.send(f) },
      ready: () => sender.bufferedAmount > 1 << 20
        ? (async () => { while (sender.bufferedAmount > 1 << 18) await new Promise((resolve) => setTimeout(resolve, 1)) })()
        : undefined,
      onFrame: (cb) => { receiver.on('message', (data: Buffer) => { cb(data.readUInt32BE(0)) }) },
      close: async () => { sender.close(); receiver.close() }
    }, init)
  } finally {
    await stopProcess(child)
  }
}

/** The raw libp2p floor: one Noise + Yamux stream over TCP, echoed back by another process. */
export async function measureLibp2pFloor (init: FloorInit): Promise<FloorResult> {
  const child = spawnNode(['--import', './scripts/register.js', 'bench/lib/libp2p-echo.ts'], { stdin: 'pipe' })
  const host = await createBareHost()
  try {
    const [chunk] = await once(child.stdout!, 'data') as [Buffer]
    const stream = await host.dialProtocol(multiaddr(chunk.toString().trim()), ECHO_PROTOCOL)
    let blocked = false
    return await measureLink({
      send: (f) => { if (!stream.send(f)) blocked = true },
      ready: () => {
        if (!blocked) return undefined
        blocked = false
        return stream.onDrain()
      },
      onFrame: (cb) => {
        // frames are fixed-size: reassemble them from the byte stream
        const pending = new Uint8Array(init.frameBytes)
        let filled = 0
        void (async () => {
          for await (const c of stream) {
            let bytes = chunkBytes(c)
            while (bytes.length > 0) {
              const n = Math.min(bytes.length, init.frameBytes - filled)
              pending.set(bytes.subarray(0, n), filled)
              filled += n
              bytes = bytes.subarray(n)
              if (filled === init.frameBytes) {
                filled = 0
                cb(new DataView(pending.buffer).getUint32(0))
              }
            }
          }
        })().catch(() => {})
      },
      close: async () => { await stream.close().catch(() => {}) }
    }, init)
  } finally {
    await host.stop()
    await stopProcess(child)
  }
}

/** Both floors, one after the other, with the same frames. */
export async function measureFloors (init: FloorInit): Promise<Floors> {
  return { ws: await measureWsFloor(init), libp2p: await measureLibp2pFloor(init) }
}
