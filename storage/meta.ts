/**
 * The data dir's meta file, `<dataDir>/storage.json`: `{ schemaVersion, shards, createdAt }`.
 * Written once, atomically, when the data dir is created; read and checked at every open.
 */
import { open, readFile, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { StorageError } from './errors.js'

/** Schema version this code reads and writes. Bump it with a migration when a layout changes. */
export const STORAGE_SCHEMA_VERSION = 1
/** Name of the meta file inside the data dir. */
export const META_FILE = 'storage.json'
/** Most shards a data dir may have. */
export const MAX_SHARDS = 256

/** Contents of the meta file. */
export interface StorageMeta {
  /** Schema version of the data in this dir. */
  schemaVersion: number
  /** Number of shards, fixed at creation. */
  shards: number
  /** Creation time, milliseconds since the epoch. */
  createdAt: number
}

/** Reads the meta file; undefined when it does not exist. Malformed contents: `ERR_DATA_DIR_CORRUPT`. */
export async function readMeta (dataDir: string): Promise<StorageMeta | undefined> {
  const path = join(dataDir, META_FILE)
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ENOENT') return undefined
    throw new StorageError('ERR_IO', `cannot read ${path}`, { cause: err })
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (err) {
    throw new StorageError('ERR_DATA_DIR_CORRUPT', `${path} is not valid JSON; the data dir is damaged`, { cause: err })
  }
  const m = parsed as Partial<StorageMeta> | null
  if (m === null || typeof m !== 'object' ||
    !Number.isSafeInteger(m.schemaVersion) || (m.schemaVersion ?? 0) < 1 ||
    !Number.isSafeInteger(m.shards) || (m.shards ?? 0) < 1 || (m.shards ?? 0) > MAX_SHARDS ||
    typeof m.createdAt !== 'number') {
    throw new StorageError('ERR_DATA_DIR_CORRUPT', `${path} is not a valid storage meta record (expected { schemaVersion, shards, createdAt })`)
  }
  return { schemaVersion: m.schemaVersion as number, shards: m.shards as number, createdAt: m.createdAt }
}

/**
 * Writes the meta file atomically: a temp file is written and fsynced, renamed over the target,
 * and the directory fsynced, so a crash leaves either no meta file or a complete one.
 */
export async function writeMeta (dataDir: string, meta: StorageMeta): Promise<void> {
  const path = join(dataDir, META_FILE)
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`
  try {
    const fh = await open(tmp, 'wx')
    try {
      await fh.writeFile(JSON.stringify(meta, null, 2) + '\n', 'utf8')
      await fh.sync()
    } finally {
      await fh.close()
    }
    await rename(tmp, path)
    const dir = await open(dataDir, 'r')
    try {
      await dir.sync()
    } finally {
      await dir.close()
    }
  } catch (err) {
    await rm(tmp, { force: true })
    throw new StorageError('ERR_IO', `cannot write ${path}`, { cause: err })
  }
}

/** Rejects a data dir whose schema version is not {@link STORAGE_SCHEMA_VERSION}. */
export function checkSchema (meta: StorageMeta, dataDir: string): void {
  const path = join(dataDir, META_FILE)
  if (meta.schemaVersion > STORAGE_SCHEMA_VERSION) {
    throw new StorageError('ERR_SCHEMA_NEWER',
      `data dir ${dataDir} has storage schema version ${meta.schemaVersion} (in ${path}), newer than version ${STORAGE_SCHEMA_VERSION} that this Talaria supports; upgrade Talaria`)
  }
  if (meta.schemaVersion < STORAGE_SCHEMA_VERSION) {
    throw new StorageError('ERR_SCHEMA_OLDER',
      `data dir ${dataDir} has storage schema version ${meta.schemaVersion} (in ${path}), older than version ${STORAGE_SCHEMA_VERSION}, and no migration exists for it`)
  }
}
