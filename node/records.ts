/**
 * Talaria records in the DHT: the validator and selector kad-dht calls for keys under
 * '/talaria/…', both delegating to protocol/records.ts so the network and the API judge a record
 * by the same rules.
 */
import { selectRecord, validateRecord } from '../protocol/records.js'

/**
 * kad-dht validator for the 'talaria' namespace. Throws (a ProtocolError) for a record that is
 * malformed, badly signed, expired or stored under a key it does not name; kad-dht then refuses
 * to store it, refuses to serve it from its own store, and discards it when a peer sends it.
 */
export function validateTalariaRecord (key: Uint8Array, value: Uint8Array): void {
  validateRecord(key, value)
}

/** kad-dht selector for the 'talaria' namespace: the index of the best of several records. */
export function selectTalariaRecord (key: Uint8Array, values: Uint8Array[]): number {
  return selectRecord(key, values)
}
