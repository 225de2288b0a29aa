/**
 * Record routing: signed Talaria records in the DHT, and peer lookup. Every record is validated
 * before it leaves this node and again when it comes back, whatever the DHT peers did with it.
 */
import type { PeerId } from '@libp2p/interface'
import type { KadDHT } from '@libp2p/kad-dht'
import { peerIdFromString } from '@libp2p/peer-id'
import type { Datastore } from 'interface-datastore'
import type { Logger } from 'pino'
import { decodeRecord, recordKey, selectRecord, validateRecord, type SignedRecord } from '../protocol/records.js'
import { abortedError, operationSignal, untilAborted } from './abort.js'
import { NodeError } from './errors.js'
import { readStoredDhtValue, writeStoredDhtValue } from './libp2p.js'
import {
  DEFAULT_FIND_PEER_TIMEOUT_MS,
  DEFAULT_GET_RECORD_QUORUM,
  DEFAULT_GET_RECORD_TIMEOUT_MS,
  DEFAULT_PUT_RECORD_TIMEOUT_MS
} from './options.js'
import type { AbortOptions, FindPeerOptions, FoundPeer, GetRecordOptions, PutRecordResult } from './types.js'

/** What record routing uses: the DHT, the datastore it writes to, the local peer id. */
export interface RecordRoutingComponents {
  dht: Pick<KadDHT, 'get' | 'put' | 'findPeer'>
  datastore: Datastore
  peerId: PeerId
  logger: Logger
  /** Fires when the node stops; aborts every operation in flight. */
  shutdown: AbortSignal
  /**
   * True when the node has no DHT peers and no connections at all: records are then kept and
   * read locally, since a DHT query would wait for peers that are not there. A node that is
   * connected but whose routing table is still filling queries the DHT as usual.
   */
  isAlone: () => boolean
}

/** Record routing over kad-dht. */
export class DefaultRecordRouting {
  private readonly components: RecordRoutingComponents

  constructor (components: RecordRoutingComponents) {
    this.components = components
  }

  /**
   * Validates `recordBytes` (throws its ProtocolError when invalid: nothing is stored), then
   * stores it locally and on the peers closest to its key. Throws NodeError('ERR_NETWORK') when
   * the node has DHT peers and none confirmed the store; a node with no DHT peers keeps the record
   * in its own datastore and reports no successes.
   */
  async putRecord (recordBytes: Uint8Array, opts: AbortOptions = {}): Promise<PutRecordResult> {
    // the key is derived from the record itself, so a record can only be put where it belongs
    const decoded = decodeRecord(recordBytes)
    const key = recordKey(decoded.kind, decoded.id)
    validateRecord(key, recordBytes)
    const { shutdown, logger } = this.components
    const signal = operationSignal(opts.signal, DEFAULT_PUT_RECORD_TIMEOUT_MS, shutdown)
    try {
      const result: PutRecordResult = { key, successes: [], failures: [] }
      if (this.components.isAlone()) {
        // a node alone (a first node, or one whose peers are all gone) keeps the record itself and
        // serves it to peers that join later; a DHT query would wait for peers that are not there
        await this.storeLocally(key, recordBytes, signal)
        logger.debug('record kept locally: no DHT peers')
        return result
      }
      try {
        await untilAborted((async () => {
          for await (const event of this.components.dht.put(key, recordBytes, { signal })) {
            if (event.name === 'PEER_RESPONSE' && event.messageName === 'PUT_VALUE') {
              result.successes.push(event.from.toString())
            } else if (event.name === 'QUERY_ERROR') {
              result.failures.push({ peerId: event.from.toString(), error: event.error })
            }
          }
        })(), signal)
      } catch (err) {
        throw abortedError(signal, new NodeError('ERR_NETWORK', 'DHT put failed', { cause: err }), 'putRecord', shutdown)
      }
      logger.debug({ successes: result.successes.length, failures: result.failures.length }, 'record put')
      if (result.successes.length === 0) {
        throw new NodeError('ERR_NETWORK', `no DHT peer stored the record (${result.failures.length} failed)`, { cause: result.failures[0]?.error })
      }
      return result
    } finally {
      signal.clear()
    }
  }

