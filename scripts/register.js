// Entry hook for every process that runs TypeScript sources directly (CLI, tests, benchmarks):
// installs the Node 20 polyfills, then the tsx loader.
import './polyfills.js'
import { register } from 'tsx/esm/api'

register()
