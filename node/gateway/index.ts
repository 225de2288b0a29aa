/**
 * The client gateway: WebSocket `/v1` for client devices (see docs/CLIENT-PROTOCOL.md).
 */
export { createClientGateway, DefaultClientGateway, type ClientGateway, type ClientGatewayComponents } from './gateway.js'
export * from './options.js'
export type { ClientGatewayStats } from './stats.js'
export { CLOSE_GOING_AWAY, CLOSE_POLICY_VIOLATION, CLOSE_TOO_LARGE } from './connection.js'
