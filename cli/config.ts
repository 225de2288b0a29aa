/**
 * Settings of the `talaria` command: defaults < config file < TALARIA_* environment < flags.
 * Every source is validated on its own, so an error names the key and where it came from; the
 * merged result is validated once more as a whole. Unknown keys are errors, never ignored.
 */
import { existsSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'
import { z } from 'zod'
import {
  DEFAULT_DATA_DIR,
  DEFAULT_GROUP_HISTORY_LIMIT,
  DEFAULT_GROUP_RETENTION_MS,
  DEFAULT_MAX_GROUPS,
  DEFAULT_ROOM_HISTORY_LIMIT,
  DEFAULT_HTTP_HOST,
  DEFAULT_HTTP_PORT,
  DEFAULT_LISTEN,
  DEFAULT_SHARDS
} from '../node/options.js'
import {
  DEFAULT_MAX_CONNECTIONS_PER_IP,
  DEFAULT_MAX_FRAME_BYTES,
  DEFAULT_MAX_REQUESTS_PER_SECOND,
  DEFAULT_MAX_USER_REQUESTS_PER_SECOND
} from '../node/gateway/options.js'

/** Log levels the CLI accepts. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const
/** Default log level. */
export const DEFAULT_LOG_LEVEL = 'info'
/** Name of the config file looked for in the data dir when `--config` is not given. */
export const DATA_DIR_CONFIG_FILE = 'config.json'
/** Largest config file read, in bytes. */
export const MAX_CONFIG_FILE_BYTES = 1024 * 1024

/** A setting was missing, unknown or invalid: the CLI exits with code 2. */
export class ConfigError extends Error {
  readonly code = 'ERR_CONFIG'
  constructor (message: string) {
    super(message)
    this.name = 'ConfigError'
  }
}

const multiaddrString = z.string().min(1).refine((value) => {
  try {
    multiaddr(value)
    return true
  } catch {
    return false
  }
}, { message: 'not a valid multiaddr' })

const fields = {
  dataDir: z.string().min(1),
  listen: z.array(multiaddrString).min(1),
  announce: z.array(multiaddrString),
  httpPort: z.number().int().min(0).max(65535),
  httpHost: z.string().min(1),
  bootstrap: z.array(multiaddrString),
  mdns: z.boolean(),
  logLevel: z.enum(LOG_LEVELS),
  shards: z.number().int().min(1).max(256),
  maxFrameBytes: z.number().int().min(1024).max(64 * 1024 * 1024),
  maxRequestsPerSecond: z.number().int().min(1),
  maxUserRequestsPerSecond: z.number().int().min(1),
  maxConnectionsPerIp: z.number().int().min(1),
  groupRetentionMs: z.number().int().min(1000).max(365 * 24 * 3600 * 1000),
  groupHistoryLimit: z.number().int().min(1).max(1_000_000),
  roomHistoryLimit: z.number().int().min(1).max(1_000_000),
  maxGroups: z.number().int().min(1).max(10_000_000)
}

/** The complete, validated settings of a node started from the CLI. */
export const settingsSchema = z.strictObject(fields)
/** The settings of one source: any subset of the keys, and no others. */
export const partialSettingsSchema = z.strictObject(fields).partial()

/** Fully resolved settings. */
export type Settings = z.infer<typeof settingsSchema>
/** Settings from one source. */
export type PartialSettings = z.infer<typeof partialSettingsSchema>
/** A settings key. */
export type SettingKey = keyof Settings

/** Defaults, shown by `--help` and the README. */
export const DEFAULT_SETTINGS: Settings = {
  dataDir: DEFAULT_DATA_DIR,
  listen: [...DEFAULT_LISTEN],
  announce: [],
  httpPort: DEFAULT_HTTP_PORT,
  httpHost: DEFAULT_HTTP_HOST,
  bootstrap: [],
  mdns: false,
  logLevel: DEFAULT_LOG_LEVEL,
  shards: DEFAULT_SHARDS,
  maxFrameBytes: DEFAULT_MAX_FRAME_BYTES,
  maxRequestsPerSecond: DEFAULT_MAX_REQUESTS_PER_SECOND,
  maxUserRequestsPerSecond: DEFAULT_MAX_USER_REQUESTS_PER_SECOND,
  maxConnectionsPerIp: DEFAULT_MAX_CONNECTIONS_PER_IP,
  groupRetentionMs: DEFAULT_GROUP_RETENTION_MS,
  groupHistoryLimit: DEFAULT_GROUP_HISTORY_LIMIT,
  roomHistoryLimit: DEFAULT_ROOM_HISTORY_LIMIT,
  maxGroups: DEFAULT_MAX_GROUPS
}

type Kind = 'string' | 'list' | 'int' | 'bool'
const KINDS: Record<SettingKey, Kind> = {
  dataDir: 'string',
  listen: 'list',
  announce: 'list',
  httpPort: 'int',
  httpHost: 'string',
  bootstrap: 'list',
  mdns: 'bool',
  logLevel: 'string',
  shards: 'int',
  maxFrameBytes: 'int',
  maxRequestsPerSecond: 'int',
  maxUserRequestsPerSecond: 'int',
  maxConnectionsPerIp: 'int',
  groupRetentionMs: 'int',
  groupHistoryLimit: 'int',
  roomHistoryLimit: 'int',
  maxGroups: 'int'
}

/** `httpPort` → `TALARIA_HTTP_PORT`. */
export function envName (key: SettingKey): string {
  return 'TALARIA_' + key.replace(/[A-Z]/g, (c) => '_' + c).toUpperCase()
}

/** `httpPort` → `--http-port`. */
export function flagName (key: SettingKey): string {
  return '--' + key.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())
}

