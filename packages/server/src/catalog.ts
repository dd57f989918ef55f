import type { SqlQueryable } from './sql.js';

/**
 * What a Postgres schema holds right now, read from `pg_catalog`: the
 * ground truth that `dovetail migrate` compares the schema module with and
 * that `dovetail doctor` checks. Only the connection's current schema
 * (`current_schema()`) is read, so apps living side by side in one
 * database, or isolated test schemas, never see each other's tables.
 */
export interface Catalog {
  /** The Postgres schema that was read. */
  readonly schema: string;
  /** Ordinary and partitioned tables, by name, including the engine's own. */
  readonly tables: Map<string, CatalogTable>;
  /** Names of the functions in the schema (the engine's included). */
  readonly functions: ReadonlySet<string>;
}

export interface CatalogColumn {
  readonly name: string;
  /** The type as `format_type` prints it: `text`, `bigint`, `double precision`, `jsonb`... */
  readonly type: string;
  readonly nullable: boolean;
  readonly hasDefault: boolean;
}

export type CatalogOnDelete = 'cascade' | 'set null' | 'restrict' | 'no action' | 'set default';

export interface CatalogForeignKey {
  readonly name: string;
  readonly columns: string[];
  /** The referenced table's name (without its schema). */
  readonly refTable: string;
  readonly refColumns: string[];
  readonly onDelete: CatalogOnDelete;
  readonly deferrable: boolean;
  readonly initiallyDeferred: boolean;
  /** False while a key added `NOT VALID` has not been validated: old rows may still break it. */
  readonly validated: boolean;
  /**
   * Whether the triggers that enforce the key are all enabled. `ALTER TABLE
   * ... DISABLE TRIGGER ALL` (or `session_replication_role = replica` bulk
   * loads done wrong) leaves a key declared but unenforced.
   */
  readonly enabled: boolean;
}

export interface CatalogIndex {
  readonly name: string;
  /** Key columns in order; expression columns are left out. */
  readonly columns: string[];
  /** Unique over all rows: a UNIQUE constraint or a unique index without a WHERE clause or expressions (the primary key's included). */
  readonly unique: boolean;
}

export interface CatalogTrigger {
  readonly name: string;
  readonly enabled: boolean;
}

export interface CatalogTable {
  readonly name: string;
  /** In column order. */
  readonly columns: Map<string, CatalogColumn>;
  /** Empty when the table has no primary key. */
  readonly primaryKey: string[];
  readonly foreignKeys: CatalogForeignKey[];
  readonly indexes: CatalogIndex[];
  /** User triggers only (not the internal ones that enforce keys). */
  readonly triggers: CatalogTrigger[];
  /**
   * Postgres's own estimate of the row count (from the last ANALYZE or
   * VACUUM), and at least 1 whenever the table has data pages, since the
   * estimate lags behind inserts. So 0 reliably means empty, which is what
   * a migration needs to know before adding a NOT NULL column; a table
   * emptied by DELETE may still count as 1 until it is vacuumed.
   */
  readonly rowEstimate: number;
}

/**
 * The schema filter shared by every query: `current_schema()` is resolved
 * once per query by Postgres itself, so no name travels through SQL text.
 */
const IN_SCHEMA = `c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())`;

/** Names of attributes `nums` of relation `rel`, in order, as `text[]` (both drivers parse it). */
const names = (nums: string, rel: string): string =>
  `ARRAY(SELECT a.attname::text FROM unnest(${nums}) WITH ORDINALITY AS k(num, ord)
         JOIN pg_attribute a ON a.attrelid = ${rel} AND a.attnum = k.num ORDER BY k.ord)`;

const FUNCTIONS_SQL = `SELECT p.proname::text AS name FROM pg_proc p WHERE p.pronamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())`;

const TABLES_SQL = `
  SELECT c.relname::text AS name,
         GREATEST(c.reltuples::float8, CASE WHEN c.relkind = 'r' AND pg_relation_size(c.oid) > 0 THEN 1 ELSE 0 END) AS row_estimate
    FROM pg_class c
   WHERE ${IN_SCHEMA} AND c.relkind IN ('r', 'p')
   ORDER BY c.relname`;

const COLUMNS_SQL = `
  SELECT c.relname::text AS tbl, a.attname::text AS name, format_type(a.atttypid, a.atttypmod) AS type,
         NOT a.attnotnull AS nullable, a.atthasdef AS has_default
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
   WHERE ${IN_SCHEMA} AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
   ORDER BY c.relname, a.attnum`;

