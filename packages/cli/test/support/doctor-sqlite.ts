import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient, databaseFileName } from '@dovetail/client';
import { nodeDriver } from '@dovetail/client/node';
import type { Schema } from '@dovetail/schema';

export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'dovetail-doctor-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * A device file the way real ones come to be: the engine creates it and
 * binds `userId` (owner stamp, identity row), the user writes a post and a
 * conversation with a message; then `olderApp` writes to it with
 * `PRAGMA foreign_keys=OFF`, as an app from before Dovetail did.
 */
export async function deviceFile(dir: string, userId: string, schema: Schema, olderApp: (db: Database.Database) => void): Promise<string> {
  const client = createClient({ schema, driver: nodeDriver({ directory: dir }) });
  const db = await client.bind({ userId, identity: { name: 'Ann' } });
  await db.mutate('firstPost', (m) => {
    m.insert('posts', { id: 'p_ann', owner_id: userId, body: 'hello' });
    m.insert('conversations', { id: 'c_ann', owner_id: userId });
    m.insert('messages', { id: 'm_ann', conversation_id: 'c_ann', author_id: userId, body: 'hi' });
  });
  await client.signOut();
  const path = join(dir, databaseFileName(userId));
  const raw = new Database(path);
  try {
    raw.pragma('foreign_keys = OFF');
    olderApp(raw);
  } finally {
    raw.close();
  }
  return path;
}

/** Reads rows straight from a file (keys do not matter for reading). */
export function rowsOf(path: string, sql: string, ...params: unknown[]): Record<string, unknown>[] {
  const db = new Database(path, { readonly: true });
  try {
    return db.prepare(sql).all(...params) as Record<string, unknown>[];
  } finally {
    db.close();
  }
}

/** Runs statements on a file with keys off, as an older app would. */
export function writeWithKeysOff(path: string, sql: string): void {
  const db = new Database(path);
  try {
    db.pragma('foreign_keys = OFF');
    db.exec(sql);
  } finally {
    db.close();
  }
}
