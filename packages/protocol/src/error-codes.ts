/**
 * Every error Dovetail reports, with a message that says what happened and
 * what to do. Codes are stable and never reused: add new ones at the end,
 * and mark retired ones as such instead of deleting them.
 */
export interface ErrorCodeInfo {
  /** What happened, in one sentence. */
  readonly summary: string;
  /** What the app or operator should do about it. */
  readonly action: string;
}

export const ErrorCodes = {
  foreign_key_violation: {
    summary: 'A write broke a foreign key: a row points at a parent that does not exist, or a parent was deleted while children still point at it.',
    action: 'Write the parent first (in the same mutation or an earlier one), or delete the children before the parent; the error lists every broken key.',
  },
  foreign_keys_off: {
    summary: 'The database connection runs with foreign keys off, and they could not be turned on.',
    action: 'Open the database outside any transaction and make sure the SQLite build supports foreign keys; the engine refuses to run without them.',
  },
  not_bound: {
    summary: 'The database was used before a user was bound, or after sign-out.',
    action: 'Call bind({ userId }) first and wait for it; use the database only while a user is signed in.',
  },
  lifecycle_busy: {
    summary: 'A bind or sign-out was requested while another one was still running.',
    action: 'Wait for the previous bind() or signOut() to finish before starting another.',
  },
  wrong_owner: {
    summary: 'The database file belongs to another user.',
    action: 'Open the file of the signed-in user; each user has their own file. Never copy databases between users.',
  },
  invalid_user_id: {
    summary: 'The user id is empty or not a string.',
    action: 'Pass the id of the signed-in user as a non-empty string (for a JWT, its `sub` claim).',
  },
  unknown_table: {
    summary: 'A write or query named a table that is not in the schema.',
    action: 'Use one of the tables declared in the schema.',
  },
  unknown_column: {
    summary: 'A write named a column that is not in the table.',
    action: 'Use the columns declared in the schema; check the spelling.',
  },
  invalid_value: {
    summary: 'A value does not fit its column (wrong type, NULL in a required column, a non-finite number).',
    action: 'Pass a value of the declared column type; the error names the column and what it expected.',
  },
  missing_column: {
    summary: 'An insert left out a required column.',
    action: 'Give every column that is not nullable and has no default.',
  },
  primary_key_immutable: {
    summary: "An update tried to change a row's primary key.",
    action: 'Delete the row and insert a new one instead; ids never change.',
  },
  row_not_found: {
    summary: 'An update or delete named a row that does not exist on this device, or a pushed update named a row that does not exist on the server.',
    action: 'Check the id, or use upsert when the row may not exist yet.',
  },
  duplicate_row: {
    summary: 'An insert used a primary key or unique value that already exists.',
    action: 'Generate a fresh id for new rows, or use upsert to write whichever row is there.',
  },
  constraint_violation: {
    summary: 'A write broke a CHECK, NOT NULL or UNIQUE constraint.',
    action: 'Fix the value named in the message.',
  },
  empty_mutation: {
    summary: 'A mutation had no ops.',
    action: 'Pass at least one insert, update, upsert or delete.',
  },
  migration_refused: {
    summary: 'A schema change would change or lose rows, which a migration may not do.',
    action: 'Make the change additive (a nullable or defaulted column, a new table), or ship it as a new table and move the data with mutations.',
  },
  migration_failed: {
    summary: 'A migration step failed; the database was left at the previous step.',
    action: 'Read the step and the cause in the message; fix the schema or the data, then open the database again to resume.',
  },
  schema_downgrade: {
    summary: 'The database was written by a newer schema version than the app has.',
    action: 'Update the app; a database is never migrated backwards.',
  },
  database_closed: {
    summary: 'The connection was closed while an operation was waiting for it.',
    action: 'Do not use a database after sign-out; bind again to reopen it.',
  },
  driver_error: {
    summary: 'The SQLite driver failed in a way the engine does not recognise.',
    action: 'Read the cause attached to the error; report it if it persists.',
  },

  // Request-level codes of the sync protocol: the body of a non-200 HTTP
  // response or of a WebSocket error. `httpStatusOf` gives each one's status.
  invalid_request: {
    summary: 'A request or message was not well-formed: not JSON, a missing or unknown field, or a value of the wrong type or out of bounds.',
    action: 'This is a client bug, and the message names the field (e.g. `mutations[3].ops[0].table`). Do not resend the same request unchanged: check each mutation with parseMutation before it enters the outbox; pushing one mutation per request finds the one at fault, which then goes to the rejected log as `invalid`.',
  },
  unsupported_protocol: {
    summary: 'The message uses a protocol version the other side does not speak.',
    action: 'Keep the outbox and stop syncing; update the app (or the server). The message lists the versions that are spoken.',
  },
  unauthorized: {
    summary: 'The request has no token, or its Authorization header is not `Bearer <token>`.',
    action: 'Get a token for the signed-in user from the app and send it as `Authorization: Bearer <token>`; do not sync while no user is signed in.',
  },
  token_expired: {
    summary: 'The token has expired.',
    action: 'Refresh the token through the app and retry once with the new one; nothing is lost meanwhile.',
  },
  token_invalid: {
    summary: 'The token cannot be trusted: a bad signature, an algorithm the server does not accept (such as `none`), the wrong issuer or audience, or no subject.',
    action: 'Do not retry with this token. Ask the app for a new token once; if that one is refused too, stop syncing and report it, because the app and the server disagree on how tokens are made.',
  },
  body_too_large: {
    summary: "The request body is over the server's size limit.",
    action: 'Push fewer mutations per request (halve the batch) and retry. If a push of one mutation alone is refused this way, that mutation can never be sent: treat it as rejected with reason `too_large`.',
  },
  too_many_mutations: {
    summary: 'A push carried more mutations than the server accepts in one request.',
    action: 'Push fewer mutations per request (halve the batch) and retry; the message names the limit.',
  },
  rate_limited: {
    summary: 'The client sent too many requests.',
    action: 'Wait at least the delay in the `Retry-After` header (seconds), then go on; the refused request applied nothing.',
  },
  cursor_expired: {
    summary: 'The pull cursor is older than the server keeps deletions, or is not one the server can read, so the changes since it cannot be replayed.',
    action: 'Pull again with `cursor: null`: the answer has `reset: true`, and the client rebuilds its synced tables from it. Keep the outbox.',
  },
  schema_mismatch: {
    summary: "The client's schema version is not one the server accepts.",
    action: 'Keep the outbox and pause sync: if the app is older than the server, update the app; if it is newer, the server has not been upgraded yet. Retry on a long backoff; the message lists the versions the server accepts.',
  },
  internal: {
    summary: 'The server failed in a way it did not expect (a bug or an outage).',
    action: 'Retry later with backoff; retrying a push is safe because each mutation applies exactly once. Report it if it persists.',
  },
  not_found: {
    summary: 'The request went to a path or used a method the server does not serve.',
    action: 'Use `POST /v1/push`, `POST /v1/pull` or the WebSocket at `/v1/poke`; check the server URL.',
  },

  // Reasons the server gives for refusing one mutation (`RejectReason`).
  // They travel inside a 200 push response, never as an HTTP error; a
  // refused mutation goes to the rejected log and is never retried.
  parent_missing: {
    summary: 'A pushed mutation was refused: a key points at a row that never existed on the server.',
    action: 'Write the parent first (in this mutation or an earlier one), or fix the key; the details name the table, column, value and referenced table. Send the fix as a new mutation.',
  },
  parent_deleted: {
    summary: "A pushed mutation was refused: a key points at a row that was deleted on the server, and that key's policy is `reject`.",
    action: 'Tell the user that what they wrote into is gone; the details name the key and the deleted parent.',
  },
  parent_rejected: {
    summary: 'A pushed mutation was refused because an earlier mutation of this client, which wrote a row this one depends on, was refused.',
    action: 'Deal with the earlier rejected mutation first (the details name the row); this one was never applied either.',
  },
  forbidden: {
    summary: 'A pushed mutation was refused because it writes a row the user does not own or moves a row to another owner; or, for a whole request (HTTP 403), the client id belongs to another user.',
    action: 'Only write rows the signed-in user owns; the details name the table and row. For a 403, stop syncing: this device database belongs to another user, and its outbox must never be pushed under this token.',
  },
  conflict: {
    summary: 'A mutation id was pushed again with different content; the first mutation with that id stands.',
    action: 'A client bug: never reuse a mutation id, and never change a mutation once it was sent.',
  },
  too_large: {
    summary: 'A pushed mutation was refused because it has more ops or more bytes than the server accepts in one mutation.',
    action: 'Split the action into smaller mutations; the mutations behind the refused one keep syncing.',
  },
  invalid: {
    summary: 'A pushed mutation was refused as invalid: a table, column or value that is not in the schema, or a broken CHECK, NOT NULL or UNIQUE constraint.',
    action: 'Fix the write in the app; the details name the table, column and value.',
  },
  pull_conflict: {
    summary: 'A pulled batch could not be applied on the device: a row of it collides with a row the server never had.',
    action: 'Nothing to do: the device starts over with a full resync on its next sync, keeping its outbox. If it recurs, run `dovetail doctor` on the device file.',
  },
} as const satisfies Record<string, ErrorCodeInfo>;

export type ErrorCode = keyof typeof ErrorCodes;

/**
 * The documented summary and action for a code.
 *
 * @example
 * describeError('token_expired').action; // 'Refresh the token through the app and retry once ...'
 */
export function describeError(code: ErrorCode): ErrorCodeInfo {
  return ErrorCodes[code];
}
