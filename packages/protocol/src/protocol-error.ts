import type { ErrorCode } from './error-codes.js';

/** The codes a parser reports: a malformed message, or a version not spoken. */
export type ProtocolErrorCode = Extract<ErrorCode, 'invalid_request' | 'unsupported_protocol'>;

/**
 * A message that does not follow the protocol. `path` names the offending
 * field (`mutations[3].ops[0].table`; empty for the message itself) and the
 * message says what is wrong with it, so a server can answer with
 * `errorBody(error.code, error.message)` as it is.
 *
 * @example
 * try { parsePushRequest(body); }
 * catch (e) { if (e instanceof ProtocolError) reply(httpStatusOf(e.code), errorBody(e.code, e.message)); }
 */
export class ProtocolError extends Error {
  override name = 'ProtocolError';
  readonly code: ProtocolErrorCode;
  readonly path: string;

  constructor(code: ProtocolErrorCode, message: string, path = '') {
    super(message);
    this.code = code;
    this.path = path;
  }
}
