#!/usr/bin/env node
// `pnpm bench [filter...]`: runs every package's bench/index.ts (one process each, sequentially so they do not
// compete for the two cores) and writes bench/results.json: { "pkg.figure": { value, unit, note } }.
// With filters (substrings of package names) only matching packages run, and their figures replace theirs in
// the existing results.json; the others' figures stay. Exits 1 when a bench fails, reports a malformed figure,
// or a filter matches no package.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const only = process.argv.slice(2);
const resultsFile = join('bench', 'results.json');
const previous = only.length && existsSync(resultsFile) ? JSON.parse(readFileSync(resultsFile, 'utf8')) : {};
const results = {};
const ran = [];
let failures = 0;

/** A figure is { value: finite number, unit: string, note: string }. */
function badFigure(key, v) {
  if (!key.includes('.')) return `figure '${key}' is not named 'pkg.figure'`;
  if (!v || typeof v !== 'object') return `figure '${key}' is not an object`;
  if (typeof v.value !== 'number' || !Number.isFinite(v.value)) return `figure '${key}' has no finite numeric value`;
  if (typeof v.unit !== 'string' || typeof v.note !== 'string' || !v.note) return `figure '${key}' needs a unit and a note`;
  return null;
}

for (const root of ['packages', 'packages/devices']) {
  if (!existsSync(root)) continue;
  for (const name of readdirSync(root).sort()) {
    const dir = join(root, name);
    if (!existsSync(join(dir, 'bench', 'index.ts'))) continue;
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).name;
    if (only.length && !only.some((o) => pkg.includes(o))) continue;
    ran.push(pkg);
    process.stderr.write(`bench ${pkg} ...\n`);
    const run = spawnSync('pnpm', ['exec', 'tsx', '--conditions=@vfio-ts/source', 'bench/index.ts'], {
      cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 << 20,
    });
    const line = (run.stdout ?? '').split('\n').find((l) => l.startsWith('BENCH_RESULTS '));
    if (run.status !== 0 || !line) {
      failures++;
      process.stderr.write(`bench ${pkg} failed (exit ${run.status}${line ? '' : ', no BENCH_RESULTS line: call report() from @vfio-ts/bench-kit'})\n${run.stdout ?? ''}`);
      continue;
    }
    const figures = JSON.parse(line.slice('BENCH_RESULTS '.length));
    for (const [key, v] of Object.entries(figures)) {
      const bad = badFigure(key, v);
      if (bad) { failures++; process.stderr.write(`bench ${pkg}: ${bad}\n`); continue; }
      results[key] = { value: v.value, unit: v.unit, note: v.note };
    }
  }
}
for (const o of only) {
  if (!ran.some((p) => p.includes(o))) { failures++; process.stderr.write(`bench: no package with a bench/index.ts matches '${o}'\n`); }
}

// A filtered run replaces only the figures of the packages it ran (their figures share the package's prefix).
const prefixes = ran.map((p) => `${p.replace(/^@vfio-ts\//, '')}.`);
const kept = Object.fromEntries(Object.entries(previous).filter(([k]) => !prefixes.some((p) => k.startsWith(p)) && !(k in results)));
const merged = Object.fromEntries(Object.entries({ ...kept, ...results }).sort(([a], [b]) => a.localeCompare(b)));
mkdirSync('bench', { recursive: true });
writeFileSync(resultsFile, JSON.stringify(merged, null, 2) + '\n');
const width = Math.max(10, ...Object.keys(results).map((k) => k.length));
for (const [k, v] of Object.entries(results)) {
  const value = Number.isInteger(v.value) ? v.value.toLocaleString('en-US') : v.value.toFixed(3);
  console.log(`${k.padEnd(width)}  ${value.padStart(12)} ${v.unit.padEnd(6)}  ${v.note}`);
}
console.log(`wrote ${resultsFile} (${Object.keys(results).length} figures from ${ran.length} packages${only.length ? `, ${Object.keys(merged).length} in all` : ''})`);
process.exit(failures ? 1 : 0);
