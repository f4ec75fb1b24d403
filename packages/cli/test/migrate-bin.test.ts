// `vfio migrate` between two real processes over TCP on 127.0.0.1. The processes run the binary's TypeScript
// source through tsx (no build needed, so this file never races bin.test.ts's build of dist/).
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, test } from 'vitest';
import type { ListenView, MigrateView } from '../src/commands/migrate.js';

const pkgDir = fileURLToPath(new URL('..', import.meta.url));
const bin = fileURLToPath(new URL('../src/bin.ts', import.meta.url));

interface Run {
  status: number | null;
  out: string;
  err: string;
}

function start(args: readonly string[], onErr?: (text: string) => void): Promise<Run> {
  const child = spawn(process.execPath, ['--conditions=@vfio-ts/source', '--import', 'tsx', bin, ...args], {
    cwd: pkgDir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (b: Buffer) => {
    out += b.toString();
  });
  child.stderr.on('data', (b: Buffer) => {
    err += b.toString();
    onErr?.(err);
  });
  return new Promise((resolve) => {
    child.on('close', (status) => {
      resolve({ status, out, err });
    });
  });
}

test('a destination process and a source process migrate the device over loopback', async () => {
  let portOf: (port: number) => void = () => undefined;
  const listening = new Promise<number>((resolve) => {
    portOf = resolve;
  });
  const dest = start(['migrate', '--listen', '0', '--json', '--timeout', '30000'], (err) => {
    const m = /listening on 127\.0\.0\.1:(\d+)/.exec(err);
    if (m) portOf(Number(m[1]));
  });
  const port = await listening;
  const src = await start(['migrate', '--to', `127.0.0.1:${port}`, '--json', '--size', '2M', '--ram', '1M']);
  const d = await dest;
  expect(src.err).toBe('');
  expect(src.status).toBe(0);
  expect(d.status).toBe(0);
  const sv = JSON.parse(src.out) as MigrateView;
  const dv = JSON.parse(d.out) as ListenView;
  expect(sv).toMatchObject({ mode: 'tcp', verified: true, state_bytes: 2 << 20, ram_bytes: 1 << 20 });
  expect(dv).toMatchObject({ mode: 'listen', port, verified: true, received_bytes: sv.total_bytes, transfers_after_resume: 1 });
}, 60_000);
