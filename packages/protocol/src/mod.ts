/**
 * @dovetail/protocol: wire types shared by devices and the server, their
 * validation, and the error codes of the whole project.
 *
 * Protocol history (append only):
 * - 1: mutations of insert, update, upsert and delete ops. Push (`POST
 *   /v1/push`) answers one result per processed mutation, exactly once by
 *   mutation id, in the client's order (`prev`); pull (`POST /v1/pull`)
 *   pages changes in commit order with an opaque cursor, `reset` for full
 *   resyncs and `lastMutationId` for finalizing the outbox; pokes over a
 *   WebSocket at `/v1/poke` after a Hello/Welcome handshake; every non-200
 *   response carries an `ErrorBody` with a request-level error code. Strict
 *   parsing: unknown fields are refused everywhere. See docs/protocol.md.
 */
export { PROTOCOL_VERSION, SUPPORTED_PROTOCOL_VERSIONS } from './protocol-version.js';
export type { ProtocolVersion } from './protocol-version.js';

export { OpKind } from './ops.js';
export type { JsonValue, Mutation, Op, RowValues, Value } from './ops.js';

export { ChangeKind, MessageType, MutationStatus, RejectReason, errorBody } from './messages.js';
export type {
  Change,
  ClientMessage,
  ErrorBody,
  Hello,
  MutationResult,
  Poke,
  PullRequest,
  PullResponse,
  PushMutation,
  PushRequest,
  PushResponse,
  RefreshKey,
  RejectDetails,
  ServerMessage,
  Welcome,
} from './messages.js';

export {
  parseClientMessage,
  parseErrorBody,
  parseMutation,
  parsePullRequest,
  parsePullResponse,
  parsePushRequest,
  parsePushResponse,
  parseServerMessage,
} from './validate.js';
export { canonicalJson, mutationContent } from './canonical-json.js';
export { ProtocolError } from './protocol-error.js';
export type { ProtocolErrorCode } from './protocol-error.js';
export { IDENTIFIER_PATTERN, WireLimits } from './wire-limits.js';

export { ErrorCodes, describeError } from './error-codes.js';
export type { ErrorCode, ErrorCodeInfo } from './error-codes.js';
export { RequestErrorStatus, httpStatusOf, isRequestErrorCode } from './http-status.js';
export type { RequestErrorCode } from './http-status.js';
