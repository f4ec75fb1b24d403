#!/usr/bin/env node
// `pnpm vfio ...`: builds the CLI and what it depends on (cached by turbo, quiet unless it fails),
// then runs the `vfio` binary with the given arguments. Build output never mixes into the CLI's stdout.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const build = spawnSync('pnpm', ['exec', 'turbo', 'run', 'build', '--filter=@vfio-ts/cli...', '--output-logs=errors-only'], {
  cwd: root, encoding: 'utf8', env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1' },
});
if (build.status !== 0) {
  process.stderr.write(build.stdout ?? '');
  process.stderr.write(build.stderr ?? '');
  process.stderr.write('vfio: building the CLI failed (see above); run `pnpm build` to see every error.\n');
  process.exit(build.status ?? 1);
}
const run = spawnSync(process.execPath, [join(root, 'packages/cli/dist/bin.js'), ...process.argv.slice(2)], { stdio: 'inherit' });
process.exit(run.status ?? 1);
