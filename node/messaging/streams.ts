/**
 * Small helpers over libp2p v3 streams: framed writes that respect backpressure, framed reads
 * with a size limit that always see the remote's end, deadlines that outlive the handler, and a
 * one-shot request/response exchange with a deadline.
 */
import type { Stream, StreamCloseEvent, StreamMessageEvent } from '@libp2p/interface'
import { chunkBytes, FrameReader } from './wire.js'

// the deadlines used with these helpers live with the node's other deadlines
export { timeoutSignal } from '../abort.js'

/** Writes one already framed buffer, waiting for drain when the stream's buffer is full. */
export async function writeFrame (stream: Stream, bytes: Uint8Array, opts: { signal?: AbortSignal } = {}): Promise<void> {
  if (!stream.send(bytes)) await stream.onDrain(opts.signal !== undefined ? { signal: opts.signal } : {})
}

/**
 * Yields what `stream` receives until the remote's writable end is over; rethrows the error of a
 * reset or abort. libp2p 3's own iterator ends on 'remoteCloseWrite', which is emitted once, to
 * whoever listens at that moment: when the peer's last bytes and its end arrive before anyone reads
 * (they do when the peer sends right after negotiation, while libp2p still updates its peer store
 * before calling the handler), that iterator then waits for a 'close' that a half-closed stream
 * never emits. This one also wakes on 'end', emitted once the buffered bytes are delivered, and
 * reads `readableEnded`, so it cannot miss the end.
 */
export async function * readChunks (stream: Stream): AsyncGenerator<StreamMessageEvent['data']> {
  const queue: Array<StreamMessageEvent['data']> = []
  let closed: StreamCloseEvent | undefined
  let wake: (() => void) | undefined
  const notify = (): void => {
    wake?.()
    wake = undefined
  }
  const onMessage = (evt: StreamMessageEvent): void => {
    queue.push(evt.data)
    notify()
  }
  const onClose = (evt: StreamCloseEvent): void => {
    closed = evt
    notify()
  }
  stream.addEventListener('message', onMessage)
  stream.addEventListener('end', notify)
  stream.addEventListener('close', onClose)
  try {
    while (true) {
      const chunk = queue.shift()
      if (chunk !== undefined) {
        yield chunk
        continue
      }
      if (closed?.error !== undefined) throw closed.error
      // bytes still buffered are dispatched to onMessage, and 'end' follows them
      if (stream.readBufferLength === 0 && (stream.readableEnded || closed !== undefined)) return
      await new Promise<void>((resolve) => { wake = resolve })
    }
  } finally {
    stream.removeEventListener('message', onMessage)
    stream.removeEventListener('end', notify)
    stream.removeEventListener('close', onClose)
  }
}

/** How long a frame may stay incomplete on a long-lived stream before the stream is aborted, in milliseconds. */
export const DEFAULT_PARTIAL_FRAME_TIMEOUT_MS = 10_000

/**
 * Yields every frame body read from `stream`; throws ProtocolError('ERR_TOO_LARGE') on an
 * oversized frame. With `partialFrameTimeoutMs`, a frame left incomplete that long aborts the
 * stream, so a peer cannot hold a reader (and its buffer) with a trickle or a truncated frame.
 */
export async function * readFrames (stream: Stream, maxFrameBytes?: number, partialFrameTimeoutMs?: number): AsyncGenerator<Uint8Array> {
  const reader = new FrameReader(maxFrameBytes)
  let timer: ReturnType<typeof setTimeout> | undefined
  try {
    for await (const chunk of readChunks(stream)) {
      const frames = reader.push(chunkBytes(chunk))
      if (partialFrameTimeoutMs !== undefined) {
        if (reader.pending === 0) {
          clearTimeout(timer)
          timer = undefined
        } else if (timer === undefined) {
          timer = setTimeout(() => { stream.abort(new Error('incomplete frame timed out')) }, partialFrameTimeoutMs)
          timer.unref()
        }
      }
      for (const f of frames) yield f
    }
  } finally {
    clearTimeout(timer)
  }
}

/** Aborts `stream` when `signal` fires; returns a function that stops watching. */
export function abortOnSignal (stream: Stream, signal: AbortSignal): () => void {
  const onAbort = (): void => { stream.abort(signal.reason instanceof Error ? signal.reason : new Error('aborted')) }
  if (signal.aborted) {
    onAbort()
    return () => {}
  }
  signal.addEventListener('abort', onAbort, { once: true })
  return () => { signal.removeEventListener('abort', onAbort) }
}

/**
 * Aborts `stream` when `signal` fires before the stream has closed at both ends. The watch lasts
 * until the stream's 'close', not until the caller is done with it: after a caller closes its side,
 * the stream stays open for as long as the peer keeps its own side open.
 */
export function abortUnlessClosed (stream: Stream, signal: AbortSignal): void {
  whenClosed(stream, abortOnSignal(stream, signal))
}

/** Calls `fn` once `stream` has closed at both ends or been reset; at once if it is no longer open. */
export function whenClosed (stream: Stream, fn: () => void): void {
  if (stream.status === 'open') stream.addEventListener('close', fn, { once: true })
  else fn()
}

/** Reads the first frame of `stream`, or undefined when it ends first. */
export async function readOneFrame (stream: Stream, maxFrameBytes?: number): Promise<Uint8Array | undefined> {
  for await (const f of readFrames(stream, maxFrameBytes)) return f
  return undefined
}

/**
 * Sends one request frame and reads one response frame, all before `signal` fires; closes the
 * stream after. A peer that answers but never ends its side has the stream aborted by `signal`.
 */
export async function exchange (stream: Stream, request: Uint8Array, signal: AbortSignal): Promise<Uint8Array | undefined> {
  abortUnlessClosed(stream, signal)
  await writeFrame(stream, request, { signal })
  const response = await readOneFrame(stream)
  await stream.close({ signal }).catch(() => {})
  return response
}
