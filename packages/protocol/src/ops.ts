/**
 * Row operations and mutations: what a device records in its outbox and
 * what it will send to the server.
 */

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** A column value as it travels: JSON columns carry their parsed value. */
export type Value = JsonValue;

export type RowValues = Readonly<Record<string, Value>>;

export type Op =
  | { readonly op: 'insert'; readonly table: string; readonly row: RowValues }
  | { readonly op: 'upsert'; readonly table: string; readonly row: RowValues }
  | { readonly op: 'update'; readonly table: string; readonly id: string; readonly set: RowValues }
  | { readonly op: 'delete'; readonly table: string; readonly id: string };

/** The four kinds of row op. */
export const OpKind = {
  Insert: 'insert',
  Upsert: 'upsert',
  Update: 'update',
  Delete: 'delete',
} as const satisfies Record<string, Op['op']>;
export type OpKind = Op['op'];

/** One user action: ops applied atomically, identified by a client-made id. */
export interface Mutation {
  readonly id: string;
  /** The app's name for the action (e.g. `createPost`), for logs and the rejected log. */
  readonly name: string;
  readonly ops: readonly Op[];
}
