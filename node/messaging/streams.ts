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

/** Yields every frame body read from `stream`; throws ProtocolError('ERR_TOO_LARGE') on an oversized frame. */
export async function * readFrames (stream: Stream, maxFrameBytes?: number): AsyncGenerator<Uint8Array> {
  const reader = new FrameReader(maxFrameBytes)
  for await (const chunk of stream) {
    for (const f of reader.push(chunkBytes(chunk))) yield f
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
