import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { lockDataDir } from '../src/data-dir-lock.js';
import { CliError } from '../src/errors.js';

/** Two processes must never open one embedded data directory: the lock says who holds it. */
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

it('refuses a data directory another live process holds, and takes over one whose holder is gone', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dovetail-lock-'));
  dirs.push(dir);
  const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
  try {
    writeFileSync(join(dir, 'dovetail.lock'), String(other.pid));
    let refused: unknown;
    try {
      lockDataDir(dir);
    } catch (error) {
      refused = error;
    }
    expect(refused).toBeInstanceOf(CliError);
    expect((refused as CliError).message).toBe(`the embedded Postgres in ${dir} is in use by process ${other.pid} (a dovetail server?)`);
    expect((refused as CliError).hint).toMatch(/stop that process first/);
  } finally {
    other.kill('SIGKILL');
    await new Promise((resolve) => other.once('exit', resolve));
  }
  // Its holder is gone: the lock is stale and taken over, then released.
  const release = lockDataDir(dir);
  expect(existsSync(join(dir, 'dovetail.lock'))).toBe(true);
  release();
  expect(existsSync(join(dir, 'dovetail.lock'))).toBe(false);
});
