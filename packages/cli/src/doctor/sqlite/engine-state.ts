import { basename } from 'node:path';
import { databaseFileName, ENGINE_META_TABLE, ENGINE_OUTBOX_TABLE, ENGINE_REJECTED_TABLE, MetaKey } from '@dovetail/client';
import { quoteIdent as q } from '@dovetail/schema';
import { cursorSnapshot } from '@dovetail/server';
import type { Expected } from '../expected.js';
import { ageText, plural, shown } from '../format.js';
import type { IdentityToCreate } from '../plan-rows.js';
import type { DbShape } from '../shape.js';
import type { EngineStateDetails, Finding } from '../types.js';
import type { SqliteHandle } from './connection.js';

/**
 * The device engine's tables and meta keys, as the engine exports them.
 * Read only; the doctor never writes engine state.
 */
export const DEVICE_META = ENGINE_META_TABLE;
const OUTBOX = ENGINE_OUTBOX_TABLE;
const REJECTED = ENGINE_REJECTED_TABLE;

export interface DeviceState {
  readonly isDevice: boolean;
  readonly owner: string | undefined;
  /** The engine's stored schema snapshot, for checks without a schema module. */
  readonly snapshot: string | undefined;
  readonly schemaVersion: number | undefined;
}

export function readDeviceMeta(db: SqliteHandle, shape: DbShape): DeviceState {
  if (!shape.tables.has(DEVICE_META)) return { isDevice: false, owner: undefined, snapshot: undefined, schemaVersion: undefined };
  const meta = new Map((db.prepare(`SELECT key, value FROM ${DEVICE_META}`).all() as { key: string; value: string }[]).map((r) => [r.key, r.value]));
  const version = meta.get(MetaKey.SchemaVersion);
  return { isDevice: true, owner: meta.get(MetaKey.Owner), snapshot: meta.get(MetaKey.SchemaSnapshot), schemaVersion: version === undefined ? undefined : Number(version) };
}

/** Owner, outbox, refused mutations, cursor and migration state of a device file. */
export function deviceEngineState(db: SqliteHandle, path: string, shape: DbShape, now: number, retentionMs: number): Finding {
  const meta = new Map((db.prepare(`SELECT key, value FROM ${DEVICE_META}`).all() as { key: string; value: string }[]).map((r) => [r.key, r.value]));
  const notes: string[] = [];
  const warnings: string[] = [];
  const owner = meta.get(MetaKey.Owner) ?? null;
  if (owner === null) notes.push('no user has been bound to this file yet');
  else if (basename(path) !== databaseFileName(owner)) {
    warnings.push(`the file belongs to ${shown(owner)} but is named ${basename(path)}; the engine opens that user's database as ${databaseFileName(owner)}, so this file is not the one the app uses for them`);
  }
  let outboxDepth: number | undefined;
  let oldestPendingAgeMs: number | null = null;
  if (shape.tables.has(OUTBOX)) {
    const o = db.prepare(`SELECT count(*) AS n, min(created_at) AS oldest FROM ${OUTBOX}`).get() as { n: number; oldest: number | null };
    outboxDepth = o.n;
    oldestPendingAgeMs = o.oldest === null ? null : Math.max(0, now - o.oldest);
    if (oldestPendingAgeMs !== null && oldestPendingAgeMs > retentionMs) warnings.push(`the oldest pending mutation was made ${ageText(oldestPendingAgeMs)} ago and has not been confirmed by the server`);
  } else warnings.push(`the engine table ${OUTBOX} is missing; the engine recreates it on the next open`);
  let rejected: number | undefined;
  if (shape.tables.has(REJECTED)) rejected = (db.prepare(`SELECT count(*) AS n FROM ${REJECTED}`).get() as { n: number }).n;
  const cursor = meta.get(MetaKey.Cursor);
  const snapshot = cursor === undefined ? null : (cursorSnapshot(cursor) ?? null);
  const lastPull = Number(meta.get(MetaKey.LastPullAt));
  const cursorAgeMs = cursor !== undefined && Number.isFinite(lastPull) ? Math.max(0, now - lastPull) : null;
  if (cursor === undefined) notes.push('no pull yet (no cursor): the first sync pulls everything');
  else if (snapshot === null) warnings.push('the cursor is not one a Dovetail server issued; the next pull is answered with cursor_expired and the device resyncs');
  else if (cursorAgeMs !== null && cursorAgeMs > retentionMs)
    warnings.push(`the last pull was ${ageText(cursorAgeMs)} ago, longer than the ${ageText(retentionMs)} retention: the next pull is answered with cursor_expired and the device resyncs from scratch (its outbox is kept)`);
  else if (cursorAgeMs !== null) notes.push(`last pull ${ageText(cursorAgeMs)} ago (retention ${ageText(retentionMs)})`);
  else notes.push(`the cursor is at server snapshot ${snapshot}; this file does not record when it last pulled (written by an older engine), so its age against the ${ageText(retentionMs)} retention is unknown`);
  if (meta.get(MetaKey.NeedsReset) === '1') notes.push('the last pull could not be applied: the next pull starts over with a full resync');
  const target = meta.get(MetaKey.MigrationTarget);
  if (target !== undefined) warnings.push(`a migration to schema version ${target} did not finish; the app finishes it the next time it opens the file`);
  const version = meta.get(MetaKey.SchemaVersion);
  const details: EngineStateDetails = {
    side: 'device',
    owner,
    ...(outboxDepth === undefined ? {} : { outboxDepth, oldestPendingAgeMs }),
    ...(rejected === undefined ? {} : { rejected }),
    cursorSnapshot: snapshot,
    cursorAgeKnown: cursorAgeMs !== null,
    cursorAgeMs,
    schemaVersion: version === undefined ? null : Number(version),
    retentionMs,
    notes: [...warnings, ...notes],
  };
  const pending = outboxDepth === undefined ? '' : `${plural(outboxDepth, 'pending mutation')}${oldestPendingAgeMs === null ? '' : ` (oldest ${ageText(oldestPendingAgeMs)} old)`}, `;
  const summary = `device file of ${owner === null ? 'no user yet' : shown(owner)}: ${pending}${plural(rejected ?? 0, 'refused mutation')} in the rejected log, schema version ${version ?? 'unknown'}`;
  return { code: 'engine_state', severity: warnings.length > 0 ? 'warning' : 'info', message: [summary, ...warnings, ...notes].join('; '), details };
}

/** S4 on a device: the owner's own identity row must exist once the user is bound (G14). */
export function deviceIdentity(db: SqliteHandle, shape: DbShape, expected: Expected | undefined, owner: string | undefined): { finding?: Finding; create?: IdentityToCreate } {
  const identity = expected?.identity;
  if (owner === undefined || !identity || !shape.tables.get(identity.table)?.columns.has(identity.column)) return {};
  const found = db.prepare(`SELECT 1 FROM ${q(identity.table)} WHERE ${q(identity.column)} = ?`).all(owner);
  if (found.length > 0) return {};
  return {
    finding: {
      code: 'missing_identity_row',
      severity: 'problem',
      message: `the device's owner ${shown(owner)} has no identity row in ${identity.table}, so each of their writes that points at it breaks a key; \`dovetail doctor --fix\` creates it with the schema's defaults (the app's next bind would too)`,
      details: { table: identity.table, column: identity.column, userIds: [owner], count: 1, source: 'device_owner' },
    },
    create: { table: identity.table, column: identity.column, users: [{ id: owner }] },
  };
}
