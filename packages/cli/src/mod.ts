/** @dovetail/cli: the `dovetail` command line, also callable from code. */
export { runCli } from './cli.js';
export type { CliIo } from './cli.js';
