/**
 * @dovetail/protocol: wire types shared by devices and the server, and the
 * error codes of the whole project.
 *
 * Protocol history (append only):
 * - 1: mutations of insert, update, upsert and delete ops.
 */
export const PROTOCOL_VERSION = 1;

export type { JsonValue, Mutation, Op, OpKind, RowValues, Value } from './ops.js';
export { ErrorCodes, describeError } from './error-codes.js';
export type { ErrorCode, ErrorCodeInfo } from './error-codes.js';
