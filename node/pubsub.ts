/**
 * Topic publish/subscribe over gossipsub. Handlers live here, not in gossipsub, so they survive a
 * restart: the node joins every topic that has a handler again when it starts.
 */
import type { GossipSub, Message, SubscriptionChangeData, TopicValidatorFn, TopicValidatorResult } from '@libp2p/gossipsub'
import type { PeerId } from '@libp2p/interface'
import type { Logger } from 'pino'
import { abortedError, operationSignal, untilAborted } from './abort.js'
import { NodeError } from './errors.js'
import { DEFAULT_PUBLISH_TIMEOUT_MS } from './options.js'
import type { AbortOptions, PubSubHandler, PubSubValidator, PublishResult, ValidationResult } from './types.js'

/** Longest topic name accepted, in bytes of its UTF-8 form. */
export const MAX_TOPIC_BYTES = 256

/** What the pubsub service uses. */
export interface PubSubComponents {
  logger: Logger
  /** Called for each change of a remote peer's subscriptions. */
  onSubscriptionChange(change: { peerId: string, topic: string, subscribed: boolean }): void
  /** Turns peer scoring of a validated topic on or off (see libp2p.ts `setTopicScoring`). */
  setTopicScoring?(topic: string, on: boolean): void
  /** The gossipsub score of a peer (see libp2p.ts `gossipPeerScore`). */
  peerScore?(peerId: string): number
}

/** The running gossipsub the service is attached to while the node runs. */
export type PubSubRouter = Pick<GossipSub, 'subscribe' | 'unsubscribe' | 'publish' | 'getSubscribers' | 'addEventListener' | 'removeEventListener' | 'topicValidators'>

/** The gossipsub verdict of each of our results (the enum's string values). */
const VERDICT: Record<ValidationResult, TopicValidatorResult> = {
  accept: 'accept' as TopicValidatorResult,
  ignore: 'ignore' as TopicValidatorResult,
  reject: 'reject' as TopicValidatorResult
}

function checkTopic (topic: string): void {
  if (topic.length === 0 || Buffer.byteLength(topic) > MAX_TOPIC_BYTES) {
    throw new NodeError('ERR_INVALID_OPTION', `a topic is 1 to ${MAX_TOPIC_BYTES} bytes`)
  }
}

/** Publish/subscribe service. */
export class DefaultPubSub {
  private readonly components: PubSubComponents
  private readonly handlers = new Map<string, Set<PubSubHandler>>()
  private readonly validators = new Map<string, TopicValidatorFn>()
  private router: PubSubRouter | undefined
  private shutdown: AbortSignal | undefined

  constructor (components: PubSubComponents) {
    this.components = components
  }

  private readonly onMessage = (evt: CustomEvent<Message>): void => {
    const msg = evt.detail
    const set = this.handlers.get(msg.topic)
    if (set === undefined) return
    // a plain Uint8Array view, so handlers in every runtime see one type (libp2p hands out Buffers in Node)
    const data = new Uint8Array(msg.data.buffer, msg.data.byteOffset, msg.data.byteLength)
    // messages are unsigned (StrictNoSign): there is no author at this layer, only in the payload
    const payload = { topic: msg.topic, data, ...(msg.type === 'signed' ? { from: msg.from.toString() } : {}) }
    for (const handler of [...set]) {
      try {
        handler(payload)
      } catch (err) {
        this.components.logger.error({ err, topic: msg.topic }, 'topic handler threw')
      }
    }
  }

  private readonly onSubscriptionChange = (evt: CustomEvent<SubscriptionChangeData>): void => {
    const peerId = evt.detail.peerId.toString()
    for (const sub of evt.detail.subscriptions) {
      this.components.onSubscriptionChange({ peerId, topic: sub.topic, subscribed: sub.subscribe })
    }
  }

  /** Attaches to a started gossipsub and joins every topic that has a handler. */
  start (router: PubSubRouter, shutdown: AbortSignal): void {
    this.router = router
    this.shutdown = shutdown
    router.addEventListener('message', this.onMessage)
    router.addEventListener('subscription-change', this.onSubscriptionChange)
    for (const [topic, fn] of this.validators) this.installValidator(router, topic, fn)
    for (const topic of this.handlers.keys()) router.subscribe(topic)
  }

