/**
 * Child process of the group scenario (bench/group.ts): holds a share of the group's member
 * clients, so the decryption of every group message by every member is spread over processes.
 * Clients connect round-robin over the nodes' gateways from this worker's own 127.0.0.x source
 * address (the gateway caps connections per address).
 *
 * IPC with the parent: receives {@link WorkerCommand}s, sends {@link WorkerEvent}s. Receive times
 * are `performance.timeOrigin + performance.now()`, the same host clock as the parent's send times.
 * Exits on 'close' or when the parent goes away.
 */
import { WebSocket } from 'ws'
import type { GroupId, UserId } from '../protocol/ids.js'
import { closeAll, connectAll, sdkClient } from './lib/clients.js'
import type { WebSocketConstructor } from '../client/index.js'

/** What the parent asks. */
export type WorkerCommand =
  | { t: 'start', urls: string[], count: number, offset: number, localAddress: string, concurrency: number }
  | { t: 'watch', group: GroupId, members: number }
  /** Report receive figures of messages [from, to). */
  | { t: 'stats', from: number, to: number }
  | { t: 'close' }

/** What the worker tells. */
export type WorkerEvent =
  | { t: 'connected', users: UserId[], failed: number, firstError?: string }
  | { t: 'progress', connected: number }
  /** Clients of this worker whose view of the group has all its members. */
  | { t: 'joined', count: number }
  /** Every client of this worker has message `i`; `last` is when the last of them got it. */
  | { t: 'complete', i: number, last: number }
  | { t: 'stats', rows: Array<[number, number, number]> }
  | { t: 'error', message: string }

const now = (): number => performance.timeOrigin + performance.now()
const send = (e: WorkerEvent): void => { process.send?.(e) }

let clients: Array<ReturnType<typeof sdkClient>> = []
/** Clients connected: those every message must reach. */
let expect = Number.POSITIVE_INFINITY
/** Message index → [clients that got it, last receive time]. */
const received = new Map<number, [number, number]>()

async function start (cmd: Extract<WorkerCommand, { t: 'start' }>): Promise<void> {
  class Bound extends WebSocket {
    constructor (address: string | URL, protocols?: string | string[]) {
      super(address, protocols, { localAddress: cmd.localAddress, perMessageDeflate: false })
    }
  }
  const WS = Bound as unknown as WebSocketConstructor
  clients = Array.from({ length: cmd.count }, (_, k) => sdkClient(cmd.urls[(cmd.offset + k) % cmd.urls.length] ?? '', {
    WebSocket: WS, sendTimeoutMs: 240_000, requestTimeoutMs: 60_000, connectTimeoutMs: 60_000, autoDeliveredReceipts: false
  }))
  for (const c of clients) {
    c.on('error', () => {})
    c.on('groupMessage', (m) => {
      const i = Number(m.text.slice(0, m.text.indexOf(':')))
      const t = now()
      const r = received.get(i) ?? [0, 0]
      r[0]++
      r[1] = Math.max(r[1], t)
      received.set(i, r)
      if (r[0] === expect) send({ t: 'complete', i, last: r[1] })
    })
  }
  // connect in slices so the parent sees progress
  let failed = 0
  let firstError: string | undefined
  let done = 0
  const timer = setInterval(() => { send({ t: 'progress', connected: done }) }, 2000)
  const slice = Math.max(cmd.concurrency, 25)
  for (let i = 0; i < clients.length; i += slice) {
    const part = clients.slice(i, i + slice)
    try {
      await connectAll(part, cmd.concurrency)
    } catch (err) {
      // connectAll gives up at the first client that fails its attempts; try the rest one by one
      for (const c of part) {
        if (c.connected) continue
        try { await c.connect() } catch (e) { failed++; firstError ??= (e as Error).message ?? String(err) }
      }
    }
    done += part.length
  }
  clearInterval(timer)
  expect = clients.filter((c) => c.connected).length
  send({ t: 'connected', users: clients.filter((c) => c.connected).map((c) => c.userId), failed, ...(firstError !== undefined ? { firstError } : {}) })
}

function watch (group: GroupId, members: number): void {
  const full = new Set<number>()
  const check = (k: number): void => {
    if (full.has(k)) return
    if ((clients[k]?.group(group)?.members.size ?? 0) >= members) full.add(k)
  }
  const live = clients.filter((c) => c.connected)
  clients = live
  clients.forEach((c, k) => { c.on('groupChange', () => { check(k) }); check(k) })
  let reported = -1
  const timer = setInterval(() => {
    clients.forEach((_, k) => { check(k) })
    if (full.size !== reported) { reported = full.size; send({ t: 'joined', count: full.size }) }
    if (full.size === clients.length) clearInterval(timer)
  }, 500)
}

process.on('message', (cmd: WorkerCommand) => {
  if (cmd.t === 'start') {
    start(cmd).catch((err: unknown) => { send({ t: 'error', message: (err as Error).message }) })
  } else if (cmd.t === 'watch') {
    watch(cmd.group, cmd.members)
  } else if (cmd.t === 'stats') {
    const rows: Array<[number, number, number]> = []
    for (let i = cmd.from; i < cmd.to; i++) {
      const r = received.get(i)
      rows.push([i, r?.[0] ?? 0, r?.[1] ?? 0])
    }
    send({ t: 'stats', rows })
  } else {
    void closeAll(clients).finally(() => process.exit(0))
    setTimeout(() => process.exit(0), 5000).unref()
  }
})
process.on('disconnect', () => process.exit(0))
