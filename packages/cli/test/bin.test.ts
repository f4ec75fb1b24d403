// The built binary, spawned the way a user runs it. The package's turbo.json makes `test` depend on its own
// `build`; `tsc -b` here is a no-op then, and builds dist/ when the test is run on its own.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { beforeAll, expect, test } from 'vitest';

const pkgDir = fileURLToPath(new URL('..', import.meta.url));
const bin = fileURLToPath(new URL('../dist/bin.js', import.meta.url));

beforeAll(() => {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const build = spawnSync(process.execPath, [tsc, '-b', pkgDir], { encoding: 'utf8' });
  expect(build.status, build.stdout + build.stderr).toBe(0);
});

test('dist/bin.js starts with a shebang and prints JSON for `uapi VFIO_IOMMU_MAP_DMA --json`', () => {
  expect(readFileSync(bin, 'utf8').split('\n')[0]).toBe('#!/usr/bin/env node');
  const r = spawnSync(process.execPath, [bin, 'uapi', 'VFIO_IOMMU_MAP_DMA', '--json'], { encoding: 'utf8' });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  expect(JSON.parse(r.stdout)).toMatchObject({ number: '0x3b71', fd: 'container', struct: { name: 'vfio_iommu_type1_dma_map', size: 32 } });
  const bad = spawnSync(process.execPath, [bin, 'uapi', 'NOPE_NOPE'], { encoding: 'utf8' });
  expect(bad.status).toBe(2);
  expect(bad.stdout).toBe('');
  expect(bad.stderr).toMatch(/^vfio: no ioctl or struct named 'NOPE_NOPE' — /);
});

test('dist/bin.js demo: the narrative and the closing table on stdout, exit 0 (what `pnpm vfio demo` runs)', () => {
  const r = spawnSync(process.execPath, [bin, 'demo'], { encoding: 'utf8' });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  expect(r.stdout).toContain(' 1. Open the container');
  expect(r.stdout).toContain('Compute 10! with an interrupt');
  expect(r.stdout).toMatch(/result: +every check passed/);
});
