/**
 * Random sequences of MAP, UNMAP, VADDR invalidate/update, external pin/unpin (an emulated device) and close
 * against a small reference model: the backend's mappings, the pinned pages, the IOMMU entries and the locked
 * memory must always agree with it, and nothing may stay pinned or accounted after release.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { IOMMU_READ } from '@vfio-ts/platform';
import { VFIO_DMA_MAP_FLAG_VADDR, VFIO_DMA_UNMAP_FLAG_ALL, VFIO_DMA_UNMAP_FLAG_VADDR, isSysError } from '@vfio-ts/uapi';
import type { ErrnoName } from '@vfio-ts/uapi';
import { FakeGroup } from './fakes.js';
import type { FakeDomain } from './fakes.js';
import { harness } from './helpers.js';

const P = 4096n;
const SPACE = 32; // IOVA pages
const ENTRY_LIMIT = 6;
const MEMLOCK_PAGES = 20;
const EMU = { id: 9, type: 'emulated-iommu' as const, iommuGroup: undefined };

interface M {
  iova: number; // pages
  size: number;
  invalid: boolean;
}

interface State {
  ms: M[];
  /** External pin counts by IOVA page. */
  pins: Map<number, number>;
}

type Op =
  | { kind: 'map'; at: number; n: number }
  | { kind: 'unmap'; at: number; n: number }
  | { kind: 'unmapAll' }
  | { kind: 'invalidate'; at: number; n: number }
  | { kind: 'update'; at: number; n: number }
  | { kind: 'pin'; at: number; n: number }
  | { kind: 'unpin'; at: number; n: number };

const at = fc.integer({ min: 0, max: SPACE - 1 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('map' as const), at, n: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ kind: fc.constant('unmap' as const), at, n: fc.integer({ min: 1, max: 12 }) }),
  fc.record({ kind: fc.constant('unmapAll' as const) }),
  fc.record({ kind: fc.constant('invalidate' as const), at, n: fc.integer({ min: 1, max: 12 }) }),
  fc.record({ kind: fc.constant('update' as const), at, n: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ kind: fc.constant('pin' as const), at, n: fc.integer({ min: 1, max: 3 }) }),
  fc.record({ kind: fc.constant('unpin' as const), at, n: fc.constant(1) }),
);

interface Mode {
  v2: boolean;
  /** An IOMMU-backed group is attached (otherwise only an emulated group). */
  iommu: boolean;
  /** An emulated group and device are attached (pin/unpin possible). */
  emulated: boolean;
}

/** Pages pinned for the IOMMU plus external pins that are accounted: what locked memory must equal. */
function locked(mode: Mode, s: State): number {
  return mode.iommu ? s.ms.reduce((n, m) => n + m.size, 0) : s.pins.size;
}

