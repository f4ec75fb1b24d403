import { describe, expect, it } from 'vitest';
import { EXIT_FAILURE, EXIT_USAGE } from '../src/index.js';
import { formatBytes, makeMigrateCommand, parseLoopback, parseSize } from '../src/commands/migrate.js';
import type { ListenView, MigrateView } from '../src/commands/migrate.js';
import { vfio } from './helpers.js';

const quiet = [makeMigrateCommand({ progress: null })];

describe('vfio migrate', () => {
  it('migrates a running device between two hosts in this process and reports downtime and total time', async () => {
    const { status, out, err } = await vfio(['migrate', '--json', '--size', '1M', '--ram', '1M'], quiet);
    expect(err).toBe('');
    expect(status).toBe(0);
    const view = JSON.parse(out) as MigrateView;
    expect(view.mode).toBe('in-process');
    expect(view.verified).toBe(true);
    expect(view.transfers_after_resume).toBe(1);
    expect(view.pre_copy.length).toBeGreaterThanOrEqual(2);
    expect(view.pre_copy[0]!.device_bytes).toBeGreaterThan(1 << 20);
    expect(view.pre_copy[0]!.ram_bytes).toBe(1 << 20);
    // The device kept running during pre-copy: later rounds carry dirty data, and so does stop-copy.
    expect(view.pre_copy[1]!.device_bytes).toBeGreaterThan(0);
    expect(view.stop_copy.device_bytes).toBeGreaterThan(0);
    expect(view.stop_copy.ram_bytes).toBeGreaterThan(0);
    expect(view.pre_copy[1]!.ram_bytes).toBeGreaterThan(0); // RAM the device DMA dirtied, from DMA logging
    expect(view.total_bytes).toBe(
      view.pre_copy.reduce((n, r) => n + r.device_bytes + r.ram_bytes, 0) + view.stop_copy.device_bytes + view.stop_copy.ram_bytes,
    );
    expect(view.downtime_ms).toBeGreaterThanOrEqual(0);
    expect(view.total_ms).toBeGreaterThanOrEqual(view.downtime_ms);
  });

  it('goes straight to STOP_COPY with --rounds 0', async () => {
    const { status, out } = await vfio(['migrate', '--json', '--size', '256K', '--ram', '256K', '--rounds', '0'], quiet);
    expect(status).toBe(0);
    const view = JSON.parse(out) as MigrateView;
    expect(view.pre_copy).toEqual([]);
    expect(view.stop_copy.device_bytes).toBeGreaterThan(256 * 1024);
    expect(view.verified).toBe(true);
  });

  it('draws a progress bar through the phases and prints a closing table', async () => {
    let drawn = '';
    const cmd = makeMigrateCommand({ progress: (t) => { drawn += t; } });
    const { status, out } = await vfio(['migrate', '--size', '256K', '--ram', '256K'], [cmd]);
    expect(status).toBe(0);
    for (const phase of ['setup', 'pre-copy round 1', 'stop-copy', 'resume']) expect(drawn).toContain(`\r${phase}`);
    expect(drawn).toMatch(/\[#+-*\] [\d.]+ KiB \/ [\d.]+ KiB/);
    expect(drawn.endsWith('\n')).toBe(true);
    expect(out).toContain('migration complete');
    expect(out).toMatch(/downtime: +[\d.]+ ms/);
    expect(out).toMatch(/total time: +[\d.]+ ms/);
    expect(out).toContain('stop-copy');
    // No progress with --json unless a sink is given explicitly.
    const json = await vfio(['migrate', '--json', '--size', '256K', '--ram', '256K'], [makeMigrateCommand({ progress: null })]);
    expect(() => JSON.parse(json.out) as unknown).not.toThrow();
  });

  it('migrates between two ends over TCP on 127.0.0.1', async () => {
    let portOf: (port: number) => void = () => undefined;
    const listening = new Promise<number>((resolve) => {
      portOf = resolve;
    });
    const dest = vfio(['migrate', '--listen', '0', '--json', '--timeout', '20000'], [makeMigrateCommand({ progress: null, onListening: (p) => { portOf(p); } })]);
    const port = await listening;
    const src = await vfio(['migrate', '--to', `127.0.0.1:${port}`, '--json', '--size', '1M', '--ram', '512K'], quiet);
    const d = await dest;
    expect(src.err).toBe('');
    expect(src.status).toBe(0);
    expect(d.status).toBe(0);
    const sv = JSON.parse(src.out) as MigrateView;
    const dv = JSON.parse(d.out) as ListenView;
    expect(sv.mode).toBe('tcp');
    expect(sv.destination).toBe(`127.0.0.1:${port}`);
    expect(sv.verified).toBe(true);
    expect(dv).toMatchObject({ mode: 'listen', port, verified: true, state_bytes: 1 << 20, ram_bytes: 512 * 1024, transfers_after_resume: 1 });
    expect(dv.peer.startsWith('127.0.0.1:')).toBe(true);
    expect(dv.received_bytes).toBe(sv.total_bytes);
  });

  it('a destination that refuses the device fails both ends; the device runs on at the source', async () => {
    let portOf: (port: number) => void = () => undefined;
    const listening = new Promise<number>((resolve) => {
      portOf = resolve;
    });
    const dest = vfio(['migrate', '--listen', '0', '--max-size', '512K', '--timeout', '20000'], [makeMigrateCommand({ progress: null, onListening: (p) => { portOf(p); } })]);
    const port = await listening;
    const src = await vfio(['migrate', '--to', `127.0.0.1:${port}`, '--size', '1M', '--ram', '256K'], quiet);
    const d = await dest;
    expect(src.status).toBe(EXIT_FAILURE);
    expect(src.err).toContain('the destination failed');
    expect(src.err).toContain('the device runs on at the source');
    expect(d.status).toBe(EXIT_FAILURE);
    expect(d.err).toContain('more than this end accepts');
  });

  it('gives up listening after --timeout', async () => {
    const { status, err } = await vfio(['migrate', '--listen', '0', '--timeout', '100'], quiet);
    expect(status).toBe(EXIT_FAILURE);
    expect(err).toContain('a source connecting did not happen within 100 ms');
  });

  it('refuses anything off the loopback and bad sizes (usage errors)', async () => {
    for (const argv of [
      ['migrate', '--to', '10.0.0.1:4000'],
      ['migrate', '--to', '127.0.0.1:0'],
      ['migrate', '--size', '3M'],
      ['migrate', '--ram', 'lots'],
      ['migrate', '--rounds', '-1'],
      ['migrate', '--listen', '0', '--to', '127.0.0.1:1'],
    ]) {
      const { status, err } = await vfio(argv, quiet);
      expect(status, argv.join(' ')).toBe(EXIT_USAGE);
      expect(err).toMatch(/^vfio: /);
    }
    const refused = await vfio(['migrate', '--to', '127.0.0.1:1', '--timeout', '2000'], quiet);
    expect(refused.status).toBe(EXIT_FAILURE);
  });

  it('parses sizes and loopback addresses', () => {
    expect(parseSize('64K', '--size', 0)).toBe(65536);
    expect(parseSize('16m', '--size', 0)).toBe(16 << 20);
    expect(parseSize('1GiB', '--size', 0)).toBe(1 << 30);
    expect(parseSize(undefined, '--size', 7)).toBe(7);
    expect(parseLoopback('localhost:80')).toBe(80);
    expect(formatBytes(1536)).toBe('1.5 KiB');
  });
});
