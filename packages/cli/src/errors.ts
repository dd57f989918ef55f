/**
 * What can go wrong on the command line, each with a stable code. `usage`
 * and `cannot_run` end with exit code 2 ("could not run"); a command that
 * ran and found problems (the doctor, a failed migration step) exits 1.
 */
export type CliErrorCode =
  /** The command line itself is wrong: unknown command or option, bad value. */
  | 'usage'
  /** The schema module could not be loaded or does not export a schema. */
  | 'schema_module'
  /** A database, file or server could not be reached or opened. */
  | 'cannot_run';

export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(
    readonly code: CliErrorCode,
    message: string,
    /** What to do about it. */
    readonly hint: string,
  ) {
    super(message);
  }
}
