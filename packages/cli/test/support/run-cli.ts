import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { embeddedSql, postgresSql } from '@dovetail/server';
import type { Sql } from '@dovetail/server';

/** The repository root: every spawn runs from here, as a user inside the repository would. */
export const REPO_ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const BIN = join(REPO_ROOT, 'packages/cli/bin/dovetail.js');

/** How a finished `dovetail` process ended, and everything it printed. */
export interface CliResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CliOptions {
  /** Variables added to the scrubbed environment (see `cliEnv`). */
  readonly env?: Readonly<Record<string, string>>;
  /** A run that takes longer is killed and fails the test. Default 60 s. */
  readonly timeoutMs?: number;
}

/**
 * The environment of a child: this process's, minus every variable the
 * command line reads (DATABASE_URL, JWT_SECRET, PORT, HOST, DOVETAIL_*), so
 * a test sees only what it passes. CI sets DATABASE_URL; a test that wants
 * Postgres passes --database-url itself (see `privateDatabase`).
 */
export function cliEnv(extra: Readonly<Record<string, string>> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (value === undefined || name.startsWith('DOVETAIL_') || ['DATABASE_URL', 'JWT_SECRET', 'PORT', 'HOST'].includes(name)) continue;
    env[name] = value;
  }
  return { ...env, ...extra };
}

const running = new Set<CliProcess>();

/**
 * One `node packages/cli/bin/dovetail.js ...` process. It leads its own
 * process group (the launcher runs the TypeScript entry point as a child of
 * its own), so `kill()` takes both down and nothing is left behind.
 */
export class CliProcess {
  readonly args: readonly string[];
  readonly child: ChildProcess;
  /** Resolves when the process has exited and its output is complete. */
  readonly exited: Promise<CliResult>;
  #stdout = '';
  #stderr = '';
  #done: CliResult | undefined;
  readonly #listeners = new Set<() => void>();

