/**
 * Bundles an entry point for browsers with esbuild, in memory, as an application's bundler would.
 */
import { fileURLToPath } from 'node:url'
import { build, type BuildOptions, type BuildResult } from 'esbuild'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

/** The esbuild result of bundling `entry` (relative to the repository root) for `platform: 'browser'`. */
export async function bundleForBrowser (entry: string, extra: BuildOptions = {}): Promise<BuildResult<{ write: false, metafile: true }>> {
  return await build({
    entryPoints: [entry],
    absWorkingDir: ROOT,
    bundle: true,
    platform: 'browser',
    format: 'esm',
    write: false,
    metafile: true,
    logLevel: 'silent',
    ...extra
  }) as BuildResult<{ write: false, metafile: true }>
}
