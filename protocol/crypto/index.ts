/**
 * Crypto provider selection. `defaultCrypto` is the fastest implementation available on this
 * platform; every API that does crypto also accepts an explicit provider, so benchmarks and tests
 * can run both side by side.
 */
import { nobleCrypto } from './noble.js'
import type { CryptoProvider } from './provider.js'

export type { CryptoProvider } from './provider.js'
export { nobleCrypto } from './noble.js'

/** The provider used when none is given. */
export const defaultCrypto: CryptoProvider = nobleCrypto
