/**
 * The Talaria client SDK: browser-safe (no node:* imports; pass a WebSocket constructor in Node 20).
 * See docs/CLIENT.md.
 */
export { createClient, DEFAULT_NODE_URL, LOCATION_TTL_MS, DEFAULT_LOCATION_REFRESH_MS, DEFAULT_KEY_RECORD_TTL_MS, DEFAULT_LOOKUP_CACHE_MS, DEFAULT_SEND_TIMEOUT_MS, DEFAULT_MAX_SEEN_IDS, DEFAULT_SENT_LOG_SIZE, DEFAULT_RECEIPT_DELAY_MS, DEFAULT_ACK_DELAY_MS, DEFAULT_MAX_INCOMING_QUEUE, MAX_SESSIONS_PER_DEVICE } from './client.js'
export type { ClientInit, ClientEvents, ClientMessage, ClientLogger, CallOptions, TalariaClient } from './client.js'
export { createIdentity, addDevice, encodeIdentity, decodeIdentity, deviceKeys, identityUserId, identityDeviceId, CLIENT_IDENTITY_VERSION, MAX_CLIENT_IDENTITY_BYTES, DEFAULT_SIGNED_PREKEY_ID } from './identity.js'
export type { ClientIdentity, CreateIdentityOptions } from './identity.js'
export { MemoryStore, STORE_NAMESPACES } from './store.js'
export type { ClientStore, StoreNamespace, StoreOp, StoreListOptions, StoreCallOptions } from './store.js'
export { LevelStore } from './level-store.js'
export { ClientError, CLIENT_SDK_ERROR_CODES } from './errors.js'
export type { ClientSdkErrorCode } from './errors.js'
export { backoffDelay, DEFAULT_RECONNECT_BASE_MS, DEFAULT_RECONNECT_MAX_MS } from './backoff.js'
export type { BackoffOptions } from './backoff.js'
export { OrderingBuffer, DEFAULT_GAP_TIMEOUT_MS, DEFAULT_GAP_MAX_REQUESTS, DEFAULT_MAX_BUFFERED_PER_STREAM } from './ordering.js'
export type { OrderingBufferInit, OrderingTimers, Sequenced } from './ordering.js'
export { Connection, DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_REQUEST_TIMEOUT_MS, DEFAULT_MAX_INCOMING_FRAME_BYTES, DEFAULT_MAX_IN_FLIGHT } from './connection.js'
export type { WebSocketLike, WebSocketConstructor, ConnectionInit } from './connection.js'
export {
  ClientGroups, MAX_HELD_PER_GROUP, MAX_HELD_UNKNOWN_GROUPS, MAX_KEYS_PER_SENDER, MAX_INVITE_OPS, MAX_HISTORY_PAGES, MAX_GROUP_EVENT_QUEUE,
  MAX_RECENT_ROOM_IDS, DEFAULT_MAX_GROUP_SEEN_IDS
} from './groups.js'
export type {
  GroupMessage, RoomMessage, GroupChange, GroupEvents, CreateGroupOptions, CreateRoomOptions, GroupCallOptions, FanOutResult, GroupDirectContent
} from './groups.js'
