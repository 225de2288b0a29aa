/**
 * `talaria listen`: connects and prints one JSON line per message on stdout, in order: direct
 * messages, group messages (with a `group` field) and messages of the rooms named by `--room`
 * (with a `room` field). Exits 0 after `--count` messages, at `--timeout` seconds, or on
 * SIGINT/SIGTERM, whichever comes first.
 */
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from '../exit-codes.js'
import { describeError } from '../describe-error.js'
import { isGroupId, type GroupId } from '../../protocol/ids.js'
import { openClient, positive } from './client-support.js'

/** Flags of `talaria listen`. */
export interface ListenFlags {
  node: string
  identity: string
  count?: string
  timeout?: string
  /** Rooms to enter. */
  room?: string[]
}


/** Runs `talaria listen`; returns the exit code. */
export async function runListen (flags: ListenFlags): Promise<number> {
  let count: number | undefined
  let timeoutS: number | undefined
  try {
    count = positive(flags.count, '--count', true)
    timeoutS = positive(flags.timeout, '--timeout', false)
    for (const r of flags.room ?? []) if (!isGroupId(r)) throw new Error(`--room: not a room id: ${r}`)
  } catch (err) {
    process.stderr.write(`talaria: ${describeError(err)}\n`)
    return EXIT_USAGE
  }
  const client = await openClient(flags.node, flags.identity)
  if (typeof client === 'number') return client
  const deadline = timeoutS === undefined ? undefined : Date.now() + timeoutS * 1000
  let received = 0
  let failure: string | undefined
  let finished = false
  let resolveDone = (): void => {}
  const done = new Promise<void>((resolve) => { resolveDone = resolve })
  const stop = (): void => { finished = true; resolveDone() }
  const print = (line: Record<string, unknown>): void => {
    if (finished || (count !== undefined && received >= count)) return
    received++
    process.stdout.write(JSON.stringify(line) + '\n')
    if (count !== undefined && received >= count) stop()
  }
  // subscribed before connecting: the node pushes what waited for this device right after auth
  client.on('message', (m) => {
    const line: Record<string, unknown> = { id: m.id, from: m.from, fromDevice: m.fromDevice, conv: m.conv, seq: m.seq, text: m.text, sentAt: m.sentAt }
    if (m.peer !== undefined) line.peer = m.peer
    print(line)
  })
  client.on('groupMessage', (m) => {
    print({ group: m.group, id: m.id, from: m.from, fromDevice: m.fromDevice, seq: m.seq, text: m.text, sentAt: m.sentAt })
  })
  client.on('roomMessage', (m) => {
    print({ room: m.room, id: m.id, from: m.from, fromDevice: m.fromDevice, text: m.text, sentAt: m.sentAt })
  })
  client.on('disconnected', ({ reason }) => {
    if (finished) return
    failure = `lost the connection to the node: ${reason}`
    stop()
  })
  try {
    await client.connect(deadline !== undefined ? { signal: AbortSignal.timeout(Math.max(1, deadline - Date.now())) } : {})
  } catch (err) {
    await client.close().catch(() => {})
    process.stderr.write(`talaria: cannot connect to ${flags.node}: ${describeError(err)}\n`)
    return EXIT_FAILURE
  }
  for (const room of flags.room ?? []) {
    try {
      await client.enterRoom(room as GroupId, deadline !== undefined ? { signal: AbortSignal.timeout(Math.max(1, deadline - Date.now())) } : {})
    } catch (err) {
      await client.close().catch(() => {})
      process.stderr.write(`talaria: cannot enter room ${room}: ${describeError(err)}\n`)
      return EXIT_FAILURE
    }
  }
  process.stderr.write(`talaria: listening as ${client.userId} (device ${client.deviceId}) on ${flags.node}\n`)
  const timer = deadline === undefined ? undefined : setTimeout(stop, Math.max(0, deadline - Date.now()))
  const onSignal = (): void => { stop() }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  if (count === undefined || received < count) await done
  clearTimeout(timer)
  process.off('SIGINT', onSignal)
  process.off('SIGTERM', onSignal)
  await client.close().catch(() => {})
  if (failure !== undefined) {
    process.stderr.write(`talaria: ${failure}\n`)
    return EXIT_FAILURE
  }
  return EXIT_OK
}