/** The model's answer: the new state and the errno (or the returned size). */
function step(mode: Mode, s: State, op: Op): { s: State; err?: ErrnoName; size?: number } {
  const { ms } = s;
  const sorted = [...ms].sort((a, b) => a.iova - b.iova);
  const overlaps = (a: number, n: number): M[] => sorted.filter((m) => m.iova < a + n && a < m.iova + m.size);
  const bisects = (a: number, n: number): boolean => {
    const head = sorted.find((m) => m.iova <= a && a < m.iova + m.size);
    if (head && head.iova !== a) return true;
    const last = a + n - 1;
    const tail = sorted.find((m) => m.iova <= last && last < m.iova + m.size);
    return tail !== undefined && tail.iova + tail.size !== a + n;
  };
  const dropPins = (removed: M[]): Map<number, number> =>
    new Map([...s.pins].filter(([p]) => !removed.some((m) => p >= m.iova && p < m.iova + m.size)));
  switch (op.kind) {
    case 'map': {
      if (overlaps(op.at, op.n).length) return { s, err: 'EEXIST' };
      if (ms.length >= ENTRY_LIMIT) return { s, err: 'ENOSPC' };
      if (mode.iommu && locked(mode, s) + op.n > MEMLOCK_PAGES) return { s, err: 'ENOMEM' };
      return { s: { ...s, ms: [...ms, { iova: op.at, size: op.n, invalid: false }] } };
    }
    case 'unmapAll':
      return { s: { ms: [], pins: new Map() }, size: ms.reduce((n, m) => n + m.size, 0) };
    case 'unmap':
    case 'invalidate': {
      if (op.kind === 'invalidate' && mode.emulated) return { s, err: 'EBUSY' };
      if (mode.v2 && bisects(op.at, op.n)) return { s, err: 'EINVAL' };
      const end = op.at + op.n;
      let hit: M[];
      if (mode.v2) {
        hit = sorted.filter((m) => m.iova < end && m.iova + m.size > op.at);
      } else {
        const first = sorted.find((m) => m.iova + m.size > op.at);
        hit = !first || first.iova < op.at ? [] : sorted.filter((m) => m.iova >= op.at && m.iova < end);
      }
      const size = hit.reduce((n, m) => n + m.size, 0);
      if (op.kind === 'unmap') return { s: { ms: ms.filter((m) => !hit.includes(m)), pins: dropPins(hit) }, size };
      if (hit.some((m) => m.invalid)) return { s, err: 'EINVAL' };
      return { s: { ...s, ms: ms.map((m) => (hit.includes(m) ? { ...m, invalid: true } : m)) }, size };
    }
    case 'update': {
      const o = overlaps(op.at, op.n);
      if (o.length === 0) return { s, err: 'ENOENT' };
      const m = o[0]!;
      if (!m.invalid || m.iova !== op.at || m.size !== op.n) return { s, err: 'EINVAL' };
      return { s: { ...s, ms: ms.map((x) => (x === m ? { ...x, invalid: false } : x)) } };
    }
    case 'pin': {
      if (!mode.v2) return { s, err: 'EACCES' };
      if (ms.some((m) => m.invalid)) return { s, err: 'EBUSY' };
      // Page by page, as Linux: the first failing page decides the errno, and the call is undone.
      const pins = new Map(s.pins);
      for (let p = op.at; p < op.at + op.n; p++) {
        if (!overlaps(p, 1).length) return { s, err: 'EINVAL' };
        if (!pins.has(p) && !mode.iommu && pins.size + 1 > MEMLOCK_PAGES) return { s, err: 'ENOMEM' };
        pins.set(p, (pins.get(p) ?? 0) + 1);
      }
      return { s: { ...s, pins } };
    }
    case 'unpin': {
      const c = s.pins.get(op.at);
      if (!c) return { s };
      const pins = new Map(s.pins);
      if (c === 1) pins.delete(op.at);
      else pins.set(op.at, c - 1);
      return { s: { ...s, pins } };
    }
  }
}

