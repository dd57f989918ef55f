import { describe, expect, it } from 'vitest';
import { ErrorCodes, RejectReason, RequestErrorStatus, describeError, httpStatusOf, isRequestErrorCode } from '@dovetail/protocol';
import type { ErrorCode } from '@dovetail/protocol';

// The codes as first released, in their order. Codes are appended, never
// reordered or removed.
const FIRST_CODES = [
  'foreign_key_violation', 'foreign_keys_off', 'not_bound', 'lifecycle_busy', 'wrong_owner', 'invalid_user_id', 'unknown_table',
  'unknown_column', 'invalid_value', 'missing_column', 'primary_key_immutable', 'row_not_found', 'duplicate_row', 'constraint_violation',
  'empty_mutation', 'migration_refused', 'migration_failed', 'schema_downgrade', 'database_closed', 'driver_error',
];

describe('error codes', () => {
  it('keeps the released codes first and in order', () => {
    expect(Object.keys(ErrorCodes).slice(0, FIRST_CODES.length)).toEqual(FIRST_CODES);
  });

  it('documents every code with a summary and an action', () => {
    for (const [code, info] of Object.entries(ErrorCodes)) {
      expect(code).toMatch(/^[a-z][a-z_]*$/);
      expect(info.summary.length, code).toBeGreaterThan(10);
      expect(info.action.length, code).toBeGreaterThan(10);
    }
  });

  it('documents every reject reason as an error code', () => {
    for (const reason of Object.values(RejectReason)) {
      expect(describeError(reason).summary).toBeTruthy();
    }
    expect(Object.values(RejectReason).sort()).toEqual(['conflict', 'forbidden', 'invalid', 'parent_deleted', 'parent_missing', 'parent_rejected', 'row_not_found', 'too_large']);
  });

  it('gives each request-level code its HTTP status', () => {
    expect(RequestErrorStatus).toEqual({
      invalid_request: 400,
      unsupported_protocol: 400,
      unauthorized: 401,
      token_expired: 401,
      token_invalid: 401,
      forbidden: 403,
      not_found: 404,
      schema_mismatch: 409,
      cursor_expired: 410,
      body_too_large: 413,
      too_many_mutations: 413,
      rate_limited: 429,
      internal: 500,
    });
    for (const code of Object.keys(RequestErrorStatus) as ErrorCode[]) {
      expect(isRequestErrorCode(code)).toBe(true);
      expect(ErrorCodes[code]).toBeDefined();
    }
  });

  it('answers 500 for a code that is never a request error', () => {
    expect(httpStatusOf('foreign_keys_off')).toBe(500);
    expect(httpStatusOf('parent_deleted')).toBe(500);
    expect(isRequestErrorCode('parent_deleted')).toBe(false);
    expect(isRequestErrorCode('toString')).toBe(false);
  });
});
