import type { AnyColumn, Column } from './columns.js';

/**
 * Who owns a row, which decides who may write it:
 * - a column name: the column holds the owner's user id (for the identity
 *   table, its primary key);
 * - `{ through: column }`: the row belongs to whoever owns the parent row
 *   that this foreign key column points at.
 */
export type OwnerRule<C extends string = string> = C | { readonly through: C };

/**
 * Who may see a row (compiled by the server into the pull filter):
 * - `'public'`: every signed-in user;
 * - `'owner'`: only the row's owner;
 * - `{ through: column }`: whoever may see the parent row this key points at;
 * - `{ members: ... }`: users listed in a membership table, e.g. the members
 *   of a conversation;
 * - `'none'`: never synced to devices (server-only).
 */
export type VisibilityRule<C extends string = string> =
  | 'public'
  | 'owner'
  | 'none'
  | { readonly through: C }
  | { readonly members: MembershipRule };

export interface MembershipRule {
  /** The membership table, e.g. `conversation_members`. */
  readonly table: string;
  /** Its column that points at this table's primary key. */
  readonly key: string;
  /** Its column that holds the member's user id. */
  readonly user: string;
}

export interface TableDefinition<C extends Record<string, AnyColumn> = Record<string, AnyColumn>> {
  readonly columns: C;
  readonly owner: OwnerRule<keyof C & string>;
  readonly visibility: VisibilityRule<keyof C & string>;
}

/** Any table definition, whatever its columns. */
export interface AnyTableDefinition {
  readonly columns: Record<string, AnyColumn>;
  readonly owner: OwnerRule;
  readonly visibility: VisibilityRule;
}

/**
 * Declares a table. The definition is checked when the schema is built.
 *
 * @example
 * const posts = table({
 *   columns: {
 *     id: text().primaryKey(),
 *     author_id: text().references('users', { onDelete: 'cascade' }),
 *     body: text(),
 *   },
 *   owner: 'author_id',
 *   visibility: 'public',
 * });
 */
export function table<C extends Record<string, AnyColumn>>(definition: TableDefinition<C>): TableDefinition<C> {
  return definition;
}

type ValueOf<Col> = Col extends Column<infer T, infer N, boolean> ? (N extends true ? T | null : T) : never;
type IsOptional<Col> = Col extends Column<unknown, boolean, infer O> ? O : false;

type Simplify<T> = { [K in keyof T]: T[K] } & {};

/** The row type of a table definition: every column present. */
export type RowOfTable<D> = D extends TableDefinition<infer C> ? Simplify<{ -readonly [K in keyof C]: ValueOf<C[K]> }> : never;

/** What an insert takes: nullable and defaulted columns may be left out. */
export type InsertOfTable<D> =
  D extends TableDefinition<infer C>
    ? Simplify<
        { -readonly [K in keyof C as IsOptional<C[K]> extends true ? never : K]: ValueOf<C[K]> } & {
          -readonly [K in keyof C as IsOptional<C[K]> extends true ? K : never]?: ValueOf<C[K]>;
        }
      >
    : never;
