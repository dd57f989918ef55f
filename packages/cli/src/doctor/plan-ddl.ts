import { postgresColumn, postgresForeignKey, quoteIdent as q, sqliteColumn } from '@dovetail/schema';
import type { ForeignKeyModel } from '@dovetail/schema';
import type { Expected } from './expected.js';
import { keyText } from './format.js';
import { refOfModel } from './keys.js';
import type { DraftStep } from './plan-rows.js';
import type { DbShape, ShapeKey } from './shape.js';
import type { Finding, KeyRef } from './types.js';

const ACTIONS = { cascade: 'CASCADE', 'set null': 'SET NULL', restrict: 'RESTRICT', 'no action': 'NO ACTION', 'set default': 'SET DEFAULT' } as const;

/** A Postgres key as the database has it now, re-added `NOT VALID` (to put a key back the way it was). */
function keyAsItIs(table: string, k: ShapeKey): string {
  const timing = k.deferrable ? (k.initiallyDeferred ? ' DEFERRABLE INITIALLY DEFERRED' : ' DEFERRABLE') : '';
  return `ALTER TABLE ${q(table)} ADD CONSTRAINT ${q(k.name)} FOREIGN KEY (${k.columns.map(q).join(', ')}) REFERENCES ${q(k.refTable)} (${k.refColumns.map(q).join(', ')}) ON DELETE ${ACTIONS[k.onDelete]}${timing} NOT VALID`;
}

const dropKey = (key: KeyRef): string => `ALTER TABLE ${q(key.table)} DROP CONSTRAINT IF EXISTS ${q(key.name)}`;

const validate = (key: KeyRef): DraftStep => ({
  action: 'validate_key',
  table: key.table,
  description: `validate ${keyText(key)} (checks every existing row; fails if an orphan is left)`,
  sql: `ALTER TABLE ${q(key.table)} VALIDATE CONSTRAINT ${q(key.name)}`,
  params: [],
});

/** Adds a schema key `NOT VALID` (no scan, short lock), its index, then validates it: the orphans are gone by then. */
function addKey(shape: DbShape, fk: ForeignKeyModel, key: KeyRef): DraftStep[] {
  const steps: DraftStep[] = [
    {
      action: 'add_key',
      table: fk.table,
      description: `add ${keyText(key)} as DEFERRABLE INITIALLY DEFERRED, NOT VALID (existing rows are checked by the next step)`,
      sql: postgresForeignKey(fk, { notValid: true }),
      params: [],
      undo: { sql: [dropKey(key)] },
    },
  ];
  const indexed = shape.tables.get(fk.table)?.indexes.some((i) => i.columns[0] === fk.column) ?? false;
  if (!indexed) {
    const name = `${fk.table}_${fk.column}_idx`;
    steps.push({
      action: 'add_index',
      table: fk.table,
      description: `index ${fk.table}.${fk.column}, so deletes of ${fk.refTable} rows and key checks do not scan ${fk.table}`,
      sql: `CREATE INDEX IF NOT EXISTS ${q(name)} ON ${q(fk.table)} (${q(fk.column)})`,
      params: [],
      undo: { sql: [`DROP INDEX IF EXISTS ${q(name)}`] },
    });
  }
  steps.push(validate(key));
  return steps;
}

const schemaKey = (expected: Expected | undefined, key: KeyRef): ForeignKeyModel | undefined =>
  expected?.tables.find((t) => t.name === key.table)?.foreignKeys.find((k) => k.column === key.columns[0] && key.columns.length === 1);

/**
 * Schema drift the doctor repairs itself, in a safe order: new columns,
 * then keys (added NOT VALID and validated), then key timing, then
 * re-enabled triggers. Everything else is left to `dovetail migrate`.
 */