  constructor(args: readonly string[], options: CliOptions = {}) {
    this.args = args;
    this.child = spawn(process.execPath, [BIN, ...args], { cwd: REPO_ROOT, env: cliEnv(options.env), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    running.add(this);
    this.child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      this.#stdout += chunk;
      this.#notify();
    });
    this.child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      this.#stderr += chunk;
      this.#notify();
    });
    this.exited = new Promise<CliResult>((resolve, reject) => {
      this.child.on('error', reject);
      // 'close' (not 'exit'): the output streams are drained by then.
      this.child.on('close', (code, signal) => {
        running.delete(this);
        this.#done = { code, signal, stdout: this.#stdout, stderr: this.#stderr };
        this.#notify();
        resolve(this.#done);
      });
    });
  }

  get stdout(): string {
    return this.#stdout;
  }

  get stderr(): string {
    return this.#stderr;
  }

  get pid(): number {
    const pid = this.child.pid;
    if (pid === undefined) throw new Error(`dovetail ${this.args.join(' ')} did not start`);
    return pid;
  }

  #notify(): void {
    for (const listener of [...this.#listeners]) listener();
  }

  /** What the process printed so far, for failure messages. */
  describe(): string {
    return `dovetail ${this.args.join(' ')}\n--- stdout ---\n${this.#stdout}\n--- stderr ---\n${this.#stderr}`;
  }

  /**
   * The first complete line of `stream` that `match` accepts, printed
   * already or to come. Fails, with everything printed so far, when the
   * process exits first or nothing matches within `timeoutMs`.
   */
  waitForLine(stream: 'stdout' | 'stderr', match: (line: string) => boolean, what: string, timeoutMs = 30_000): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      const check = (): void => {
        const text = stream === 'stdout' ? this.#stdout : this.#stderr;
        const lines = text.split('\n');
        // The last piece is a line still being written (or '').
        const found = lines.slice(0, -1).find(match);
        if (found !== undefined) finish(() => resolve(found));
        else if (this.#done) finish(() => reject(new Error(`waited for ${what} on ${stream}, but the process exited (code ${String(this.#done?.code)}, signal ${String(this.#done?.signal)}) first:\n${this.describe()}`)));
      };
      const timer = setTimeout(() => finish(() => reject(new Error(`waited ${timeoutMs} ms for ${what} on ${stream}; nothing came:\n${this.describe()}`))), timeoutMs);
      const finish = (settle: () => void): void => {
        clearTimeout(timer);
        this.#listeners.delete(check);
        settle();
      };
      this.#listeners.add(check);
      check();
    });
  }

  /** The first JSON log line on stdout whose `message` is `message`, parsed. */
  async waitForLog(message: string, timeoutMs = 30_000): Promise<Record<string, unknown>> {
    const line = await this.waitForLine('stdout', (l) => parseJsonLine(l)?.['message'] === message, `the JSON log line '${message}'`, timeoutMs);
    return parseJsonLine(line) ?? {};
  }

  /** Sends `signal` to the launcher only, as a process manager would. */
  signal(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  /** Sends `signal` to the whole process group, as Ctrl-C in a terminal does. */
  signalGroup(signal: NodeJS.Signals): void {
    process.kill(-this.pid, signal);
  }

  /** Resolves to how the process ended; fails (after killing it) if it takes longer than `timeoutMs`. */
  async exit(timeoutMs = 30_000): Promise<CliResult> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const text = this.describe();
        void this.kill();
        reject(new Error(`dovetail did not exit within ${timeoutMs} ms:\n${text}`));
      }, timeoutMs);
    });
    try {
      return await Promise.race([this.exited, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Kills the launcher and its child (SIGKILL to the group) and waits for the exit. */
  async kill(): Promise<void> {
    if (this.#done) return;
    try {
      process.kill(-this.pid, 'SIGKILL');
    } catch {
      // Gone already.
    }
    await this.exited.catch(() => undefined);
  }
}

function parseJsonLine(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const value: unknown = JSON.parse(line);
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** Starts `dovetail ...args` and leaves it running (serve, dev). */
export function startCli(args: readonly string[], options: CliOptions = {}): CliProcess {
  return new CliProcess(args, options);
}

/** Runs `dovetail ...args` to the end. */
export function runCli(args: readonly string[], options: CliOptions = {}): Promise<CliResult> {
  return new CliProcess(args, options).exit(options.timeoutMs ?? 60_000);
}

/** Kills every `dovetail` process still running (for afterEach/afterAll). */
export async function killAll(): Promise<void> {
  await Promise.all([...running].map((p) => p.kill()));
}

/** A temporary directory and the function that removes it. */
export function tempDir(prefix = 'dovetail-cli-'): { readonly dir: string; readonly remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * The database of one test, for the child and for the test itself:
 * - with DATABASE_URL set, a private Postgres schema; the child gets the URL
 *   with `?options=-c search_path=<schema>` so everything it creates lands in
 *   that schema, which `drop()` removes;
 * - otherwise an embedded Postgres (PGlite) data directory under a temporary
 *   directory, and the child never sees DATABASE_URL.
 */
export interface TestDatabase {
  readonly kind: 'postgres' | 'embedded';
  /** What to pass to serve, dev and migrate: `--database-url <url>` or `--data-dir <dir>`. */
  readonly args: readonly string[];
  /** The URL the child gets (postgres only). */
  readonly url: string | undefined;
  /** What `dovetail doctor` is given: the URL, or the data directory. */
  readonly target: string;
  /** Opens the database in this process; close it before the next child opens a data directory. */
  open(): Promise<Sql>;
  /** Drops the schema or removes the data directory. */
  drop(): Promise<void>;
}

let databases = 0;

export async function privateDatabase(name: string): Promise<TestDatabase> {
  const base = process.env['DATABASE_URL'];
  if (!base) {
    const tmp = tempDir(`dovetail-cli-${name}-`);
    const dataDir = join(tmp.dir, 'data');
    return {
      kind: 'embedded',
      args: ['--data-dir', dataDir],
      url: undefined,
      target: dataDir,
      open: () => embeddedSql(dataDir),
      drop: () => Promise.resolve(tmp.remove()),
    };
  }
  const schema = `cli_${name}_${process.pid}_${Date.now()}_${++databases}`.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  try {
    await admin.query(`CREATE SCHEMA ${schema}`);
  } finally {
    await admin.end();
  }
  const url = `${base}${base.includes('?') ? '&' : '?'}options=-c%20search_path%3D${schema}`;
  return {
    kind: 'postgres',
    args: ['--database-url', url],
    url,
    target: url,
    open: () => postgresSql(base, { searchPath: schema, max: 2 }),
    async drop() {
      const client = new pg.Client({ connectionString: base });
      await client.connect();
      try {
        await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      } finally {
        await client.end();
      }
    },
  };
}
