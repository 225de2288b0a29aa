/**
 * A small typed event emitter: listeners are keyed by event name and receive that event's payload
 * type. A throwing listener is logged and does not stop the others or the emitter.
 */
import type { Logger } from 'pino'

/** Typed event emitter over the event map `Events` (name → payload). */
export class TypedEmitter<Events extends object> {
  private readonly listeners = new Map<keyof Events, Set<(payload: never) => void>>()
  private readonly logger: Logger

  constructor (logger: Logger) {
    this.logger = logger
  }

  /** Adds a listener; returns a function that removes it. */
  on<E extends keyof Events> (event: E, listener: (payload: Events[E]) => void): () => void {
    let set = this.listeners.get(event)
    if (set === undefined) {
      set = new Set()
      this.listeners.set(event, set)
    }
    set.add(listener)
    return () => { this.off(event, listener) }
  }

  /** Removes a listener. */
  off<E extends keyof Events> (event: E, listener: (payload: Events[E]) => void): void {
    this.listeners.get(event)?.delete(listener)
  }

  /** Calls every listener of `event` with `payload`. */
  emit<E extends keyof Events> (event: E, payload: Events[E]): void {
    const set = this.listeners.get(event)
    if (set === undefined) return
    for (const listener of [...set] as Array<(payload: Events[E]) => void>) {
      try {
        listener(payload)
      } catch (err) {
        this.logger.error({ err, event: String(event) }, 'event listener threw')
      }
    }
  }
}
