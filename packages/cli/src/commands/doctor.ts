import type { Command } from '../command.js';
import { diagnose, exitCodeOf, parseTarget, renderReport, renderRepair, repair } from '../doctor/mod.js';
import type { DoctorProgress, DoctorTarget } from '../doctor/mod.js';
import { parseDuration } from '../duration.js';
import { CliError } from '../errors.js';
import type { CliIo } from '../io.js';
import { loadSchema } from '../load-module.js';
import { flag, stringOption } from '../options.js';
import { jsonOption, retentionOption, schemaOption } from '../option-specs.js';

/** Progress on stderr, at most a few lines a second, so large scans show they move. */
function progressPrinter(io: CliIo): (event: DoctorProgress) => void {
  let lastAt = 0;
  let lastKey = '';
  const n = (x: number): string => x.toLocaleString('en-US');
  return (event) => {
    const now = Date.now();
    if (event.phase === 'scan') {
      // One line per key, then one every half second while a large table is scanned.
      if (event.key !== lastKey) io.stderr.write(`  checking ${event.key} (~${n(event.rowsEstimate)} rows)\n`);
      else if (now - lastAt >= 500) io.stderr.write(`  checking ${event.key}: ${n(event.rowsChecked)} of ~${n(event.rowsEstimate)} rows\n`);
      else return;
      lastKey = event.key;
      lastAt = now;
    } else if (event.phase === 'read') io.stderr.write(`  ${event.message}\n`);
    else if (event.phase === 'backup') io.stderr.write(`  backup written: ${event.path}\n`);
    else io.stderr.write(`  step ${event.step}/${event.steps}: ${event.description}\n`);
  };
}

export const doctorCommand: Command = {
  name: 'doctor',
  summary: 'diagnose (and repair) a device SQLite file or a Postgres database',
  usage: 'doctor <sqlite-file | postgres-url | data-dir> [--schema <path>] [--json] [--fix [--yes]]',
  details: `The target is a SQLite file (a device's database), a postgres:// URL, or the data
directory of the embedded Postgres that 'serve' and 'dev' use without a URL (stop the
server first: one process at a time).

Checks that keys are enforced, lists every orphan row (table.column = value with
the missing parent.column), compares the database with the schema module (tables,
columns and keys absent, keys on missing columns, keys not deferrable), and reports
engine state: a device's owner, outbox, rejected log and cursor; a server's capture
triggers, retention and, with Supabase, auth users without an identity row.

--fix prints a repair plan. --fix --yes writes a backup first (a copy of the SQLite
file; for Postgres, a SQL file restoring every row the plan changes), applies the whole
plan in one transaction, and diagnoses again.

Exit codes: 0 healthy (or repaired), 1 problems found (or the repair failed and was
rolled back), 2 could not run.

examples:
  dovetail doctor ./dovetail-ann-3f2a.db --schema ./schema.ts
  dovetail doctor postgres://app@db/app --schema ./schema.ts --fix
  dovetail doctor postgres://app@db/app --schema ./schema.ts --fix --yes --backup-dir ./backups`,
  options: [
    schemaOption,
    jsonOption,
    { name: 'fix', type: 'boolean', description: 'print a repair plan for what was found' },
    { name: 'yes', type: 'boolean', description: 'with --fix: back up, then apply the plan in one transaction' },
    { name: 'backup-dir', type: 'string', value: '<dir>', description: 'where the Postgres backup file goes (default: the current directory)' },
    retentionOption,
    { name: 'auth-schema', type: 'string', env: 'DOVETAIL_AUTH_SCHEMA', default: 'auth', value: '<name>', description: 'Postgres schema holding Supabase-style auth users' },
  ],
  async run(parsed, io) {
    const [argument, ...extra] = parsed.positionals;
    if (argument === undefined) throw new CliError('usage', 'doctor needs a target: a SQLite file, a postgres:// URL or an embedded Postgres data directory', "e.g. 'dovetail doctor ./app.db --schema ./schema.ts'");
    if (extra.length > 0) throw new CliError('usage', `doctor takes one target, got also: ${extra.join(' ')}`, 'run the doctor once per database');
    const json = flag(parsed.values, 'json');
    const fix = flag(parsed.values, 'fix');
    const yes = flag(parsed.values, 'yes');
    if (yes && !fix) throw new CliError('usage', '--yes applies a repair plan, but --fix was not given', "write 'doctor <target> --fix' to see the plan, then add --yes to apply it");
    const schemaPath = stringOption(parsed.values, 'schema');
    const schema = schemaPath ? await loadSchema(schemaPath, io.cwd) : undefined;
    const target: DoctorTarget = parseTarget(argument, io.cwd);
    const backupDir = stringOption(parsed.values, 'backup-dir');
    const options = {
      ...(schema ? { schema } : {}),
      retentionMs: parseDuration(stringOption(parsed.values, 'retention') ?? '30d', '--retention'),
      authSchema: stringOption(parsed.values, 'auth-schema') ?? 'auth',
      onProgress: progressPrinter(io),
    };
    const out = (text: string): void => void io.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
    const report = await diagnose(target, options);
    if (!fix || report.healthy) {
      out(json ? JSON.stringify(report, null, 2) : renderReport(report, { withPlan: fix }));
      return exitCodeOf(report);
    }
    if (!yes) {
      out(json ? JSON.stringify(report, null, 2) : `${renderReport(report)}\nNothing was changed. Add --yes to back up and apply this plan in one transaction.`);
      return exitCodeOf(report);
    }
    const result = await repair(target, report, { ...options, yes, ...(backupDir ? { backupDir } : {}) });
    out(json ? JSON.stringify({ report, repair: result }, null, 2) : `${renderReport(report)}\n\n${renderRepair(result)}`);
    return exitCodeOf(result);
  },
};
