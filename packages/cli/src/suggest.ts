/**
 * "Did you mean" suggestions for names typed on the command line.
 */

/** Edit distance (insertions, deletions, substitutions) between `a` and `b`, one row of memory. */
export function editDistance(a: string, b: string): number {
  if (a === b) return 0;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row.push(Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + cost));
    }
    prev = row;
  }
  return prev[b.length]!;
}

/**
 * The candidates closest to `query`, best first, at most `limit`. Case is ignored. A candidate containing the
 * query (or contained in it) always qualifies, since users often type a fragment (`map_dma`); otherwise the
 * edit distance must be small relative to the query's length.
 */
export function closeMatches(query: string, candidates: readonly string[], limit = 5): string[] {
  const q = query.toUpperCase();
  const scored: { name: string; score: number }[] = [];
  for (const name of candidates) {
    const n = name.toUpperCase();
    if (q.length > 0 && (n.includes(q) || q.includes(n))) {
      // Fragment matches rank first, shorter (tighter) candidates before longer ones.
      scored.push({ name, score: -1000 + Math.abs(n.length - q.length) });
      continue;
    }
    const d = editDistance(q, n);
    if (d <= Math.max(2, Math.floor(q.length / 3))) scored.push({ name, score: d });
  }
  scored.sort((x, y) => x.score - y.score || x.name.localeCompare(y.name));
  return scored.slice(0, limit).map((s) => s.name);
}
