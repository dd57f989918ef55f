/**
 * Child process of the migration crash test. Opens the user's database with
 * the `rebuildParents` schema (version 2) and kills itself with SIGKILL
 * (no cleanup, no ROLLBACK, no close) right before the first statement that
 * starts with the given prefix runs.
 *
 * Usage: node --import tsx --conditions=@dovetail/source migrate-then-crash.ts <directory> <statement prefix>
 */
import { writeSync } from 'node:fs';
import { nodeDriver } from '@dovetail/client/node';
import { interceptDriver } from './intercept-driver.js';
import { bindAs, rebuildParents } from './migration-schemas.js';

const [directory, prefix] = process.argv.slice(2);
if (!directory || !prefix) {
  writeSync(2, 'usage: migrate-then-crash.ts <directory> <statement prefix>\n');
  process.exit(2);
}

const driver = interceptDriver(nodeDriver({ directory }), {
  before: (sql) => {
    if (sql.startsWith(prefix)) {
      writeSync(1, `crashing before: ${sql}\n`);
      process.kill(process.pid, 'SIGKILL');
    }
    return undefined;
  },
});

await bindAs(rebuildParents, driver, (p) => writeSync(1, `step ${p.step} of ${p.of}: ${p.description}\n`));
writeSync(1, 'migrated without crashing\n');
process.exit(0);
