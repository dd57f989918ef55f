import { SchemaError, SchemaErrorCode } from './errors.js';
import type { ForeignKeyModel, SchemaModel, TableModel } from './model.js';
import { postgresSchemaDdl } from './postgres-ddl.js';
import { resolveSchema } from './resolve.js';
import { sqliteSchemaDdl } from './sqlite-ddl.js';
import type { AnyTableDefinition, InsertOfTable, RowOfTable } from './table.js';

export type TableDefinitions = Record<string, AnyTableDefinition>;

/**
 * A validated schema. `T` keeps the definitions so row types can be derived:
 * `Row<typeof schema, 'posts'>`.
 */
export class Schema<T extends TableDefinitions = TableDefinitions> {
  declare readonly __tables: T;
  readonly model: SchemaModel;
  readonly #tables: ReadonlyMap<string, TableModel>;
  readonly #children: ReadonlyMap<string, readonly ForeignKeyModel[]>;

  constructor(model: SchemaModel) {
    this.model = model;
    this.#tables = new Map(model.tables.map((t) => [t.name, t]));
    const children = new Map<string, ForeignKeyModel[]>(model.tables.map((t) => [t.name, []]));
    for (const t of model.tables) for (const fk of t.foreignKeys) children.get(fk.refTable)?.push(fk);
    this.#children = children;
  }

  get version(): number {
    return this.model.version;
  }

  get identity(): TableModel {
    return this.table(this.model.identity);
  }

  /** Tables in key order, parents first. */
  get tables(): readonly TableModel[] {
    return this.model.graph.order.map((n) => this.table(n));
  }

  /** Tables that devices hold (visibility other than 'none'). */
  get syncedTables(): readonly TableModel[] {
    return this.tables.filter((t) => t.visibility.kind !== 'none');
  }

  hasTable(name: string): boolean {
    return this.#tables.has(name);
  }

  /** The table called `name`; throws a SchemaError naming the known tables otherwise. */
  table(name: string): TableModel {
    const t = this.#tables.get(name);
    if (!t) {
      throw new SchemaError(SchemaErrorCode.UnknownTable, `table '${name}' is not in the schema; known tables: ${[...this.#tables.keys()].join(', ')}`, { table: name });
    }
    return t;
  }

  /** Keys that point at `table` (its children). */
  childrenOf(table: string): readonly ForeignKeyModel[] {
    return this.#children.get(table) ?? [];
  }

  /** Statements that create every table and index in a new SQLite database. */
  sqliteDdl(): string[] {
    return sqliteSchemaDdl(this.model);
  }

  /** Statements that create every table, deferrable key and index in Postgres. */
  postgresDdl(): string[] {
    return postgresSchemaDdl(this.model);
  }
}

export interface SchemaDefinition<T extends TableDefinitions> {
  /** Bump by one whenever the tables change; devices migrate on open. */
  readonly version: number;
  /** The table whose primary key is the user id; its row is ensured on bind. */
  readonly identity: keyof T & string;
  readonly tables: T;
}

/**
 * Defines the app's schema once, for the device and the server. Mistakes are
 * thrown here as `SchemaError`s naming the table and column.
 *
 * @example
 * const schema = defineSchema({
 *   version: 1,
 *   identity: 'users',
 *   tables: {
 *     users: table({ columns: { id: text().primaryKey(), name: text() }, owner: 'id', visibility: 'public' }),
 *     posts: table({
 *       columns: { id: text().primaryKey(), author_id: text().references('users'), body: text() },
 *       owner: 'author_id',
 *       visibility: 'public',
 *     }),
 *   },
 * });
 * type Post = Row<typeof schema, 'posts'>; // { id: string; author_id: string; body: string }
 */
export function defineSchema<T extends TableDefinitions>(definition: SchemaDefinition<T>): Schema<T> {
  return new Schema<T>(resolveSchema(definition));
}

export type TableName<S> = S extends Schema<infer T> ? keyof T & string : never;
/** A full row of table `K`. */
export type Row<S, K extends TableName<S>> = S extends Schema<infer T> ? RowOfTable<T[K]> : never;
/** What an insert of table `K` takes (nullable and defaulted columns optional). */
export type Insert<S, K extends TableName<S>> = S extends Schema<infer T> ? InsertOfTable<T[K]> : never;
/** What an update of table `K` takes: any columns but the primary key. */
export type Patch<S, K extends TableName<S>> = Partial<Row<S, K>>;
