import type { ColumnKind, DefaultValue, OnConcurrentDelete, OnDelete } from './columns.js';

/**
 * The resolved, validated form of a schema: plain data that every other
 * package reads. It is also what gets stored as a snapshot in a database
 * so that the next version can be compared with it.
 */
export interface ColumnModel {
  readonly name: string;
  readonly kind: ColumnKind;
  readonly nullable: boolean;
  readonly primaryKey: boolean;
  readonly unique: boolean;
  readonly hasDefault: boolean;
  readonly defaultValue: DefaultValue | undefined;
}

export interface ForeignKeyModel {
  /** Constraint name, `<table>_<column>_fkey`. */
  readonly name: string;
  readonly table: string;
  readonly column: string;
  readonly refTable: string;
  readonly refColumn: string;
  readonly onDelete: OnDelete;
  readonly onConcurrentDelete: OnConcurrentDelete;
  readonly nullable: boolean;
}

export type OwnerModel =
  | { readonly kind: 'column'; readonly column: string }
  | { readonly kind: 'through'; readonly column: string; readonly table: string };

export type VisibilityModel =
  | { readonly kind: 'public' }
  | { readonly kind: 'owner' }
  | { readonly kind: 'none' }
  | { readonly kind: 'through'; readonly column: string; readonly table: string }
  | { readonly kind: 'members'; readonly table: string; readonly key: string; readonly user: string };

export interface TableModel {
  readonly name: string;
  readonly columns: readonly ColumnModel[];
  readonly primaryKey: string;
  readonly foreignKeys: readonly ForeignKeyModel[];
  readonly owner: OwnerModel;
  readonly visibility: VisibilityModel;
  /** Whether a key of this table points at the table itself. */
  readonly selfReferencing: boolean;
}

/** The foreign-key graph, parents before children. */
export interface KeyGraph {
  /** Every table, each after all the tables it references (cycles aside). */
  readonly order: readonly string[];
  /** Tables with a key to themselves (e.g. replies to posts). */
  readonly selfReferencing: readonly string[];
  /** Groups of two or more tables whose keys form a cycle. */
  readonly cycles: readonly (readonly string[])[];
}

export interface SchemaModel {
  readonly version: number;
  /** The table whose primary key is the user id (profiles). */
  readonly identity: string;
  readonly tables: readonly TableModel[];
  readonly graph: KeyGraph;
}
