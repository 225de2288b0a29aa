/**
 * The shipped bootstrap list and the bootstrap-node preset.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { TalariaError } from '../protocol/errors.js'
import type { TalariaNodeInit } from '../node/options.js'

/**
 * Peers a node joins the mesh through when the operator gives none.
 *
 * Each entry is a multiaddr that ends in `/p2p/<peer id>` of the bootstrap node, so the connection
 * is authenticated against that id:
 *
 * - `/dns4/boot1.example.org/tcp/7700/p2p/12D3KooW…` (TCP)
 * - `/dns4/boot1.example.org/tcp/7701/wss/p2p/12D3KooW…` (WebSockets)
 * - `/dnsaddr/bootstrap.example.org/p2p/12D3KooW…` (resolved through the DNS TXT records
 *   `_dnsaddr.bootstrap.example.org`, so operators can move nodes without a release)
 *
 * Empty until a public Talaria mesh exists; nodes then join through `--bootstrap` or mDNS.
 */
export const DEFAULT_BOOTSTRAP: readonly string[] = []

/** Protocols a bootstrap multiaddr may start with. */
const ADDRESS_PROTOCOLS = new Set(['ip4', 'ip6', 'dns', 'dns4', 'dns6', 'dnsaddr'])

/** Why a bootstrap address was refused. */
export type BootstrapAddrProblem =
  /** Not a multiaddr at all. */
  | 'unparseable'
  /** Does not end in /p2p/<peer id>. */
  | 'missing-peer-id'
  /** The /p2p/ component is not a valid peer id. */
  | 'bad-peer-id'
  /** Does not start with an IP or DNS address. */
  | 'no-host'

/** A bootstrap address that cannot be used. */
export class BootstrapAddrError extends TalariaError {
  declare readonly code: 'ERR_BAD_BOOTSTRAP_ADDR'
  /** The address as given. */
  readonly addr: string
  readonly problem: BootstrapAddrProblem

  constructor (addr: string, problem: BootstrapAddrProblem, message: string, options?: { cause?: unknown }) {
    super('ERR_BAD_BOOTSTRAP_ADDR', `bootstrap address ${JSON.stringify(addr)}: ${message}`, options)
    this.name = 'BootstrapAddrError'
    this.addr = addr
    this.problem = problem
  }
}

function checkBootstrapAddr (addr: string): BootstrapAddrError | undefined {
  let ma: Multiaddr
  try {
    ma = multiaddr(addr)
  } catch (err) {
    return new BootstrapAddrError(addr, 'unparseable', 'not a multiaddr', { cause: err })
  }
  const components = ma.getComponents()
  const first = components[0]
  if (first === undefined || !ADDRESS_PROTOCOLS.has(first.name)) {
    return new BootstrapAddrError(addr, 'no-host', 'must start with /ip4, /ip6, /dns, /dns4, /dns6 or /dnsaddr')
  }
  const last = components[components.length - 1]
  if (last === undefined || last.name !== 'p2p' || last.value === undefined) {
    return new BootstrapAddrError(addr, 'missing-peer-id', 'must end in /p2p/<peer id>')
  }
  try {
    peerIdFromString(last.value)
  } catch (err) {
    return new BootstrapAddrError(addr, 'bad-peer-id', `${last.value} is not a peer id`, { cause: err })
  }
  return undefined
}

/** Checks every address of a bootstrap list; returns one error per bad address (empty when all are good). */
export function validateBootstrapAddrs (list: readonly string[]): BootstrapAddrError[] {
  const errors: BootstrapAddrError[] = []
  for (const addr of list) {
    const err = checkBootstrapAddr(addr)
    if (err !== undefined) errors.push(err)
  }
  return errors
}

/**
 * Options of a dedicated bootstrap node (`talaria bootstrap`): DHT server and gossipsub peer
 * exchange, no user traffic. The operator's own options win, except the role.
 */
export function bootstrapPreset (init: TalariaNodeInit = {}): TalariaNodeInit {
  return { ...init, role: 'bootstrap' }
}
