/**
 * Property test: random MAP / UNMAP / COPY / domain attach-detach sequences on an IOAS, against a reference model
 * of areas. After every step the outcome (success or errno), the mapped bytes, the pinned pages, the locked
 * memory and the domain's translations agree with the model; after close everything is zero.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isSysError } from '@vfio-ts/uapi';
import { PAGE, setup } from './helpers.js';

const NPAGES = 48;
const WINDOW = 160; // IOVA pages used, from IOVA 0x100000
const BASE = 0x100000n;

interface ModelArea {
  start: number; // iova page
  len: number; // pages
  va: number; // buffer page index of the first page
  /** Which IOAS_MAP the pages come from: pins are per pages object (iopt_pages), shared only through COPY. */
  pages: number;
}

type Op =
  | { kind: 'map'; at: number; len: number; va: number }
  | { kind: 'unmap'; at: number; len: number }
  | { kind: 'unmapAll' }
  | { kind: 'copy'; src: number; len: number; dst: number }
  | { kind: 'attach' }
  | { kind: 'detach' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('map' as const), at: fc.nat(WINDOW - 1), len: fc.integer({ min: 1, max: 12 }), va: fc.nat(NPAGES - 1) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('unmap' as const), at: fc.nat(WINDOW - 1), len: fc.integer({ min: 1, max: 40 }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'unmapAll' as const }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('copy' as const), src: fc.nat(WINDOW - 1), len: fc.integer({ min: 1, max: 12 }), dst: fc.nat(WINDOW - 1) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'attach' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'detach' as const }) },
);

function overlaps(areas: ModelArea[], start: number, len: number): ModelArea[] {
  return areas.filter((a) => a.start < start + len && start < a.start + a.len);
}

describe('IOAS against a reference model', () => {
  it('map/unmap/copy/attach sequences keep areas, pins, locked memory and translations in step', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 40 }), (ops) => {
        const f = setup();
        const ioas = f.ioasAlloc();
        const buf = f.buffer(BigInt(NPAGES) * PAGE);
        f.p.memory.write(buf, new Uint8Array(NPAGES * 4096).fill(1));
        let model: ModelArea[] = [];
        let dev: ReturnType<typeof f.device> | undefined;
        let nextPages = 0;
        const outcome = (fn: () => unknown): string => {
          try {
            fn();
            return 'ok';
          } catch (e) {
            if (isSysError(e)) return e.errno;
            throw e;
          }
        };
        for (const op of ops) {
          let expected: string;
          let actual: string;
          switch (op.kind) {
            case 'map': {
              const len = Math.min(op.len, NPAGES - op.va);
              expected = overlaps(model, op.at, len).length > 0 ? 'EEXIST' : 'ok';
              actual = outcome(() => f.map(ioas, buf + BigInt(op.va) * PAGE, BigInt(len) * PAGE, { iova: BASE + BigInt(op.at) * PAGE }));
              if (expected === 'ok') model.push({ start: op.at, len, va: op.va, pages: nextPages++ });
              break;
            }
            case 'unmap': {
              const hit = overlaps(model, op.at, op.len);
              const split = hit.some((a) => a.start < op.at || a.start + a.len > op.at + op.len);
              expected = hit.length === 0 || split ? 'ENOENT' : 'ok';
              let got = 0n;
              actual = outcome(() => {
                got = f.unmap(ioas, BASE + BigInt(op.at) * PAGE, BigInt(op.len) * PAGE);
              });
              if (expected === 'ok') {
                expect(got).toBe(BigInt(hit.reduce((s, a) => s + a.len, 0)) * PAGE);
                model = model.filter((a) => !hit.includes(a));
              }
              break;
            }
            case 'unmapAll': {
              expected = 'ok';
              let got = 0n;
              actual = outcome(() => {
                got = f.unmap(ioas, 0n, (1n << 64n) - 1n);
              });
              expect(got).toBe(BigInt(model.reduce((s, a) => s + a.len, 0)) * PAGE);
              model = [];
              break;
            }
            case 'copy': {
              // The source must be covered by contiguous areas; each piece becomes an area at the destination.
              const pieces: ModelArea[] = [];
              let cur = op.src;
              const end = op.src + op.len;
              while (cur < end) {
                const a = model.find((m) => m.start <= cur && cur < m.start + m.len);
                if (!a) break;
                const stop = Math.min(end, a.start + a.len);
                pieces.push({ start: 0, len: stop - cur, va: a.va + (cur - a.start), pages: a.pages });
                cur = stop;
              }
              if (cur < end) expected = 'ENOENT';
              else expected = overlaps(model, op.dst, op.len).length > 0 ? 'EEXIST' : 'ok';
              actual = outcome(() => f.copy(ioas, ioas, BASE + BigInt(op.src) * PAGE, BigInt(op.len) * PAGE, { dstIova: BASE + BigInt(op.dst) * PAGE }));
              if (expected === 'ok') {
                let at = op.dst;
                for (const p of pieces) {
                  model.push({ start: at, len: p.len, va: p.va, pages: p.pages });
                  at += p.len;
                }
              }
              break;
            }
            case 'attach':
              expected = 'ok';
              actual = outcome(() => {
                if (!dev) dev = f.device(ioas);
              });
              break;
            case 'detach':
              expected = 'ok';
              actual = outcome(() => {
                if (dev) f.ctx.unbindDevice(dev.devId);
                dev = undefined;
              });
              break;
          }
          expect([op, actual]).toEqual([op, expected]);
          // Invariants.
          const mapped = model.reduce((s, a) => s + a.len, 0);
          expect(f.ctx.ioasTable(ioas).mappedBytes()).toBe(BigInt(mapped) * PAGE);
          // A page is pinned (and charged) once per pages object that has an area over it.
          const pinned = new Set<string>();
          if (dev) for (const a of model) for (let i = 0; i < a.len; i++) pinned.add(`${a.pages}:${a.va + i}`);
          expect(f.sub.userLockedPages(1000)).toBe(pinned.size);
          for (let i = 0; i < NPAGES; i++) {
            const pfn = f.p.mm.lookup(buf + BigInt(i) * PAGE)!.pfn;
            const holders = [...pinned].filter((k) => k.endsWith(`:${i}`)).length;
            expect(f.platform.memory.pinCount(pfn)).toBe(holders);
          }
          if (dev) {
            const dom = dev.group.domain!;
            for (const a of model) {
              for (let i = 0; i < a.len; i++) {
                const t = dom.translate(BASE + BigInt(a.start + i) * PAGE);
                expect(t?.pa).toBe(f.p.mm.lookup(buf + BigInt(a.va + i) * PAGE)!.pfn * PAGE);
              }
            }
            expect(dom.stats.entriesByPageSize.get(PAGE) ?? 0).toBe(mapped);
          }
        }
        f.p.close(f.fd);
        expect(f.sub.userLockedPages(1000)).toBe(0);
        for (let i = 0; i < NPAGES; i++) expect(f.platform.memory.pinCount(f.p.mm.lookup(buf + BigInt(i) * PAGE)!.pfn)).toBe(0);
      }),
      { numRuns: 150 },
    );
  });
});
