// Lint: promise hygiene everywhere, and the layer boundaries of docs/ARCHITECTURE.md.
import js from '@eslint/js'
import tseslint from 'typescript-eslint'

const nodeBuiltins = { group: ['node:*'], message: 'this layer runs in browsers: no node:* imports' }
const libp2pRuntime = {
  group: ['libp2p', 'libp2p/*', '@libp2p/*', '@chainsafe/*', 'level', 'classic-level', 'ws', 'pino', 'pino-*', 'prom-client'],
  message: 'this layer is pure: no libp2p, storage engine, socket or logging runtime'
}
// `level` runs in browsers too (IndexedDB underneath), so the client SDK may store sessions with it
const clientRuntime = { ...libp2pRuntime, group: libp2pRuntime.group.filter((g) => g !== 'level') }
const layer = (name) => ({ group: [`../${name}/*`, `../../${name}/*`, `../${name}`, `../../${name}`], message: `may not import ${name}/ (see docs/ARCHITECTURE.md, Layers)` })

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', 'bench/results/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname }
    },
    rules: {
      '@typescript-eslint/no-floating-promises': ['error', {
        allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'it', 'describe', 'suite', 'before', 'after', 'beforeEach', 'afterEach'] }]
      }],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'error',
      'no-console': 'error'
    }
  },
  {
    files: ['**/*.js'],
    ...tseslint.configs.disableTypeChecked
  },
  {
    files: ['scripts/**', 'bin/**', 'eslint.config.js'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly' } },
    rules: { 'no-console': 'off', '@typescript-eslint/no-floating-promises': 'off' }
  },
  {
    files: ['protocol/**/*.ts'],
    rules: { '@typescript-eslint/no-restricted-imports': ['error', { patterns: [nodeBuiltins, libp2pRuntime, layer('storage'), layer('node'), layer('client'), layer('cli'), layer('bootstrap')] }] }
  },
  {
    files: ['client/**/*.ts'],
    rules: { '@typescript-eslint/no-restricted-imports': ['error', { patterns: [nodeBuiltins, clientRuntime, layer('storage'), layer('node'), layer('cli'), layer('bootstrap')] }] }
  },
  {
    files: ['storage/**/*.ts'],
    rules: { '@typescript-eslint/no-restricted-imports': ['error', { patterns: [layer('node'), layer('client'), layer('cli'), layer('bootstrap')] }] }
  },
  {
    files: ['node/**/*.ts'],
    rules: { '@typescript-eslint/no-restricted-imports': ['error', { patterns: [layer('client'), layer('cli')] }] }
  },
  {
    files: ['bootstrap/**/*.ts'],
    rules: { '@typescript-eslint/no-restricted-imports': ['error', { patterns: [layer('client'), layer('cli')] }] }
  },
  {
    files: ['cli/**/*.ts', 'bench/**/*.ts'],
    rules: { 'no-console': 'off' }
  }
)
