import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { bootstrapPreset, BootstrapAddrError, DEFAULT_BOOTSTRAP, validateBootstrapAddrs } from '../../bootstrap/index.js'

const PEER = '12D3KooWGC6TvWhfapngX6wvJHMYvKpDMXPb3ZnCZ6dMoaMtimQ5'

describe('bootstrap list', () => {
  it('ships a valid (currently empty) default list', () => {
    assert.deepEqual(validateBootstrapAddrs(DEFAULT_BOOTSTRAP), [])
  })

  it('accepts IP, DNS and dnsaddr multiaddrs that end in /p2p/<peer id>', () => {
    assert.deepEqual(validateBootstrapAddrs([
      `/ip4/198.51.100.7/tcp/7700/p2p/${PEER}`,
      `/dns4/boot.example.org/tcp/7701/wss/p2p/${PEER}`,
      `/dnsaddr/bootstrap.example.org/p2p/${PEER}`
    ]), [])
  })

  it('returns one typed error per bad address', () => {
    const errors = validateBootstrapAddrs(['not a multiaddr', '/ip4/198.51.100.7/tcp/7700', '/ip4/198.51.100.7/tcp/7700/p2p/QmNotAPeer', `/tcp/7700/p2p/${PEER}`])
    assert.deepEqual(errors.map((e) => e.problem), ['unparseable', 'missing-peer-id', 'bad-peer-id', 'no-host'])
    for (const err of errors) {
      assert.ok(err instanceof BootstrapAddrError)
      assert.equal(err.code, 'ERR_BAD_BOOTSTRAP_ADDR')
    }
  })

  it('presets the bootstrap role and keeps the operator options', () => {
    assert.deepEqual(bootstrapPreset({ httpPort: 1 }), { httpPort: 1, role: 'bootstrap' })
  })
})
