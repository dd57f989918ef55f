/**
 * @dovetail/cli: the `dovetail` command line (serve, dev, migrate, doctor,
 * bench), also callable from code with injected streams and environment.
 */
export { runCli, COMMANDS, ExitCode } from './cli.js';
export type { CliIo } from './io.js';
export { CliError } from './errors.js';
export type { CliErrorCode } from './errors.js';
export { diagnose, repair, renderReport, renderPlan, renderRepair, exitCodeOf, parseTarget, describeTarget, DoctorError } from './doctor/mod.js';
export type { DiagnoseOptions, DoctorProgress, DoctorReport, DoctorTarget, Finding, FindingCode, RepairOptions, RepairPlan, RepairResult } from './doctor/mod.js';
