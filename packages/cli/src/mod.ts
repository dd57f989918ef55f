/**
 * @dovetail/cli: the `dovetail` command line (serve, dev, migrate, doctor,
 * bench), also callable from code with injected streams and environment.
 */
export { runCli, COMMANDS, ExitCode } from './cli.js';
export type { CliIo } from './io.js';
export { CliError } from './errors.js';
export type { CliErrorCode } from './errors.js';
