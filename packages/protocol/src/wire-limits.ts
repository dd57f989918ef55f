/**
 * Bounds every message field must respect, checked by the parsers. Size
 * limits (ops or bytes per mutation, mutations per push, body size) are not
 * here: each server chooses its own and reports them with their own codes.
 */
export const WireLimits = {
  /** Client ids, mutation ids, row ids: non-empty, at most this many Unicode code points. */
  maxIdLength: 200,
  /** Mutation names: non-empty, at most this many Unicode code points. */
  maxNameLength: 200,
  /** Table and column names: at most this many characters (the Postgres identifier limit). */
  maxIdentifierLength: 63,
  /** Pull cursors: non-empty, at most this many Unicode code points. */
  maxCursorLength: 1000,
  /** The smallest `limit` a pull may ask for. */
  minPullLimit: 1,
  /** The largest `limit` a pull may ask for. */
  maxPullLimit: 10_000,
  /** Rows a pull may ask to refresh. */
  maxRefreshKeys: 100_000,
  /** How deep arrays and objects may nest inside one column value. */
  maxValueDepth: 64,
} as const;

/** What a table or column name looks like on the wire (and in the schema). */
export const IDENTIFIER_PATTERN = /^[a-z_][a-z0-9_]*$/;
