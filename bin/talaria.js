#!/usr/bin/env node
// The `talaria` command. Runs the TypeScript sources through tsx so a clone needs no build step.
import '../scripts/register.js'

await import('../cli/main.ts')
