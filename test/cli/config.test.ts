import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import {
  ConfigError,
  DEFAULT_SETTINGS,
  envName,
  flagName,
  resolveSettings,
  settingsFromEnv,
  settingsFromFlags
} from '../../cli/config.js'

describe('cli settings', () => {
  let dir: string
  before(async () => { dir = await mkdtemp(join(tmpdir(), 'talaria-config-')) })
  after(async () => { await rm(dir, { recursive: true, force: true }) })

  it('names env variables and flags after the setting', () => {
    assert.equal(envName('httpPort'), 'TALARIA_HTTP_PORT')
    assert.equal(flagName('logLevel'), '--log-level')
  })

  it('resolves to the defaults with no sources', () => {
    const { settings, configFile } = resolveSettings({ flags: {}, env: {}, cwd: dir })
    assert.equal(configFile, undefined)
    assert.deepEqual({ ...settings, dataDir: DEFAULT_SETTINGS.dataDir }, DEFAULT_SETTINGS)
    assert.equal(settings.dataDir, join(dir, '.talaria'))
  })

  it('layers defaults < config file < env < flags', async () => {
    const file = join(dir, 'layers.json')
    await writeFile(file, JSON.stringify({ httpPort: 1111, logLevel: 'debug', mdns: true, shards: 4 }))
    const { settings } = resolveSettings({
      flags: { httpPort: '3333' },
      env: { TALARIA_HTTP_PORT: '2222', TALARIA_LOG_LEVEL: 'warn' },
      configPath: file,
      cwd: dir
    })
    assert.equal(settings.httpPort, 3333)
    assert.equal(settings.logLevel, 'warn')
    assert.equal(settings.mdns, true)
    assert.equal(settings.shards, 4)
  })

  it('reads <data-dir>/config.json when no --config is given', async () => {
    const dataDir = join(dir, 'dd')
    await mkdir(dataDir)
    await writeFile(join(dataDir, 'config.json'), JSON.stringify({ httpPort: 4444 }))
    const { settings, configFile } = resolveSettings({ flags: { dataDir }, env: {}, cwd: dir })
    assert.equal(settings.httpPort, 4444)
    assert.equal(configFile, join(dataDir, 'config.json'))
  })

  it('reads the client gateway limits from flags and env', () => {
    const { settings } = resolveSettings({
      flags: { maxFrameBytes: '65536', maxConnectionsPerIp: '10' },
      env: { TALARIA_MAX_REQUESTS_PER_SECOND: '50', TALARIA_MAX_USER_REQUESTS_PER_SECOND: '80' },
      cwd: dir
    })
    assert.equal(settings.maxFrameBytes, 65536)
    assert.equal(settings.maxConnectionsPerIp, 10)
    assert.equal(settings.maxRequestsPerSecond, 50)
    assert.equal(settings.maxUserRequestsPerSecond, 80)
    assert.throws(() => settingsFromFlags({ maxRequestsPerSecond: '0' }), (err: unknown) => err instanceof ConfigError && err.message.startsWith('--max-requests-per-second:'))
  })

  it('reads the group settings from flags and env', () => {
    const { settings } = resolveSettings({
      flags: { groupRetentionMs: '60000', maxGroups: '50' },
      env: { TALARIA_GROUP_HISTORY_LIMIT: '500', TALARIA_ROOM_HISTORY_LIMIT: '20' },
      cwd: dir
    })
    assert.equal(settings.groupRetentionMs, 60_000)
    assert.equal(settings.maxGroups, 50)
    assert.equal(settings.groupHistoryLimit, 500)
    assert.equal(settings.roomHistoryLimit, 20)
    assert.throws(() => settingsFromFlags({ groupRetentionMs: '10' }), (err: unknown) => err instanceof ConfigError && err.message.startsWith('--group-retention-ms:'))
  })

  it('splits list settings from env by comma and keeps repeated flags', () => {
    assert.deepEqual(settingsFromEnv({ TALARIA_LISTEN: '/ip4/127.0.0.1/tcp/1, /ip4/127.0.0.1/tcp/2' }).listen,
      ['/ip4/127.0.0.1/tcp/1', '/ip4/127.0.0.1/tcp/2'])
    assert.deepEqual(settingsFromFlags({ bootstrap: ['/ip4/127.0.0.1/tcp/1', '/ip4/127.0.0.1/tcp/2'] }).bootstrap,
      ['/ip4/127.0.0.1/tcp/1', '/ip4/127.0.0.1/tcp/2'])
  })

  const rejects: Array<[string, () => unknown, RegExp]> = [
    ['a non-integer port flag', () => settingsFromFlags({ httpPort: 'abc' }), /^--http-port: expected an integer/],
    ['a port out of range', () => settingsFromFlags({ httpPort: '70000' }), /^--http-port:/],
    ['a bad multiaddr flag', () => settingsFromFlags({ listen: ['not-an-addr'] }), /^--listen: not a valid multiaddr/],
    ['a bad log level from env', () => settingsFromEnv({ TALARIA_LOG_LEVEL: 'loud' }), /^TALARIA_LOG_LEVEL:/],
    ['a bad boolean from env', () => settingsFromEnv({ TALARIA_MDNS: 'maybe' }), /^TALARIA_MDNS: expected true or false/],
    ['an unknown TALARIA_ variable', () => settingsFromEnv({ TALARIA_COLOUR: 'blue' }), /^TALARIA_COLOUR: unknown environment setting/]
  ]
  for (const [name, fn, message] of rejects) {
    it(`rejects ${name} with a message naming it`, () => {
      assert.throws(fn, (err: unknown) => err instanceof ConfigError && message.test(err.message))
    })
  }

  it('rejects an unknown key and a bad value in a config file, naming the file and key', async () => {
    const unknown = join(dir, 'unknown.json')
    await writeFile(unknown, JSON.stringify({ httpPort: 1, colour: 'blue' }))
    assert.throws(() => resolveSettings({ flags: {}, env: {}, configPath: unknown, cwd: dir }),
      (err: unknown) => err instanceof ConfigError && err.message === `${unknown}: colour: unknown setting`)
    const bad = join(dir, 'bad.json')
    await writeFile(bad, JSON.stringify({ shards: 0 }))
    assert.throws(() => resolveSettings({ flags: {}, env: {}, configPath: bad, cwd: dir }),
      (err: unknown) => err instanceof ConfigError && err.message.startsWith(`${bad}: shards:`))
    const notJson = join(dir, 'broken.json')
    await writeFile(notJson, '{ nope')
    assert.throws(() => resolveSettings({ flags: {}, env: {}, configPath: notJson, cwd: dir }),
      (err: unknown) => err instanceof ConfigError && err.message.startsWith(`${notJson}: not valid JSON`))
  })

  it('rejects a --config that does not exist', () => {
    assert.throws(() => resolveSettings({ flags: {}, env: {}, configPath: 'missing.json', cwd: dir }),
      (err: unknown) => err instanceof ConfigError && err.message.includes('does not exist'))
  })
})
