/**
 * Talaria's protocol layer: pure, browser-safe identifiers, wire codecs, signatures and E2E crypto.
 */
export * from './errors.js'
export * from './crypto/index.js'
