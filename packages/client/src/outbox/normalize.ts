import type { SchemaModel } from '@dovetail/schema';
import type { Op, RowValues } from '@dovetail/protocol';

/** A pending mutation as the outbox holds it. */
export interface OutboxEntry {
  readonly seq: number;
  readonly id: string;
  readonly name: string;
  readonly ops: readonly Op[];
  /** Sent at least once: the server may hold it, so it is never changed. */
  readonly sent: boolean;
  /** Ids of later mutations whose ops were folded into this one. */
  readonly mergedFrom: readonly string[];
}

export interface NormalizeResult {
  /** The surviving entries, in outbox order, with their new ops. */
  readonly entries: readonly OutboxEntry[];
  /** Entries left with no ops: their changes were folded elsewhere or cancelled out. */
  readonly removed: readonly { readonly id: string; readonly into: string | undefined }[];
  /** Whether anything changed. */
  readonly changed: boolean;
}

interface Slot {
  entry: number;
  op: Op;
  alive: boolean;
  readonly key: string;
  readonly table: string;
  /** Entries whose ops were folded into this slot. */
  absorbed: Set<number>;
}

interface Relations {
  readonly order: ReadonlyMap<string, number>;
  readonly ancestors: ReadonlyMap<string, ReadonlySet<string>>;
  readonly descendants: ReadonlyMap<string, ReadonlySet<string>>;
  readonly pk: ReadonlyMap<string, string>;
  readonly keys: ReadonlyMap<string, readonly { column: string; refTable: string }[]>;
  readonly selfReferencing: ReadonlySet<string>;
  /** Tables with a unique column besides the primary key. */
  readonly uniqueColumns: ReadonlySet<string>;
}

export function relationsOf(model: SchemaModel): Relations {
  const parents = new Map<string, Set<string>>();
  const children = new Map<string, Set<string>>();
  for (const t of model.tables) {
    parents.set(t.name, new Set());
    children.set(t.name, new Set());
  }
  for (const t of model.tables) {
    for (const fk of t.foreignKeys) {
      parents.get(t.name)?.add(fk.refTable);
      children.get(fk.refTable)?.add(t.name);
    }
  }
  const closure = (start: string, edges: Map<string, Set<string>>): Set<string> => {
    const seen = new Set<string>();
    const stack = [...(edges.get(start) ?? [])];
    while (stack.length > 0) {
      const t = stack.pop();
      if (t === undefined || seen.has(t)) continue;
      seen.add(t);
      stack.push(...(edges.get(t) ?? []));
    }
    return seen;
  };
  return {
    order: new Map(model.graph.order.map((t, i) => [t, i])),
    ancestors: new Map(model.tables.map((t) => [t.name, closure(t.name, parents)])),
    descendants: new Map(model.tables.map((t) => [t.name, closure(t.name, children)])),
    pk: new Map(model.tables.map((t) => [t.name, t.primaryKey])),
    keys: new Map(model.tables.map((t) => [t.name, t.foreignKeys.map((fk) => ({ column: fk.column, refTable: fk.refTable }))])),
    selfReferencing: new Set(model.graph.selfReferencing),
    uniqueColumns: new Set(model.tables.filter((t) => t.columns.some((c) => c.unique && !c.primaryKey)).map((t) => t.name)),
  };
}

const rowKey = (table: string, id: unknown): string => `${table}\u0000${String(id)}`;

function idOf(op: Op, rel: Relations): unknown {
  return op.op === 'insert' || op.op === 'upsert' ? op.row[rel.pk.get(op.table) ?? 'id'] : op.id;
}

/**
 * Normalizes the outbox. Pure: state in, state out.
 *
 * Invariants (each checked by the property test):
 * 1. Entries already sent are never changed, and nothing moves before them.
 * 2. Applying the result gives the same rows as applying the input, on any
 *    server state where the input applies.
 * 3. Successive changes to one row merge (insert or upsert + update -> insert or upsert,
 *    update + update -> update, update + delete -> delete) and an insert
 *    followed by a delete cancels out, but only when no other op of those
 *    mutations or of the ones between could observe the difference: an op
 *    on a table the row points at (directly or further up) blocks a merge,
 *    for a cancel also an op on a table below it, and another row of the
 *    same table when the table has a unique column.
 * 4. Within a mutation, inserts and updates come parents first and deletes
 *    children first; the relative order of inserts and deletes is kept,
 *    because a cascade makes it matter.
 * 5. Mutation order is kept; an entry that ends up empty is removed.
 */
export function normalizeOutbox(entries: readonly OutboxEntry[], model: SchemaModel, rel: Relations = relationsOf(model)): NormalizeResult {
  // A fold can unblock another (the op in the way was folded away), so
  // passes repeat until nothing changes; each pass only removes ops.
  let current = entries;
  const removed: { id: string; into: string | undefined }[] = [];
  let changed = false;
  for (let pass = 0; pass < 100; pass++) {
    const r = normalizePass(current, rel);
    if (!r.changed) break;
    changed = true;
    current = r.entries;
    removed.push(...r.removed);
  }
  const gone = new Map(removed.map((r) => [r.id, r.into]));
  const resolve = (into: string | undefined): string | undefined => {
    let target = into;
    for (let hops = 0; target !== undefined && gone.has(target) && hops < removed.length; hops++) target = gone.get(target);
    return target;
  };
  return { entries: current, removed: removed.map((r) => ({ id: r.id, into: resolve(r.into) })), changed };
}

