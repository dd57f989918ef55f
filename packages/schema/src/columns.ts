/**
 * Column builders. Each builder is immutable: every modifier returns a new
 * column, so a column can be shared between tables without surprises.
 *
 * The type parameters carry what the row type needs: the TypeScript value
 * type, whether NULL is allowed, and whether an insert may leave it out.
 */

export type ColumnKind = 'text' | 'integer' | 'real' | 'boolean' | 'json';

/** What happens to children when their parent row is deleted. */
export type OnDelete = 'cascade' | 'restrict' | 'set null';

/**
 * What the server does when a parent is deleted while an offline client
 * writes a child of it:
 * - `reject`: the child's mutation is refused with `parent_deleted`;
 * - `cascade`: the child is deleted with its parent;
 * - `restore`: the parent is brought back.
 */
export type OnConcurrentDelete = 'reject' | 'cascade' | 'restore';

export interface ReferenceSpec {
  readonly table: string;
  /** Defaults to the referenced table's primary key. */
  readonly column: string | undefined;
  readonly onDelete: OnDelete;
  readonly onConcurrentDelete: OnConcurrentDelete;
}

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** A literal default, written into the DDL of both databases. */
export type DefaultValue = string | number | boolean | null;

export interface ReferenceOptions {
  /** The referenced column; the referenced table's primary key if left out. */
  readonly column?: string;
  /** Default `restrict`: deleting a parent that still has children fails. */
  readonly onDelete?: OnDelete;
  /** Default `reject` (or `cascade` when `onDelete` is `cascade`). */
  readonly onConcurrentDelete?: OnConcurrentDelete;
}

interface ColumnState {
  readonly kind: ColumnKind;
  readonly nullable: boolean;
  readonly primaryKey: boolean;
  readonly unique: boolean;
  readonly hasDefault: boolean;
  readonly defaultValue: DefaultValue | undefined;
  readonly references: ReferenceSpec | undefined;
}

/**
 * A column of a table. `T` is the value type, `N` whether NULL is allowed,
 * `O` whether an insert may omit it (nullable or defaulted).
 */
export class Column<T = unknown, N extends boolean = boolean, O extends boolean = boolean> {
  declare readonly __value: T;
  declare readonly __nullable: N;
  declare readonly __optional: O;
  readonly #state: ColumnState;

  constructor(state: ColumnState) {
    this.#state = state;
  }

  get kind(): ColumnKind {
    return this.#state.kind;
  }
  get isNullable(): boolean {
    return this.#state.nullable;
  }
  get isPrimaryKey(): boolean {
    return this.#state.primaryKey;
  }
  get isUnique(): boolean {
    return this.#state.unique || this.#state.primaryKey;
  }
  get hasDefault(): boolean {
    return this.#state.hasDefault;
  }
  get defaultValue(): DefaultValue | undefined {
    return this.#state.defaultValue;
  }
  get reference(): ReferenceSpec | undefined {
    return this.#state.references;
  }

  /** Allows NULL; an insert may leave the column out. */
  nullable(): Column<T, true, true> {
    return new Column({ ...this.#state, nullable: true });
  }

  /** The row's client-generated text key. Exactly one per table. */
  primaryKey(): Column<T, false, false> {
    return new Column({ ...this.#state, primaryKey: true, nullable: false });
  }

  /** No two rows may hold the same value. */
  unique(): Column<T, N, O> {
    return new Column({ ...this.#state, unique: true });
  }

  /** A literal default; an insert may leave the column out. */
  default(value: T & DefaultValue): Column<T, N, true> {
    return new Column({ ...this.#state, hasDefault: true, defaultValue: value });
  }

  /**
   * A foreign key to `table` (its primary key unless `column` is given).
   *
   * @example
   * owner_id: text().references('users', { onDelete: 'cascade' })
   */
  references(table: string, options: ReferenceOptions = {}): Column<T, N, O> {
    const onDelete = options.onDelete ?? 'restrict';
    return new Column({
      ...this.#state,
      references: {
        table,
        column: options.column,
        onDelete,
        onConcurrentDelete: options.onConcurrentDelete ?? (onDelete === 'cascade' ? 'cascade' : 'reject'),
      },
    });
  }
}

function column<T>(kind: ColumnKind): Column<T, false, false> {
  return new Column<T, false, false>({
    kind,
    nullable: false,
    primaryKey: false,
    unique: false,
    hasDefault: false,
    defaultValue: undefined,
    references: undefined,
  });
}

/** A text column. Primary and foreign keys are text. */
export const text = (): Column<string, false, false> => column<string>('text');
/** A 64-bit integer column, read back as a JavaScript number. */
export const integer = (): Column<number, false, false> => column<number>('integer');
/** A floating point column. */
export const real = (): Column<number, false, false> => column<number>('real');
/** A boolean column (0/1 in SQLite, `boolean` in Postgres). */
export const boolean = (): Column<boolean, false, false> => column<boolean>('boolean');
/** A JSON document (text checked by `json_valid` in SQLite, `jsonb` in Postgres). */
export const json = <T extends JsonValue = JsonValue>(): Column<T, false, false> => column<T>('json');

export type AnyColumn = Column<unknown, boolean, boolean>;
