import type { Op, RowValues } from '@dovetail/protocol';
import { hasKeysInOrder } from '../write/row-keys.js';

/**
 * How a mutation's ops are stored (in the outbox and the rejected log):
 * JSON, with each run of inserts (or upserts) into one table that set the
 * same columns folded into one entry that names the columns once:
 *
 *   {"pack":"insert","table":"tasks","columns":["id","title"],"rows":[["t1","a"],["t2","b"]]}
 *
 * A bulk import's entry is then about half as large, and quicker to write
 * and to read. Anything else is stored as the op itself, so entries written
 * before packing existed read the same.
 */
interface Packed {
  readonly pack: 'insert' | 'upsert';
  readonly table: string;
  readonly columns: readonly string[];
  readonly rows: readonly (readonly unknown[])[];
}

/** Runs shorter than this are stored op by op. */
const MIN_RUN = 4;

export function encodeOps(ops: readonly Op[]): string {
  const out: (Op | Packed)[] = [];
  let i = 0;
  while (i < ops.length) {
    const op = ops[i] as Op;
    const columns = op.op === 'insert' || op.op === 'upsert' ? definedKeys(op.row) : undefined;
    if (columns !== undefined && (op.op === 'insert' || op.op === 'upsert')) {
      const rows: unknown[][] = [];
      let j = i;
      for (; j < ops.length; j++) {
        const next = ops[j] as Op;
        if (next.op !== op.op || next.table !== op.table) break;
        if (!hasKeysInOrder(next.row, columns)) break;
        rows.push(columns.map((c) => next.row[c]));
      }
      if (rows.length >= MIN_RUN) {
        out.push({ pack: op.op, table: op.table, columns, rows });
        i = j;
        continue;
      }
    }
    out.push(op);
    i++;
  }
  return JSON.stringify(out);
}

export function decodeOps(text: string): Op[] {
  const stored = JSON.parse(text) as (Op | Packed)[];
  if (!stored.some(isPacked)) return stored as Op[];
  const out: Op[] = [];
  for (const entry of stored) {
    if (!isPacked(entry)) {
      out.push(entry);
      continue;
    }
    for (const values of entry.rows) {
      const row: Record<string, unknown> = {};
      for (let k = 0; k < entry.columns.length; k++) row[entry.columns[k] as string] = values[k];
      out.push({ op: entry.pack, table: entry.table, row: row as RowValues });
    }
  }
  return out;
}

function isPacked(entry: Op | Packed): entry is Packed {
  return 'pack' in entry;
}

/** The row's keys in order, or undefined when a value is undefined (JSON would drop it from an object but not from an array). */
function definedKeys(row: RowValues): string[] | undefined {
  const keys: string[] = [];
  for (const key in row) {
    if (row[key] === undefined) return undefined;
    keys.push(key);
  }
  return keys;
}
