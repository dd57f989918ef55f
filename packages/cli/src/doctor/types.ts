import type { Schema } from '@dovetail/schema';
import type { Sql } from '@dovetail/server';

/** What the doctor examines: a SQLite file, or a Postgres database by URL or open connection. */
export type DoctorTarget =
  | { readonly kind: 'sqlite'; readonly path: string }
  | { readonly kind: 'postgres'; readonly url: string }
  /** An embedded Postgres (PGlite) data directory, as `dovetail serve` and `dev` keep by default. */
  | { readonly kind: 'postgres'; readonly dataDir: string }
  | { readonly kind: 'postgres'; readonly sql: Sql };

/** `problem`: the database is not healthy; `warning`: worth a look; `info`: facts. */
export type Severity = 'problem' | 'warning' | 'info';

/** A key value or row id as it appears in a report (JSON-safe). */
export type ReportValue = string | number | null;

/** A foreign key as the doctor checks it: declared in the schema, in the database, or both. */
export interface KeyRef {
  /** Constraint name (the schema's `<table>_<column>_fkey`, or the database's). */
  readonly name: string;
  readonly table: string;
  readonly columns: readonly string[];
  readonly refTable: string;
  readonly refColumns: readonly string[];
}

/** One child row whose key has no parent. */
export interface OrphanRow {
  /** The row's primary key (several columns joined by ', '), as text. */
  readonly id: string;
  /** The key column values, in key column order. */
  readonly values: readonly ReportValue[];
  /** `posts.owner_id = 'u_42' has no users.id` */
  readonly text: string;
}

export interface OrphanDetails {
  readonly key: KeyRef;
  /** Whether the database declares the key (false: only the schema does, so nothing stopped the orphans). */
  readonly keyInDatabase: boolean;
  /** Whether every key column accepts NULL (then the repair sets it to NULL). */
  readonly nullable: boolean;
  readonly count: number;
  /** The orphan rows, at most `maxListed` of them. */
  readonly rows: readonly OrphanRow[];
}

export interface KeyDetails {
  readonly key: KeyRef;
}

export interface FindingDetailsByCode {
  /** Child rows whose key value has no parent row. */
  readonly orphan_rows: OrphanDetails;
  /** Keys declared but not enforced (SQLite without key support, no keys at all, or disabled Postgres triggers). */
  readonly keys_not_enforced: { readonly key?: KeyRef; readonly reason: 'sqlite_keys_unavailable' | 'no_keys_declared' | 'triggers_disabled' };
  /** Facts about the declared keys (SQLite enforces them per connection). */
  readonly keys_declared: { readonly keys: number; readonly tables: number; readonly foreignKeysPragma?: boolean };
  readonly missing_table: { readonly table: string };
  readonly missing_column: { readonly table: string; readonly column: string; readonly nullable: boolean; readonly hasDefault: boolean; readonly repairable: boolean };
  readonly missing_unique: { readonly table: string; readonly column: string };
  /** A schema key whose column exists but that the database does not declare. */
  readonly missing_key: KeyDetails & { readonly repairable: boolean };
  /** A schema key on a column the database table does not have (S5). */
  readonly key_on_missing_column: KeyDetails & { readonly missingColumns: readonly string[] };
  /** A key that sync needs `DEFERRABLE INITIALLY DEFERRED` and that is not. */
  readonly key_not_deferrable: KeyDetails & { readonly deferrable: boolean; readonly initiallyDeferred: boolean; readonly repairable: boolean };
  /** A Postgres key added `NOT VALID` and never validated: old rows may break it. */
  readonly key_not_validated: KeyDetails;
  /** The database key on these columns points elsewhere or acts differently on delete. */
  readonly key_differs: KeyDetails & { readonly expected: string; readonly actual: string };
  /** A user who exists (device owner, auth user) without their identity row. */
  readonly missing_identity_row: { readonly table: string; readonly column: string; readonly userIds: readonly string[]; readonly count: number; readonly source: 'device_owner' | 'auth_users' };
  /** The sync engine's own state. */
  readonly engine_state: EngineStateDetails;
  /** Engine tables missing on the server. */
  readonly missing_engine_table: { readonly tables: readonly string[] };
  /** Synced tables whose change-capture trigger is missing or disabled. */
  readonly missing_capture_trigger: { readonly table: string; readonly present: boolean };
  /** Change entries older than the retention: pruning is not running. */
  readonly changes_past_retention: { readonly oldestAt: string; readonly retentionMs: number };
  /** Something the doctor could not check, and why. */
  readonly not_checked: { readonly what: string };
}

export type FindingCode = keyof FindingDetailsByCode;

export type Finding = {
  readonly [C in FindingCode]: {
    /** Stable, for scripts. */
    readonly code: C;
    readonly severity: Severity;
    /** What is wrong and what to do about it. */
    readonly message: string;
    readonly details: FindingDetailsByCode[C];
  };
}[FindingCode];

export type FindingOf<C extends FindingCode> = Extract<Finding, { code: C }>;

