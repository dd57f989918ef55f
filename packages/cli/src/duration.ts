import { CliError } from './errors.js';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `90s`, `15m`, `12h`, `30d` → milliseconds. */
export function parseDuration(text: string, option: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/.exec(text.trim());
  const unit = match?.[2];
  if (!match || unit === undefined) throw new CliError('usage', `${option} must be a duration such as 12h or 30d, got '${text}'`, 'use a number followed by ms, s, m, h or d');
  return Number(match[1]) * (UNITS[unit] ?? 1);
}
