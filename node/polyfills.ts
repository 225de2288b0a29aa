/**
 * Runtime polyfills the node layer needs, loaded before anything imports libp2p.
 *
 * libp2p 3 calls `Promise.withResolvers`, which Node 20 lacks. The CLI and the tests load
 * `scripts/polyfills.js` already; this module covers applications that import `node/` directly.
 */

if (typeof Promise.withResolvers !== 'function') {
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    value: function withResolvers<T> (this: PromiseConstructor): PromiseWithResolvers<T> {
      let resolve!: (value: T | PromiseLike<T>) => void
      let reject!: (reason?: unknown) => void
      const promise = new this<T>((res, rej) => { resolve = res; reject = rej })
      return { promise, resolve, reject }
    }
  })
}

export {}
