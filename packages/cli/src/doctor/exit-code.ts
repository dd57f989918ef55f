import type { DoctorReport, RepairResult } from './types.js';

const isReport = (x: unknown): x is DoctorReport => typeof (x as DoctorReport | null)?.healthy === 'boolean' && Array.isArray((x as DoctorReport).findings);
const isRepair = (x: unknown): x is RepairResult => typeof (x as RepairResult | null)?.applied === 'boolean' && (x as RepairResult | null)?.plan !== undefined;

/**
 * The process exit code: 0 healthy; 1 problems found (or a repair that
 * failed and was rolled back, or left problems); 2 the doctor could not run
 * (anything thrown: unreadable file, not a database, unreachable server).
 * Takes a `DoctorReport`, a `RepairResult`, or whatever was thrown.
 */
export function exitCodeOf(outcome: unknown): 0 | 1 | 2 {
  if (isRepair(outcome)) {
    if (outcome.failed) return 1;
    if (outcome.after) return outcome.after.healthy ? 0 : 1;
    return 1;
  }
  if (isReport(outcome)) return outcome.healthy ? 0 : 1;
  return 2;
}
