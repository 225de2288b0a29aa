/**
 * Groups and rooms: the op log and its state machine, op codecs, the word filter and group
 * traffic. See docs/protocol/groups.md.
 */
export * from './types.js'
export * from './ops.js'
export * from './state.js'
export * from './filter.js'
export * from './messages.js'
