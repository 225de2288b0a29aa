/**
 * Talaria's protocol layer: pure, browser-safe identifiers, wire codecs, signatures and E2E crypto.
 */
export * from './errors.js'
export * from './crypto/index.js'
export * from './bytes.js'
export * from './limits.js'
export * from './codec.js'
export * from './ids.js'
export * from './identity.js'
export * from './records.js'
export * from './envelopes.js'
export * from './e2e/index.js'
export * from './groups/index.js'
