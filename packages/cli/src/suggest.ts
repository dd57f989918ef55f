/**
 * The closest known word to a mistyped one (`--shema` → `--schema`), or
 * undefined when nothing is close enough to be a useful guess.
 */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = distance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  const bare = word.replace(/^-+/, '');
  const allowed = Math.max(1, Math.min(3, Math.floor(bare.length / 3)));
  if (best !== undefined && bestDistance <= allowed) return best;
  // A prefix (`--data` for `--database-url`) is a good guess too.
  return candidates.find((c) => bare.length >= 3 && c.replace(/^-+/, '').startsWith(bare));
}

/** Optimal string alignment distance: edits, where swapping two neighbours counts once. */
function distance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[] = new Array<number>(rows * cols).fill(0);
  const at = (i: number, j: number): number => d[i * cols + j] ?? 0;
  for (let i = 0; i < rows; i++) d[i * cols] = i;
  for (let j = 0; j < cols; j++) d[j] = j;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, at(i - 2, j - 2) + 1);
      d[i * cols + j] = v;
    }
  }
  return at(a.length, b.length);
}
