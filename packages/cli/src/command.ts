import type { CliIo } from './io.js';
import type { OptionSpec, Parsed } from './options.js';

/** One `dovetail <name>` command: its declared options and what it does. */
export interface Command {
  readonly name: string;
  readonly summary: string;
  /** The line after `usage: dovetail`, e.g. `doctor <sqlite-file | postgres-url> [options]`. */
  readonly usage: string;
  /** Extra help text: arguments, examples. */
  readonly details?: string;
  readonly options: readonly OptionSpec[];
  /** Resolves to the exit code. Long-running commands resolve when stopped. */
  run(parsed: Parsed, io: CliIo): Promise<number>;
}
