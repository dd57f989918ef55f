import type { DoctorReport, Finding, RepairPlan } from './types.js';

const RANK = { problem: 0, warning: 1, info: 2 } as const;

/** Assembles a report: problems first, healthy when there are none. */
export function makeReport(input: {
  target: string;
  kind: DoctorReport['kind'];
  findings: readonly Finding[];
  plan: RepairPlan | undefined;
  summary: DoctorReport['summary'];
}): DoctorReport {
  const findings = [...input.findings].sort((a, b) => RANK[a.severity] - RANK[b.severity]);
  return {
    target: input.target,
    kind: input.kind,
    healthy: !findings.some((f) => f.severity === 'problem'),
    findings,
    ...(input.plan ? { plan: input.plan } : {}),
    summary: input.summary,
  };
}

export const DEFAULT_RETENTION_MS = 30 * 24 * 3600 * 1000;
export const DEFAULT_MAX_LISTED = 10_000;