/** Primary keys and foreign keys; partition clones of a parent's key (`conparentid`) are left out. */
const CONSTRAINTS_SQL = `
  SELECT c.relname::text AS tbl, con.conname::text AS name, con.contype::text AS kind,
         ${names('con.conkey', 'con.conrelid')} AS columns,
         rc.relname::text AS ref_table,
         ${names('con.confkey', 'con.confrelid')} AS ref_columns,
         con.confdeltype::text AS on_delete,
         con.condeferrable AS deferrable, con.condeferred AS initially_deferred, con.convalidated AS validated,
         COALESCE((SELECT bool_and(t.tgenabled <> 'D') FROM pg_trigger t WHERE t.tgconstraint = con.oid), true) AS enabled
    FROM pg_constraint con
    JOIN pg_class c ON c.oid = con.conrelid
    LEFT JOIN pg_class rc ON rc.oid = con.confrelid
   WHERE ${IN_SCHEMA} AND con.contype IN ('p', 'f') AND con.conparentid = 0
   ORDER BY c.relname, con.conname`;

const INDEXES_SQL = `
  SELECT c.relname::text AS tbl, i.relname::text AS name,
         ARRAY(SELECT a.attname::text FROM unnest(ix.indkey::int2[]) WITH ORDINALITY AS k(num, ord)
                 JOIN pg_attribute a ON a.attrelid = ix.indrelid AND a.attnum = k.num
                WHERE k.ord <= ix.indnkeyatts ORDER BY k.ord) AS columns,
         ix.indisunique AND ix.indpred IS NULL AND ix.indexprs IS NULL AS is_unique
    FROM pg_index ix
    JOIN pg_class c ON c.oid = ix.indrelid
    JOIN pg_class i ON i.oid = ix.indexrelid
   WHERE ${IN_SCHEMA}
   ORDER BY c.relname, i.relname`;

const TRIGGERS_SQL = `
  SELECT c.relname::text AS tbl, t.tgname::text AS name, t.tgenabled <> 'D' AS enabled
    FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
   WHERE ${IN_SCHEMA} AND NOT t.tgisinternal
   ORDER BY c.relname, t.tgname`;

const ON_DELETE: Record<string, CatalogOnDelete> = { a: 'no action', r: 'restrict', c: 'cascade', n: 'set null', d: 'set default' };

/**
 * Reads the current schema's tables, columns, keys, indexes and triggers in
 * six queries (one per kind, never one per table), so it stays fast on
 * schemas with many tables. The SQL runs on Postgres 13+ and on PGlite.
 *
 * @example
 * const catalog = await readCatalog(sql);
 * catalog.tables.get('posts')?.foreignKeys.filter((k) => !k.validated);
 */
export async function readCatalog(sql: SqlQueryable): Promise<Catalog> {
  const schemaRows = await sql.query<{ s: string | null }>('SELECT current_schema() AS s');
  const schema = schemaRows[0]?.s ?? 'public';
  const tableRows = await sql.query<{ name: string; row_estimate: number }>(TABLES_SQL);
  const tables = new Map<string, CatalogTable>();
  for (const r of tableRows) {
    tables.set(r.name, { name: r.name, columns: new Map(), primaryKey: [], foreignKeys: [], indexes: [], triggers: [], rowEstimate: Math.round(Number(r.row_estimate)) });
  }
  // A table created between two queries is skipped rather than half-read.
  const at = (name: string): CatalogTable | undefined => tables.get(name);

  for (const r of await sql.query<{ tbl: string; name: string; type: string; nullable: boolean; has_default: boolean }>(COLUMNS_SQL)) {
    at(r.tbl)?.columns.set(r.name, { name: r.name, type: r.type, nullable: r.nullable, hasDefault: r.has_default });
  }
  type ConstraintRow = {
    tbl: string;
    name: string;
    kind: string;
    columns: string[];
    ref_table: string | null;
    ref_columns: string[];
    on_delete: string;
    deferrable: boolean;
    initially_deferred: boolean;
    validated: boolean;
    enabled: boolean;
  };
  for (const r of await sql.query<ConstraintRow>(CONSTRAINTS_SQL)) {
    const t = at(r.tbl);
    if (!t) continue;
    if (r.kind === 'p') {
      t.primaryKey.push(...r.columns);
      continue;
    }
    t.foreignKeys.push({
      name: r.name,
      columns: r.columns,
      refTable: r.ref_table ?? '',
      refColumns: r.ref_columns,
      onDelete: ON_DELETE[r.on_delete] ?? 'no action',
      deferrable: r.deferrable,
      initiallyDeferred: r.initially_deferred,
      validated: r.validated,
      enabled: r.enabled,
    });
  }
  for (const r of await sql.query<{ tbl: string; name: string; columns: string[]; is_unique: boolean }>(INDEXES_SQL)) {
    at(r.tbl)?.indexes.push({ name: r.name, columns: r.columns, unique: r.is_unique });
  }
  for (const r of await sql.query<{ tbl: string; name: string; enabled: boolean }>(TRIGGERS_SQL)) {
    at(r.tbl)?.triggers.push({ name: r.name, enabled: r.enabled });
  }
  const functions = new Set((await sql.query<{ name: string }>(FUNCTIONS_SQL)).map((r) => r.name));
  return { schema, tables, functions };
}