export interface EngineStateDetails {
  readonly side: 'device' | 'server';
  /** Device: the user the file belongs to. */
  readonly owner?: string | null;
  readonly outboxDepth?: number;
  /** Milliseconds since the oldest pending mutation was made. */
  readonly oldestPendingAgeMs?: number | null;
  readonly rejected?: number;
  /** Device: the pull cursor's snapshot (`xmin:xmax:xip`), null before the first pull. */
  readonly cursorSnapshot?: string | null;
  /** Device: whether the cursor's age is known (files written before the engine recorded its last pull do not say). */
  readonly cursorAgeKnown?: boolean;
  /** Device: milliseconds since the last pull, when known. */
  readonly cursorAgeMs?: number | null;
  readonly schemaVersion?: number | null;
  /** Server: change entries kept (Postgres's estimate), and the oldest one's time. */
  readonly changes?: number;
  readonly oldestChangeAt?: string | null;
  readonly retentionMs: number;
  readonly notes: readonly string[];
}

export type RepairAction =
  | 'create_identity_row'
  | 'set_null'
  | 'delete_rows'
  | 'check_keys'
  | 'add_column'
  | 'add_key'
  | 'add_index'
  | 'validate_key'
  | 'make_deferrable'
  | 'recreate_key'
  | 'enable_trigger';

/** Rows a step changes, so a backup can restore them: `SELECT ... FROM table AS alias WHERE where`. */
export interface StepRows {
  readonly alias: string;
  readonly where: string;
  readonly params: readonly unknown[];
  /** For `set_null`: the columns the step changes. */
  readonly columns?: readonly string[];
}

export interface RepairStep {
  /** 1-based, in the order the steps run. */
  readonly number: number;
  readonly action: RepairAction;
  readonly table: string;
  /** The column the step is about: the one `add_column` adds, or the identity table's key. */
  readonly column?: string;
  /** What the step does, in words. */
  readonly description: string;
  /** The statement, with placeholders for `params`. */
  readonly sql: string;
  readonly params: readonly unknown[];
  /** The same statement with its values written out, for reading. */
  readonly display: string;
  readonly rows?: StepRows;
  /** Postgres: statements that undo this step (written into the backup), and ones to run after every row is back. */
  readonly undo?: { readonly sql: readonly string[]; readonly atEnd?: readonly string[] };
  /** Rows the diagnosis expects the step to change, when it knows. */
  readonly expectedRows?: number;
}

/** Something the doctor does not repair itself, and what to run instead. */
export interface ManualAction {
  readonly code: FindingCode;
  /** What it is about: `table posts`, `key posts.owner_id -> users.id`. */
  readonly subject: string;
  /** What to do: `run \`dovetail migrate\``. */
  readonly todo: string;
}

export interface RepairPlan {
  readonly dialect: 'sqlite' | 'postgres';
  readonly steps: readonly RepairStep[];
  readonly manual: readonly ManualAction[];
}

export interface DoctorReport {
  /** The database examined, with any password hidden. */
  readonly target: string;
  readonly kind: 'sqlite' | 'postgres';
  /** True when no finding is a problem. */
  readonly healthy: boolean;
  readonly findings: readonly Finding[];
  readonly plan?: RepairPlan;
  readonly summary: {
    /** Where the expected tables and keys came from. */
    readonly expected: 'schema' | 'device_snapshot' | 'none';
    readonly tables: number;
    readonly keysChecked: number;
    readonly rowsChecked: number;
    readonly orphans: number;
  };
}

export type DoctorProgress =
  | { readonly phase: 'read'; readonly message: string }
  | { readonly phase: 'scan'; readonly table: string; readonly key: string; readonly rowsChecked: number; readonly rowsEstimate: number }
  | { readonly phase: 'backup'; readonly path: string }
  | { readonly phase: 'repair'; readonly step: number; readonly steps: number; readonly description: string };

export interface DiagnoseOptions {
  /** The app's schema module; without it, the keys the database declares are checked. */
  readonly schema?: Schema;
  /** How long the server keeps deletions for offline devices. Default 30 days. */
  readonly retentionMs?: number;
  /** Postgres: the schema holding Supabase-style `users` (default `auth`). */
  readonly authSchema?: string;
  /** Orphan rows listed per key (all are counted). Default 10,000. */
  readonly maxListed?: number;
  readonly onProgress?: (event: DoctorProgress) => void;
  /** For tests: the current time in ms. */
  readonly now?: () => number;
}

export interface RepairOptions extends DiagnoseOptions {
  /** Apply the plan; without it the plan is only returned. */
  readonly yes: boolean;
  /** Postgres: where the backup SQL file goes (default: the current directory). */
  readonly backupDir?: string;
}

export interface RepairStepResult {
  readonly number: number;
  readonly action: RepairAction;
  readonly description: string;
  /** Rows the step changed (0 for steps that change no rows). */
  readonly rows: number;
}

export interface RepairResult {
  readonly plan: RepairPlan;
  /** True when every step ran and was committed. */
  readonly applied: boolean;
  /** The backup written before anything changed. */
  readonly backup?: string;
  readonly steps: readonly RepairStepResult[];
  /** The step that failed (everything was rolled back). */
  readonly failed?: { readonly step: number; readonly description: string; readonly error: string };
  /** The diagnosis after the repair. */
  readonly after?: DoctorReport;
}
