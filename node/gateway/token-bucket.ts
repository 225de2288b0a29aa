/**
 * A token bucket: `rate` tokens per second refill up to `burst`. Used for request rate limits per
 * connection and per user; refills lazily on each take, so idle buckets cost no timers.
 */
export class TokenBucket {
  private tokens: number
  private last: number

  /**
   * @param rate - tokens added per second
   * @param burst - most tokens held at once
   * @param now - clock, injectable for tests
   */
  constructor (private readonly rate: number, private readonly burst: number, private readonly now: () => number = () => performance.now()) {
    this.tokens = burst
    this.last = now()
  }

  private refill (): void {
    const t = this.now()
    this.tokens = Math.min(this.burst, this.tokens + (t - this.last) * this.rate / 1000)
    this.last = t
  }

  /** Takes one token; returns 0 on success, else the milliseconds until one is available. */
  take (): number {
    this.refill()
    if (this.tokens >= 1) {
      this.tokens -= 1
      return 0
    }
    return Math.max(1, Math.ceil((1 - this.tokens) * 1000 / this.rate))
  }
}
