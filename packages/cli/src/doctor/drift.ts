import type { ColumnModel } from '@dovetail/schema';
import type { Expected } from './expected.js';
import { keyText } from './format.js';
import type { KeyCheck } from './keys.js';
import { ENGINE_PREFIX } from './shape.js';
import type { DbShape, ShapeKey, ShapeOnDelete } from './shape.js';
import type { Finding } from './types.js';

/**
 * What to do about drift the doctor does not repair. `dovetail migrate`
 * works on Postgres. A device file is migrated by the engine from its own
 * stored snapshot, which cannot see what an older app changed behind it,
 * so the remedy there is a fresh file; a plain SQLite file needs SQLite's
 * table rebuild procedure.
 */
export function migrateAdvice(shape: DbShape): string {
  if (shape.dialect === 'postgres') return 'run `dovetail migrate`';
  if (shape.tables.has(`${ENGINE_PREFIX}meta`)) return 'recreate the file: once the app has pushed its pending mutations, signOut({ wipe: true }) and bind again, so the engine builds the file from the schema and resyncs it';
  return "rebuild the table with SQLite's twelve-step procedure (https://sqlite.org/lang_altertable.html#otheralter)";
}

/**
 * Whether the doctor may add a missing column itself: it must need no
 * value for existing rows (nullable, or a default), not be unique, and on
 * SQLite a column with a key may only be added with a NULL default.
 */
export function columnRepairable(dialect: DbShape['dialect'], c: ColumnModel, hasKey: boolean): boolean {
  if (c.primaryKey || c.unique || !(c.nullable || c.hasDefault)) return false;
  if (dialect === 'sqlite' && hasKey && c.hasDefault && c.defaultValue !== null) return false;
  return true;
}

/** Tables and columns of the schema that the database lacks. */
export function tableDrift(expected: Expected, shape: DbShape): Finding[] {
  const out: Finding[] = [];
  const MIGRATE = migrateAdvice(shape);
  for (const t of expected.tables) {
    const table = shape.tables.get(t.name);
    if (!table) {
      out.push({ code: 'missing_table', severity: 'problem', message: `table ${t.name} is declared in the schema but does not exist in the database; ${MIGRATE}`, details: { table: t.name } });
      continue;
    }
    for (const c of t.columns) {
      if (table.columns.has(c.name)) {
        if (c.unique && !c.primaryKey && !table.indexes.some((i) => i.unique && i.columns.length === 1 && i.columns[0] === c.name)) {
          out.push({
            code: 'missing_unique',
            severity: 'problem',
            message: `${t.name}.${c.name} is declared unique in the schema but the database does not enforce it, so it may accept values devices cannot hold; ${MIGRATE}`,
            details: { table: t.name, column: c.name },
          });
        }
        continue;
      }
      const repairable = columnRepairable(shape.dialect, c, t.foreignKeys.some((k) => k.column === c.name));
      const what = repairable ? `\`dovetail doctor --fix\` adds it (${c.nullable ? 'nullable' : 'with its default'})` : `it needs a value for existing rows or a table rebuild: ${MIGRATE}`;
      out.push({
        code: 'missing_column',
        severity: 'problem',
        message: `${t.name}.${c.name} is declared in the schema but the table has no such column; ${what}`,
        details: { table: t.name, column: c.name, nullable: c.nullable, hasDefault: c.hasDefault, repairable },
      });
    }
  }
  return out;
}

/** The database's ON DELETE for a schema policy (`restrict` is declared NO ACTION, see the DDL). */
const sameAction = (expected: string, actual: ShapeOnDelete): boolean => (expected === 'restrict' ? actual === 'no action' || actual === 'restrict' : expected === actual);

const isDeferred = (k: ShapeKey): boolean => k.deferrable && k.initiallyDeferred;

