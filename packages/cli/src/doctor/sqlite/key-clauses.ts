/**
 * Whether each key of a SQLite table is `DEFERRABLE INITIALLY DEFERRED`.
 * `PRAGMA foreign_key_list` does not say, so the table's `CREATE TABLE`
 * text (as `sqlite_master` keeps it, `ALTER TABLE ADD COLUMN` included) is
 * read: split into its column and constraint definitions, each key clause
 * followed to its end.
 */
export interface KeyClause {
  readonly columns: readonly string[];
  readonly refTable: string;
  readonly deferrable: boolean;
  readonly initiallyDeferred: boolean;
}

type Token = { readonly kind: 'word' | 'name' | 'punct' | 'string'; readonly text: string };

function tokenize(sql: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  const closeOf: Record<string, string> = { '"': '"', '`': '`', '[': ']' };
  while (i < sql.length) {
    const ch = sql[i] ?? '';
    if (/\s/.test(ch)) i++;
    else if (sql.startsWith('--', i)) i = sql.includes('\n', i) ? sql.indexOf('\n', i) + 1 : sql.length;
    else if (sql.startsWith('/*', i)) i = sql.includes('*/', i) ? sql.indexOf('*/', i) + 2 : sql.length;
    else if (ch in closeOf || ch === "'") {
      const close = closeOf[ch] ?? "'";
      let text = '';
      let j = i + 1;
      while (j < sql.length) {
        if (sql[j] === close && sql[j + 1] === close && close !== ']') {
          text += close;
          j += 2;
        } else if (sql[j] === close) break;
        else text += sql[j++] ?? '';
      }
      out.push({ kind: ch === "'" ? 'string' : 'name', text });
      i = j + 1;
    } else if (/[A-Za-z0-9_$]/.test(ch)) {
      const m = /^[A-Za-z0-9_$]+/.exec(sql.slice(i))?.[0] ?? ch;
      out.push({ kind: 'word', text: m });
      i += m.length;
    } else {
      out.push({ kind: 'punct', text: ch });
      i++;
    }
  }
  return out;
}

const isWord = (t: Token | undefined, w: string): boolean => t?.kind === 'word' && t.text.toUpperCase() === w;

/** The table body's definitions, split at commas outside parentheses. */
function definitions(tokens: Token[]): Token[][] {
  const start = tokens.findIndex((t) => t.kind === 'punct' && t.text === '(');
  const defs: Token[][] = [[]];
  let depth = 0;
  for (const t of tokens.slice(start + 1)) {
    if (t.kind === 'punct' && t.text === '(') depth++;
    if (t.kind === 'punct' && t.text === ')') {
      if (depth === 0) break;
      depth--;
    }
    if (depth === 0 && t.kind === 'punct' && t.text === ',') defs.push([]);
    else defs[defs.length - 1]?.push(t);
  }
  return defs.filter((d) => d.length > 0);
}

/** Names inside the parentheses that start at `at`. */
function nameList(def: Token[], at: number): string[] {
  const names: string[] = [];
  for (let i = at + 1; i < def.length && !(def[i]?.kind === 'punct' && def[i]?.text === ')'); i++) {
    const t = def[i];
    if (t && t.kind !== 'punct') names.push(t.text);
  }
  return names;
}

export function keyClauses(createTable: string): KeyClause[] {
  const out: KeyClause[] = [];
  for (let def of definitions(tokenize(createTable))) {
    if (isWord(def[0], 'CONSTRAINT')) def = def.slice(2);
    let columns: string[];
    if (isWord(def[0], 'FOREIGN')) {
      const open = def.findIndex((t) => t.kind === 'punct' && t.text === '(');
      columns = nameList(def, open);
    } else if (['PRIMARY', 'UNIQUE', 'CHECK'].some((w) => isWord(def[0], w))) continue;
    else columns = def[0] ? [def[0].text] : [];
    const refs = def.flatMap((t, i) => (isWord(t, 'REFERENCES') ? [i] : []));
    refs.forEach((at, n) => {
      const clause = def.slice(at + 2, refs[n + 1] ?? def.length);
      let deferrable = false;
      let initiallyDeferred = false;
      clause.forEach((t, i) => {
        if (isWord(t, 'DEFERRABLE')) deferrable = !isWord(clause[i - 1], 'NOT');
        if (isWord(t, 'INITIALLY')) initiallyDeferred = isWord(clause[i + 1], 'DEFERRED');
      });
      out.push({ columns, refTable: def[at + 1]?.text ?? '', deferrable, initiallyDeferred: deferrable && initiallyDeferred });
    });
  }
  return out;
}
