import type { AnyColumn } from './columns.js';
import { SchemaError, SchemaErrorCode } from './errors.js';
import { buildKeyGraph } from './graph.js';
import type { ColumnModel, ForeignKeyModel, OwnerModel, SchemaModel, TableModel, VisibilityModel } from './model.js';
import type { AnyTableDefinition as TableDefinition } from './table.js';

const NAME = /^[a-z_][a-z0-9_]*$/;
const RESERVED_PREFIX = '_dovetail';
const MAX_NAME = 63; // Postgres identifiers are cut at 63 bytes.

export interface SchemaInput {
  readonly version: number;
  readonly identity: string;
  readonly tables: Readonly<Record<string, TableDefinition>>;
}

/** Validates a definition and turns it into plain data. Throws SchemaError. */
export function resolveSchema(input: SchemaInput): SchemaModel {
  if (!Number.isInteger(input.version) || input.version < 1) {
    throw new SchemaError(
      SchemaErrorCode.BadVersion,
      `schema version must be a positive integer, got ${String(input.version)}; bump it by one for each release that changes the schema`,
    );
  }
  const definitions = Object.entries(input.tables);
  for (const [name] of definitions) checkName(name, { table: name });

  const columnsOf = new Map<string, Map<string, ColumnModel>>();
  const pendingKeys: { table: string; column: string; col: AnyColumn }[] = [];
  for (const [tableName, def] of definitions) {
    const columns = new Map<string, ColumnModel>();
    for (const [columnName, col] of Object.entries(def.columns)) {
      checkName(columnName, { table: tableName, column: columnName });
      checkDefault(tableName, columnName, col);
      columns.set(columnName, {
        name: columnName,
        kind: col.kind,
        nullable: col.isNullable,
        primaryKey: col.isPrimaryKey,
        unique: col.isUnique,
        hasDefault: col.hasDefault,
        defaultValue: col.defaultValue,
      });
      if (col.reference) pendingKeys.push({ table: tableName, column: columnName, col });
    }
    const keys = [...columns.values()].filter((c) => c.primaryKey);
    if (keys.length !== 1) {
      throw new SchemaError(
        keys.length === 0 ? SchemaErrorCode.NoPrimaryKey : SchemaErrorCode.BadPrimaryKey,
        `table '${tableName}' must have exactly one primary key column, found ${keys.length}; mark one text column with .primaryKey()`,
        { table: tableName },
      );
    }
    const pk = keys[0];
    if (pk !== undefined && pk.kind !== 'text') {
      throw new SchemaError(
        SchemaErrorCode.BadPrimaryKey,
        `${tableName}.${pk.name} is the primary key but is ${pk.kind}; primary keys are client-generated text ids`,
        { table: tableName, column: pk.name },
      );
    }
    columnsOf.set(tableName, columns);
  }

  const keysOf = new Map<string, ForeignKeyModel[]>(definitions.map(([n]) => [n, []]));
  for (const { table, column, col } of pendingKeys) {
    const ref = col.reference;
    if (!ref) continue;
    const target = columnsOf.get(ref.table);
    if (!target) {
      throw new SchemaError(
        SchemaErrorCode.UnknownTable,
        `${table}.${column} references table '${ref.table}', which is not in the schema; known tables: ${[...columnsOf.keys()].join(', ')}`,
        { table, column },
      );
    }
    const refColumn = ref.column ?? [...target.values()].find((c) => c.primaryKey)?.name ?? 'id';
    const targetColumn = target.get(refColumn);
    if (!targetColumn) {
      throw new SchemaError(
        SchemaErrorCode.UnknownColumn,
        `${table}.${column} references ${ref.table}.${refColumn}, which does not exist; columns of ${ref.table}: ${[...target.keys()].join(', ')}`,
        { table, column },
      );
    }
    if (!targetColumn.unique) {
      throw new SchemaError(
        SchemaErrorCode.KeyTargetNotUnique,
        `${table}.${column} references ${ref.table}.${refColumn}, which is neither the primary key nor unique; a foreign key must point at a unique column`,
        { table, column },
      );
    }
    const own = columnsOf.get(table)?.get(column);
    if (own && own.kind !== targetColumn.kind) {
      throw new SchemaError(
        SchemaErrorCode.KeyTypeMismatch,
        `${table}.${column} is ${own.kind} but references ${ref.table}.${refColumn}, which is ${targetColumn.kind}; a key must have the type of the column it references`,
        { table, column },
      );
    }
    if (ref.onDelete === 'set null' && own && !own.nullable) {
      throw new SchemaError(
        SchemaErrorCode.BadKeyPolicy,
        `${table}.${column} is declared onDelete 'set null' but is not nullable; add .nullable() or choose 'cascade' or 'restrict'`,
        { table, column },
      );
    }
    if (own?.primaryKey) {
      throw new SchemaError(
        SchemaErrorCode.BadPrimaryKey,
        `${table}.${column} is the primary key and a foreign key; give the table its own id column and a separate key column`,
        { table, column },
      );
    }
    keysOf.get(table)?.push({
      name: `${table}_${column}_fkey`,
      table,
      column,
      refTable: ref.table,
      refColumn,
      onDelete: ref.onDelete,
      onConcurrentDelete: ref.onConcurrentDelete,
      nullable: own?.nullable ?? false,
    });
  }

  const tables: TableModel[] = definitions.map(([name, def]) => {
    const columns = [...(columnsOf.get(name)?.values() ?? [])];
    const foreignKeys = keysOf.get(name) ?? [];
    return {
      name,
      columns,
      primaryKey: columns.find((c) => c.primaryKey)?.name ?? 'id',
      foreignKeys,
      owner: resolveOwner(name, def, foreignKeys),
      visibility: resolveVisibility(name, def, foreignKeys),
      selfReferencing: foreignKeys.some((fk) => fk.refTable === name),
    };
  });

  const byName = new Map(tables.map((t) => [t.name, t]));
  checkIdentity(input.identity, byName);
  for (const t of tables) checkVisibility(t, byName, columnsOf);
  for (const t of tables) checkOwnerChain(t, byName);

  return { version: input.version, identity: input.identity, tables, graph: buildKeyGraph(tables) };
}

