/**
 * Every size, count and length limit of the wire formats, in one place. Decoders check the total
 * size before parsing and every field after; docs/PROTOCOL.md lists the same numbers.
 */

/** Deepest nesting of arrays and maps a decoder accepts; our schemas need at most 5. */
export const MAX_NESTING_DEPTH = 8

/** Largest encoded DHT record (value bytes). */
export const MAX_RECORD_BYTES = 16 * 1024
/** Largest record payload inside a record. */
export const MAX_RECORD_PAYLOAD_BYTES = 12 * 1024
/** Longest id inside a DHT key (`/talaria/<kind>/<id>`). */
export const MAX_RECORD_ID_LENGTH = 64
/** Longest accepted record lifetime (expiresAt - now), so a record cannot pin itself forever. */
export const MAX_RECORD_LIFETIME_MS = 30 * 24 * 3600 * 1000
/** How far in the future issuedAt may be, to tolerate clock skew between devices. */
export const MAX_CLOCK_SKEW_MS = 5 * 60 * 1000

/** Most devices a device list may hold (active). */
export const MAX_DEVICES = 32
/** Most revoked devices a device list keeps. */
export const MAX_REVOKED_DEVICES = 128
/** Most entries in a location record. */
export const MAX_LOCATION_ENTRIES = MAX_DEVICES
/** Most multiaddrs per location entry. */
export const MAX_ADDRS_PER_LOCATION = 8
/** Longest multiaddr string. */
export const MAX_ADDR_LENGTH = 256
/** Longest libp2p peer id string. */
export const MAX_PEER_ID_LENGTH = 128
/** Most one-time prekeys in one published bundle. */
export const MAX_ONE_TIME_PREKEYS = 100
/** Longest profile display name, in UTF-16 code units. */
export const MAX_DISPLAY_NAME_LENGTH = 64
/** Largest profile avatar reference or blob. */
export const MAX_AVATAR_BYTES = 4096
/** Longest profile status text. */
export const MAX_STATUS_LENGTH = 256

/** Largest encoded 1:1 or group envelope. */
export const MAX_ENVELOPE_BYTES = 256 * 1024
/** Largest ciphertext inside an envelope. */
export const MAX_CIPHERTEXT_BYTES = 240 * 1024
/** Largest opaque ratchet header inside an envelope. */
export const MAX_RATCHET_HEADER_BYTES = 256
/** Most message ids in one receipt. */
export const MAX_RECEIPT_IDS = 256
/** Largest encoded receipt. */
export const MAX_RECEIPT_BYTES = 16 * 1024
/** Largest encoded control message. */
export const MAX_CONTROL_BYTES = 4096
/** Longest error message text in a nack. */
export const MAX_ERROR_MESSAGE_LENGTH = 256
/** Longest error code in a nack. */
export const MAX_ERROR_CODE_LENGTH = 64
/** Widest gap a single gap request may ask for. */
export const MAX_GAP_RANGE = 10_000

/** Largest encoded identity file. */
export const MAX_IDENTITY_FILE_BYTES = 8 * 1024
/** Largest encoded device certificate. */
export const MAX_CERTIFICATE_BYTES = 1024
/** Largest encoded device list. */
export const MAX_DEVICE_LIST_BYTES = 12 * 1024
/** Largest encoded group genesis. */
export const MAX_GROUP_GENESIS_BYTES = 4096
