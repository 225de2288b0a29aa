/**
 * Small helpers over libp2p v3 streams: framed writes that respect backpressure, framed reads
 * with a size limit, and a one-shot request/response exchange with a deadline.
 */
import type { Stream } from '@libp2p/interface'
import { chunkBytes, FrameReader } from './wire.js'

/** Writes one already framed buffer, waiting for drain when the stream's buffer is full. */
export async function writeFrame (stream: Stream, bytes: Uint8Array, opts: { signal?: AbortSignal } = {}): Promise<void> {
  if (!stream.send(bytes)) await stream.onDrain(opts.signal !== undefined ? { signal: opts.signal } : {})
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
    for await (const chunk of stream) {
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

/** Reads the first frame of `stream`, or undefined when it ends first. */
export async function readOneFrame (stream: Stream, maxFrameBytes?: number): Promise<Uint8Array | undefined> {
  for await (const f of readFrames(stream, maxFrameBytes)) return f
  return undefined
}

/** Sends one request frame and reads one response frame, all before `signal` fires; closes the stream after. */
export async function exchange (stream: Stream, request: Uint8Array, signal: AbortSignal): Promise<Uint8Array | undefined> {
  const stop = abortOnSignal(stream, signal)
  try {
    await writeFrame(stream, request, { signal })
    const response = await readOneFrame(stream)
    await stream.close({ signal }).catch(() => {})
    return response
  } finally {
    stop()
  }
}
