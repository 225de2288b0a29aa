/**
 * Talaria's node runtime. The polyfills load first, before anything imports libp2p.
 */
import './polyfills.js'

export { createNode, resolveNodeInit, TALARIA_VERSION } from './node.js'
export { readPeerId, readNodeKey, loadOrCreateNodeKey, NODE_KEY_FILE, NODE_KEY_FILE_MODE } from './node-key.js'
export type { NodeKeyOptions } from './node-key.js'
export { NodeError } from './errors.js'
export type { NodeErrorCode } from './errors.js'
export * from './options.js'
export type * from './types.js'
export { DefaultHttpServer } from './http.js'
export type { UpgradeHandler, HttpServerInit, HttpServerComponents } from './http.js'
export { TALARIA_DHT_PROTOCOL } from './libp2p.js'
export {
  createMessaging, DefaultDeliveryService, DefaultDirectory, MailboxService, MessagingError, ArrivalClock, mailboxKey, orderByConversation,
  DELIVER_PROTOCOL, MAILBOX_PROTOCOL, MAX_FRAME_BYTES, MAX_ENVELOPES_PER_FRAME
} from './messaging/index.js'
export type {
  Messaging, MessagingInit, MessagingComponents, MessagingDirectory, MessagingErrorCode, DeliveryService, DirectoryService, DeviceSink,
  DeviceRef, SubmittedEnvelope, CallOptions
} from './messaging/index.js'
export { createGroups, DefaultGroupService, HISTORY_PROTOCOL, encodeTopicFrame, decodeTopicFrame } from './groups/index.js'
export type { Groups, GroupsComponents, GroupServiceInit, GroupService, GroupSink, GroupEventName, AuthenticatedDevice } from './groups/index.js'
