/**
 * The wire protocol version this package speaks. Every request and every
 * WebSocket message names it; the history of versions is kept in `mod.ts`
 * and in the protocol document.
 */
export const PROTOCOL_VERSION = 1;

/** The version number carried by a message of this protocol. */
export type ProtocolVersion = typeof PROTOCOL_VERSION;

/** Every protocol version this package can read and write. */
export const SUPPORTED_PROTOCOL_VERSIONS: readonly number[] = [PROTOCOL_VERSION];