function normalizePass(entries: readonly OutboxEntry[], rel: Relations): NormalizeResult {
  let lastSent = -1;
  entries.forEach((e, i) => {
    if (e.sent) lastSent = i;
  });
  const frozen = entries.slice(0, lastSent + 1);
  const open = entries.slice(lastSent + 1);

  // Parents first inside each mutation before anything else, so that a
  // row's children can only follow the op that creates it.
  const slots: Slot[] = [];
  const entryStart: number[] = [];
  const entryEnd: number[] = [];
  open.forEach((e, entry) => {
    entryStart[entry] = slots.length;
    for (const op of orderWithinMutation(e.ops, rel)) slots.push({ entry, op, alive: true, key: rowKey(op.table, idOf(op, rel)), table: op.table, absorbed: new Set() });
    entryEnd[entry] = slots.length;
  });

  // Whether folding slot `a` into slot `b` (same row) could be observed by
  // another op of the mutations involved or of those in between. Keys are
  // checked at COMMIT, so every op of both mutations counts, not only the
  // ones between the two.
  const blocked = (a: number, b: number, table: string, strict: boolean): boolean => {
    const up = rel.ancestors.get(table);
    const down = rel.descendants.get(table);
    const from = entryStart[slots[a]?.entry ?? 0] ?? 0;
    const to = entryEnd[slots[b]?.entry ?? 0] ?? slots.length;
    for (let i = from; i < to; i++) {
      const s = slots[i];
      if (i === a || i === b || !s?.alive) continue;
      if (up?.has(s.table) || (strict && down?.has(s.table))) return true;
      // Other rows of the same table matter only through a unique column
      // (or a self-reference, which `up` already covers).
      if (s.table === table && rel.uniqueColumns.has(table)) return true;
    }
    return false;
  };

  const latest = new Map<string, number>();
  let changed = false;
  for (let b = 0; b < slots.length; b++) {
    const B = slots[b];
    if (!B) continue;
    const a = latest.get(B.key);
    const A = a === undefined ? undefined : slots[a];
    latest.set(B.key, b);
    if (a === undefined || !A?.alive) continue;
    const x = A.op;
    const y = B.op;
    const fold = (): void => {
      A.absorbed.add(B.entry);
      for (const e of B.absorbed) A.absorbed.add(e);
      B.alive = false;
      latest.set(B.key, a);
      changed = true;
    };
    if ((x.op === 'insert' || x.op === 'upsert') && y.op === 'update' && !blocked(a, b, B.table, false)) {
      A.op = { ...x, row: merge(x.row, y.set) };
      fold();
    } else if (x.op === 'update' && y.op === 'update' && !blocked(a, b, B.table, false)) {
      A.op = { ...x, set: merge(x.set, y.set) };
      fold();
    } else if (x.op === 'insert' && y.op === 'delete' && !blocked(a, b, B.table, true)) {
      A.alive = false;
      B.alive = false;
      latest.delete(B.key);
      changed = true;
    } else if (x.op === 'update' && y.op === 'delete' && !blocked(a, b, B.table, false)) {
      A.alive = false;
      for (const e of A.absorbed) B.absorbed.add(e);
      changed = true;
    }
  }

  const result: OutboxEntry[] = [...frozen];
  const removed: { id: string; into: string | undefined }[] = [];
  const foldedInto = new Map<number, number>();
  for (const s of slots) if (s.alive) for (const e of s.absorbed) if (e !== s.entry) foldedInto.set(e, s.entry);
  open.forEach((e, entry) => {
    const live = slots.filter((s) => s.entry === entry && s.alive).map((s) => s.op);
    if (live.length === 0) {
      const into = foldedInto.get(entry);
      removed.push({ id: e.id, into: into === undefined ? undefined : open[into]?.id });
      changed = true;
      return;
    }
    const ops = orderWithinMutation(live, rel);
    if (!changed && ops.some((op, i) => op !== e.ops[i])) changed = true;
    const merged = new Set(e.mergedFrom);
    for (const s of slots) if (s.alive && s.entry === entry) for (const other of s.absorbed) if (other !== entry) merged.add(open[other]?.id ?? '');
    merged.delete('');
    result.push({ ...e, ops, mergedFrom: [...merged] });
  });
  return { entries: result, removed, changed };
}

function merge(base: RowValues, patch: RowValues): RowValues {
  return { ...base, ...patch };
}

/**
 * Orders the ops of one mutation: parents first among inserts and updates,
 * children first among deletes. Keys are checked at COMMIT, so only two
 * things make order matter, and both are kept: ops on the same row, and a
 * delete (whose cascade or set-null reaches its table and the tables below)
 * against a write to one of those tables. A write is moved ahead of deletes
 * that cannot reach it, so it can join the writes before them.
 */
