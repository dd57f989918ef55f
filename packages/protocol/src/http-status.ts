import type { ErrorCode } from './error-codes.js';

/**
 * The HTTP status of each request-level error code: the codes that can be
 * the body of a non-200 response (or of a WebSocket error). Every other code
 * either stays on the device or, for a refused mutation, travels inside a
 * 200 push response.
 */
export const RequestErrorStatus = {
  invalid_request: 400,
  unsupported_protocol: 400,
  unauthorized: 401,
  not_found: 404,
  token_expired: 401,
  token_invalid: 401,
  forbidden: 403,
  schema_mismatch: 409,
  cursor_expired: 410,
  body_too_large: 413,
  too_many_mutations: 413,
  rate_limited: 429,
  internal: 500,
} as const satisfies Partial<Record<ErrorCode, number>>;

/** A code that can be the body of a non-200 response. */
export type RequestErrorCode = keyof typeof RequestErrorStatus;

/**
 * The HTTP status a server answers with for an error code. Request-level
 * codes have their own status; any other code is not meant to be an HTTP
 * error, so a server that answers with one has a bug: 500.
 *
 * @example
 * httpStatusOf('token_expired'); // 401
 * httpStatusOf('cursor_expired'); // 410
 * httpStatusOf('foreign_keys_off'); // 500: a device code, never a request error
 */
export function httpStatusOf(code: ErrorCode): number {
  return isRequestErrorCode(code) ? RequestErrorStatus[code] : 500;
}

/**
 * Whether a string is a request-level error code (one with an HTTP status).
 *
 * @example
 * isRequestErrorCode('rate_limited'); // true
 * isRequestErrorCode('parent_deleted'); // false: a reason for refusing one mutation
 */
export function isRequestErrorCode(code: string): code is RequestErrorCode {
  return Object.hasOwn(RequestErrorStatus, code);
}
