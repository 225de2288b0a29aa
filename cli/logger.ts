/**
 * The CLI's logger: JSON lines on stderr, or pretty lines when stderr is a terminal. The node and
 * its services get children of this logger; only the CLI decides where logs go.
 */
import { pino, type Logger } from 'pino'
import pretty from 'pino-pretty'

/** Creates the root logger at `level`; `pretty` defaults to whether stderr is a terminal. */
export function createLogger (level: string, opts: { pretty?: boolean } = {}): Logger {
  const usePretty = opts.pretty ?? process.stderr.isTTY
  if (usePretty) {
    return pino({ level }, pretty({ destination: 2, sync: true, colorize: true, ignore: 'pid,hostname' }))
  }
  return pino({ level }, pino.destination({ dest: 2, sync: true }))
}
