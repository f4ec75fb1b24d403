#!/usr/bin/env node
// Totals every vitest JSON report under packages/ (packages/devices/, examples/ and tools/) and prints the one plain line CI reads:
//   tests: N passed, N failed, N skipped
// Exits 1 when any test failed, when a report is missing for a package that has tests, or when no test ran.
// `--clean` instead deletes every report first, so a report left by an earlier run can never be counted
// (`pnpm test` runs it before turbo; turbo restores the reports of cached test tasks).
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';

const roots = ['packages', 'packages/devices', 'examples', 'tools', 'tests'];
const clean = process.argv.includes('--clean');
let passed = 0, failed = 0, skipped = 0, reports = 0;
const problems = [];
for (const root of roots) {
  if (!existsSync(root)) continue;
  for (const name of readdirSync(root)) {
    const dir = join(root, name);
    if (!statSync(dir).isDirectory() || !existsSync(join(dir, 'package.json'))) continue;
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    if (!pkg.scripts?.test) continue;
    const report = join(dir, '.vitest', 'report.json');
    if (clean) { rmSync(report, { force: true }); continue; }
    if (!existsSync(report)) { problems.push(`${pkg.name}: no test report (${report})`); continue; }
    const r = JSON.parse(readFileSync(report, 'utf8'));
    reports++;
    passed += r.numPassedTests ?? 0;
    failed += r.numFailedTests ?? 0;
    skipped += (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
    if (r.success === false && (r.numFailedTests ?? 0) === 0) problems.push(`${pkg.name}: the test run failed outside a test (see its log)`);
  }
}
if (clean) process.exit(0);
for (const p of problems) console.error(p);
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 || passed === 0 || reports === 0 || problems.length > 0 ? 1 : 0);
