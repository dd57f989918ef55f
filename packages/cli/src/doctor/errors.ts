import { CliError } from '../errors.js';

/** Why the doctor could not run at all (exit code 2). */
export type DoctorErrorReason = 'no_such_file' | 'not_a_database' | 'cannot_open' | 'bad_url' | 'unreachable' | 'wrong_target';

/**
 * The doctor could not examine the target: it never got to the data, so
 * there is no report. A `CliError` with code `cannot_run`, so the command
 * line prints it (with its hint) and exits 2 like any other.
 */
export class DoctorError extends CliError {
  readonly reason: DoctorErrorReason;

  constructor(reason: DoctorErrorReason, message: string, hint: string) {
    super('cannot_run', message, hint);
    this.reason = reason;
  }
}

export const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));
