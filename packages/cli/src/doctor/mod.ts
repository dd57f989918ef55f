/**
 * `dovetail doctor` as a library: diagnose a device's SQLite file or a
 * server's Postgres database, print what is wrong, and repair it safely.
 *
 * @example
 * const target = parseTarget(argument, cwd);
 * const report = await diagnose(target, { schema, onProgress: (e) => stderr.write(...) });
 * stdout.write(json ? JSON.stringify(report, null, 2) : renderReport(report));
 * if (fix) stdout.write(renderRepair(await repair(target, report, { schema, yes })));
 */
export { diagnose } from './diagnose.js';
export { repair } from './repair.js';
export { renderPlan, renderReport, renderRepair } from './render.js';
export { exitCodeOf } from './exit-code.js';
export { describeTarget, parseTarget } from './target.js';
export { DoctorError } from './errors.js';
export type { DoctorErrorReason } from './errors.js';
export type {
  DiagnoseOptions,
  DoctorProgress,
  DoctorReport,
  DoctorTarget,
  EngineStateDetails,
  Finding,
  FindingCode,
  FindingDetailsByCode,
  FindingOf,
  KeyRef,
  ManualAction,
  OrphanDetails,
  OrphanRow,
  RepairAction,
  RepairOptions,
  RepairPlan,
  RepairResult,
  RepairStep,
  RepairStepResult,
  ReportValue,
  Severity,
  StepRows,
} from './types.js';
