import { PROT_READ } from '@vfio-ts/platform';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { addToSegments } from '../src/physical.js';
import { simPlatform, type SimAddressSpace } from '../src/index.js';
import { expectErrno } from './helpers.js';

const KiB = 1024n;
const MiB = 1024n * KiB;
const GiB = 1024n * MiB;
const TiB = 1024n * GiB;

function setup(): { p: ReturnType<typeof simPlatform>; mm: SimAddressSpace } {
  const p = simPlatform({ iommu: 'none' });
  return { p, mm: p.createAddressSpace() };
}

describe('sparse physical memory', () => {
  it('costs nothing until touched, then one page per touched page', () => {
    const { p, mm } = setup();
    const va = mm.mmapAnonymous(TiB);
    expect(p.memory.residentPages).toBe(0);
    expect(p.memory.allocatedPages).toBe(0);
    // Touch three scattered pages (one write spans two pages).
    mm.write(va, new Uint8Array([1, 2, 3]));
    mm.write(va + 512n * GiB + 4094n, new Uint8Array([7, 8, 9, 10]));
    expect(p.memory.residentPages).toBe(3);
    // Reading untouched memory sees zeros and allocates nothing (the zero page).
    expect([...mm.read(va + 100n * GiB, 4)]).toEqual([0, 0, 0, 0]);
    expect(p.memory.residentPages).toBe(3);
    expect([...mm.read(va + 512n * GiB + 4094n, 4)]).toEqual([7, 8, 9, 10]);
  });

  it('a 1 TiB 1G-backed guest maps instantly and pins in 1024 runs', () => {
    const { p, mm } = setup();
    const va = mm.mmapAnonymous(TiB, { hugepage: '1G' });
    expect(va % GiB).toBe(0n);
    const runs = mm.pin(va, Number(TiB / 4096n), { write: true });
    expect(runs.length).toBe(1024);
    expect(runs.every((r) => r.npages === 262144)).toBe(true);
    expect(p.memory.residentPages).toBe(0);
    expect(p.memory.pinCount(runs[5]!.pfn + 12345n)).toBe(1);
  });

  it('places nothing below 0x10000 and places mappings top-down', () => {
    const { mm } = setup();
    const a = mm.mmapAnonymous(4096n);
    const b = mm.mmapAnonymous(8192n);
    expect(b + 8192n).toBe(a);
    expectErrno(() => mm.mmapAnonymous(4096n, { addr: 0x1000n }), 'EPERM');
    const c = mm.mmapAnonymous(4096n, { addr: 0x10000n });
    expect(c).toBe(0x10000n);
    expectErrno(() => mm.mmapAnonymous(4096n, { addr: 0x10000n }), 'EEXIST');
    expectErrno(() => mm.mmapAnonymous(4096n, { addr: 0x10001n }), 'EINVAL');
    expectErrno(() => mm.mmapAnonymous(0n), 'EINVAL');
    expectErrno(() => mm.mmapAnonymous(2n * MiB, { hugepage: '2M', addr: 0x100000n }), 'EINVAL');
  });
});

