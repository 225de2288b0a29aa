/**
 * The floor: the same frames through a bare WebSocket relay in another process, measured the same
 * way as the messaging scenarios (send call to receive event, one process holding both ends).
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { WebSocket } from 'ws'
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
  throughputPerSec: number
}

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

async function open (url: string): Promise<WebSocket> {
  const ws = new WebSocket(url)
  await once(ws, 'open')
  return ws
}

/** Runs the relay in a child process and measures latency at `rate`, then the highest throughput. */
export async function measureFloor (init: FloorInit): Promise<FloorResult> {
  const child = spawn(process.execPath, ['--import', './scripts/register.js', 'bench/lib/ws-relay.ts'], { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] })
  try {
    const [chunk] = await once(child.stdout, 'data') as [Buffer]
    const url = `ws://127.0.0.1:${chunk.toString().trim()}`
    const sender = await open(url)
    const receiver = await open(url)
    const frame = new Uint8Array(init.frameBytes)
    const view = new DataView(frame.buffer)

    // latency at a fixed rate
    const sentAt = new Float64Array(init.latencyCount)
    const latencies: number[] = []
    const allReceived = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error('floor latency run timed out')) }, init.timeoutMs)
      receiver.on('message', (data: Buffer) => {
        const i = data.readUInt32BE(0)
        if (i < init.latencyCount) latencies.push(performance.now() - (sentAt[i] ?? 0))
        if (latencies.length === init.latencyCount) {
          clearTimeout(timer)
          receiver.removeAllListeners('message')
          resolve()
        }
      })
    })
    await paced(init.rate, init.latencyCount, (i) => {
      view.setUint32(0, i)
      sentAt[i] = performance.now()
      sender.send(frame)
    })
    await allReceived

    // throughput: as fast as the socket drains
    let got = 0
    const done = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error('floor throughput run timed out')) }, init.timeoutMs)
      receiver.on('message', () => {
        if (++got === init.throughputCount) {
          clearTimeout(timer)
          resolve()
        }
      })
    })
    const start = performance.now()
    for (let i = 0; i < init.throughputCount; i++) {
      view.setUint32(0, init.latencyCount + i)
      sender.send(frame)
      if (sender.bufferedAmount > 1 << 20) {
        while (sender.bufferedAmount > 1 << 18) await new Promise((resolve) => setTimeout(resolve, 1))
      }
    }
    await done
    const seconds = (performance.now() - start) / 1000
    sender.close()
    receiver.close()
    return { latency: summarise(latencies), throughputPerSec: init.throughputCount / seconds }
  } finally {
    child.kill('SIGTERM')
  }
}
