/**
 * The statements a connection has prepared (`PREPARE`), by name, least
 * recently used first. Prepared statements belong to a connection and
 * outlive transactions and sessions (a ROLLBACK does not undo a PREPARE),
 * so each driver keeps one of these per connection.
 *
 * After a script fails part way, what it prepared is not known: the names
 * are marked stale and read back from `pg_prepared_statements` before the
 * next script (see script.ts).
 */
export class PreparedNames {
  readonly #names = new Map<string, true>();
  readonly capacity: number;
  stale = false;

  constructor(capacity = 256) {
    this.capacity = capacity;
  }

  get size(): number {
    return this.#names.size;
  }

  has(name: string): boolean {
    return this.#names.has(name);
  }

  /** Marks `name` prepared and most recently used. */
  use(name: string): void {
    this.#names.delete(name);
    this.#names.set(name, true);
  }

  /** Names to deallocate so that `adding` more fit, never one of `keep`; least recently used first. */
  evictions(adding: number, keep: ReadonlySet<string>): string[] {
    const out: string[] = [];
    let over = this.#names.size + adding - this.capacity;
    for (const name of this.#names.keys()) {
      if (over <= 0) break;
      if (keep.has(name)) continue;
      out.push(name);
      over--;
    }
    return out;
  }

  forget(name: string): void {
    this.#names.delete(name);
  }

  /** Replaces what is known with what the connection says it has. */
  reset(names: Iterable<string>): void {
    this.#names.clear();
    for (const name of names) this.#names.set(name, true);
    this.stale = false;
  }
}