describe('read/write', () => {
  it('EFAULT on unmapped or wrongly protected memory, and nothing is written', () => {
    const { p, mm } = setup();
    const va = mm.mmapAnonymous(8192n);
    const ro = mm.mmapAnonymous(4096n, { prot: PROT_READ });
    expectErrno(() => mm.read(va + 8190n, 4), 'EFAULT'); // runs past the end (the next page is unmapped)
    expectErrno(() => { mm.write(ro, new Uint8Array([1])); }, 'EFAULT');
    const none = mm.mmapAnonymous(4096n, { prot: 0 });
    expectErrno(() => mm.read(none, 1), 'EFAULT');
    // A write that straddles a mapped and an unmapped page changes nothing.
    mm.munmap(va + 4096n, 4096n);
    expectErrno(() => { mm.write(va + 4094n, new Uint8Array([1, 2, 3, 4])); }, 'EFAULT');
    expect(p.memory.residentPages).toBe(0);
    expect(mm.lookup(va + 4096n)).toBeUndefined();
  });

  it('device mappings call the MMIO handler with offsets from the mapping start', () => {
    const { mm } = setup();
    const store = new Uint8Array(16384);
    const calls: string[] = [];
    let unmapped = 0;
    const va = mm.mmapDevice(
      16384n,
      {
        read: (off, len) => {
          calls.push(`r${off}:${len}`);
          return store.slice(Number(off), Number(off) + len);
        },
        write: (off, data) => {
          calls.push(`w${off}:${data.length}`);
          store.set(data, Number(off));
        },
      },
      { onUnmap: () => unmapped++ },
    );
    mm.write(va + 8192n + 4n, new Uint8Array([0xaa]));
    expect(store[8196]).toBe(0xaa);
    expect([...mm.read(va + 8196n, 1)]).toEqual([0xaa]);
    expect(calls).toEqual(['w8196:1', 'r8196:1']);
    expect(mm.lookup(va)?.device).toBe(true);
    expectErrno(() => mm.pin(va, 1, { write: false }), 'EFAULT');
    // Partial unmap keeps offsets; onUnmap runs once the last piece is gone.
    mm.munmap(va, 8192n);
    expect([...mm.read(va + 8196n, 1)]).toEqual([0xaa]);
    expect(unmapped).toBe(0);
    mm.munmap(va + 8192n, 8192n);
    expect(unmapped).toBe(1);
  });
});

