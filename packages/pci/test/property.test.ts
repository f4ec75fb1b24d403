/**
 * Property tests: random config writes against a small reference model of the e1000e fixture. The model is
 * written from the Linux 6.12 permission tables (inventory §3.2) one byte at a time, independently of the
 * implementation: each byte has bits read from the virtual copy (`rv`), bits written to it (`wv`), bits
 * written through to the device (`wh`), and BAR bytes read back as `(stored & mask) | flags`.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { VfioPciConfig } from '../src/index.js';
import { e1000e } from './helpers.js';

const SIZE = 4096;

interface Model {
  hw: Uint8Array;
  vc: Uint8Array;
  rv: Uint8Array;
  wv: Uint8Array;
  wh: Uint8Array;
  barMask: Map<number, [mask: number, flags: number]>;
}

function bytesOf(v: number): number[] {
  return [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
}

/** Special-handler bytes the generic byte model leaves out (PMCSR, MSI header+flags, PCIe DEVCTL). */
const SPECIAL: readonly [number, number][] = [
  [0xcc, 0xd0],
  [0xd0, 0xd4],
  [0xe8, 0xec],
];
const MSI_FLAGS_WINDOW: [number, number] = [0xd0, 0xd4];

function isSpecial(i: number): boolean {
  return SPECIAL.some(([a, b]) => i >= a && i < b);
}

function makeModel(hwInit: Uint8Array, snapshot: Uint8Array): Model {
  const hw = hwInit.slice(0, SIZE);
  const vc = snapshot.slice();
  // Default: read-only, value as first read (rv all, nothing writable).
  const rv = new Uint8Array(SIZE).fill(0xff);
  const wv = new Uint8Array(SIZE);
  const wh = new Uint8Array(SIZE);
  const raw = (a: number, b: number): void => {
    for (let i = a; i < b; i++) [rv[i], wh[i]] = [0, 0xff];
  };
  const virt = (a: number, b: number): void => {
    for (let i = a; i < b; i++) wv[i] = 0xff;
  };
  const through = (at: number, mask: number): void => {
    bytesOf(mask).forEach((m, k) => {
      rv[at + k] = 0;
      wh[at + k] = m;
    });
  };
  // Header: COMMAND written through except INTx-disable (virtual); cache line, latency, BIST through;
  // interrupt line virtual; IDs, STATUS, class, header type, subsystem, cap pointer, pin read-only.
  through(0x04, 0x0000fbff);
  rv[0x05] = 0x04;
  wv[0x05] = 0x04;
  for (const i of [0x0c, 0x0d, 0x0f]) [rv[i], wh[i]] = [0, 0xff];
  virt(0x3c, 0x3d);
  // Gaps (raw), MSI address/data (virtual), AER writable masks; MSI-X, PM header, PCIe head, DSN read-only.
  for (const [a, b] of [
    [0x40, 0xa0],
    [0xac, 0xc8],
    [0xde, 0xe0],
    [0xec, 0x100],
    [0x12c, 0x140],
    [0x14c, SIZE],
  ] as const)
    raw(a, b);
  virt(0xd4, 0xde);
  const unc = 0x03fff031;
  const cor = 0x0000f1c1;
  through(0x104, unc);
  through(0x108, unc);
  through(0x10c, unc);
  through(0x110, cor);
  through(0x114, cor);
  through(0x118, 0x140);
  // BARs and ROM: fully virtual, read back through the size mask (fixtures/README.md sizes).
  const barMask = new Map<number, [number, number]>();
  const bar = (at: number, mask: number, flags: number): void => {
    const m = bytesOf(mask);
    const f = bytesOf(flags);
    for (let k = 0; k < 4; k++) barMask.set(at + k, [m[k]!, f[k]!]);
    virt(at, at + 4);
  };
  bar(0x10, 0xfffe0000, 0);
  bar(0x14, 0xfffe0000, 0);
  bar(0x18, 0xffffffe0, 1);
  bar(0x1c, 0xffffc000, 0);
  bar(0x20, 0, 0);
  bar(0x24, 0, 0);
  bar(0x30, 0xfffc0001, 0);
  return { hw, vc, rv, wv, wh, barMask };
}

function modelRead(m: Model, i: number): number {
  const bm = m.barMask.get(i);
  if (bm) return (m.vc[i]! & bm[0]) | bm[1];
  return (m.hw[i]! & ~m.rv[i]!) | (m.vc[i]! & m.rv[i]!);
}

function modelWriteByte(m: Model, i: number, b: number): void {
  m.vc[i] = (m.vc[i]! & ~m.wv[i]!) | (b & m.wv[i]!);
  m.hw[i] = (m.hw[i]! & ~m.wh[i]!) | (b & m.wh[i]!);
}

