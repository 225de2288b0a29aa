/**
 * Per-key mutual exclusion for read-modify-write sequences. A repository reads the current record
 * before it writes (idempotent put, delete with its indexes); without the lock two concurrent
 * calls on one id could both see "absent" and write conflicting index entries.
 */

/** Releases a held lock. */
export type Release = () => void

/** A set of named locks, each granted in request order. */
export class KeyedLock {
  private readonly tails = new Map<string, Promise<void>>()

  private async acquireOne (key: string): Promise<Release> {
    const prev = this.tails.get(key) ?? Promise.resolve()
    let release: () => void = () => {}
    const mine = new Promise<void>((resolve) => { release = resolve })
    const tail = prev.then(async () => { await mine })
    this.tails.set(key, tail)
    await prev
    return () => {
      release()
      if (this.tails.get(key) === tail) this.tails.delete(key)
    }
  }

  /**
   * Runs `fn` while holding every lock in `keys`. Locks are taken in sorted order so that two
   * callers asking for overlapping sets cannot deadlock.
   */
  async with<T> (keys: readonly string[], fn: () => Promise<T>): Promise<T> {
    const sorted = [...new Set(keys)].sort()
    const held: Release[] = []
    try {
      for (const key of sorted) held.push(await this.acquireOne(key))
      return await fn()
    } finally {
      for (const release of held.reverse()) release()
    }
  }
}
