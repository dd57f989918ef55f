import type { SqliteConnection } from '../driver.js';
import { OUTBOX } from '../engine-tables.js';
import type { NormalizeResult, OutboxEntry } from './normalize.js';
import { decodeOps, encodeOps } from './ops-codec.js';

interface OutboxRow {
  [key: string]: string | number;
  seq: number;
  id: string;
  name: string;
  ops: string;
  sent: number;
  merged_from: string;
}

export const APPEND_SQL = `INSERT INTO ${OUTBOX} (id, name, ops, created_at) VALUES (?, ?, ?, ?)`;

/** Every pending mutation, oldest first. */
export async function readOutbox(conn: SqliteConnection): Promise<OutboxEntry[]> {
  const rows = await conn.all<OutboxRow>(`SELECT seq, id, name, ops, sent, merged_from FROM ${OUTBOX} ORDER BY seq`);
  return rows.map((r) => ({
    seq: r.seq,
    id: r.id,
    name: r.name,
    ops: decodeOps(r.ops),
    sent: r.sent !== 0,
    mergedFrom: JSON.parse(r.merged_from) as string[],
  }));
}

export async function outboxDepth(conn: SqliteConnection): Promise<number> {
  const rows = await conn.all<{ n: number }>(`SELECT count(*) AS n FROM ${OUTBOX}`);
  return rows[0]?.n ?? 0;
}

/** Writes a normalization result back, inside the caller's transaction. */
export async function writeNormalized(tx: SqliteConnection, before: readonly OutboxEntry[], result: NormalizeResult): Promise<void> {
  const old = new Map(before.map((e) => [e.id, e]));
  for (const r of result.removed) await tx.run(`DELETE FROM ${OUTBOX} WHERE id = ?`, [r.id]);
  for (const e of result.entries) {
    const prev = old.get(e.id);
    if (prev && prev.ops === e.ops && prev.mergedFrom === e.mergedFrom) continue;
    await tx.run(`UPDATE ${OUTBOX} SET ops = ?, merged_from = ? WHERE id = ? AND sent = 0`, [encodeOps(e.ops), JSON.stringify(e.mergedFrom), e.id]);
  }
}
