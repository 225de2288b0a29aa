/**
 * Crypto provider selection. `defaultCrypto` is the fastest implementation available on this
 * platform; every API that does crypto also accepts an explicit provider, so benchmarks and tests
 * can run both side by side.
 *
 * On Node.js the default is the native provider (OpenSSL through `node:crypto`). In browsers it is
 * the portable noble provider, on purpose: WebCrypto is asynchronous (the ratchets and validators
 * are synchronous by design) and has no ChaCha20-Poly1305, so it cannot implement this interface.
 */
import { nativeCrypto } from './native.js'
import { nobleCrypto } from './noble.js'
import type { CryptoProvider } from './provider.js'

export type { CryptoProvider } from './provider.js'
export { nobleCrypto } from './noble.js'
export { nativeCrypto } from './native.js'

/** The provider used when none is given: native where available, else noble. */
export const defaultCrypto: CryptoProvider = nativeCrypto ?? nobleCrypto