  private installValidator (router: PubSubRouter, topic: string, fn: TopicValidatorFn): void {
    router.topicValidators.set(topic, fn)
    this.components.setTopicScoring?.(topic, true)
  }

  /**
   * Sets the validator of `topic`: gossipsub delivers and forwards a message only when it
   * resolves `accept`; `reject` also counts against the peer that sent it (the topic is scored
   * while it has a validator), `ignore` drops it silently. A validator that throws counts as
   * `ignore` (the fault is ours, not the peer's) and is logged. Survives a restart, like handlers.
   */
  setValidator (topic: string, validator: PubSubValidator): void {
    checkTopic(topic)
    const log = this.components.logger
    const fn: TopicValidatorFn = async (peer: PeerId, msg: Message) => {
      try {
        const data = new Uint8Array(msg.data.buffer, msg.data.byteOffset, msg.data.byteLength)
        return VERDICT[await validator({ topic: msg.topic, data, propagationSource: peer.toString() })]
      } catch (err) {
        log.error({ err, topic: msg.topic }, 'topic validator threw')
        return VERDICT.ignore
      }
    }
    this.validators.set(topic, fn)
    if (this.router !== undefined) this.installValidator(this.router, topic, fn)
  }

  /** Removes the validator of `topic` (and its scoring). */
  removeValidator (topic: string): void {
    if (!this.validators.delete(topic)) return
    const router = this.router
    if (router === undefined) return
    router.topicValidators.delete(topic)
    this.components.setTopicScoring?.(topic, false)
  }

  /** The gossipsub score of `peerId` as this node sees it; 0 while stopped or for an unknown peer. */
  peerScore (peerId: string): number {
    if (this.router === undefined) return 0
    return this.components.peerScore?.(peerId) ?? 0
  }

  /** Detaches from gossipsub; handlers stay registered for the next start. */
  stop (): void {
    const router = this.router
    if (router === undefined) return
    this.router = undefined
    this.shutdown = undefined
    router.removeEventListener('message', this.onMessage)
    router.removeEventListener('subscription-change', this.onSubscriptionChange)
    for (const topic of this.validators.keys()) {
      router.topicValidators.delete(topic)
      this.components.setTopicScoring?.(topic, false)
    }
  }

  /** Publishes `data` on `topic`; resolves with the peers it was sent to. */
  async publish (topic: string, data: Uint8Array, opts: AbortOptions = {}): Promise<PublishResult> {
    checkTopic(topic)
    const router = this.router
    if (router === undefined) throw new NodeError('ERR_NOT_STARTED', 'the node is not started')
    const signal = operationSignal(opts.signal, DEFAULT_PUBLISH_TIMEOUT_MS, this.shutdown)
    try {
      signal.throwIfAborted()
      // gossipsub's publish takes no signal: race it so the caller's deadline holds
      const result = await untilAborted(router.publish(topic, data), signal).catch((err: unknown) => {
        throw abortedError(signal, new NodeError('ERR_NETWORK', `publish on ${topic} failed`, { cause: err }), 'publish', this.shutdown)
      })
      return { recipients: result.recipients.map((p) => p.toString()) }
    } finally {
      signal.clear()
    }
  }

  /** Adds `handler` for `topic`; the first handler of a topic joins it. */
  subscribe (topic: string, handler: PubSubHandler): void {
    checkTopic(topic)
    let set = this.handlers.get(topic)
    if (set === undefined) {
      set = new Set()
      this.handlers.set(topic, set)
      this.router?.subscribe(topic)
    }
    set.add(handler)
  }

  /** Removes `handler` (all handlers when omitted); the last handler of a topic leaves it. */
  unsubscribe (topic: string, handler?: PubSubHandler): void {
    const set = this.handlers.get(topic)
    if (set === undefined) return
    if (handler !== undefined) set.delete(handler)
    else set.clear()
    if (set.size === 0) {
      this.handlers.delete(topic)
      this.router?.unsubscribe(topic)
    }
  }

  /** Peer ids known to subscribe to `topic` (empty while stopped). */
  getSubscribers (topic: string): string[] {
    return this.router?.getSubscribers(topic).map((p) => p.toString()) ?? []
  }
}
