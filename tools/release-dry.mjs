#!/usr/bin/env node
// `pnpm release:dry`: a release rehearsal that publishes nothing and leaves the repository untouched.
//   1. copies the repository into .release-dry/ (gitignored): every file git tracks, plus untracked files git
//      does not ignore — so pending changesets (and new files not yet committed) come along, build output and
//      node_modules do not;
//   2. there: installs (frozen lockfile, from the local store), runs `changeset version`, builds every package;
//   3. packs every publishable (non-private) package with `pnpm pack`, which rewrites `workspace:` ranges;
//   4. checks each tarball with tools/release-check: its package.json declares exactly the @vfio-ts/* and npm
//      packages its dist code imports, internal ranges admit the versions being released, exports/bin exist.
// Exits 1 when a step fails or a tarball has a problem. `--keep` leaves .release-dry/ for inspection; names
// (`pnpm release:dry cli uapi`, substrings of package names) limit the build and the packing to those packages.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tsImport } from 'tsx/esm/api';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const scratch = join(root, '.release-dry');
const keep = process.argv.includes('--keep');
const only = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const { checkTarball } = await tsImport('./release-check/src/index.ts', import.meta.url);

function step(what, cmd, args, cwd) {
  process.stderr.write(`release:dry: ${what}\n`);
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1' } });
  if (r.status !== 0) {
    process.stderr.write(`${r.stdout ?? ''}${r.stderr ?? ''}`);
    process.stderr.write(`release:dry: '${cmd} ${args.join(' ')}' failed (exit ${r.status}) — see the output above\n`);
    process.exit(1);
  }
  return r.stdout;
}

function workspacePackages(dir) {
  const out = [];
  for (const parent of ['packages', 'packages/devices', 'examples', 'tools']) {
    const base = join(dir, parent);
    if (!existsSync(base)) continue;
    for (const name of readdirSync(base).sort()) {
      const pj = join(base, name, 'package.json');
      if (existsSync(pj)) out.push({ dir: join(base, name), manifest: JSON.parse(readFileSync(pj, 'utf8')) });
    }
  }
  return out;
}

// 1. copy
rmSync(scratch, { recursive: true, force: true });
mkdirSync(scratch, { recursive: true });
const listed = step('listing the files git tracks or would add', 'git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], root);
let copied = 0;
for (const file of new Set(listed.split('\0').filter(Boolean))) {
  const from = join(root, file);
  if (!existsSync(from) || lstatSync(from).isDirectory()) continue; // deleted in the work tree, or a submodule
  mkdirSync(dirname(join(scratch, file)), { recursive: true });
  copyFileSync(from, join(scratch, file));
  copied++;
}
process.stderr.write(`release:dry: copied ${copied} files into .release-dry/\n`);

const before = new Map(workspacePackages(scratch).map((p) => [p.manifest.name, p.manifest.version]));
const pending = existsSync(join(scratch, '.changeset')) ? readdirSync(join(scratch, '.changeset')).filter((f) => f.endsWith('.md') && f !== 'README.md') : [];

// 2. install, version, build
step('installing (frozen lockfile, offline-first)', 'pnpm', ['install', '--frozen-lockfile', '--prefer-offline', '--reporter=append-only'], scratch);
step(`changeset version (${pending.length} pending changeset${pending.length === 1 ? '' : 's'})`, 'pnpm', ['exec', 'changeset', 'version'], scratch);
const packages = workspacePackages(scratch);
const versions = new Map(packages.map((p) => [p.manifest.name, p.manifest.version]));
const publishable = packages.filter((p) => p.manifest.private !== true && (!only.length || only.some((o) => p.manifest.name.includes(o))));
if (!publishable.length) { process.stderr.write(`release:dry: no publishable package matches ${only.join(', ')}\n`); process.exit(1); }
const filters = only.length ? publishable.map((p) => `--filter=${p.manifest.name}...`) : [];
step(only.length ? `building ${publishable.map((p) => p.manifest.name).join(', ')} and their dependencies` : 'building every package',
  'pnpm', ['exec', 'turbo', 'run', 'build', '--output-logs=errors-only', ...filters], scratch);

// 3. pack, 4. check
let failed = 0;
const lines = [];
for (const p of publishable) {
  const dest = join(scratch, '.tarballs', p.manifest.name.replace(/^@/, '').replace('/', '-'));
  mkdirSync(dest, { recursive: true });
  step(`packing ${p.manifest.name}`, 'pnpm', ['pack', '--pack-destination', dest], p.dir);
  const tgz = readdirSync(dest).find((f) => f.endsWith('.tgz'));
  if (!tgz) { failed++; lines.push(`${p.manifest.name}: pnpm pack wrote no tarball`); continue; }
  const report = checkTarball(readFileSync(join(dest, tgz)), versions);
  const was = before.get(p.manifest.name);
  const bump = was && was !== report.version ? `${was} → ${report.version}` : report.version;
  lines.push(`${report.problems.length ? 'FAIL' : 'ok  '} ${report.name} ${bump} (${report.files} files, ${tgz})`);
  for (const problem of report.problems) lines.push(`       ${problem}`);
  if (report.problems.length) failed++;
}
console.log(lines.join('\n'));
console.log(`release:dry: ${publishable.length} packages packed, ${failed} with problems; nothing was published${keep ? ' (.release-dry/ kept)' : ''}`);
if (!keep) rmSync(scratch, { recursive: true, force: true });
process.exit(failed ? 1 : 0);