describe('pinning', () => {
  it('4K mappings pin as single-page runs; pin counts rise and fall', () => {
    const { p, mm } = setup();
    const va = mm.mmapAnonymous(64n * KiB);
    const runs = mm.pin(va, 16, { write: true });
    expect(runs.length).toBe(16);
    expect(runs.every((r) => r.npages === 1)).toBe(true);
    expect(runs.map((r) => r.vaddr)).toEqual(Array.from({ length: 16 }, (_, i) => va + BigInt(i) * 4096n));
    const again = mm.pin(va, 16, { write: false });
    expect(again.map((r) => r.pfn)).toEqual(runs.map((r) => r.pfn));
    expect(p.memory.pinCount(runs[3]!.pfn)).toBe(2);
    for (const r of runs) mm.unpin(r.pfn, r.npages);
    expect(p.memory.pinCount(runs[3]!.pfn)).toBe(1);
    // Data written by the CPU is visible at the pinned frame.
    mm.write(va + 3n * 4096n + 5n, new Uint8Array([42]));
    expect(p.memory.read(runs[3]!.pfn * 4096n + 5n, 1)[0]).toBe(42);
  });

  it('a 1 GiB 2M-backed range pins as 512 runs of 512 pages, not contiguous with each other', () => {
    const { mm } = setup();
    const va = mm.mmapAnonymous(GiB, { hugepage: '2M' });
    const runs = mm.pin(va, 262144, { write: true });
    expect(runs.length).toBe(512);
    expect(runs.every((r) => r.npages === 512 && r.pfn % 512n === 0n)).toBe(true);
    // A pin from the middle of a hugepage starts mid-block.
    const mid = mm.pin(va + 2n * MiB + 8192n, 600, { write: false });
    expect(mid.map((r) => r.npages)).toEqual([510, 90]);
    expect(mid[0]!.pfn).toBe(runs[1]!.pfn + 2n);
  });

  it('is all or nothing: EFAULT for holes, device pages and read-only memory with write; counts unchanged', () => {
    const { p, mm } = setup();
    const va = mm.mmapAnonymous(4n * 4096n);
    const ro = mm.mmapAnonymous(4096n, { prot: PROT_READ, addr: va + 4n * 4096n });
    expect(ro).toBe(va + 16384n);
    const before = p.memory.allocatedPages;
    expectErrno(() => mm.pin(va, 5, { write: true }), 'EFAULT');
    expect(p.memory.allocatedPages).toBe(before); // nothing faulted in
    const ok = mm.pin(va, 5, { write: false });
    expect(ok.length).toBe(5);
    mm.munmap(va + 4096n, 4096n);
    expectErrno(() => mm.pin(va, 3, { write: false }), 'EFAULT');
    expect(p.memory.pinCount(ok[0]!.pfn)).toBe(1);
    expectErrno(() => mm.pin(va + 1n, 1, { write: false }), 'EINVAL');
  });

  it('4K pin counts hold across many frames and repeated pin/unpin cycles; reused frames start unpinned', () => {
    const { p, mm } = setup();
    const pages = 2500; // more frames than the pin table's first allocation, so it grows
    const va = mm.mmapAnonymous(BigInt(pages) * 4096n);
    const runs = mm.pin(va, pages, { write: true });
    expect(runs.length).toBe(pages);
    for (let cycle = 0; cycle < 2; cycle++) {
      for (const r of runs) mm.unpin(r.pfn, 1);
      expect(runs.every((r) => p.memory.pinCountN(Number(r.pfn)) === 0)).toBe(true);
      mm.pin(va, pages, { write: true });
    }
    expect(runs.every((r) => p.memory.pinCount(r.pfn) === 1)).toBe(true);
    // An unpin of an unpinned frame never goes negative.
    mm.unpin(runs[0]!.pfn, 1);
    mm.unpin(runs[0]!.pfn, 1);
    expect(p.memory.pinCount(runs[0]!.pfn)).toBe(0);
    // Pinned frames outlive munmap; the last unpin frees them and a new mapping reuses them unpinned.
    mm.munmap(va, BigInt(pages) * 4096n);
    expect(p.memory.allocatedPages).toBe(pages - 1);
    for (const r of runs.slice(1)) mm.unpin(r.pfn, 1);
    expect(p.memory.allocatedPages).toBe(0);
    const vb = mm.mmapAnonymous(4096n);
    const [again] = mm.pin(vb, 1, { write: false });
    expect(runs.some((r) => r.pfn === again!.pfn)).toBe(true);
    expect(p.memory.pinCount(again!.pfn)).toBe(1);
  });

  it('pinned pages outlive munmap and are freed by the last unpin', () => {
    const { p, mm } = setup();
    const va = mm.mmapAnonymous(8192n);
    mm.write(va, new Uint8Array([9]));
    const [run] = mm.pin(va, 1, { write: true });
    mm.munmap(va, 8192n);
    expect(p.memory.read(run!.pfn * 4096n, 1)[0]).toBe(9);
    expect(p.memory.allocatedPages).toBe(1);
    mm.unpin(run!.pfn, 1);
    expect(p.memory.allocatedPages).toBe(0);
    expect(p.memory.residentPages).toBe(0);
  });

  it('hugetlb mappings unmap only at hugepage boundaries', () => {
    const { p, mm } = setup();
    const va = mm.mmapAnonymous(4n * MiB, { hugepage: '2M' });
    mm.write(va, new Uint8Array([1]));
    expectErrno(() => { mm.munmap(va, 4096n); }, 'EINVAL');
    expect(mm.mappings().length).toBe(1);
    mm.munmap(va + 2n * MiB, 2n * MiB);
    expect(mm.mappings()[0]!.end - mm.mappings()[0]!.start).toBe(2n * MiB);
    expect(p.memory.allocatedPages).toBe(512);
    expect(mm.lookup(va)?.pageSize).toBe(2n * MiB);
  });
});

