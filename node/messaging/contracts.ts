/**
 * Contracts between the node's client gateway (`node/gateway/`) and its messaging services
 * (`node/messaging/`): delivery of 1:1 envelopes, and the directory of users, devices and prekeys.
 * The gateway depends only on these interfaces, so each side is tested on its own.
 */
import type { DeviceList } from '../../protocol/identity.js'
import type { DirectEnvelope } from '../../protocol/envelopes.js'
import type { DeviceId, MessageId, UserId } from '../../protocol/ids.js'

/** Options every async call accepts. */
export interface CallOptions {
  signal?: AbortSignal
}

/** An authenticated device. */
export interface DeviceRef {
  user: UserId
  device: DeviceId
}

/** An envelope as it arrived: decoded for routing, raw bytes kept for storage and forwarding. */
export interface SubmittedEnvelope {
  envelope: DirectEnvelope
  bytes: Uint8Array
}

/** Where the delivery service pushes envelopes for a connected device. */
export interface DeviceSink {
  /**
   * Pushes one envelope to the device. Returns false when the connection's push window is full
   * (the service then waits for {@link DeliveryService.ack} or a `drain` call before pushing more).
   * False means the envelope was not taken: the service pushes it again once there is room.
   */
  push(id: MessageId, envelope: Uint8Array): boolean
  /** Envelopes this device sent have reached the recipient's inbox or mailbox replicas. */
  delivered(ids: MessageId[]): void
}

/** 1:1 delivery: outbox, routing across nodes, inboxes, mailbox replicas. */
export interface DeliveryService {
  /**
   * Accepts envelopes from `sender` (every `envelope.from` already checked by the caller to be
   * `sender`). Resolves once all are durable in this node's outbox; delivery continues in the
   * background. Idempotent by envelope id. Rejects with a TalariaError whose code is a client
   * error code (e.g. ERR_UNAVAILABLE under storage backpressure).
   */
  submit(sender: DeviceRef, envelopes: SubmittedEnvelope[], opts?: CallOptions): Promise<MessageId[]>
  /**
   * Registers a connected, authenticated device. The service pulls the device's mailbox from its
   * replicas, merges it into the local inbox and pushes everything pending, in order. Returns a
   * function that detaches the sink (on disconnect). A device may be attached more than once
   * (several connections); each gets the pushes.
   */
  attach(device: DeviceRef, sink: DeviceSink): () => void
  /** The sink has room again after returning false from push. */
  drain(device: DeviceRef, sink: DeviceSink): void
  /** The device stored these envelopes durably: delete them here and on the mailbox replicas. */
  ack(device: DeviceRef, ids: MessageId[], opts?: CallOptions): Promise<number>
}

/** Users, devices and prekeys: DHT records behind a cache. */
export interface DirectoryService {
  /** Validates and stores signed records in the DHT (and the local cache). */
  publish(records: Uint8Array[], opts?: CallOptions): Promise<{ stored: number, failures: Array<{ index: number, code: string, message: string }> }>
  /** The newest valid device list of `user` known here or in the DHT; undefined when none exists. */
  getDeviceList(user: UserId, opts?: CallOptions): Promise<DeviceList | undefined>
  /** The record bytes a sender needs to reach `user`: the device list and each active device's prekeys. */
  lookup(user: UserId, opts?: CallOptions): Promise<{ deviceList?: Uint8Array, prekeys: Uint8Array[] }>
}