/** Schema keys missing, misdeclared or unenforced in the database; database keys not validated or disabled. */
export function keyDrift(keys: readonly KeyCheck[], shape: DbShape, expected: Expected | undefined): Finding[] {
  const out: Finding[] = [];
  const MIGRATE = migrateAdvice(shape);
  const pg = shape.dialect === 'postgres';
  const captured = (table: string): boolean => shape.tables.get(table)?.triggers.some((t) => t.name === '_dovetail_capture') ?? false;
  for (const k of keys) {
    const key = k.ref;
    const fk = k.expected;
    const db = k.db;
    if (fk && !db) {
      const table = shape.tables.get(key.table);
      const missingColumns = key.columns.filter((c) => !table?.columns.has(c));
      if (!table) continue; // reported as missing_table
      if (missingColumns.length > 0) {
        const column = expected?.tables.find((t) => t.name === key.table)?.columns.find((c) => c.name === fk.column);
        const fixable = column !== undefined && columnRepairable(shape.dialect, column, true) && shape.tables.has(key.refTable);
        out.push({
          code: 'key_on_missing_column',
          severity: 'problem',
          message: `${keyText(key)} is declared in the schema, but ${key.table} has no column ${missingColumns.join(', ')}; ${fixable ? '`dovetail doctor --fix` adds the column with its key' : MIGRATE}`,
          details: { key, missingColumns },
        });
        continue;
      }
      const parent = shape.tables.get(key.refTable);
      const repairable = pg && parent !== undefined && key.refColumns.every((c) => parent.columns.has(c));
      out.push({
        code: 'missing_key',
        severity: 'problem',
        message:
          `${keyText(key)} is declared in the schema but not in the database, so nothing stops orphan rows; ` +
          (repairable ? '`dovetail doctor --fix` adds it after repairing the orphans' : pg ? MIGRATE : `adding a key to a SQLite table needs a table rebuild: ${MIGRATE}`),
        details: { key, repairable },
      });
      continue;
    }
    if (!db) continue;
    if (fk) {
      const expectedText = `${keyText(key)} ON DELETE ${fk.onDelete === 'restrict' ? 'no action' : fk.onDelete}`;
      const actualText = `${key.table}.${db.columns.join(', ')} -> ${db.refTable}.${db.refColumns.join(', ')} ON DELETE ${db.onDelete}`;
      if (db.refTable !== fk.refTable || db.refColumns.join() !== fk.refColumn || !sameAction(fk.onDelete, db.onDelete)) {
        out.push({ code: 'key_differs', severity: 'warning', message: `the schema declares ${expectedText}, the database has ${actualText}; ${MIGRATE}`, details: { key, expected: expectedText, actual: actualText } });
      }
    }
    const needsDeferred = fk !== undefined || (pg && expected === undefined && captured(key.table));
    if (needsDeferred && !isDeferred(db)) {
      const how = db.deferrable ? 'DEFERRABLE INITIALLY IMMEDIATE' : 'NOT DEFERRABLE';
      out.push({
        code: 'key_not_deferrable',
        severity: 'problem',
        message:
          `${keyText(key)} is ${how}; sync writes a child before its parent inside one transaction and needs it DEFERRABLE INITIALLY DEFERRED; ` +
          (pg ? '`dovetail doctor --fix` changes it' : `on SQLite that needs a table rebuild: ${MIGRATE}`),
        details: { key, deferrable: db.deferrable, initiallyDeferred: db.initiallyDeferred, repairable: pg },
      });
    }
    if (!db.validated) {
      out.push({
        code: 'key_not_validated',
        severity: 'problem',
        message: `${keyText(key)} was added NOT VALID and never validated, so rows older than it may break it; \`dovetail doctor --fix\` validates it after repairing the orphans`,
        details: { key },
      });
    }
    if (!db.enabled) {
      out.push({
        code: 'keys_not_enforced',
        severity: 'problem',
        message: `the triggers that enforce ${keyText(key)} are disabled (ALTER TABLE ... DISABLE TRIGGER ALL), so Postgres does not check it; \`dovetail doctor --fix\` recreates the key`,
        details: { key, reason: 'triggers_disabled' },
      });
    }
  }
  return out;
}
