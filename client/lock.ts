/** Small helpers the client's layers share. */

/** One lock: operations run one after another in call order; a failure does not block the next. */
export class Lock {
  private tail: Promise<unknown> = Promise.resolve()

  /** Runs `fn` after every operation queued before it. */
  async run<T> (fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn)
    this.tail = result.catch(() => {})
    return await result
  }
}

/** A counter as a fixed-width key part, so keys sort in numeric order. */
export const pad = (n: number): string => n.toString().padStart(16, '0')