function run(mode: Mode, ops: Op[]): void {
  const h = harness({
    type: mode.v2 ? 3 : 1,
    memlockLimit: BigInt(MEMLOCK_PAGES) * P,
    params: { dma_entry_limit: String(ENTRY_LIMIT) },
    group: mode.iommu,
  });
  const va = h.mm.add(SPACE + 16, { layout: 'scattered' });
  const domain = mode.iommu ? (h.groups[0]!.attached as FakeDomain) : undefined;
  // The device's own record of its pins, released when asked through dma_unmap (§2.10).
  const held = new Map<number, number>();
  if (mode.emulated) {
    h.attach(new FakeGroup(9), EMU);
    h.ops.registerDevice!(h.c, {
      name: 'mdev',
      dmaUnmap(iova, length) {
        for (const [p, c] of [...held]) {
          if (BigInt(p) * P < iova || BigInt(p) * P >= iova + length) continue;
          for (let i = 0; i < c; i++) h.ops.unpinPages!(h.c, BigInt(p) * P, 1);
          held.delete(p);
        }
      },
    });
  }
  let s: State = { ms: [], pins: new Map() };
  for (const op of ops) {
    if ((op.kind === 'pin' || op.kind === 'unpin') && !mode.emulated) continue;
    const want = step(mode, s, op);
    let err: ErrnoName | undefined;
    let size: bigint | undefined;
    try {
      const a = BigInt(op.kind === 'unmapAll' ? 0 : op.at) * P;
      const n = BigInt(op.kind === 'unmapAll' ? 0 : op.n) * P;
      if (op.kind === 'map') h.map(a, va + a, n);
      else if (op.kind === 'unmap') size = h.unmap(a, n);
      else if (op.kind === 'unmapAll') size = h.unmap(0n, 0n, VFIO_DMA_UNMAP_FLAG_ALL);
      else if (op.kind === 'invalidate') size = h.unmap(a, n, VFIO_DMA_UNMAP_FLAG_VADDR);
      else if (op.kind === 'update') h.map(a, va + a, n, VFIO_DMA_MAP_FLAG_VADDR);
      else if (op.kind === 'pin') {
        h.ops.pinPages!(h.c, EMU, a, op.n, IOMMU_READ, h.call);
        for (let p = op.at; p < op.at + op.n; p++) held.set(p, (held.get(p) ?? 0) + 1);
      } else if (held.has(op.at)) {
        h.ops.unpinPages!(h.c, a, 1);
        const c = held.get(op.at)!;
        if (c === 1) held.delete(op.at);
        else held.set(op.at, c - 1);
      }
    } catch (e) {
      if (!isSysError(e)) throw e;
      err = e.errno;
    }
    expect(err).toBe(want.err);
    if (want.size !== undefined && !want.err) expect(size).toBe(BigInt(want.size) * P);
    s = want.s;
    const mapped = s.ms.reduce((n, m) => n + m.size, 0);
    expect(h.c.mappings().map((m) => ({ iova: Number(m.iova / P), size: Number(m.size / P), invalid: m.vaddrInvalid }))).toEqual(
      [...s.ms].sort((x, y) => x.iova - y.iova),
    );
    expect(h.phys.totalPins).toBe((mode.iommu ? mapped : 0) + s.pins.size);
    expect(h.mm.memlock.lockedPages).toBe(locked(mode, s));
    expect(h.c.describe().lockedPages).toBe(locked(mode, s));
    if (domain) expect(domain.entries.size).toBe(mapped);
    expect(h.c.describe().dmaAvail).toBe(ENTRY_LIMIT - s.ms.length);
  }
  h.ops.release(h.c);
  expect(h.phys.totalPins).toBe(0);
  expect(h.mm.memlock.lockedPages).toBe(0);
  if (domain) expect(domain.entries.size).toBe(0);
}

const ops = fc.array(opArb, { maxLength: 40 });

describe('type1 against a reference model', () => {
  it('v2 with an IOMMU group: mappings, pins and locked memory agree with the model; zero after release', () => {
    fc.assert(
      fc.property(ops, (o) => {
        run({ v2: true, iommu: true, emulated: false }, o);
      }),
      { numRuns: 250 },
    );
  });

  it('v1: lax unmap semantics agree with the model', () => {
    fc.assert(
      fc.property(ops, (o) => {
        run({ v2: false, iommu: true, emulated: false }, o);
      }),
      { numRuns: 150 },
    );
  });

  it('v2 with an IOMMU group and an emulated device pinning pages', () => {
    fc.assert(
      fc.property(ops, (o) => {
        run({ v2: true, iommu: true, emulated: true }, o);
      }),
      { numRuns: 200 },
    );
  });

  it('v2 with only an emulated device: only external pins are pinned and accounted', () => {
    fc.assert(
      fc.property(ops, (o) => {
        run({ v2: true, iommu: false, emulated: true }, o);
      }),
      { numRuns: 200 },
    );
  });
});
