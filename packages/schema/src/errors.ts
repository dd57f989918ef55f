/**
 * Errors raised while a schema is being defined. Every problem is found at
 * definition time, before any database is touched, and names the table and
 * column it is about.
 */
export const SchemaErrorCode = {
  InvalidName: 'schema_invalid_name',
  NoPrimaryKey: 'schema_no_primary_key',
  BadPrimaryKey: 'schema_bad_primary_key',
  UnknownTable: 'schema_unknown_table',
  UnknownColumn: 'schema_unknown_column',
  KeyTypeMismatch: 'schema_key_type_mismatch',
  KeyTargetNotUnique: 'schema_key_target_not_unique',
  BadKeyPolicy: 'schema_bad_key_policy',
  MissingOwner: 'schema_missing_owner',
  BadOwner: 'schema_bad_owner',
  BadIdentity: 'schema_bad_identity',
  BadVisibility: 'schema_bad_visibility',
  NeverVisibleParent: 'schema_never_visible_parent',
  BadDefault: 'schema_bad_default',
  BadVersion: 'schema_bad_version',
} as const;
export type SchemaErrorCode = (typeof SchemaErrorCode)[keyof typeof SchemaErrorCode];

/** A mistake in a schema definition. `table` and `column` say where. */
export class SchemaError extends Error {
  override readonly name = 'SchemaError';
  readonly code: SchemaErrorCode;
  readonly table: string | undefined;
  readonly column: string | undefined;

  constructor(code: SchemaErrorCode, message: string, where: { table?: string; column?: string } = {}) {
    super(message);
    this.code = code;
    this.table = where.table;
    this.column = where.column;
  }
}
