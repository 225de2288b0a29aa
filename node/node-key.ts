/**
 * The node's libp2p identity: an Ed25519 key kept in `<dataDir>/node.key`, so the peer id (the
 * node id) stays the same across restarts.
 */
import { randomBytes } from 'node:crypto'
import { link, mkdir, open, readFile, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { NodeError } from './errors.js'

/** File name of the node key inside the data dir. */
export const NODE_KEY_FILE = 'node.key'
/** Permissions of the node key file: readable and writable by its owner only. */
export const NODE_KEY_FILE_MODE = 0o600
/** A protobuf-encoded Ed25519 private key is 68 bytes; anything much larger is not a node key. */
const MAX_NODE_KEY_BYTES = 4096

function isNotFound (err: unknown): boolean {
  return (err as { code?: unknown }).code === 'ENOENT'
}

function decodeNodeKey (bytes: Uint8Array, path: string): PrivateKey {
  if (bytes.byteLength > MAX_NODE_KEY_BYTES) {
    throw new NodeError('ERR_BAD_NODE_KEY', `${path} is ${bytes.byteLength} bytes, not a node key`)
  }
  let key: PrivateKey
  try {
    key = privateKeyFromProtobuf(bytes)
  } catch (err) {
    throw new NodeError('ERR_BAD_NODE_KEY', `${path} is not a protobuf-encoded libp2p private key`, { cause: err })
  }
  if (key.type !== 'Ed25519') {
    throw new NodeError('ERR_BAD_NODE_KEY', `${path} holds a ${key.type} key; Talaria node keys are Ed25519`)
  }
  return key
}

/** Options of the node key functions. */
export interface NodeKeyOptions {
  /** Aborts the file read. */
  signal?: AbortSignal
}

/** Reads the node key of `dataDir`; throws NodeError('ERR_NO_NODE_KEY') when there is none. */
export async function readNodeKey (dataDir: string, opts: NodeKeyOptions = {}): Promise<PrivateKey> {
  const path = join(dataDir, NODE_KEY_FILE)
  let bytes: Uint8Array
  try {
    bytes = await readFile(path, opts.signal !== undefined ? { signal: opts.signal } : {})
  } catch (err) {
    if (isNotFound(err)) {
      throw new NodeError('ERR_NO_NODE_KEY', `no node key in ${dataDir} (start a node there first)`, { cause: err })
    }
    throw new NodeError('ERR_BAD_NODE_KEY', `cannot read ${path}`, { cause: err })
  }
  return decodeNodeKey(bytes, path)
}

/**
 * Writes `bytes` to `path` only if `path` does not exist, all or nothing: the bytes go to a
 * private temporary file that is flushed, then hard-linked into place. `link` fails when the
 * target exists, so two processes starting on one fresh data dir cannot both create a key.
 * Returns false when another writer got there first.
 */
async function createFileAtomically (path: string, bytes: Uint8Array, mode: number): Promise<boolean> {
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`
  const handle = await open(tmp, 'wx', mode)
  try {
    try {
      await handle.writeFile(bytes)
      await handle.sync()
    } finally {
      await handle.close()
    }
    try {
      await link(tmp, path)
      return true
    } catch (err) {
      if ((err as { code?: unknown }).code === 'EEXIST') return false
      throw err
    }
  } finally {
    await unlink(tmp).catch(() => {})
  }
}

/**
 * Loads the node key of `dataDir`, creating the directory and a new Ed25519 key on first use.
 */
export async function loadOrCreateNodeKey (dataDir: string, opts: NodeKeyOptions = {}): Promise<PrivateKey> {
  try {
    return await readNodeKey(dataDir, opts)
  } catch (err) {
    if (!(err instanceof NodeError) || err.code !== 'ERR_NO_NODE_KEY') throw err
  }
  await mkdir(dataDir, { recursive: true, mode: 0o700 })
  const key = await generateKeyPair('Ed25519')
  const created = await createFileAtomically(join(dataDir, NODE_KEY_FILE), privateKeyToProtobuf(key), NODE_KEY_FILE_MODE)
  // Losing the race to another process means its key is the node's key.
  return created ? key : await readNodeKey(dataDir)
}

/** The peer id (base58 string) of the node key in `dataDir`, for `talaria id`. */
export async function readPeerId (dataDir: string, opts: NodeKeyOptions = {}): Promise<string> {
  return peerIdFromPrivateKey(await readNodeKey(dataDir, opts)).toString()
}
