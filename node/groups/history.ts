/**
 * The `/talaria/history/1.0.0` protocol: one request and one response per stream. A node asks the
 * group's other nodes for the messages it missed and for a log it does not have; it answers from
 * its own storage. What it receives is checked by the caller exactly like gossip before it is
 * stored (see service.ts): the protocol itself trusts nothing.
 */
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import type { Logger } from 'pino'
import { TalariaError } from '../../protocol/errors.js'
import type { GroupId } from '../../protocol/ids.js'
import { timeoutSignal } from '../abort.js'
import { abortUnlessClosed, exchange, readOneFrame, whenClosed, writeFrame } from '../messaging/streams.js'
import {
  decodeHistoryRequest, decodeHistoryResponse, encodeHistoryRequest, encodeHistoryResponse, HISTORY_PROTOCOL, MAX_HISTORY_FRAME_BYTES,
  type HistoryPosition, type HistoryRequest, type HistoryResponse
} from './wire.js'

/**
 * Deadline of one history request, dial included, in milliseconds; an inbound history stream is
 * reset when it has not closed at both ends this long after it opened.
 */
export const DEFAULT_HISTORY_REQUEST_TIMEOUT_MS = 10_000
/** Deadline for a peer to send its whole request, in milliseconds. */
export const HISTORY_REQUEST_READ_TIMEOUT_MS = 5_000
/** Inbound history streams per connection at once. */
export const MAX_INBOUND_HISTORY_STREAMS = 8
/** Outbound history streams per connection at once. */
export const MAX_OUTBOUND_HISTORY_STREAMS = 8

/** What a node serves: pages from its own storage; undefined when it holds nothing of the group. */
export interface HistorySource {
  messages(group: GroupId, since: number, after: HistoryPosition | undefined, limit: number): Promise<{ items: Uint8Array[], next?: HistoryPosition } | undefined>
  ops(group: GroupId, from: number, limit: number): Promise<{ items: Uint8Array[], next?: number } | undefined>
  /** A keep request from `peer`: resolves with an error code when refused, undefined when taken. */
  keep(group: GroupId, peer: string): Promise<string | undefined>
}

/** What the history client uses. */
export interface HistoryClientComponents {
  dialProtocol: (peer: PeerId, protocol: string, opts: { signal: AbortSignal }) => Promise<Stream>
  shutdown: AbortSignal
}

/** Sends one history request to `peer` and returns its response; throws on a failure or timeout. */
export async function requestHistory (components: HistoryClientComponents, peer: PeerId, req: HistoryRequest, opts: { signal?: AbortSignal, timeoutMs?: number } = {}): Promise<HistoryResponse> {
  const signal = timeoutSignal(opts.timeoutMs ?? DEFAULT_HISTORY_REQUEST_TIMEOUT_MS, components.shutdown, opts.signal)
  const stream = await components.dialProtocol(peer, HISTORY_PROTOCOL, { signal }).catch((err: unknown) => {
    signal.clear()
    throw err
  })
  // the deadline watches the stream until it closes, which may be after this returns (see exchange)
  whenClosed(stream, signal.clear)
  const body = await exchange(stream, encodeHistoryRequest(req), signal)
  if (body === undefined) throw new TalariaError('ERR_UNAVAILABLE', 'history stream closed without a response')
  return decodeHistoryResponse(body, req.op)
}

/**
 * The handler of inbound history streams. A bad request aborts that stream only; so does one still
 * open at both ends `opts.timeoutMs` (DEFAULT_HISTORY_REQUEST_TIMEOUT_MS) after it opened.
 */
export function historyStreamHandler (source: HistorySource, components: { logger: Logger, shutdown: AbortSignal }, opts: { timeoutMs?: number } = {}) {
  return async (stream: Stream, connection: Connection): Promise<void> => {
    // the deadline holds until the stream has closed at both ends, not until this function returns:
    // a peer that takes the answer but never ends its side would otherwise keep the stream open
    const signal = timeoutSignal(opts.timeoutMs ?? DEFAULT_HISTORY_REQUEST_TIMEOUT_MS, components.shutdown)
    abortUnlessClosed(stream, signal)
    whenClosed(stream, signal.clear)
    const timer = setTimeout(() => { stream.abort(new Error('history request not received in time')) }, HISTORY_REQUEST_READ_TIMEOUT_MS)
    timer.unref()
    try {
      const body = await readOneFrame(stream, MAX_HISTORY_FRAME_BYTES)
      clearTimeout(timer)
      if (body === undefined) throw new TalariaError('ERR_BAD_FRAME', 'history stream ended before a request')
      const req = decodeHistoryRequest(body)
      let res: HistoryResponse
      if (req.op === 'keep') {
        const refused = await source.keep(req.group, connection.remotePeer.toString())
        res = refused === undefined ? { ok: true, items: [] } : { ok: false, code: refused }
      } else {
        const page = req.op === 'messages'
          ? await source.messages(req.group, req.since, req.after, req.limit)
          : await source.ops(req.group, req.from, req.limit)
        if (page === undefined) res = { ok: false, code: 'ERR_NOT_FOUND' }
        else res = { ok: true, items: page.items, ...(page.next !== undefined ? { next: page.next } : {}) }
      }
      await writeFrame(stream, encodeHistoryResponse(res), { signal })
      await stream.close({ signal }).catch(() => {})
    } catch (err) {
      components.logger.debug({ err, peer: connection.remotePeer.toString() }, 'history stream closed on bad input or failure')
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    } finally {
      clearTimeout(timer)
    }
  }
}

export { HISTORY_PROTOCOL }
