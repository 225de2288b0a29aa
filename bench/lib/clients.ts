/**
 * SDK clients for benchmarks and the measured 1:1 run: messages from senders to receivers on
 * other nodes, every sender and receiver of a pair in this process so one clock times the `send`
 * call to the receiver's `message` event.
 */
import { WebSocket } from 'ws'
import { createClient, createIdentity, MemoryStore, type ClientInit, type TalariaClient, type WebSocketConstructor } from '../../client/index.js'
import { paced, summarise, type LatencySummary } from './stats.js'

/** Size of the text of a measured message. */
export const TEXT_BYTES = 256

/** A fresh identity's client on `url` (in-memory store, Node's `ws`). */
export function sdkClient (url: string, init: Partial<ClientInit> = {}): TalariaClient {
  return createClient({ url, identity: createIdentity(), store: new MemoryStore(), WebSocket: WebSocket as unknown as WebSocketConstructor, ...init })
}

/** Attempts of one client's `connect` during setup; a node busy starting may time an auth out. */
export const CONNECT_ATTEMPTS = 3

/**
 * Connects clients `concurrency` at a time (each connect publishes records through its node).
 * Setup is not measured: a failed connect is tried again, up to {@link CONNECT_ATTEMPTS} times.
 * Resolves with the clients that connected and the first error of those that did not.
 */
export async function connectEach (clients: readonly TalariaClient[], concurrency = 8): Promise<{ connected: TalariaClient[], failed: number, firstError?: Error }> {
  const connected: TalariaClient[] = []
  let failed = 0
  let firstError: Error | undefined
  let next = 0
  await Promise.all(Array.from({ length: Math.min(concurrency, clients.length) }, async () => {
    while (next < clients.length) {
      const client = clients[next++]
      for (let attempt = 1; client !== undefined; attempt++) {
        try {
          await client.connect()
          connected.push(client)
          break
        } catch (err) {
          if (attempt < CONNECT_ATTEMPTS) continue
          failed++
          firstError ??= err instanceof Error ? err : new Error(String(err))
          break
        }
      }
    }
  }))
  return { connected, failed, ...(firstError !== undefined ? { firstError } : {}) }
}

/** {@link connectEach}, failing when any client could not connect. */
export async function connectAll (clients: readonly TalariaClient[], concurrency = 8): Promise<void> {
  const { failed, firstError } = await connectEach(clients, concurrency)
  if (failed > 0) throw new Error(`${failed} of ${clients.length} clients could not connect`, { cause: firstError })
}

/** Closes clients, ignoring failures (the bench is ending). */
export async function closeAll (clients: readonly TalariaClient[]): Promise<void> {
  await Promise.all(clients.map(async (c) => { await c.close().catch(() => {}) }))
}

/** A `TEXT_BYTES` text that starts with its index. */
export function payload (i: number, bytes = TEXT_BYTES): string {
  const head = `${i}:`
  return head + 'x'.repeat(Math.max(0, bytes - head.length))
}

/** A sender and the receiver it writes to. */
export interface Pair { from: TalariaClient, to: TalariaClient }

/** What a measured run gives. */
export interface PairRun {
  latency: LatencySummary
  /** Every latency, in milliseconds, in arrival order. */
  latencies: number[]
  /** First send call to last receive, in seconds. */
  seconds: number
  received: number
  failures: number
  /** True when not every message arrived by the deadline. */
  timedOut: boolean
}

let nextIndex = 1

/**
 * Sends `count` messages over `pairs` (round-robin), calling `send(k)` when `pace` decides, and
 * resolves when all have arrived or `timeoutMs` has passed (then with what arrived).
 */
export async function runPairs (pairs: readonly Pair[], count: number, timeoutMs: number,
  pace: (send: (k: number) => void) => Promise<void>): Promise<PairRun> {
  const first = nextIndex
  nextIndex += count
  const sentAt = new Map<number, number>()
  const latencies: number[] = []
  let failures = 0
  let timedOut = false
  const start = performance.now()
  let last = start
  const offs: Array<() => void> = []
  const received = new Promise<void>((resolve) => {
    const timer = setTimeout(() => { timedOut = true; resolve() }, timeoutMs)
    const receivers = new Set(pairs.map((p) => p.to))
    for (const to of receivers) {
      offs.push(to.on('message', (m) => {
        const i = Number(m.text.slice(0, m.text.indexOf(':')))
        const t = sentAt.get(i)
        if (t === undefined) return
        sentAt.delete(i)
        last = performance.now()
        latencies.push(last - t)
        if (latencies.length + failures >= count) { clearTimeout(timer); resolve() }
      }))
    }
  })
  await pace((k) => {
    const i = first + k
    const pair = pairs[k % pairs.length]
    if (pair === undefined) return
    sentAt.set(i, performance.now())
    pair.from.send(pair.to.userId, payload(i)).catch(() => { failures++; sentAt.delete(i) })
  })
  await received
  for (const off of offs) off()
  return { latency: summarise(latencies), latencies, seconds: (last - start) / 1000, received: latencies.length, failures, timedOut }
}

/**
 * A pace for {@link runPairs}: as fast as the nodes take messages, with at most `window` sent and
 * not yet received. `received()` must count arrivals (e.g. a receiver's message listener).
 */
export function windowed (count: number, window: number, subscribe: (onArrival: () => void) => () => void): (send: (k: number) => void) => Promise<void> {
  return async (send) => {
    let sent = 0
    let arrived = 0
    await new Promise<void>((resolve) => {
      const pump = (): void => {
        while (sent - arrived < window && sent < count) send(sent++)
        if (sent >= count) { off(); resolve() }
      }
      const off = subscribe(() => { arrived++; pump() })
      pump()
    })
  }
}

/** Subscribes `onArrival` to the `message` event of every receiver of `pairs`. */
export function onArrivals (pairs: readonly Pair[]): (onArrival: () => void) => () => void {
  return (onArrival) => {
    const offs = [...new Set(pairs.map((p) => p.to))].map((to) => to.on('message', () => { onArrival() }))
    return () => { for (const off of offs) off() }
  }
}

/**
 * `count` pairs over nodes' gateway URLs: pair k sends from node k mod n to node (k + ⌈n/2⌉) mod n,
 * so every sender and its receiver are on different nodes (n ≥ 2), spread over the whole mesh.
 * Returns the pairs and every client (connect them with {@link connectAll}).
 */
export function crossNodePairs (urls: readonly string[], count: number, init: Partial<ClientInit> = {}): { pairs: Pair[], clients: TalariaClient[] } {
  const n = urls.length
  if (n < 2) throw new Error('pairs across nodes need at least 2 nodes')
  const pairs: Pair[] = []
  for (let k = 0; k < count; k++) {
    const from = sdkClient(urls[k % n] ?? '', init)
    const to = sdkClient(urls[(k + Math.ceil(n / 2)) % n] ?? '', init)
    pairs.push({ from, to })
  }
  return { pairs, clients: pairs.flatMap((p) => [p.to, p.from]) }
}

/** A short paced run over every pair, so sessions, lookups and node-to-node streams exist. */
export async function warmUp (pairs: readonly Pair[], perPair = 20, timeoutMs = 60_000): Promise<PairRun> {
  return await runPairs(pairs, pairs.length * perPair, timeoutMs, async (send) => { await paced(200, pairs.length * perPair, send) })
}
