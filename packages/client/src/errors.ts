import { describeError } from '@dovetail/protocol';
import type { ErrorCode } from '@dovetail/protocol';
import type { SqlValue } from './driver.js';

/**
 * Every error the engine throws has a stable `code` (documented in
 * `@dovetail/protocol`'s error codes) and a message that says what happened
 * and what to do.
 */
export class DovetailError extends Error {
  override name = 'DovetailError';
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(`${message} [${code}] ${describeError(code).action}`, options.cause === undefined ? {} : { cause: options.cause });
    this.code = code;
  }
}

/** One broken key: a child row whose key value has no parent row. */
export interface KeyViolation {
  /** The child table and key column. */
  readonly table: string;
  readonly column: string;
  /** The key value that has no parent. */
  readonly value: SqlValue;
  /** The child row's primary key. */
  readonly rowId: string;
  readonly referencedTable: string;
  readonly referencedColumn: string;
  /**
   * `missing_parent`: the row points at a parent that is not there;
   * `parent_deleted`: this very write deleted the parent the row points at.
   */
  readonly kind: 'missing_parent' | 'parent_deleted';
}

const shown = (v: SqlValue): string => (typeof v === 'string' ? `'${v}'` : String(v));

export function describeViolation(v: KeyViolation): string {
  const base = `${v.table}.${v.column} = ${shown(v.value)} has no ${v.referencedTable}.${v.referencedColumn}`;
  return v.kind === 'parent_deleted'
    ? `${base} (this write deletes ${v.referencedTable} ${shown(v.value)} while ${v.table} '${v.rowId}' still points at it)`
    : `${base} (row ${v.table} '${v.rowId}')`;
}

/**
 * A write broke one or more foreign keys. The fields describe the first
 * broken key; `violations` lists all of them. Nothing was written.
 *
 * @example
 * try { await db.mutate('createPost', (m) => m.insert('posts', post)); }
 * catch (e) { if (e instanceof ForeignKeyViolation) console.log(e.table, e.column, e.value); }
 */
export class ForeignKeyViolation extends DovetailError {
  override name = 'ForeignKeyViolation';
  readonly table: string;
  readonly column: string;
  readonly value: SqlValue;
  readonly referencedTable: string;
  readonly referencedColumn: string;
  readonly violations: readonly KeyViolation[];

  constructor(violations: readonly KeyViolation[]) {
    const first = violations[0];
    if (!first) throw new Error('ForeignKeyViolation needs at least one violation');
    const more = violations.length > 1 ? `; and ${violations.length - 1} more: ${violations.slice(1, 6).map(describeViolation).join('; ')}` : '';
    super('foreign_key_violation', `${describeViolation(first)}${more}; nothing was written.`);
    this.table = first.table;
    this.column = first.column;
    this.value = first.value;
    this.referencedTable = first.referencedTable;
    this.referencedColumn = first.referencedColumn;
    this.violations = violations;
  }
}
