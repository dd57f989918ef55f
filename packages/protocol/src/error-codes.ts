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
    summary: 'An update or delete named a row that does not exist on this device.',
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
} as const satisfies Record<string, ErrorCodeInfo>;

export type ErrorCode = keyof typeof ErrorCodes;

/** The documented summary and action for a code. */
export function describeError(code: ErrorCode): ErrorCodeInfo {
  return ErrorCodes[code];
}
