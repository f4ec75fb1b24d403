#!/usr/bin/env node
// `pnpm bench`: runs every package's bench/index.ts (one process each, sequentially so they do not
// compete for the two cores) and writes bench/results.json: { "pkg.figure": { value, unit, note } }.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const only = process.argv.slice(2);
const results = {};
let failures = 0;
for (const root of ['packages', 'packages/devices']) {
  if (!existsSync(root)) continue;
  for (const name of readdirSync(root).sort()) {
    const dir = join(root, name);
    if (!existsSync(join(dir, 'bench', 'index.ts'))) continue;
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).name;
    if (only.length && !only.some((o) => pkg.includes(o))) continue;
    process.stderr.write(`bench ${pkg} ...\n`);
    const run = spawnSync('pnpm', ['exec', 'tsx', '--conditions=@vfio-ts/source', 'bench/index.ts'], {
      cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 << 20,
    });
    const line = (run.stdout ?? '').split('\n').find((l) => l.startsWith('BENCH_RESULTS '));
    if (run.status !== 0 || !line) { failures++; process.stderr.write(`bench ${pkg} failed\n${run.stdout}`); continue; }
    Object.assign(results, JSON.parse(line.slice('BENCH_RESULTS '.length)));
  }
}
mkdirSync('bench', { recursive: true });
writeFileSync(join('bench', 'results.json'), JSON.stringify(results, null, 2) + '\n');
const width = Math.max(10, ...Object.keys(results).map((k) => k.length));
for (const [k, v] of Object.entries(results)) {
  const value = Number.isInteger(v.value) ? v.value.toLocaleString('en-US') : v.value.toFixed(3);
  console.log(`${k.padEnd(width)}  ${value.padStart(12)} ${v.unit.padEnd(6)}  ${v.note}`);
}
console.log(`wrote bench/results.json (${Object.keys(results).length} figures)`);
process.exit(failures ? 1 : 0);
