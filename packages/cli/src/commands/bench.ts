import type { Command } from '../command.js';
import { flag } from '../options.js';

export const benchCommand: Command = {
  name: 'bench',
  summary: 'run the benchmarks, each beside its physical limit',
  usage: 'bench [filter ...] [--list]',
  details: `Each metric is measured beside its physical limit (raw SQLite inserts, raw Postgres)
in the same run and printed as a BENCH line with the ratio; a table follows.
Exit code 1 when a target is missed. Filters keep the metrics whose name contains one.

examples:
  dovetail bench --list
  dovetail bench first-sync push`,
  options: [{ name: 'list', type: 'boolean', description: 'list the benchmarks and their metrics, run nothing' }],
  async run(parsed, io) {
    // Loaded on demand: the benchmarks pull in every package and their fixtures.
    const { runBenchmarks } = await import('../bench/run.js');
    return runBenchmarks(parsed.positionals, flag(parsed.values, 'list'), io);
  },
};
