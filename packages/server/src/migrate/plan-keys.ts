import { postgresForeignKey, postgresIndexes, quoteIdent as q } from '@dovetail/schema';
import type { ForeignKeyModel, TableModel } from '@dovetail/schema';
import type { CatalogForeignKey, CatalogOnDelete, CatalogTable } from '../catalog.js';
import type { MigrationStep, RefusedChange } from './types.js';

/**
 * How the schema's `onDelete` looks in the catalog: `restrict` is declared
 * `NO ACTION` (see `postgresForeignKey`), because Postgres checks
 * `RESTRICT` immediately even when the key is deferred.
 */
const CATALOG_ON_DELETE: Record<ForeignKeyModel['onDelete'], CatalogOnDelete> = { cascade: 'cascade', 'set null': 'set null', restrict: 'no action' };

export const describeKey = (fk: ForeignKeyModel): string =>
  `${fk.name} (${fk.table}.${fk.column} references ${fk.refTable}.${fk.refColumn}, on delete ${fk.onDelete})`;

/** The key steps of one table, by the phase of the plan they belong to. */
export interface KeySteps {
  readonly keys: MigrationStep[];
  readonly indexes: MigrationStep[];
  readonly validations: MigrationStep[];
  readonly refused: RefusedChange[];
}

/**
 * A key added to a table that may hold rows: first `NOT VALID`, which only
 * takes a brief lock and checks new writes from then on, then `VALIDATE
 * CONSTRAINT` as its own step, which checks the old rows without blocking
 * writes. If old rows break the key, only the validation fails, and the key
 * already protects everything written since.
 */
export function addKeySteps(fk: ForeignKeyModel): { add: MigrationStep; validate: MigrationStep } {
  return {
    add: {
      id: `add_foreign_key:${fk.table}.${fk.name}`,
      kind: 'add_foreign_key',
      table: fk.table,
      constraint: fk.name,
      description: `Add key ${describeKey(fk)}, deferrable, checking new writes only (existing rows are checked by a later step)`,
      sql: [postgresForeignKey(fk, { notValid: true })],
    },
    validate: validateStep(fk.table, fk.name),
  };
}

function validateStep(table: string, constraint: string): MigrationStep {
  return {
    id: `validate_foreign_key:${table}.${constraint}`,
    kind: 'validate_foreign_key',
    table,
    constraint,
    description: `Check the existing rows of ${table} against key ${constraint}; fails, changing nothing, if any row points at a missing parent`,
    sql: [`ALTER TABLE ${q(table)} VALIDATE CONSTRAINT ${q(constraint)}`],
  };
}

const sameColumns = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((c, i) => c === b[i]);

/** The key in the database that stands for `fk`: the one of its name, else one on the same column. */
function findKey(fk: ForeignKeyModel, table: CatalogTable): CatalogForeignKey | undefined {
  return table.foreignKeys.find((k) => k.name === fk.name) ?? table.foreignKeys.find((k) => sameColumns(k.columns, [fk.column]));
}

/**
 * Compares the keys and key indexes of a table that exists with the
 * schema. A key pointing somewhere else is refused (the rows that satisfy
 * the old key may break the new one, and which to fix is a person's call);
 * a key whose enforcing triggers are off is refused too, since rows written
 * meanwhile may be orphans that `dovetail doctor` must find first.
 */
export function existingTableKeySteps(model: TableModel, table: CatalogTable): KeySteps {
  const out: KeySteps = { keys: [], indexes: [], validations: [], refused: [] };
  const indexSql = postgresIndexes(model);
  model.foreignKeys.forEach((fk, i) => {
    const found = findKey(fk, table);
    if (!found) {
      const { add, validate } = addKeySteps(fk);
      out.keys.push(add);
      out.validations.push(validate);
    } else if (found.refTable !== fk.refTable || !sameColumns(found.refColumns, [fk.refColumn]) || !sameColumns(found.columns, [fk.column])) {
      out.refused.push({
        id: `change_key_target:${model.name}.${found.name}`,
        kind: 'change_key_target',
        table: model.name,
        column: fk.column,
        reason: `key ${found.name} on ${model.name}(${found.columns.join(', ')}) references ${found.refTable}(${found.refColumns.join(', ')}) in the database, but the schema declares ${describeKey(fk)}; rows valid under the old key may break the new one`,
        action: `Put the new reference in a new column and copy the values over with mutations, or drop the old key yourself (ALTER TABLE ${q(model.name)} DROP CONSTRAINT ${q(found.name)}) once the rows fit the new one, then plan again`,
      });
    } else if (!found.enabled) {
      out.refused.push({
        id: `key_not_enforced:${model.name}.${found.name}`,
        kind: 'key_not_enforced',
        table: model.name,
        column: fk.column,
        reason: `key ${found.name} is declared but its triggers are disabled, so rows written meanwhile were never checked against it`,
        action: `Run \`dovetail doctor\` to find rows that break it and fix them, then enable its triggers (ALTER TABLE ${q(model.name)} ENABLE TRIGGER ALL) and plan again`,
      });
    } else if (found.onDelete !== CATALOG_ON_DELETE[fk.onDelete]) {
      out.keys.push({
        id: `replace_foreign_key:${model.name}.${found.name}`,
        kind: 'replace_foreign_key',
        table: model.name,
        constraint: fk.name,
        description: `Replace key ${found.name} (ON DELETE ${found.onDelete.toUpperCase()} in the database) with ${describeKey(fk)}, declared ON DELETE ${CATALOG_ON_DELETE[fk.onDelete].toUpperCase()} so it can be deferred; in one transaction, so the column is never unguarded`,
        sql: [`ALTER TABLE ${q(model.name)} DROP CONSTRAINT ${q(found.name)}`, postgresForeignKey(fk, { notValid: true })],
      });
      out.validations.push(validateStep(model.name, fk.name));
    } else {
      if (!found.deferrable || !found.initiallyDeferred) {
        out.keys.push({
          id: `make_deferrable:${model.name}.${found.name}`,
          kind: 'make_deferrable',
          table: model.name,
          constraint: found.name,
          description: `Make key ${found.name} DEFERRABLE INITIALLY DEFERRED, so a sync transaction may write a child before its parent (SET CONSTRAINTS does nothing for a key that is not deferrable)`,
          sql: [`ALTER TABLE ${q(model.name)} ALTER CONSTRAINT ${q(found.name)} DEFERRABLE INITIALLY DEFERRED`],
        });
      }
      if (!found.validated) out.validations.push(validateStep(model.name, found.name));
    }
    const sql = indexSql[i];
    if (sql !== undefined && !table.indexes.some((x) => x.columns[0] === fk.column)) {
      const name = `${model.name}_${fk.column}_idx`;
      out.indexes.push({
        id: `create_index:${model.name}.${name}`,
        kind: 'create_index',
        table: model.name,
        description: `Index ${model.name}.${fk.column}, so deleting a ${fk.refTable} row and pulling its children need no scan of ${model.name} (blocks writes to ${model.name} while it builds)`,
        sql: [sql],
      });
    }
  });
  return out;
}