function checkName(name: string, where: { table: string; column?: string }): void {
  const what = where.column === undefined ? `table name '${name}'` : `column name '${where.table}.${name}'`;
  if (!NAME.test(name) || name.length > MAX_NAME) {
    throw new SchemaError(
      SchemaErrorCode.InvalidName,
      `${what} is not allowed: use lower-case letters, digits and underscores, starting with a letter or underscore, at most ${MAX_NAME} characters`,
      where,
    );
  }
  if (name.startsWith(RESERVED_PREFIX)) {
    throw new SchemaError(SchemaErrorCode.InvalidName, `${what} starts with '${RESERVED_PREFIX}', which is reserved for the engine's own tables`, where);
  }
}

function checkDefault(table: string, column: string, col: AnyColumn): void {
  if (!col.hasDefault) return;
  const value = col.defaultValue;
  const ok =
    value === null
      ? col.isNullable
      : col.kind === 'text'
        ? typeof value === 'string'
        : col.kind === 'boolean'
          ? typeof value === 'boolean'
          : col.kind === 'integer'
            ? Number.isSafeInteger(value)
            : col.kind === 'real'
              ? typeof value === 'number' && Number.isFinite(value)
              : true;
  if (!ok) {
    throw new SchemaError(SchemaErrorCode.BadDefault, `${table}.${column} has default ${JSON.stringify(value)}, which is not a valid ${col.kind}${value === null ? ' (the column is not nullable)' : ''}`, { table, column });
  }
  if (col.isPrimaryKey) {
    throw new SchemaError(SchemaErrorCode.BadDefault, `${table}.${column} is the primary key and cannot have a default; ids are generated by the client`, { table, column });
  }
}

function keyFor(table: string, column: string, keys: readonly ForeignKeyModel[], rule: string, code: typeof SchemaErrorCode.BadOwner | typeof SchemaErrorCode.BadVisibility): ForeignKeyModel {
  const fk = keys.find((k) => k.column === column);
  if (!fk) {
    throw new SchemaError(code, `${table}: ${rule} names column '${column}', which is not a foreign key of ${table}; name a column declared with .references(...)`, { table, column });
  }
  return fk;
}

function resolveOwner(table: string, def: TableDefinition, keys: readonly ForeignKeyModel[]): OwnerModel {
  const rule = (def as { owner?: unknown }).owner;
  if (rule === undefined || rule === null) {
    throw new SchemaError(
      SchemaErrorCode.MissingOwner,
      `table '${table}' has no owner: declare owner: '<column holding the user id>' or owner: { through: '<foreign key column>' } so the server knows who may write its rows`,
      { table },
    );
  }
  if (typeof rule === 'string') {
    const col = def.columns[rule];
    if (!col) {
      throw new SchemaError(SchemaErrorCode.BadOwner, `${table}: owner column '${rule}' does not exist; columns: ${Object.keys(def.columns).join(', ')}`, { table, column: rule });
    }
    if (col.kind !== 'text') {
      throw new SchemaError(SchemaErrorCode.BadOwner, `${table}.${rule} is the owner column but is ${col.kind}; user ids are text`, { table, column: rule });
    }
    return { kind: 'column', column: rule };
  }
  if (typeof rule === 'object' && typeof (rule as { through?: unknown }).through === 'string') {
    const column = (rule as { through: string }).through;
    const fk = keyFor(table, column, keys, `owner { through: '${column}' }`, SchemaErrorCode.BadOwner);
    return { kind: 'through', column, table: fk.refTable };
  }
  throw new SchemaError(SchemaErrorCode.BadOwner, `${table}: owner must be a column name or { through: '<foreign key column>' }, got ${JSON.stringify(rule)}`, { table });
}