/** Environment variables that are not settings but are still read (not errors). */
const OTHER_ENV = new Set(['TALARIA_CONFIG'])

function coerce (key: SettingKey, raw: string | string[] | boolean, where: string): unknown {
  const kind = KINDS[key]
  if (kind === 'list') {
    const items = Array.isArray(raw) ? raw : String(raw).split(',')
    return items.map((s) => s.trim()).filter((s) => s.length > 0)
  }
  const value = Array.isArray(raw) ? raw[raw.length - 1] : raw
  if (kind === 'bool') {
    if (typeof value === 'boolean') return value
    if (value === 'true' || value === '1') return true
    if (value === 'false' || value === '0') return false
    throw new ConfigError(`${where}: expected true or false, got ${JSON.stringify(value)}`)
  }
  if (kind === 'int') {
    if (typeof value !== 'string' || !/^-?\d+$/.test(value.trim())) {
      throw new ConfigError(`${where}: expected an integer, got ${JSON.stringify(value)}`)
    }
    return Number(value.trim())
  }
  return value
}

function check (source: unknown, describe: (key: string) => string): PartialSettings {
  const result = partialSettingsSchema.safeParse(source)
  if (result.success) return result.data
  const issue = result.error.issues[0]
  if (issue === undefined) throw new ConfigError('invalid settings')
  if (issue.code === 'unrecognized_keys') {
    throw new ConfigError(`${describe(issue.keys[0] ?? '?')}: unknown setting`)
  }
  const key = String(issue.path[0] ?? '?')
  throw new ConfigError(`${describe(key)}: ${issue.message}`)
}

/** Settings from `TALARIA_*` variables; an unknown `TALARIA_*` variable is an error. */
export function settingsFromEnv (env: NodeJS.ProcessEnv): PartialSettings {
  const byEnv = new Map((Object.keys(KINDS) as SettingKey[]).map((k) => [envName(k), k]))
  const out: Record<string, unknown> = {}
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith('TALARIA_') || raw === undefined || OTHER_ENV.has(name)) continue
    const key = byEnv.get(name)
    if (key === undefined) throw new ConfigError(`${name}: unknown environment setting`)
    out[key] = coerce(key, raw, name)
  }
  return check(out, (key) => envName(key as SettingKey))
}

/** Settings from command-line flags as commander parsed them (strings, string arrays, booleans). */
export function settingsFromFlags (flags: Record<string, unknown>): PartialSettings {
  const out: Record<string, unknown> = {}
  for (const [name, raw] of Object.entries(flags)) {
    if (raw === undefined || name === 'config') continue
    if (!(name in KINDS)) throw new ConfigError(`--${name}: unknown flag`)
    const key = name as SettingKey
    out[key] = coerce(key, raw as string | string[] | boolean, flagName(key))
  }
  return check(out, (key) => key in KINDS ? flagName(key as SettingKey) : key)
}

/** Settings from a JSON config file. */
export function settingsFromFile (path: string): PartialSettings {
  let text: string
  try {
    const buf = readFileSync(path)
    if (buf.byteLength > MAX_CONFIG_FILE_BYTES) {
      throw new ConfigError(`${path}: config file larger than ${MAX_CONFIG_FILE_BYTES} bytes`)
    }
    text = buf.toString('utf8')
  } catch (err) {
    if (err instanceof ConfigError) throw err
    throw new ConfigError(`${path}: cannot read config file (${(err as NodeJS.ErrnoException).code ?? String(err)})`)
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (err) {
    throw new ConfigError(`${path}: not valid JSON (${(err as Error).message})`)
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(`${path}: expected a JSON object of settings`)
  }
  return check(parsed, (key) => `${path}: ${key}`)
}

/** Inputs of {@link resolveSettings}. */
export interface ResolveInit {
  flags: Record<string, unknown>
  env: NodeJS.ProcessEnv
  /** `--config`, if given. */
  configPath?: string
  /** Working directory that relative paths resolve against. */
  cwd: string
  /** Preset defaults that differ from {@link DEFAULT_SETTINGS} (the bootstrap role). */
  defaults?: Partial<Settings>
}

/** The resolved settings and the config file they came from, if any. */
export interface Resolved {
  settings: Settings
  configFile?: string
}

/** Merges defaults < config file < environment < flags, validating each source and the result. */
export function resolveSettings (init: ResolveInit): Resolved {
  const fromFlags = settingsFromFlags(init.flags)
  const fromEnv = settingsFromEnv(init.env)
  const defaults = { ...DEFAULT_SETTINGS, ...init.defaults }

  const explicit = init.configPath ?? init.env.TALARIA_CONFIG
  let configFile: string | undefined
  if (explicit !== undefined && explicit !== '') {
    configFile = resolve(init.cwd, explicit)
    if (!existsSync(configFile)) throw new ConfigError(`--config: ${configFile} does not exist`)
  } else {
    const dataDir = fromFlags.dataDir ?? fromEnv.dataDir ?? defaults.dataDir
    const candidate = resolve(init.cwd, join(dataDir, DATA_DIR_CONFIG_FILE))
    if (existsSync(candidate)) configFile = candidate
  }
  const fromFile = configFile === undefined ? {} : settingsFromFile(configFile)

  const merged = { ...defaults, ...fromFile, ...fromEnv, ...fromFlags }
  const result = settingsSchema.safeParse(merged)
  if (!result.success) {
    const issue = result.error.issues[0]
    throw new ConfigError(`${String(issue?.path[0] ?? 'settings')}: ${issue?.message ?? 'invalid'}`)
  }
  const settings = { ...result.data, dataDir: resolve(init.cwd, result.data.dataDir) }
  return configFile === undefined ? { settings } : { settings, configFile }
}
