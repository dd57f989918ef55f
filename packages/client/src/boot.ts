import type { SqliteConnection, SqliteDriver } from './driver.js';
import { createEngineTables } from './engine-tables.js';
import { DovetailError } from './errors.js';

/**
 * Turns foreign keys on and proves it by reading the setting back. The
 * pragma is a no-op inside a transaction (and some drivers report success
 * anyway), so the read-back is the only proof.
 */
export async function enableForeignKeys(conn: SqliteConnection, driverName: string): Promise<void> {
  await conn.exec('PRAGMA foreign_keys = ON');
  const rows = await conn.all<{ foreign_keys: number }>('PRAGMA foreign_keys');
  if (rows[0]?.foreign_keys !== 1) {
    throw new DovetailError(
      'foreign_keys_off',
      `PRAGMA foreign_keys reads back ${String(rows[0]?.foreign_keys)} after turning it on (driver ${driverName}); the connection is probably inside a transaction, or SQLite was built without foreign keys. The engine will not run with keys off.`,
    );
  }
}

/**
 * Phase 0 (boot): opens the file, sets WAL and keys on (verified), and
 * creates the engine's tables. On failure the connection is closed.
 */
export async function bootDatabase(driver: SqliteDriver, file: string): Promise<SqliteConnection> {
  const conn = await driver.open(file);
  try {
    await enableForeignKeys(conn, driver.name);
    await conn.exec('PRAGMA journal_mode = WAL');
    await conn.exec('PRAGMA synchronous = NORMAL');
    await conn.exec('PRAGMA busy_timeout = 5000');
    await createEngineTables(conn);
    return conn;
  } catch (error) {
    await conn.close().catch(() => undefined);
    throw error;
  }
}
