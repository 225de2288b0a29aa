/**
 * Running the `talaria` CLI as a real process in tests.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const BIN = join(ROOT, 'bin', 'talaria.js')

/** What a finished CLI process left. */
export interface Run { code: number | null, stdout: string, stderr: string }

/** Starts `talaria <args>` with nothing of the test's environment but PATH. */
export function spawnCli (args: string[]): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: { PATH: process.env.PATH ?? '' } })
}

/** Collects a child's output until it exits; kills it at the deadline. */
export async function finish (child: ChildProcessWithoutNullStreams, timeoutMs: number): Promise<Run> {
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`timed out: ${stderr}`)) }, timeoutMs)
    child.on('exit', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }) })
  })
}