  /**
   * The best valid record for `key`. Throws NodeError('ERR_RECORD_NOT_FOUND') when no copy
   * exists or every copy is invalid (forged, expired, under another key).
   */
  async getRecord (key: Uint8Array, opts: GetRecordOptions = {}): Promise<SignedRecord> {
    const { shutdown } = this.components
    const signal = operationSignal(opts.signal, DEFAULT_GET_RECORD_TIMEOUT_MS, shutdown)
    try {
      const candidates: Uint8Array[] = []
      const stored = await readStoredDhtValue(this.components.datastore, key, { signal })
      if (stored !== undefined) candidates.push(stored)
      if (opts.offline !== true && !this.components.isAlone()) {
        const quorum = opts.quorum ?? DEFAULT_GET_RECORD_QUORUM
        try {
          await untilAborted((async () => {
            for await (const event of this.components.dht.get(key, { signal })) {
              // kad-dht validated each peer's copy (with the Talaria validator) before this event;
              // the walk's own best VALUE comes only at its end, after it tried to correct peers
              if (event.name === 'PEER_RESPONSE' && event.record !== undefined) {
                candidates.push(event.record.value)
                // enough copies in hand: leaving the loop ends the walk and its requests in flight
                if (candidates.length >= quorum) break
              } else if (event.name === 'VALUE') {
                candidates.push(event.value)
              }
            }
          })(), signal)
        } catch (err) {
          // kad-dht yields the best value only after trying to correct stale peers; a failed
          // correction must not hide a value already in hand
          if (candidates.length === 0 && signal.aborted) throw abortedError(signal, err, 'getRecord', shutdown)
          if (candidates.length === 0 && (err as { name?: unknown }).name !== 'NotFoundError') {
            throw new NodeError('ERR_NETWORK', 'DHT get failed', { cause: err })
          }
        }
      }
      return this.best(key, candidates)
    } finally {
      signal.clear()
    }
  }

  /** Locates `peerId` through the DHT (or the peer store when `useCache` is not false). */
  async findPeer (peerId: string, opts: FindPeerOptions = {}): Promise<FoundPeer> {
    let id: PeerId
    try {
      id = peerIdFromString(peerId)
    } catch (err) {
      throw new NodeError('ERR_INVALID_OPTION', `${peerId} is not a peer id`, { cause: err })
    }
    const { shutdown } = this.components
    const signal = operationSignal(opts.signal, DEFAULT_FIND_PEER_TIMEOUT_MS, shutdown)
    try {
      try {
        for await (const event of this.components.dht.findPeer(id, { signal, useCache: opts.useCache ?? true })) {
          if (event.name === 'FINAL_PEER' && event.peer.id.equals(id)) {
            // leaving the loop cancels the rest of the query
            return {
              peerId: event.peer.id.toString(),
              multiaddrs: event.peer.multiaddrs.map((ma) => ma.toString()),
              via: event.from.toString()
            }
          }
        }
      } catch (err) {
        if (signal.aborted) throw abortedError(signal, err, 'findPeer', shutdown)
        if ((err as { name?: unknown }).name !== 'NotFoundError') {
          throw new NodeError('ERR_NETWORK', 'DHT peer lookup failed', { cause: err })
        }
      }
      throw new NodeError('ERR_PEER_NOT_FOUND', `peer ${peerId} not found in the DHT`)
    } finally {
      signal.clear()
    }
  }

  /** Keeps `recordBytes` in the local DHT datastore unless a better record is already there. */
  private async storeLocally (key: Uint8Array, recordBytes: Uint8Array, signal: AbortSignal): Promise<void> {
    const { datastore } = this.components
    const existing = await readStoredDhtValue(datastore, key, { signal })
    if (existing !== undefined) {
      let existingValid = true
      try {
        validateRecord(key, existing)
      } catch {
        existingValid = false
      }
      if (existingValid && selectRecord(key, [recordBytes, existing]) === 1) return
    }
    await writeStoredDhtValue(datastore, key, recordBytes, { signal })
  }

  private best (key: Uint8Array, candidates: Uint8Array[]): SignedRecord {
    const valid: Array<{ bytes: Uint8Array, record: SignedRecord }> = []
    // identical copies (the usual case) are verified once
    const unique = new Map<string, Uint8Array>()
    for (const bytes of candidates) unique.set(Buffer.from(bytes).toString('base64'), bytes)
    for (const bytes of unique.values()) {
      try {
        valid.push({ bytes, record: validateRecord(key, bytes) })
      } catch (err) {
        this.components.logger.debug({ err }, 'discarded an invalid record copy')
      }
    }
    if (valid.length === 0) throw new NodeError('ERR_RECORD_NOT_FOUND', 'no valid record for the key')
    const chosen = valid.length === 1 ? valid[0] : valid[selectRecord(key, valid.map((v) => v.bytes))]
    if (chosen === undefined) throw new NodeError('ERR_RECORD_NOT_FOUND', 'no valid record for the key')
    return chosen.record
  }
}
