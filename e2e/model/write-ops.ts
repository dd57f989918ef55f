import type { Database, Op } from '@dovetail/client';
import type { E2eSchema } from '../support/schema.js';
import { COMMENT_IDS, MAX_OPS, PROJECT_IDS, TASK_IDS } from './commands.js';
import type { WriteSpec } from './commands.js';

/**
 * The ops of a write. Indexes pick ids relative to what the device holds:
 * a row referred to (a parent, a row to change) is one the device has
 * when it has any (then the rest of the pool); a new row gets an id the
 * device does not have yet when there is one. The pools are small, so
 * devices and users still collide on ids.
 */
export async function writeOps(db: Database<E2eSchema>, u: string, w: WriteSpec, title: () => string, users: readonly string[]): Promise<Op[]> {
  const held = async (table: 'projects' | 'tasks' | 'comments', pool: readonly string[]): Promise<{ any: boolean; has: (id: string) => boolean; old: (i: number) => string; fresh: (i: number) => string }> => {
    const have = new Set((await db.query<{ id: string }>(`SELECT id FROM "${table}" ORDER BY id`)).map((r) => r.id));
    const existing = pool.filter((id) => have.has(id));
    const missing = pool.filter((id) => !have.has(id));
    const pick = (list: readonly string[]) => (i: number): string => list[i % list.length] as string;
    return { any: existing.length > 0, has: (id) => have.has(id), old: pick(existing.length > 0 ? existing : pool), fresh: pick(missing.length > 0 ? missing : pool) };
  };
  const P = await held('projects', PROJECT_IDS);
  const T = await held('tasks', TASK_IDS);
  const K = await held('comments', COMMENT_IDS);
  // A child written where the device holds no parent at all comes with a new parent in the same mutation.
  const projectOp = (i: number): Op => ({ op: 'insert', table: 'projects', row: { id: P.fresh(i), owner_id: u, title: title(), public: false } });
  const task = (i: number, p: string): Op => ({ op: 'insert', table: 'tasks', row: { id: T.fresh(i), project_id: p, parent_task_id: null, title: title() } });
  switch (w.k) {
    case 'project':
      return [{ op: w.op, table: 'projects', row: { id: (w.op === 'insert' ? P.fresh : P.old)(w.p), owner_id: u, title: title(), public: false } }];
    case 'task': {
      const parents: Op[] = P.any ? [] : [projectOp(w.p)];
      const p = P.any ? P.old(w.p) : P.fresh(w.p);
      return [...parents, { op: w.op, table: 'tasks', row: { id: (w.op === 'insert' ? T.fresh : T.old)(w.t), project_id: p, parent_task_id: w.parent < 0 ? null : T.old(w.parent), title: title() } }];
    }
    case 'comment': {
      const parents: Op[] = T.any ? [] : P.any ? [task(w.t, P.old(w.c))] : [projectOp(w.c), task(w.t, P.fresh(w.c))];
      const t = T.any ? T.old(w.t) : T.fresh(w.t);
      return [...parents, { op: w.op, table: 'comments', row: { id: (w.op === 'insert' ? K.fresh : K.old)(w.c), task_id: t, author_id: u, body: title() } }];
    }
    case 'subtasks': {
      const ops: Op[] = [];
      let parent: string;
      let project: string;
      if (T.any) {
        parent = T.old(w.t);
        const rows = await db.query<{ project_id: string }>('SELECT project_id FROM tasks WHERE id = ?', [parent]);
        project = rows[0]?.project_id ?? P.old(0);
      } else {
        project = P.any ? P.old(w.t) : P.fresh(w.t);
        if (!P.any) ops.push(projectOp(w.t));
        parent = T.fresh(w.t);
        ops.push(task(w.t, project));
      }
      const fresh = TASK_IDS.filter((id) => id !== parent && !T.has(id));
      for (let i = 0; i < w.depth; i++) {
        const id: string = fresh[i] ?? TASK_IDS[(w.t + i + 1) % TASK_IDS.length] ?? 't1';
        ops.push({ op: 'insert', table: 'tasks', row: { id, project_id: project, parent_task_id: parent, title: title() } });
        parent = id;
      }
      return w.childFirst ? ops.reverse() : ops;
    }
    case 'tree': {
      const [p, t] = [P.fresh(w.p), T.fresh(w.t)];
      const ops: Op[] = [
        { op: 'insert', table: 'projects', row: { id: p, owner_id: u, title: title(), public: false } },
        { op: 'insert', table: 'tasks', row: { id: t, project_id: p, parent_task_id: null, title: title() } },
        { op: 'insert', table: 'comments', row: { id: K.fresh(w.c), task_id: t, author_id: u, body: title() } },
      ];
      return w.childFirst ? ops.reverse() : ops;
    }
    case 'rename': {
      const id = (w.table === 'projects' ? P : w.table === 'tasks' ? T : K).old(w.id);
      return [{ op: 'update', table: w.table, id, set: w.table === 'comments' ? { body: title() } : { title: title() } }];
    }
    case 'move':
      return [{ op: 'update', table: 'tasks', id: T.old(w.t), set: { parent_task_id: w.parent < 0 ? null : T.old(w.parent), ...(w.p < 0 ? {} : { project_id: P.old(w.p) }) } }];
    case 'delete':
      return [{ op: 'delete', table: w.table, id: (w.table === 'projects' ? P : w.table === 'tasks' ? T : K).old(w.id) }];
    case 'deleteSelf':
      return [{ op: 'delete', table: 'users', id: u }];
    case 'bulk': {
      const p = P.fresh(w.p);
      const tasks = TASK_IDS.filter((id) => !T.has(id));
      return [
        { op: 'insert', table: 'projects', row: { id: p, owner_id: u, title: title(), public: false } },
        ...Array.from({ length: MAX_OPS }, (_, i): Op => ({ op: 'insert', table: 'tasks', row: { id: tasks[i] ?? `${p}-bulk-${i}`, project_id: p, parent_task_id: null, title: title() } })),
      ];
    }
    case 'foreign': {
      const others = users.filter((x) => x !== u);
      const owner = others[w.u % others.length] as string;
      return [{ op: 'insert', table: 'projects', row: { id: P.fresh(w.p), owner_id: owner, title: title(), public: false } }];
    }
  }
}
