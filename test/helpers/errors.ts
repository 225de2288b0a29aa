/**
 * Asserting typed protocol errors in tests.
 */
import assert from 'node:assert/strict'
import { ProtocolError } from '../../protocol/errors.js'

/** Runs `fn`, expects it to throw a ProtocolError, and returns its code. */
export function code (fn: () => unknown): string {
  try {
    fn()
  } catch (err) {
    assert.ok(err instanceof ProtocolError, `expected a ProtocolError, got ${String(err)}`)
    return err.code
  }
  assert.fail('expected a throw')
}