describe('memlock accounting', () => {
  it('adjust with a limit throws ENOMEM and charges nothing', () => {
    const { mm } = setup();
    mm.memlock.adjust(10, 64n * KiB);
    expect(mm.memlock.lockedPages).toBe(10);
    expectErrno(() => { mm.memlock.adjust(7, 64n * KiB); }, 'ENOMEM');
    expect(mm.memlock.lockedPages).toBe(10);
    mm.memlock.adjust(6, 64n * KiB);
    mm.memlock.adjust(1000, null); // CAP_IPC_LOCK
    mm.memlock.adjust(-1016);
    expect(mm.memlock.lockedPages).toBe(0);
  });
});

describe('fork', () => {
  it('copies private memory, shares shared memory, and leaves memlock at zero', () => {
    const { mm } = setup();
    const priv = mm.mmapAnonymous(8192n);
    const shared = mm.mmapAnonymous(4096n, { shared: true });
    const huge = mm.mmapAnonymous(2n * MiB, { hugepage: '2M' });
    mm.write(priv, new Uint8Array([1]));
    mm.write(shared, new Uint8Array([2]));
    mm.write(huge + 4096n, new Uint8Array([3]));
    mm.memlock.adjust(5);
    const child = mm.fork();
    expect(child.id).not.toBe(mm.id);
    expect(child.memlock.lockedPages).toBe(0);
    expect(child.read(priv, 1)[0]).toBe(1);
    expect(child.read(huge + 4096n, 1)[0]).toBe(3);
    child.write(priv, new Uint8Array([10]));
    child.write(shared, new Uint8Array([20]));
    expect(mm.read(priv, 1)[0]).toBe(1);
    expect(mm.read(shared, 1)[0]).toBe(20);
    expect(child.lookup(priv)!.pfn).not.toBe(mm.lookup(priv)!.pfn);
    expect(child.lookup(shared)!.pfn).toBe(mm.lookup(shared)!.pfn);
    // The shared page survives the parent's unmap while the child maps it.
    mm.destroy();
    expect(child.read(shared, 1)[0]).toBe(20);
  });
});

describe('hugepage pin-count segments (property)', () => {
  it('agree with a per-page counter under random pin/unpin of sub-ranges', () => {
    const N = 64;
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(N - 1), fc.integer({ min: 1, max: N }), fc.constantFrom(1, -1)), { maxLength: 40 }),
        (ops) => {
          let segs: number[] = [];
          const model = new Array<number>(N).fill(0);
          for (const [start, len, delta] of ops) {
            const end = Math.min(N, start + len);
            segs = addToSegments(segs, start, end, delta);
            for (let i = start; i < end; i++) model[i] = Math.max(0, model[i]! + delta);
          }
          const fromSegs = new Array<number>(N).fill(0);
          for (let i = 0; i < segs.length; i += 3) {
            expect(segs[i]!).toBeLessThan(segs[i + 1]!);
            expect(segs[i + 2]!).toBeGreaterThan(0);
            if (i > 0) expect(segs[i]!).toBeGreaterThanOrEqual(segs[i - 2]!);
            for (let j = segs[i]!; j < segs[i + 1]!; j++) fromSegs[j] = segs[i + 2]!;
          }
          expect(fromSegs).toEqual(model);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('device memory in the physical address space', () => {
  it('a device mapping has its own frames, and physical accesses there reach the handler (P2P)', () => {
    const { p, mm } = setup();
    const bar = new Uint8Array(8192);
    const va = mm.mmapDevice(8192n, {
      read: (off, len) => bar.slice(Number(off), Number(off) + len),
      write: (off, data) => {
        bar.set(data, Number(off));
      },
    });
    const page = mm.lookup(va + 4096n)!;
    expect(page.device).toBe(true);
    p.memory.write(page.pfn * 4096n + 8n, new Uint8Array([0x5a]));
    expect(bar[4096 + 8]).toBe(0x5a);
    expect(p.memory.read(page.pfn * 4096n + 8n, 1)[0]).toBe(0x5a);
    expect(p.memory.residentPages).toBe(0);
    mm.munmap(va, 8192n);
    expect(p.memory.read(page.pfn * 4096n + 8n, 1)[0]).toBe(0);
  });
});
