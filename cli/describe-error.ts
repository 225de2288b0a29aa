/** One line for an error: its message, and its code when it has one. */
export function describeError (err: unknown): string {
  const code = (err as { code?: unknown }).code
  const message = err instanceof Error ? err.message : String(err)
  return typeof code === 'string' ? `${message} (${code})` : message
}
