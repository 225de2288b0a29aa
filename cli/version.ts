/** The package version, shown by `talaria --version`. */
import { readFileSync } from 'node:fs'

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }

/** Version from package.json. */
export const version: string = pkg.version
