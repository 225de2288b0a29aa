/**
 * Arrival stamps: a node-local, strictly increasing clock in microseconds since the epoch.
 * Inbox, mailbox and outbox order by it, so envelopes that arrive in the same millisecond keep
 * their arrival order (a millisecond clock would fall back to ordering them by random id).
 */

/** A strictly increasing microsecond clock. */
export class ArrivalClock {
  private last = 0

  constructor (private readonly nowMs: () => number = Date.now) {}

  /** The next stamp: the current time in µs, or one more than the previous stamp. */
  next (): number {
    this.last = Math.max(this.nowMs() * 1000, this.last + 1)
    return this.last
  }
}
