/**
 * Random sequences of MAP, UNMAP, VADDR invalidate/update and close against a small reference model: the backend's
 * mappings, the pinned pages, the IOMMU entries and the locked memory must always agree with it, and nothing may
 * stay pinned or accounted after release.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { VFIO_DMA_MAP_FLAG_VADDR, VFIO_DMA_UNMAP_FLAG_ALL, VFIO_DMA_UNMAP_FLAG_VADDR, isSysError } from '@vfio-ts/uapi';
import type { ErrnoName } from '@vfio-ts/uapi';
import type { FakeDomain } from './fakes.js';
import { harness } from './helpers.js';

const P = 4096n;
const SPACE = 32; // IOVA pages
const ENTRY_LIMIT = 6;
const MEMLOCK_PAGES = 20;

interface M {
  iova: number; // pages
  size: number;
  invalid: boolean;
}

type Op =
  | { kind: 'map'; at: number; n: number }
  | { kind: 'unmap'; at: number; n: number }
  | { kind: 'unmapAll' }
  | { kind: 'invalidate'; at: number; n: number }
  | { kind: 'update'; at: number; n: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('map' as const), at: fc.integer({ min: 0, max: SPACE - 1 }), n: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ kind: fc.constant('unmap' as const), at: fc.integer({ min: 0, max: SPACE - 1 }), n: fc.integer({ min: 1, max: 12 }) }),
  fc.record({ kind: fc.constant('unmapAll' as const) }),
  fc.record({ kind: fc.constant('invalidate' as const), at: fc.integer({ min: 0, max: SPACE - 1 }), n: fc.integer({ min: 1, max: 12 }) }),
  fc.record({ kind: fc.constant('update' as const), at: fc.integer({ min: 0, max: SPACE - 1 }), n: fc.integer({ min: 1, max: 8 }) }),
);

/** The model's answer: the new state and the errno (or the returned size). */
function step(v2: boolean, ms: M[], op: Op): { ms: M[]; err?: ErrnoName; size?: number } {
  const sorted = [...ms].sort((a, b) => a.iova - b.iova);
  const overlaps = (at: number, n: number): M[] => sorted.filter((m) => m.iova < at + n && at < m.iova + m.size);
  const bisects = (at: number, n: number): boolean => {
    const head = sorted.find((m) => m.iova <= at && at < m.iova + m.size);
    if (head && head.iova !== at) return true;
    const last = at + n - 1;
    const tail = sorted.find((m) => m.iova <= last && last < m.iova + m.size);
    return tail !== undefined && tail.iova + tail.size !== at + n;
  };
  const locked = ms.reduce((s, m) => s + m.size, 0);
  switch (op.kind) {
    case 'map': {
      if (overlaps(op.at, op.n).length) return { ms, err: 'EEXIST' };
      if (ms.length >= ENTRY_LIMIT) return { ms, err: 'ENOSPC' };
      if (locked + op.n > MEMLOCK_PAGES) return { ms, err: 'ENOMEM' };
      return { ms: [...ms, { iova: op.at, size: op.n, invalid: false }] };
    }
    case 'unmapAll':
      return { ms: [], size: locked };
    case 'unmap':
    case 'invalidate': {
      if (v2 && bisects(op.at, op.n)) return { ms, err: 'EINVAL' };
      const end = op.at + op.n;
      let hit: M[];
      if (v2) {
        hit = sorted.filter((m) => m.iova < end && m.iova + m.size > op.at);
      } else {
        const first = sorted.find((m) => m.iova + m.size > op.at);
        hit = !first || first.iova < op.at ? [] : sorted.filter((m) => m.iova >= op.at && m.iova < end);
      }
      const size = hit.reduce((s, m) => s + m.size, 0);
      if (op.kind === 'unmap') return { ms: ms.filter((m) => !hit.includes(m)), size };
      if (hit.some((m) => m.invalid)) return { ms, err: 'EINVAL' };
      return { ms: ms.map((m) => (hit.includes(m) ? { ...m, invalid: true } : m)), size };
    }
    case 'update': {
      const o = overlaps(op.at, op.n);
      if (o.length === 0) return { ms, err: 'ENOENT' };
      const m = o[0]!;
      if (!m.invalid || m.iova !== op.at || m.size !== op.n) return { ms, err: 'EINVAL' };
      return { ms: ms.map((x) => (x === m ? { ...x, invalid: false } : x)) };
    }
  }
}

function run(type: number, ops: Op[]): void {
  const h = harness({ type, memlockLimit: BigInt(MEMLOCK_PAGES) * P, params: { dma_entry_limit: String(ENTRY_LIMIT) } });
  const va = h.mm.add(SPACE + 16, { layout: 'scattered' });
  const domain = h.groups[0]!.attached as FakeDomain;
  let ms: M[] = [];
  for (const op of ops) {
    const want = step(type === 3, ms, op);
    let err: ErrnoName | undefined;
    let size: bigint | undefined;
    try {
      const at = BigInt(op.kind === 'unmapAll' ? 0 : op.at) * P;
      const n = BigInt(op.kind === 'unmapAll' ? 0 : op.n) * P;
      if (op.kind === 'map') h.map(at, va + at, n);
      else if (op.kind === 'unmap') size = h.unmap(at, n);
      else if (op.kind === 'unmapAll') size = h.unmap(0n, 0n, VFIO_DMA_UNMAP_FLAG_ALL);
      else if (op.kind === 'invalidate') size = h.unmap(at, n, VFIO_DMA_UNMAP_FLAG_VADDR);
      else h.map(at, va + at, n, VFIO_DMA_MAP_FLAG_VADDR);
    } catch (e) {
      if (!isSysError(e)) throw e;
      err = e.errno;
    }
    expect(err).toBe(want.err);
    if (want.size !== undefined && !want.err) expect(size).toBe(BigInt(want.size) * P);
    ms = want.ms;
    const pagesMapped = ms.reduce((s, m) => s + m.size, 0);
    expect(h.c.mappings().map((m) => ({ iova: Number(m.iova / P), size: Number(m.size / P), invalid: m.vaddrInvalid }))).toEqual(
      [...ms].sort((a, b) => a.iova - b.iova),
    );
    expect(h.phys.totalPins).toBe(pagesMapped);
    expect(h.mm.memlock.lockedPages).toBe(pagesMapped);
    expect(domain.entries.size).toBe(pagesMapped);
    expect(h.c.describe().dmaAvail).toBe(ENTRY_LIMIT - ms.length);
  }
  h.ops.release(h.c);
  expect(h.phys.totalPins).toBe(0);
  expect(h.mm.memlock.lockedPages).toBe(0);
  expect(domain.entries.size).toBe(0);
}

describe('type1 against a reference model', () => {
  it('v2: mappings, pins and locked memory always agree with the model; zero after release', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 40 }), (ops) => {
        run(3, ops);
      }),
      { numRuns: 300 },
    );
  });

  it('v1: lax unmap semantics agree with the model', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 40 }), (ops) => {
        run(1, ops);
      }),
      { numRuns: 200 },
    );
  });
});
