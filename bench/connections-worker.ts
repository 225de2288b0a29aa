/**
 * Child process of the connections scenario: opens `count` idle WebSocket connections to `url`
 * from source address `localAddress`, each authenticated as a fresh user and device with the
 * client protocol (challenge → signed `auth` request), or left bare with `auth: false` (the floor,
 * against a plain `ws` server). Answers pings (ws does by default) and nothing else.
 *
 * Talks to the parent over IPC: receives one {@link WorkerTask}, reports {@link WorkerReport}s;
 * closes everything and exits on a 'close' message or when the parent goes away.
 */
import { WebSocket } from 'ws'
import { authSigningBytes, decodeFrame, encodeFrame, type ClientFrame } from '../protocol/client-protocol.js'
import { defaultCrypto } from '../protocol/crypto/index.js'
import { certifyDevice, createDevice, createDeviceList, createUserIdentity, encodeDeviceCertificate, encodeDeviceList } from '../protocol/identity.js'

/** What the parent asks. */
export interface WorkerTask { url: string, count: number, localAddress: string, auth: boolean, concurrency: number }
/** Progress, then the final count. */
export interface WorkerReport { opened: number, failed: number, done: boolean, firstError?: string }

const sockets: WebSocket[] = []
const MAX_FRAME_BYTES = 1 << 20
const HANDSHAKE_TIMEOUT_MS = 30_000

/** Opens one connection and, with `auth`, authenticates it as a fresh device. */
async function openOne (task: WorkerTask): Promise<WebSocket> {
  const ws = new WebSocket(task.url, { localAddress: task.localAddress, perMessageDeflate: false })
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { ws.terminate(); reject(new Error('handshake timed out')) }, HANDSHAKE_TIMEOUT_MS)
    const fail = (err: Error): void => { clearTimeout(timer); ws.terminate(); reject(err) }
    ws.once('error', fail)
    ws.once('close', (code) => { fail(new Error(`closed with ${code}`)) })
    const done = (): void => {
      clearTimeout(timer)
      ws.removeAllListeners('message')
      ws.removeAllListeners('close')
      ws.removeAllListeners('error')
      ws.on('error', () => {})
      resolve(ws)
    }
    if (!task.auth) { ws.once('open', done); return }
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      let frame: ClientFrame
      try {
        frame = decodeFrame(isBinary ? new Uint8Array(data) : data.toString('utf8'), { maxBytes: MAX_FRAME_BYTES })
      } catch (err) {
        fail(err as Error)
        return
      }
      if (frame.t === 'challenge') {
        const user = createUserIdentity()
        const device = createDevice()
        const cert = certifyDevice(user, device)
        const sig = defaultCrypto.ed25519Sign(device.signingSeed, authSigningBytes(frame.nonce, frame.node, user.userId, device.deviceId))
        const body = { user: user.userId, device: device.deviceId, cert: encodeDeviceCertificate(cert), deviceList: encodeDeviceList(createDeviceList(user, [cert])), sig }
        ws.send(encodeFrame({ t: 'req', id: 1, op: 'auth', body }, 'binary'))
      } else if (frame.t === 'res' && frame.id === 1) {
        if (frame.ok) done()
        else fail(new Error(`auth refused: ${frame.error.code}`))
      }
    })
  })
}

async function run (task: WorkerTask): Promise<void> {
  const report: WorkerReport = { opened: 0, failed: 0, done: false }
  let next = 0
  let lastReport = 0
  await Promise.all(Array.from({ length: task.concurrency }, async () => {
    while (next < task.count) {
      next++
      try {
        sockets.push(await openOne(task))
        report.opened++
      } catch (err) {
        report.failed++
        report.firstError ??= (err as Error).message
      }
      if (performance.now() - lastReport > 500) {
        lastReport = performance.now()
        process.send?.(report)
      }
    }
  }))
  report.done = true
  process.send?.(report)
}

process.on('message', (m: WorkerTask | 'close') => {
  if (m === 'close') {
    for (const ws of sockets) ws.terminate()
    process.exit(0)
  }
  void run(m)
})
process.on('disconnect', () => process.exit(0))
