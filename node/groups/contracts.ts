/**
 * The contract between the client gateway (`node/gateway/`) and the node's groups and rooms
 * service (`node/groups/`). The gateway depends only on this interface.
 *
 * Errors: every method rejects with a TalariaError whose code is a client error code
 * (`ClientProtocolError` when it carries `retryAfterMs`, e.g. ERR_ROOM_RATE_LIMITED), so the
 * gateway can pass it to the client as it is.
 */
import type { ClientEvents, ClientOps } from '../../protocol/client-protocol.js'
import type { GroupId } from '../../protocol/ids.js'
import type { CallOptions, DeviceRef } from '../messaging/contracts.js'

/** Group events a connection can receive. */
export type GroupEventName = 'group' | 'groupOp' | 'groupLag'

/** Where the groups service pushes events for one authenticated connection. */
export interface GroupSink {
  /**
   * Pushes one event. Returns false when the connection is backed up and the event was dropped:
   * the service then owes the connection a `groupLag` for that group, which it sends on `drain`.
   */
  event<E extends GroupEventName>(ev: E, body: ClientEvents[E]): boolean
}

/** An authenticated device with the signing key its certificate proved at auth. */
export interface AuthenticatedDevice extends DeviceRef {
  signingKey: Uint8Array
}

/** Groups and rooms as the gateway sees them. */
export interface GroupService {
  /**
   * Registers an authenticated connection. The service subscribes the node to the topics of the
   * groups the user is a member of (as far as it knows them) and pushes their messages and ops
   * to `sink`. Returns the function that detaches it (on disconnect): rooms entered on this
   * connection are left, and topics no connected member needs any more are unsubscribed.
   */
  attach(device: AuthenticatedDevice, sink: GroupSink): () => void
  /** The connection has room again after `event` returned false: send the owed `groupLag`s. */
  drain(sink: GroupSink): void
  /** `groupOps`: see ClientOps in protocol/client-protocol.ts. Durable before it resolves. */
  submitOps(device: AuthenticatedDevice, req: ClientOps['groupOps']['req'], opts?: CallOptions): Promise<ClientOps['groupOps']['res']>
  /** `groupGet`. */
  getOps(device: AuthenticatedDevice, req: ClientOps['groupGet']['req'], opts?: CallOptions): Promise<ClientOps['groupGet']['res']>
  /**
   * `groupSend` of a group or room envelope by `device` over the connection of `sink` (which does
   * not get its own message pushed back). Durable in this node's history before it resolves.
   */
  send(device: AuthenticatedDevice, sink: GroupSink, req: ClientOps['groupSend']['req'], opts?: CallOptions): Promise<ClientOps['groupSend']['res']>
  /** `groupHistory`. */
  history(device: AuthenticatedDevice, req: ClientOps['groupHistory']['req'], opts?: CallOptions): Promise<ClientOps['groupHistory']['res']>
  /** `roomEnter`: pushes the room's messages to `sink` until `leaveRoom` or detach. */
  enterRoom(device: AuthenticatedDevice, sink: GroupSink, req: ClientOps['roomEnter']['req'], opts?: CallOptions): Promise<ClientOps['roomEnter']['res']>
  /** `roomLeave`. */
  leaveRoom(device: AuthenticatedDevice, sink: GroupSink, room: GroupId): void
}