export function ddlSteps(shape: DbShape, expected: Expected | undefined, findings: readonly Finding[]): DraftStep[] {
  const columns: DraftStep[] = [];
  const keys: DraftStep[] = [];
  const timing: DraftStep[] = [];
  const triggers: DraftStep[] = [];
  const pg = shape.dialect === 'postgres';
  for (const f of findings) {
    if (f.code === 'missing_column' && f.details.repairable) {
      const t = expected?.tables.find((x) => x.name === f.details.table);
      const c = t?.columns.find((x) => x.name === f.details.column);
      if (!t || !c) continue;
      const fk = t.foreignKeys.find((k) => k.column === c.name);
      columns.push({
        action: 'add_column',
        table: t.name,
        column: c.name,
        description: `add column ${t.name}.${c.name}${fk && !pg ? ` with its key to ${fk.refTable}.${fk.refColumn}` : ''}`,
        sql: `ALTER TABLE ${q(t.name)} ADD COLUMN ${pg ? postgresColumn(c) : sqliteColumn(c, fk)}`,
        params: [],
        undo: { sql: [`ALTER TABLE ${q(t.name)} DROP COLUMN IF EXISTS ${q(c.name)}`] },
      });
      if (fk && pg && shape.tables.has(fk.refTable)) keys.push(...addKey(shape, fk, refOfModel(fk)));
    } else if (f.code === 'missing_key' && f.details.repairable) {
      const fk = schemaKey(expected, f.details.key);
      if (fk) keys.push(...addKey(shape, fk, f.details.key));
    } else if (f.code === 'key_not_validated') {
      const db = shape.tables.get(f.details.key.table)?.foreignKeys.find((k) => k.name === f.details.key.name);
      if (db) keys.push({ ...validate(f.details.key), undo: { sql: [dropKey(f.details.key)], atEnd: [keyAsItIs(f.details.key.table, db)] } });
    } else if (f.code === 'key_not_deferrable' && f.details.repairable) {
      const key = f.details.key;
      const before = f.details.deferrable ? 'DEFERRABLE INITIALLY IMMEDIATE' : 'NOT DEFERRABLE';
      timing.push({
        action: 'make_deferrable',
        table: key.table,
        description: `make ${keyText(key)} DEFERRABLE INITIALLY DEFERRED (it is ${before})`,
        sql: `ALTER TABLE ${q(key.table)} ALTER CONSTRAINT ${q(key.name)} DEFERRABLE INITIALLY DEFERRED`,
        params: [],
        undo: { sql: [`ALTER TABLE ${q(key.table)} ALTER CONSTRAINT ${q(key.name)} ${before}`] },
      });
    } else if (f.code === 'keys_not_enforced' && f.details.reason === 'triggers_disabled' && f.details.key) {
      const key = f.details.key;
      const db = shape.tables.get(key.table)?.foreignKeys.find((k) => k.name === key.name);
      if (!db) continue;
      const fk = schemaKey(expected, key);
      keys.push(
        {
          action: 'recreate_key',
          table: key.table,
          description: `drop ${keyText(key)}, whose triggers are disabled, to add it again with working triggers`,
          sql: `ALTER TABLE ${q(key.table)} DROP CONSTRAINT ${q(key.name)}`,
          params: [],
          undo: { sql: [], atEnd: [keyAsItIs(key.table, db)] },
        },
        {
          action: 'add_key',
          table: key.table,
          description: `add ${keyText(key)} again, NOT VALID (existing rows are checked by the next step)`,
          sql: fk ? postgresForeignKey(fk, { notValid: true }) : keyAsItIs(key.table, db),
          params: [],
          undo: { sql: [dropKey(key)] },
        },
        validate(key),
      );
    } else if (f.code === 'missing_capture_trigger' && f.details.present) {
      triggers.push({
        action: 'enable_trigger',
        table: f.details.table,
        description: `enable the change-capture trigger of ${f.details.table}, so its writes reach devices again`,
        sql: `ALTER TABLE ${q(f.details.table)} ENABLE TRIGGER ${q('_dovetail_capture')}`,
        params: [],
        undo: { sql: [`ALTER TABLE ${q(f.details.table)} DISABLE TRIGGER ${q('_dovetail_capture')}`] },
      });
    }
  }
  return [...columns, ...keys, ...timing, ...triggers];
}
