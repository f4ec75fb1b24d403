import fc from 'fast-check';
import { VFIO_IOMMU_ENABLE } from '@vfio-ts/uapi';
import { describe, expect, it } from 'vitest';
import { Bench, expectErrno } from './helpers.js';

const PAGES = 64; // window of 64 TCEs of 4 KiB
const BUF_PAGES = 16;

type Op =
  | { kind: 'map'; iova: number; va: number; n: number; flags: number }
  | { kind: 'unmap'; iova: number; n: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constant('map' as const),
    iova: fc.integer({ min: 0, max: PAGES - 1 }),
    va: fc.integer({ min: 0, max: BUF_PAGES - 1 }),
    n: fc.integer({ min: 0, max: 6 }),
    flags: fc.integer({ min: 0, max: 3 }),
  }),
  fc.record({ kind: fc.constant('unmap' as const), iova: fc.integer({ min: 0, max: PAGES - 1 }), n: fc.integer({ min: 0, max: 8 }) }),
);

/** Expected TCEs: bus page → (buffer page, writable). */
type Model = Map<number, { va: number; write: boolean }>;

function run(version: 2 | 7, ops: Op[]): void {
  const b = new Bench({ memlockLimit: null });
  const g = b.group({ tce32Size: PAGES * 4096, freezeOnFault: false });
  const c = b.open(version, g.ref);
  const buf = b.buffer(BigInt(BUF_PAGES * 4096));
  const v2 = version === 7;
  if (v2) b.register(c, buf, BigInt(BUF_PAGES * 4096));
  else b.ioctl(c, VFIO_IOMMU_ENABLE, undefined);
  const model: Model = new Map();
  for (const op of ops) {
    if (op.kind === 'map') {
      const fits = op.iova + op.n <= PAGES && op.va + op.n <= BUF_PAGES;
      const call = () => b.map(c, { vaddr: buf + BigInt(op.va * 4096), iova: BigInt(op.iova * 4096), size: BigInt(op.n * 4096), flags: op.flags });
      if (op.flags === 0 || (!fits && v2 && op.va + op.n > BUF_PAGES && op.iova + op.n <= PAGES)) {
        expectErrno(call, 'EINVAL');
        continue;
      }
      if (!fits) {
        let failed = false;
        try {
          call();
        } catch {
          failed = true;
        }
        expect(failed).toBe(true);
        continue;
      }
      expect(call()).toBe(0);
      for (let i = 0; i < op.n; i++) model.set(op.iova + i, { va: op.va + i, write: (op.flags & 2) !== 0 });
    } else {
      const call = () => b.unmap(c, { iova: BigInt(op.iova * 4096), size: BigInt(op.n * 4096) });
      if (op.iova + op.n > PAGES) {
        expectErrno(call, 'EINVAL');
        continue;
      }
      expect(call()).toBe(0);
      for (let i = 0; i < op.n; i++) model.delete(op.iova + i);
    }
  }
  // Every TCE translates exactly as the model says, with the model's permission.
  for (let p = 0; p < PAGES; p++) {
    const want = model.get(p);
    const bus = BigInt(p * 4096);
    if (!want) {
      expectErrno(() => g.hw.translateDma('dev', bus, 1, false), 'EFAULT');
      continue;
    }
    const pa = g.hw.translateDma('dev', bus + 8n, 1, false)[0]!.pa;
    expect(pa).toBe(b.mm.lookup(buf + BigInt(want.va * 4096))!.pfn * 4096n + 8n);
    if (!want.write) expectErrno(() => g.hw.translateDma('dev', bus, 1, true), 'EFAULT');
  }
  // Pins: v1 pins once per TCE; v2 pinned the region once at registration.
  const refs = new Array<number>(BUF_PAGES).fill(0);
  for (const { va } of model.values()) refs[va]!++;
  for (let v = 0; v < BUF_PAGES; v++) {
    const pins = b.platform.memory.pinCount(b.mm.lookup(buf + BigInt(v * 4096))!.pfn);
    expect(pins).toBe(v2 ? 1 : refs[v]);
  }
  if (v2) expect(c.describe().preregistered[0]?.mappings).toBe(model.size);
  b.ops.release(c);
  for (let v = 0; v < BUF_PAGES; v++) expect(b.platform.memory.pinCount(b.mm.lookup(buf + BigInt(v * 4096))!.pfn)).toBe(0);
  expect(b.mm.memlock.lockedPages).toBe(0);
}

describe('MAP/UNMAP against a reference model', () => {
  it('v1: TCEs, permissions and pins follow the model; release returns everything', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 25 }), (ops) => {
        run(2, ops);
      }),
      { numRuns: 60 },
    );
  });

  it('v2: TCEs, permissions and region mapping counts follow the model', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 25 }), (ops) => {
        run(7, ops);
      }),
      { numRuns: 60 },
    );
  });
});
