/**
 * Integration-test helpers: real nodes on 127.0.0.1 in temporary data dirs, and waiting on events
 * instead of sleeping.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createNode, type TalariaNode, type TalariaNodeEvents, type TalariaNodeInit } from '../../node/index.js'

/** Default deadline of {@link waitFor} and {@link waitUntil}, in milliseconds. */
export const DEFAULT_WAIT_MS = 20_000
/** Interval of {@link waitUntil}'s polling, in milliseconds. */
export const POLL_INTERVAL_MS = 25

const dataDirs = new WeakMap<TalariaNode, string>()

/** The data dir {@link startMesh} made for `node` (to restart a node on it). */
export function meshDataDir (node: TalariaNode): string {
  const dir = dataDirs.get(node)
  if (dir === undefined) throw new Error(`node ${node.peerId} was not started by startMesh`)
  return dir
}

/** Options of {@link startMesh}. */
export interface MeshOptions {
  /** Extra options for every node (overrides the loopback defaults). */
  init?: TalariaNodeInit
  /** Per-node options, by index. */
  perNode?: (index: number) => TalariaNodeInit
  /** Also listen on WebSockets on 127.0.0.1. */
  websockets?: boolean
  /** Wait until every node has connected to the first one (default true). */
  awaitBootstrap?: boolean
}

/** Stops every node and removes every data dir; never throws, so it can sit in `after`. */
export type CloseAll = () => Promise<void>

/** A fresh temporary data dir. */
export async function tempDataDir (prefix = 'talaria-test-'): Promise<string> {
  return await mkdtemp(join(tmpdir(), prefix))
}

/** Options of a loopback node: 127.0.0.1 only, ephemeral ports, no mDNS, no shipped bootstrap list. */
export function loopbackInit (dataDir: string, opts: { websockets?: boolean } = {}): TalariaNodeInit {
  return {
    dataDir,
    listen: ['/ip4/127.0.0.1/tcp/0', ...(opts.websockets === true ? ['/ip4/127.0.0.1/tcp/0/ws'] : [])],
    httpHost: '127.0.0.1',
    httpPort: 0,
    mdns: false,
    useDefaultBootstrap: false,
    shards: 2
  }
}

/**
 * Starts `n` nodes; every node after the first bootstraps from the first. Resolves with the nodes
 * and a function that stops them all and removes their data dirs. A failure part-way stops what
 * started before rethrowing.
 */
export async function startMesh (n: number, opts: MeshOptions = {}): Promise<[TalariaNode[], CloseAll]> {
  const nodes: TalariaNode[] = []
  const dirs: string[] = []
  const closeAll: CloseAll = async () => {
    await Promise.allSettled(nodes.map(async (node) => { await node.stop() }))
    await Promise.allSettled(dirs.map(async (dir) => { await rm(dir, { recursive: true, force: true }) }))
  }
  try {
    for (let i = 0; i < n; i++) {
      const dir = await tempDataDir()
      dirs.push(dir)
      const first = nodes[0]
      const init: TalariaNodeInit = {
        ...loopbackInit(dir, { websockets: opts.websockets === true }),
        ...(first !== undefined ? { bootstrap: [firstTcpAddr(first)] } : {}),
        ...opts.init,
        ...opts.perNode?.(i)
      }
      const node = await createNode(init)
      nodes.push(node)
      dataDirs.set(node, dir)
      await node.start()
    }
    const first = nodes[0]
    if (opts.awaitBootstrap !== false && first !== undefined) {
      await Promise.all(nodes.slice(1).map(async (node) => {
        await waitUntil(() => node.getPeers().includes(first.peerId), { what: `${node.peerId} connected to the first node` })
      }))
    }
  } catch (err) {
    await closeAll()
    throw err
  }
  return [nodes, closeAll]
}

/** The node's first TCP multiaddr (with /p2p/), the address other nodes bootstrap from. */
export function firstTcpAddr (node: TalariaNode): string {
  const addr = node.getMultiaddrs().find((a) => a.includes('/tcp/') && !a.includes('/ws'))
  if (addr === undefined) throw new Error(`node ${node.peerId} has no TCP address`)
  return addr
}

/** Something with typed `on` returning an unsubscribe function, like a TalariaNode. */
export interface Subscribable<Events> {
  on<E extends keyof Events>(event: E, listener: (payload: Events[E]) => void): () => void
}

/**
 * Resolves with the first `event` payload that satisfies `predicate`; rejects after `timeoutMs`.
 * Subscribe before triggering what emits the event. `Events` defaults to a node's event map.
 */
export async function waitFor<Events = TalariaNodeEvents, E extends keyof Events = keyof Events> (
  emitter: NoInfer<Subscribable<Events>>,
  event: E,
  predicate: (payload: Events[E]) => boolean = () => true,
  timeoutMs = DEFAULT_WAIT_MS
): Promise<Events[E]> {
  return await new Promise<Events[E]>((resolve, reject) => {
    const timer = setTimeout(() => {
      off()
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${String(event)}`))
    }, timeoutMs)
    const off = emitter.on(event, (payload) => {
      if (!predicate(payload)) return
      clearTimeout(timer)
      off()
      resolve(payload)
    })
  })
}

/**
 * Polls `condition` until it holds, for state that emits no event; rejects after `timeoutMs`.
 */
export async function waitUntil (
  condition: () => boolean | Promise<boolean>,
  opts: { timeoutMs?: number, what?: string } = {}
): Promise<void> {
  const deadline = Date.now() + (opts.timeoutMs ?? DEFAULT_WAIT_MS)
  for (;;) {
    if (await condition()) return
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${opts.what ?? 'condition'}`)
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS))
  }
}
