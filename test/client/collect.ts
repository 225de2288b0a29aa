/**
 * Waiting on client events in tests, with deadlines instead of sleeps.
 */
import type { ClientEvents, TalariaClient } from '../../client/index.js'

/** Collects `message` events until `count` arrived; rejects at the deadline with what arrived. */
export async function collectMessages (client: TalariaClient, count: number, timeoutMs: number, into: Array<ClientEvents['message']> = []): Promise<Array<ClientEvents['message']>> {
  return await new Promise((resolve, reject) => {
    if (into.length >= count) { resolve(into); return }
    const timer = setTimeout(() => {
      off()
      reject(new Error(`timed out after ${timeoutMs} ms with ${into.length} of ${count} messages`))
    }, timeoutMs)
    const off = client.on('message', (m) => {
      into.push(m)
      if (into.length >= count) {
        clearTimeout(timer)
        off()
        resolve(into)
      }
    })
  })
}

/** Resolves with the first `event` payload matching `predicate`; rejects at the deadline. */
export async function nextEvent<E extends keyof ClientEvents> (client: TalariaClient, event: E, timeoutMs: number, predicate: (p: ClientEvents[E]) => boolean = () => true): Promise<ClientEvents[E]> {
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { off(); reject(new Error(`timed out after ${timeoutMs} ms waiting for ${event}`)) }, timeoutMs)
    const off = client.on(event, (p) => {
      if (!predicate(p)) return
      clearTimeout(timer)
      off()
      resolve(p)
    })
  })
}
