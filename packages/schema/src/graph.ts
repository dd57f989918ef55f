import type { KeyGraph, TableModel } from './model.js';

/**
 * Orders tables parents-first. Tables in a key cycle are grouped (Tarjan's
 * strongly connected components) and kept in declaration order inside the
 * group; everything else follows the keys, ties in declaration order, so the
 * result is deterministic.
 */
export function buildKeyGraph(tables: readonly TableModel[]): KeyGraph {
  const names = tables.map((t) => t.name);
  const parents = new Map<string, Set<string>>();
  for (const t of tables) {
    parents.set(t.name, new Set(t.foreignKeys.map((fk) => fk.refTable).filter((p) => p !== t.name)));
  }

  const components = stronglyConnected(names, parents);
  const componentOf = new Map<string, number>();
  components.forEach((members, i) => members.forEach((m) => componentOf.set(m, i)));

  // Kahn's algorithm over components, smallest declaration index first.
  const firstIndex = components.map((members) => Math.min(...members.map((m) => names.indexOf(m))));
  const pending = new Map<number, Set<number>>();
  components.forEach((members, i) => {
    const deps = new Set<number>();
    for (const m of members) for (const p of parents.get(m) ?? []) {
      const c = componentOf.get(p);
      if (c !== undefined && c !== i) deps.add(c);
    }
    pending.set(i, deps);
  });
  const order: string[] = [];
  while (pending.size > 0) {
    const ready = [...pending.entries()].filter(([, deps]) => deps.size === 0).map(([i]) => i);
    ready.sort((a, b) => (firstIndex[a] ?? 0) - (firstIndex[b] ?? 0));
    const next = ready[0];
    if (next === undefined) throw new Error('key graph: components did not form a DAG');
    pending.delete(next);
    for (const deps of pending.values()) deps.delete(next);
    const members = [...(components[next] ?? [])].sort((a, b) => names.indexOf(a) - names.indexOf(b));
    order.push(...members);
  }

  return {
    order,
    selfReferencing: tables.filter((t) => t.selfReferencing).map((t) => t.name),
    cycles: components
      .filter((c) => c.length > 1)
      .map((c) => [...c].sort((a, b) => names.indexOf(a) - names.indexOf(b))),
  };
}

function stronglyConnected(nodes: readonly string[], edges: ReadonlyMap<string, ReadonlySet<string>>): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const result: string[][] = [];

  const visit = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter);
    counter++;
    stack.push(v);
    onStack.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v) ?? 0, low.get(w) ?? 0));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v) ?? 0, index.get(w) ?? 0));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string | undefined;
      do {
        w = stack.pop();
        if (w === undefined) break;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      result.push(component);
    }
  };
  for (const n of nodes) if (!index.has(n)) visit(n);
  return result;
}
