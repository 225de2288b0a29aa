/**
 * Child process of the floor benchmark: a bare `ws` server on 127.0.0.1 that relays every frame
 * from one connection to the other connections. It stands in for a node doing nothing but
 * forwarding, so the messaging figures can be read as a ratio to it. Prints its port on stdout.
 */
import { WebSocketServer, type WebSocket } from 'ws'

const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 })
const peers = new Set<WebSocket>()
wss.on('connection', (ws) => {
  peers.add(ws)
  ws.on('message', (data, isBinary) => {
    for (const other of peers) if (other !== ws) other.send(data, { binary: isBinary })
  })
  ws.on('close', () => { peers.delete(ws) })
})
wss.on('listening', () => {
  const addr = wss.address()
  process.stdout.write(`${typeof addr === 'object' && addr !== null ? addr.port : String(addr)}\n`)
})
process.on('SIGTERM', () => { wss.close(); process.exit(0) })
// the parent going away ends the relay too
process.stdin.on('end', () => process.exit(0))
process.stdin.resume()
