/**
 * Talaria's protocol layer: pure, browser-safe identifiers, wire codecs, signatures and E2E crypto.
 */
export * from './errors.js'
export type { CryptoProvider } from './crypto/provider.js'
export { nobleCrypto } from './crypto/noble.js'
