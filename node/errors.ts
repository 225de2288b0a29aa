/**
 * Errors of the node runtime. Callers branch on `code`, never on the message.
 */
import { TalariaError } from '../protocol/errors.js'

/** Codes of failures raised by the node runtime. Stable between releases. */
export type NodeErrorCode =
  /** The data dir holds no node key yet (the node was never started there). */
  | 'ERR_NO_NODE_KEY'
  /** The node key file exists but cannot be decoded as an Ed25519 libp2p key. */
  | 'ERR_BAD_NODE_KEY'
  /** An option is out of range or of the wrong shape. */
  | 'ERR_INVALID_OPTION'
  /** The operation needs a started node. */
  | 'ERR_NOT_STARTED'
  /** `start()` was called while the node is starting, started or stopping. */
  | 'ERR_BAD_STATE'
  /** A bootstrap address is not a multiaddr ending in /p2p/<peer id>. */
  | 'ERR_BAD_BOOTSTRAP_ADDR'
  /** No valid record exists for the key (none found, or every copy failed validation). */
  | 'ERR_RECORD_NOT_FOUND'
  /** The peer could not be found through the DHT. */
  | 'ERR_PEER_NOT_FOUND'
  /** The operation is not offered by this node's role (a bootstrap node carries no user traffic). */
  | 'ERR_ROLE'
  /** The operation did not finish before its deadline or the caller aborted it. */
  | 'ERR_TIMEOUT'
  /** The DHT or pubsub layer failed; see `cause`. */
  | 'ERR_NETWORK'
  /** The HTTP server could not bind its address. */
  | 'ERR_HTTP_LISTEN'

/** A failure of the node runtime. */
export class NodeError extends TalariaError {
  declare readonly code: NodeErrorCode

  constructor (code: NodeErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options)
    this.name = 'NodeError'
  }
}