export function orderWithinMutation(ops: readonly Op[], rel: Relations): readonly Op[] {
  if (alreadyOrdered(ops, rel)) return ops;
  const runs: { deleting: boolean; ops: Op[] }[] = [];
  for (const op of ops) {
    const deleting = op.op === 'delete';
    const last = runs.at(-1);
    if (last?.deleting === deleting) last.ops.push(op);
    else runs.push({ deleting, ops: [op] });
  }
  if (runs.length > 1) hoistWrites(runs, rel);
  return runs.flatMap((r) => (r.deleting ? sortDeletes(r.ops, rel) : sortWrites(r.ops, rel)));
}

/** The common case, checked in one pass: nothing to reorder (returns the input itself). */
function alreadyOrdered(ops: readonly Op[], rel: Relations): boolean {
  const first = ops[0];
  if (!first) return true;
  const deleting = first.op === 'delete';
  let last = deleting ? Infinity : -Infinity;
  for (const op of ops) {
    if ((op.op === 'delete') !== deleting || rel.selfReferencing.has(op.table)) return false;
    const rank = rel.order.get(op.table) ?? 0;
    if (deleting ? rank > last : rank < last) return false;
    last = rank;
  }
  return true;
}

function hoistWrites(runs: { deleting: boolean; ops: Op[] }[], rel: Relations): void {
  const reach = runs.map((r) => {
    if (!r.deleting) return undefined;
    const tables = new Set<string>();
    for (const d of r.ops) {
      tables.add(d.table);
      for (const t of rel.descendants.get(d.table) ?? []) tables.add(t);
    }
    return tables;
  });
  const rowsOf = runs.map((r) => new Set(r.ops.map((op) => rowKey(op.table, idOf(op, rel)))));
  for (let k = 2; k < runs.length; k++) {
    const run = runs[k];
    if (!run || run.deleting) continue;
    const stay: Op[] = [];
    for (const op of run.ops) {
      const key = rowKey(op.table, idOf(op, rel));
      let target = k;
      for (let m = k - 1; m >= 0; m--) {
        const blocking = reach[m];
        if (blocking) {
          if (blocking.has(op.table) || rowsOf[m]?.has(key)) break;
          continue;
        }
        target = m;
        if (rowsOf[m]?.has(key)) break;
      }
      if (target === k) stay.push(op);
      else {
        runs[target]?.ops.push(op);
        rowsOf[target]?.add(key);
      }
    }
    run.ops = stay;
  }
  for (let i = runs.length - 1; i >= 0; i--) if (runs[i]?.ops.length === 0) runs.splice(i, 1);
}

function stableSortBy<T>(items: readonly T[], key: (t: T) => number): T[] {
  return items
    .map((item, index) => ({ item, index, k: key(item) }))
    .sort((a, b) => a.k - b.k || a.index - b.index)
    .map((x) => x.item);
}

function sortDeletes(run: readonly Op[], rel: Relations): Op[] {
  return stableSortBy(run, (op) => -(rel.order.get(op.table) ?? 0));
}

function sortWrites(run: readonly Op[], rel: Relations): Op[] {
  const byTable = stableSortBy(run, (op) => rel.order.get(op.table) ?? 0);
  // Rows of a self-referencing table: a row's parent, when written in the
  // same run, goes first (depth-first, otherwise in the original order).
  const out: Op[] = [];
  let i = 0;
  while (i < byTable.length) {
    const table = byTable[i]?.table ?? "";
    let j = i;
    while (j < byTable.length && byTable[j]?.table === table) j++;
    const group = byTable.slice(i, j);
    out.push(...(rel.selfReferencing.has(table) ? parentsFirst(group, rel) : group));
    i = j;
  }
  return out;
}

function parentsFirst(group: readonly Op[], rel: Relations): Op[] {
  const table = group[0]?.table ?? '';
  const selfKeys = (rel.keys.get(table) ?? []).filter((k) => k.refTable === table).map((k) => k.column);
  const ids = group.map((op) => String(idOf(op, rel)));
  const creator = new Map<string, number>();
  const previous: (number | undefined)[] = [];
  const lastOf = new Map<string, number>();
  group.forEach((op, i) => {
    const id = ids[i] ?? '';
    if ((op.op === 'insert' || op.op === 'upsert') && !creator.has(id)) creator.set(id, i);
    previous.push(lastOf.get(id));
    lastOf.set(id, i);
  });
  const state = new Array<0 | 1 | 2>(group.length).fill(0);
  const out: Op[] = [];
  const visit = (i: number): void => {
    if (state[i] !== 0) return;
    state[i] = 1;
    const op = group[i];
    if (!op) return;
    // Earlier ops on the same row keep their place before this one.
    const prev = previous[i];
    if (prev !== undefined) visit(prev);
    const values = op.op === 'update' ? op.set : op.op === 'delete' ? {} : op.row;
    for (const col of selfKeys) {
      const v = values[col];
      const p = typeof v === 'string' && v !== ids[i] ? creator.get(v) : undefined;
      if (p !== undefined) visit(p);
    }
    state[i] = 2;
    out.push(op);
  };
  group.forEach((_, i) => visit(i));
  return out;
}
