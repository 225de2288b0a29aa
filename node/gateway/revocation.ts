/**
 * The revocation check behind `auth`: has a newer device list of the user dropped the device?
 *
 * `auth` answers from what the client presents (root-signed and verified) and, when the directory
 * caches the user's list, from that cache. Otherwise the newest list is looked up here, in the
 * background, while the connection holds its pushes (see connection.ts): a DHT lookup on the auth
 * path made thousands of simultaneous connects time out.
 *
 * Bounded: one lookup per user however many of its connections wait on it, at most
 * `maxRevocationChecks` at once with the rest queued (at most one entry per user with an open
 * connection), each with a deadline counted from when it was asked for, queue time included.
 * A check nobody waits for any more is dropped from the queue or aborted.
 */
import type { Logger } from 'pino'
import { isDeviceActive, type DeviceList } from '../../protocol/identity.js'
import type { UserId } from '../../protocol/ids.js'
import { NodeError } from '../errors.js'
import type { DirectoryService } from '../messaging/contracts.js'

/** The directory as the gateway uses it. */
export interface GatewayDirectory extends DirectoryService {
  /**
   * The user's device list from the directory's cache, without a lookup: undefined on a miss,
   * `{ list: undefined }` when the cache knows the user has none. Without it every check is a lookup.
   */
  cachedDeviceList?(user: UserId): { list: DeviceList | undefined } | undefined
}

/** How a background check ended: the newest list found (undefined when none), or why there is none. */
export type RevocationCheckResult = { ok: true, list: DeviceList | undefined } | { ok: false, error: unknown }

interface Check {
  readonly user: UserId
  readonly waiters: Set<(result: RevocationCheckResult) => void>
  readonly abort: AbortController
  timer: ReturnType<typeof setTimeout> | undefined
  /** Waiting in the queue for a free slot. */
  queued: boolean
}

/**
 * True when `known` is a newer list than `presented` (a higher seq, or the same seq issued later)
 * that no longer holds `device` as active.
 */
export function newerListRevokes (known: DeviceList | undefined, presented: DeviceList, device: string): boolean {
  if (known === undefined || known.userId !== presented.userId) return false
  const newer = known.seq > presented.seq || (known.seq === presented.seq && known.issuedAt > presented.issuedAt)
  return newer && !isDeviceActive(known, device)
}

/** Deduplicated, concurrency-limited background device-list lookups. */
export class RevocationChecker {
  private readonly checks = new Map<UserId, Check>()
  private readonly queue: Check[] = []
  private running = 0

  constructor (
    private readonly directory: GatewayDirectory,
    private readonly init: { concurrency: number, timeoutMs: number, logger: Logger }
  ) {}

  /** The cached answer for `user`, or undefined when only a lookup can tell. */
  cached (user: UserId): { list: DeviceList | undefined } | undefined {
    return this.directory.cachedDeviceList?.(user)
  }

  /**
   * Looks up the newest list of `user` in the background and calls `done` once with the result,
   * never synchronously and never with a throw to catch. Returns a function that cancels this
   * caller's interest (then `done` is not called); the lookup goes when no caller is left.
   */
  check (user: UserId, done: (result: RevocationCheckResult) => void): () => void {
    let check = this.checks.get(user)
    if (check === undefined) {
      const created: Check = { user, waiters: new Set(), abort: new AbortController(), timer: undefined, queued: true }
      created.timer = setTimeout(() => {
        this.finish(created, { ok: false, error: new NodeError('ERR_TIMEOUT', `device list lookup not done within ${this.init.timeoutMs} ms`) })
      }, this.init.timeoutMs)
      this.checks.set(user, created)
      this.queue.push(created)
      check = created
    }
    const held = check
    // each caller passes its own closure: one Set entry per caller
    held.waiters.add(done)
    // the lookup and the timer answer from later ticks, so `done` never runs before this returns
    this.pump()
    return () => {
      if (held.waiters.delete(done) && held.waiters.size === 0) this.drop(held)
    }
  }

  /** Cancels every check (the gateway stops). */
  stop (): void {
    for (const check of [...this.checks.values()]) this.drop(check)
  }

  private pump (): void {
    while (this.running < this.init.concurrency) {
      const check = this.queue.shift()
      if (check === undefined) return
      check.queued = false
      this.start(check)
    }
  }

  private start (check: Check): void {
    this.running++
    const signal = check.abort.signal
    // settles on abort even if the directory does not honour the signal, so a slot never sticks
    const aborted = new Promise<never>((_resolve, reject) => {
      signal.addEventListener('abort', () => { reject(signal.reason) }, { once: true })
    })
    const lookup = (async () => await this.directory.getDeviceList(check.user, { signal }))()
    Promise.race([lookup, aborted])
      .then((list): RevocationCheckResult => ({ ok: true, list }), (error: unknown): RevocationCheckResult => ({ ok: false, error }))
      .then((result) => {
        this.running--
        this.finish(check, result)
        this.pump()
      })
      .catch((err: unknown) => { this.init.logger.error({ err }, 'revocation check bookkeeping failed') })
  }

  /** Ends `check`: no more timer or lookup, out of the map and queue, every waiter told once. */
  private finish (check: Check, result: RevocationCheckResult): void {
    if (this.checks.get(check.user) === check) this.checks.delete(check.user)
    if (check.queued) {
      check.queued = false
      this.queue.splice(this.queue.indexOf(check), 1)
    }
    clearTimeout(check.timer)
    check.timer = undefined
    // a timeout or a cancel while running aborts the lookup; its slot frees when the race settles
    if (!result.ok && !check.abort.signal.aborted) check.abort.abort(result.error)
    const waiters = [...check.waiters]
    check.waiters.clear()
    for (const waiter of waiters) {
      try {
        waiter(result)
      } catch (err) {
        this.init.logger.error({ err, user: check.user }, 'a revocation check waiter threw')
      }
    }
  }

  private drop (check: Check): void {
    check.waiters.clear()
    this.finish(check, { ok: false, error: new NodeError('ERR_TIMEOUT', 'no connection waits for this check any more') })
  }
}
