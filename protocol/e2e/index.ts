/**
 * End-to-end encryption of Talaria: X3DH to agree on a secret with a device's prekey bundle, the
 * Double Ratchet for 1:1 sessions, and sender keys for groups. Pure and synchronous; every function
 * that does crypto takes an optional `CryptoProvider` (default `defaultCrypto`).
 * The scheme is specified in docs/protocol/e2e.md.
 */
export {
  X3DH_INFO,
  SIGNED_PREKEY_SIGNATURE_DOMAIN,
  X25519_KEY_TYPE,
  encodeX25519PublicKey,
  generateX25519KeyPair,
  generateDeviceIdentityKeys,
  generateSignedPreKey,
  generateOneTimePreKeys,
  createPreKeyBundle,
  verifyPreKeyBundle,
  x3dhInitiate,
  x3dhRespond
} from './x3dh.js'
export type {
  DeviceIdentityKeys,
  X25519KeyPair,
  SignedPreKeyPair,
  OneTimePreKeyPair,
  PreKeyBundle,
  X3dhInitialMessage,
  X3dhInitiatorResult,
  X3dhResponderResult,
  X3dhResponderKeys
} from './x3dh.js'

export {
  MAX_SKIP,
  MAX_SKIPPED_KEYS,
  MAX_PREVIOUS_CHAINS,
  MAX_SESSION_AD_LENGTH,
  MAX_SESSION_BYTES,
  HEADER_VERSION,
  HEADER_LENGTH,
  SESSION_FORMAT_VERSION,
  ROOT_KDF_INFO,
  MESSAGE_KEY_INFO,
  createInitiatorSession,
  createResponderSession,
  encodeHeader,
  decodeHeader,
  nextHeader,
  ratchetEncrypt,
  ratchetDecrypt,
  serializeSession,
  deserializeSession
} from './double-ratchet.js'
export type {
  RatchetHeader,
  RatchetMessage,
  RatchetSession,
  SkippedMessageKey,
  PreviousChain,
  InitiatorSessionInit,
  ResponderSessionInit
} from './double-ratchet.js'

export {
  SENDER_KEY_MAX_SKIP,
  SENDER_KEY_MAX_SKIPPED_KEYS,
  SENDER_KEY_VERSION,
  MAX_GROUP_MESSAGE_BYTES,
  MAX_SENDER_KEY_STATE_BYTES,
  SENDER_KEY_MESSAGE_INFO,
  SENDER_KEY_SIGNATURE_DOMAIN,
  SENDER_KEY_DISTRIBUTION_LENGTH,
  createSenderKey,
  rotateSenderKey,
  senderKeyDistribution,
  encodeSenderKeyDistribution,
  decodeSenderKeyDistribution,
  createReceiverSenderKey,
  groupEncrypt,
  groupDecrypt,
  encodeGroupMessage,
  decodeGroupMessage,
  serializeSenderKey,
  deserializeSenderKey,
  serializeReceiverSenderKey,
  deserializeReceiverSenderKey
} from './sender-keys.js'
export type {
  SenderKeyState,
  SenderKeyDistribution,
  ReceiverSenderKeyState,
  GroupMessage
} from './sender-keys.js'