/** MSI Message Control (e1000e MSI at 0xd0): low flags byte virtual; ENABLE and QSIZE forced off, then to the device. */
function modelMsiFlagsWrite(m: Model, pos: number, size: number, value: number): void {
  const off = pos - 0xd0;
  const b = bytesOf(value);
  for (let k = 0; k < size; k++) {
    if (pos + k === 0xd2) m.vc[0xd2] = b[k]!;
  }
  if (off <= 2 && off + size >= 2) {
    m.vc[0xd2] = m.vc[0xd2]! & ~0x71;
    m.hw[0xd2] = m.vc[0xd2];
  }
}

function fresh(): { cfg: VfioPciConfig; fn: ReturnType<typeof e1000e>; model: Model } {
  const fn = e1000e();
  const hwInit = fn.bytes.slice();
  const cfg = new VfioPciConfig(fn);
  const model = makeModel(hwInit, cfg.readBytes(0, SIZE));
  // MSI flags: 0xd3 is read from the device (the write handler copies the virtual word back to it).
  model.rv[0xd3] = 0;
  return { cfg, fn, model };
}

function expectAgrees(cfg: VfioPciConfig, fnBytes: Uint8Array, m: Model, from: number, to: number): void {
  const got = cfg.readBytes(from, to - from);
  for (let i = from; i < to; i++) {
    if (got[i - from] !== modelRead(m, i)) {
      throw new Error(`byte 0x${i.toString(16)}: read 0x${got[i - from]!.toString(16)}, model 0x${modelRead(m, i).toString(16)}`);
    }
  }
  for (let i = 0; i < SIZE; i++) {
    if (fnBytes[i] !== m.hw[i]) throw new Error(`device byte 0x${i.toString(16)}: 0x${fnBytes[i]!.toString(16)}, model 0x${m.hw[i]!.toString(16)}`);
  }
}

/** An aligned 1/2/4-byte access, never straddling a special window's edge. */
const alignedAccess = fc
  .record({ size: fc.constantFrom(1, 2, 4), slot: fc.integer({ min: 0, max: SIZE - 1 }), value: fc.integer({ min: 0, max: 0xffffffff }) })
  .map(({ size, slot, value }) => ({ size, pos: slot - (slot % size), value }))
  .filter(({ pos, size }) => {
    const inSpecial = (i: number): boolean => isSpecial(i);
    const msi = (i: number): boolean => i >= MSI_FLAGS_WINDOW[0] && i < MSI_FLAGS_WINDOW[1];
    const all = Array.from({ length: size }, (_, k) => pos + k);
    // Either entirely generic, or entirely inside the MSI flags window.
    return all.every((i) => !inSpecial(i)) || all.every(msi);
  });

/** Biases positions toward the interesting low config space. */
const biasedAccess = fc.oneof(
  { weight: 3, arbitrary: alignedAccess.filter(({ pos }) => pos < 0x150) },
  { weight: 1, arbitrary: alignedAccess },
);

describe('config writes against a reference model (e1000e)', () => {
  it('aligned 1/2/4-byte writes: read-only bits never change, virtual and pass-through bits follow the model', () => {
    fc.assert(
      fc.property(fc.array(biasedAccess, { minLength: 1, maxLength: 60 }), (ops) => {
        const { cfg, fn, model } = fresh();
        for (const { pos, size, value } of ops) {
          cfg.write(pos, size, value);
          if (pos >= MSI_FLAGS_WINDOW[0] && pos < MSI_FLAGS_WINDOW[1]) modelMsiFlagsWrite(model, pos, size, value);
          else
            bytesOf(value)
              .slice(0, size)
              .forEach((b, k) => {
                modelWriteByte(model, pos + k, b);
              });
          expectAgrees(cfg, fn.bytes, model, pos & ~3, (pos & ~3) + 4);
        }
        expectAgrees(cfg, fn.bytes, model, 0, SIZE);
      }),
      { numRuns: 120 },
    );
  });

  it('region writes of any offset and length split like Linux and land byte-for-byte as the model says', () => {
    const range = fc
      .record({ pos: fc.integer({ min: 0, max: SIZE - 1 }), data: fc.uint8Array({ minLength: 1, maxLength: 24 }) })
      .map(({ pos, data }) => ({ pos: pos < 0x200 || pos % 3 ? pos % 0x200 : pos, data }))
      .filter(({ pos, data }) => pos + data.length <= SIZE && data.every((_, k) => !isSpecial(pos + k)));
    fc.assert(
      fc.property(fc.array(range, { minLength: 1, maxLength: 30 }), (ops) => {
        const { cfg, fn, model } = fresh();
        for (const { pos, data } of ops) {
          expect(cfg.writeBytes(pos, data)).toBe(data.length);
          data.forEach((b, k) => {
            modelWriteByte(model, pos + k, b);
          });
        }
        expectAgrees(cfg, fn.bytes, model, 0, SIZE);
      }),
      { numRuns: 120 },
    );
  });
});