function resolveVisibility(table: string, def: TableDefinition, keys: readonly ForeignKeyModel[]): VisibilityModel {
  const rule = (def as { visibility?: unknown }).visibility;
  if (rule === 'public' || rule === 'owner' || rule === 'none') return { kind: rule };
  if (rule && typeof rule === 'object') {
    if (typeof (rule as { through?: unknown }).through === 'string') {
      const column = (rule as { through: string }).through;
      const fk = keyFor(table, column, keys, `visibility { through: '${column}' }`, SchemaErrorCode.BadVisibility);
      return { kind: 'through', column, table: fk.refTable };
    }
    const members = (rule as { members?: unknown }).members as { table?: unknown; key?: unknown; user?: unknown } | undefined;
    if (members && typeof members.table === 'string' && typeof members.key === 'string' && typeof members.user === 'string') {
      return { kind: 'members', table: members.table, key: members.key, user: members.user };
    }
  }
  throw new SchemaError(
    SchemaErrorCode.BadVisibility,
    `${table}: visibility must be 'public', 'owner', 'none', { through: '<foreign key column>' } or { members: { table, key, user } }, got ${JSON.stringify(rule)}`,
    { table },
  );
}

function checkIdentity(identity: string, tables: ReadonlyMap<string, TableModel>): void {
  const t = tables.get(identity);
  if (!t) {
    throw new SchemaError(SchemaErrorCode.BadIdentity, `identity table '${identity}' is not in the schema; name the table whose primary key is the user id (e.g. 'users')`, { table: identity });
  }
  if (t.owner.kind !== 'column' || t.owner.column !== t.primaryKey) {
    throw new SchemaError(SchemaErrorCode.BadIdentity, `identity table '${identity}' must be owned by its own primary key: declare owner: '${t.primaryKey}'`, { table: identity });
  }
  if (t.visibility.kind === 'none') {
    throw new SchemaError(SchemaErrorCode.BadIdentity, `identity table '${identity}' has visibility 'none', but each user's own row must reach their devices`, { table: identity });
  }
}

function checkVisibility(t: TableModel, tables: ReadonlyMap<string, TableModel>, columnsOf: ReadonlyMap<string, ReadonlyMap<string, ColumnModel>>): void {
  const v = t.visibility;
  if (v.kind === 'members') {
    const m = tables.get(v.table);
    if (!m) {
      throw new SchemaError(SchemaErrorCode.BadVisibility, `${t.name}: membership table '${v.table}' is not in the schema`, { table: t.name });
    }
    const keyFk = m.foreignKeys.find((fk) => fk.column === v.key);
    if (!keyFk || keyFk.refTable !== t.name) {
      throw new SchemaError(SchemaErrorCode.BadVisibility, `${t.name}: membership column ${v.table}.${v.key} must be a foreign key to ${t.name}`, { table: t.name, column: v.key });
    }
    if (!columnsOf.get(v.table)?.has(v.user)) {
      throw new SchemaError(SchemaErrorCode.BadVisibility, `${t.name}: membership column ${v.table}.${v.user} does not exist`, { table: t.name, column: v.user });
    }
  }
  if (v.kind === 'none') return;
  // Follow `through` rules upwards: the chain must end at a rule that can
  // admit someone, and a synced row may only point at rows that can be synced.
  const seen = new Set<string>([t.name]);
  let cur: TableModel = t;
  while (cur.visibility.kind === 'through') {
    const parent = tables.get(cur.visibility.table);
    if (!parent) break;
    if (parent.visibility.kind === 'none') {
      throw new SchemaError(
        SchemaErrorCode.NeverVisibleParent,
        `${t.name} is visible through ${cur.name}.${cur.visibility.column}, but ${parent.name} has visibility 'none', so no one could ever see a ${t.name} row`,
        { table: t.name, column: cur.visibility.column },
      );
    }
    if (seen.has(parent.name)) {
      throw new SchemaError(SchemaErrorCode.BadVisibility, `${t.name}: visibility 'through' rules form a loop (${[...seen, parent.name].join(' -> ')}); one table in the loop needs its own rule`, { table: t.name });
    }
    seen.add(parent.name);
    cur = parent;
  }
  for (const fk of t.foreignKeys) {
    const parent = tables.get(fk.refTable);
    if (parent?.visibility.kind === 'none') {
      throw new SchemaError(
        SchemaErrorCode.NeverVisibleParent,
        `${t.name}.${fk.column} references ${parent.name}, which has visibility 'none': a synced ${t.name} row would point at a row no device can hold; make ${parent.name} visible or ${t.name} 'none'`,
        { table: t.name, column: fk.column },
      );
    }
  }
}

function checkOwnerChain(t: TableModel, tables: ReadonlyMap<string, TableModel>): void {
  const seen = new Set<string>([t.name]);
  let cur: TableModel = t;
  while (cur.owner.kind === 'through') {
    const parent = tables.get(cur.owner.table);
    if (!parent) return;
    if (seen.has(parent.name)) {
      throw new SchemaError(SchemaErrorCode.BadOwner, `${t.name}: owner 'through' rules form a loop (${[...seen, parent.name].join(' -> ')}); one table in the loop needs an owner column`, { table: t.name });
    }
    seen.add(parent.name);
    cur = parent;
  }
}
