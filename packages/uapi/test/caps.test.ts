import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CapChainBuilder,
  DEVICE_INFO_CAP_SIZES,
  REGION_INFO_CAP_SIZES,
  SysError,
  TYPE1_INFO_CAP_SIZES,
  VFIO_DEVICE_FLAGS_CAPS,
  VFIO_DEVICE_INFO_CAP_PCI_ATOMIC_COMP,
  VFIO_IOMMU_INFO_CAPS,
  VFIO_IOMMU_INFO_PGSIZES,
  VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
  VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION,
  VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
  VFIO_PCI_ATOMIC_COMP32,
  VFIO_PCI_ATOMIC_COMP64,
  VFIO_REGION_INFO_CAP_MSIX_MAPPABLE,
  VFIO_REGION_INFO_CAP_SPARSE_MMAP,
  VFIO_REGION_INFO_CAP_TYPE,
  VFIO_REGION_INFO_FLAG_CAPS,
  decodeDmaAvailCap,
  decodeIovaRangeCap,
  decodeMigrationCap,
  decodeMsixMappableCap,
  decodePciAtomicCompCap,
  decodeRegionTypeCap,
  decodeSparseMmapCap,
  dmaAvailCapPayload,
  findCap,
  iovaRangeCapPayload,
  isSysError,
  migrationCapPayload,
  parseCapChain,
  pciAtomicCompCapPayload,
  regionTypeCapPayload,
  sparseMmapCapPayload,
  vfioDeviceInfo,
  vfioIommuType1Info,
  vfioRegionInfo,
  writeInfoWithCaps,
} from '../src/index.js';
import type { CapEntry } from '../src/index.js';

/** The chain the type1 backend emits, in the kernel's order: MIGRATION, DMA_AVAIL, IOVA_RANGE (§1.7). */
function type1Caps(): CapChainBuilder {
  return new CapChainBuilder()
    .add(VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION, 1, migrationCapPayload({ flags: 0, pgsizeBitmap: 4096n, maxDirtyBitmapSize: 1n << 28n }))
    .add(VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, 1, dmaAvailCapPayload(65535))
    .add(VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, 1, iovaRangeCapPayload([
      { start: 0n, end: 0xfedfffffn },
      { start: 0xfef00000n, end: (1n << 48n) - 1n },
    ]));
}

describe('CapChainBuilder', () => {
  it('lays caps out 8-aligned with absolute next offsets', () => {
    const caps = type1Caps();
    // MIGRATION 32, DMA_AVAIL 12 -> 16, IOVA_RANGE 16 + 2*16 = 48
    expect(caps.size).toBe(32 + 16 + 48);
    const chain = caps.build(24);
    const view = new DataView(chain.buffer);
    expect([view.getUint16(0, true), view.getUint16(2, true), view.getUint32(4, true)]).toEqual([2, 1, 24 + 32]);
    expect([view.getUint16(32, true), view.getUint32(36, true)]).toEqual([3, 24 + 48]);
    expect([view.getUint16(48, true), view.getUint32(52, true)]).toEqual([1, 0]);
    expect(view.getUint32(40, true)).toBe(65535);
  });

  it('refuses ids and versions that are not u16', () => {
    expect(() => new CapChainBuilder().add(0x10000, 1)).toThrow(RangeError);
    expect(() => new CapChainBuilder().add(1, -1)).toThrow(RangeError);
  });
});

describe('writeInfoWithCaps', () => {
  const full = 24 + type1Caps().size;

  it('argsz large enough: chain after the struct, cap_offset = sizeof(info)', () => {
    const buf = new Uint8Array(full);
    const out = writeInfoWithCaps(buf, vfioIommuType1Info, { argsz: full, flags: VFIO_IOMMU_INFO_PGSIZES, iova_pgsizes: 0x40201000n, cap_offset: 0, pad: 0 }, VFIO_IOMMU_INFO_CAPS, type1Caps());
    expect(out.cap_offset).toBe(24);
    expect(out.argsz).toBe(full);
    const info = vfioIommuType1Info.decode(buf);
    expect(info.flags).toBe(VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS);
    const chain = parseCapChain(buf, info.cap_offset, { minOffset: 24, limit: info.argsz, minSizes: TYPE1_INFO_CAP_SIZES });
    expect(chain.map((c) => c.id)).toEqual([2, 3, 1]);
    expect(decodeMigrationCap(chain[0]!)).toEqual({ flags: 0, pgsizeBitmap: 4096n, maxDirtyBitmapSize: 1n << 28n });
    expect(decodeDmaAvailCap(chain[1]!)).toEqual({ avail: 65535 });
    expect(decodeIovaRangeCap(chain[2]!).ranges).toEqual([
      { start: 0n, end: 0xfedfffffn },
      { start: 0xfef00000n, end: (1n << 48n) - 1n },
    ]);
  });

  it('every argsz from minsz up: never writes past argsz, never a corrupt chain (the iommufd selftest sweep)', () => {
    for (let argsz = vfioIommuType1Info.minsz; argsz <= full + 16; argsz++) {
      const buf = new Uint8Array(full + 64).fill(0xaa);
      buf.set(vfioIommuType1Info.encode({ argsz }).subarray(0, 16));
      writeInfoWithCaps(buf, vfioIommuType1Info, { argsz, flags: VFIO_IOMMU_INFO_PGSIZES, iova_pgsizes: 4096n, cap_offset: 0, pad: 0 }, VFIO_IOMMU_INFO_CAPS, type1Caps());
      const written = argsz >= full ? full : Math.min(argsz, 24);
      expect(buf.subarray(written).every((b) => b === 0xaa), `argsz ${argsz}`).toBe(true);
      const info = vfioIommuType1Info.decode(buf.subarray(0, Math.min(argsz, 24)));
      expect(info.flags & VFIO_IOMMU_INFO_CAPS).toBe(VFIO_IOMMU_INFO_CAPS);
      if (argsz < full) {
        expect(info.argsz).toBe(full); // the size to retry with
        expect(info.cap_offset).toBe(0);
      } else {
        expect(info.argsz).toBe(argsz);
        expect(parseCapChain(buf, info.cap_offset, { minOffset: 24, limit: argsz, minSizes: TYPE1_INFO_CAP_SIZES })).toHaveLength(3);
      }
    }
  });

  it('no caps: flags and cap_offset untouched, argsz kept', () => {
    const buf = new Uint8Array(24);
    const out = writeInfoWithCaps(buf, vfioDeviceInfo, { argsz: 24, flags: 3, num_regions: 9, num_irqs: 5, cap_offset: 0, pad: 0 }, VFIO_DEVICE_FLAGS_CAPS, new CapChainBuilder());
    expect(out).toEqual({ argsz: 24, flags: 3, num_regions: 9, num_irqs: 5, cap_offset: 0, pad: 0 });
    expect(vfioDeviceInfo.decode(buf)).toEqual(out);
  });

  it('a buffer shorter than argsz claims is EFAULT and nothing is written', () => {
    const buf = new Uint8Array(40).fill(7);
    expect(() =>
      writeInfoWithCaps(buf, vfioIommuType1Info, { argsz: full, flags: 1, iova_pgsizes: 4096n, cap_offset: 0, pad: 0 }, VFIO_IOMMU_INFO_CAPS, type1Caps()),
    ).toThrow(expect.objectContaining({ errno: 'EFAULT' }));
    expect(buf.every((b) => b === 7)).toBe(true);
  });

  it('region and device caps round-trip through their decoders', () => {
    const caps = new CapChainBuilder()
      .add(VFIO_REGION_INFO_CAP_SPARSE_MMAP, 1, sparseMmapCapPayload([{ offset: 0n, size: 0x1000n }, { offset: 0x3000n, size: 0x1000n }]))
      .add(VFIO_REGION_INFO_CAP_TYPE, 1, regionTypeCapPayload(0x80008086, 1))
      .add(VFIO_REGION_INFO_CAP_MSIX_MAPPABLE, 1);
    const buf = new Uint8Array(32 + caps.size);
    const out = writeInfoWithCaps(buf, vfioRegionInfo, { argsz: buf.length, flags: 7, index: 0, cap_offset: 0, size: 0x4000n, offset: 0n }, VFIO_REGION_INFO_FLAG_CAPS, caps);
    const chain = parseCapChain(buf, out.cap_offset, { minOffset: 32, minSizes: REGION_INFO_CAP_SIZES });
    expect(decodeSparseMmapCap(findCap(chain, VFIO_REGION_INFO_CAP_SPARSE_MMAP)!).areas).toEqual([
      { offset: 0n, size: 0x1000n },
      { offset: 0x3000n, size: 0x1000n },
    ]);
    expect(decodeRegionTypeCap(findCap(chain, VFIO_REGION_INFO_CAP_TYPE)!)).toEqual({ type: 0x80008086, subtype: 1 });
    expect(decodeMsixMappableCap(findCap(chain, VFIO_REGION_INFO_CAP_MSIX_MAPPABLE)!)).toEqual({ version: 1 });

    const dcaps = new CapChainBuilder().add(VFIO_DEVICE_INFO_CAP_PCI_ATOMIC_COMP, 1, pciAtomicCompCapPayload(VFIO_PCI_ATOMIC_COMP32 | VFIO_PCI_ATOMIC_COMP64));
    const dbuf = new Uint8Array(24 + dcaps.size);
    const dout = writeInfoWithCaps(dbuf, vfioDeviceInfo, { argsz: dbuf.length, flags: 2, num_regions: 9, num_irqs: 5, cap_offset: 0, pad: 0 }, VFIO_DEVICE_FLAGS_CAPS, dcaps);
    const dchain = parseCapChain(dbuf, dout.cap_offset, { minOffset: 24, minSizes: DEVICE_INFO_CAP_SIZES });
    expect(decodePciAtomicCompCap(dchain[0]!)).toEqual({ flags: 3 });
  });
});

/** Writes a header at `at`. */
function hdr(buf: Uint8Array, at: number, id: number, version: number, next: number): void {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  v.setUint16(at, id, true);
  v.setUint16(at + 2, version, true);
  v.setUint32(at + 4, next, true);
}

function einval(f: () => unknown): void {
  let thrown: unknown;
  try {
    f();
  } catch (e) {
    thrown = e;
  }
  expect(isSysError(thrown, 'EINVAL'), String(thrown)).toBe(true);
}

describe('parseCapChain rejects bad chains with EINVAL', () => {
  it('cap_offset 0 is an empty chain', () => {
    expect(parseCapChain(new Uint8Array(16), 0)).toEqual([]);
  });
  it('a self loop', () => {
    const b = new Uint8Array(64);
    hdr(b, 24, 1, 1, 24);
    einval(() => parseCapChain(b, 24, { minOffset: 24 }));
  });
  it('a two-cap loop', () => {
    const b = new Uint8Array(64);
    hdr(b, 24, 1, 1, 32);
    hdr(b, 32, 2, 1, 24);
    einval(() => parseCapChain(b, 24, { minOffset: 24 }));
  });
  it('overlapping headers', () => {
    const b = new Uint8Array(64);
    hdr(b, 24, 1, 1, 28);
    einval(() => parseCapChain(b, 24, { minOffset: 24, align: 4 }));
  });
  it('a cap overlapping the fixed part of a known previous cap', () => {
    const b = new Uint8Array(96);
    hdr(b, 24, VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION, 1, 40); // MIGRATION is 32 bytes: 24..56
    hdr(b, 40, VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, 1, 0);
    einval(() => parseCapChain(b, 24, { minOffset: 24, minSizes: TYPE1_INFO_CAP_SIZES }));
  });
  it('misaligned offsets', () => {
    const b = new Uint8Array(64);
    hdr(b, 28, 1, 1, 0);
    einval(() => parseCapChain(b, 28, { minOffset: 24 }));
  });
  it('inside the fixed struct', () => {
    const b = new Uint8Array(64);
    hdr(b, 8, 1, 1, 0);
    einval(() => parseCapChain(b, 8, { minOffset: 24 }));
  });
  it('header or known cap past the end (or past argsz)', () => {
    const b = new Uint8Array(64);
    einval(() => parseCapChain(b, 64, { minOffset: 24 }));
    einval(() => parseCapChain(b, 0xfffffff8, { minOffset: 24 }));
    hdr(b, 56, VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION, 1, 0);
    einval(() => parseCapChain(b, 56, { minOffset: 24, minSizes: TYPE1_INFO_CAP_SIZES }));
    hdr(b, 32, 1, 1, 0);
    einval(() => parseCapChain(b, 32, { minOffset: 24, limit: 36 }));
  });
  it('decoders check the id and that arrays fit', () => {
    const b = new Uint8Array(48);
    hdr(b, 24, VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, 1, 0);
    new DataView(b.buffer).setUint32(32, 5, true); // 5 ranges need 96 bytes
    const [cap] = parseCapChain(b, 24, { minOffset: 24, minSizes: TYPE1_INFO_CAP_SIZES });
    einval(() => decodeIovaRangeCap(cap!));
    einval(() => decodeDmaAvailCap(cap!));
    einval(() => decodeSparseMmapCap({ ...cap!, id: VFIO_REGION_INFO_CAP_SPARSE_MMAP }));
  });
});

/** A small seeded PRNG (xorshift32) so the 100k-buffer fuzz is fast and reproducible. */
function xorshift(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

/** The invariants of any chain the parser accepts. */
function checkChain(buf: Uint8Array, chain: CapEntry[], minOffset: number, limit: number): void {
  let floor = minOffset;
  for (const [i, c] of chain.entries()) {
    if (c.offset < floor || c.offset % 8 !== 0 || c.offset + 8 > limit) throw new Error(`bad offset ${c.offset}`);
    const next = chain[i + 1];
    if ((next ? next.offset : 0) !== c.next) throw new Error('next does not match');
    if (c.bytes.byteOffset - buf.byteOffset !== c.offset) throw new Error('bytes misplaced');
    floor = c.offset + 8;
  }
}

describe('parseCapChain fuzz', () => {
  it('100k random buffers: a valid chain or SysError EINVAL, nothing else', () => {
    const rnd = xorshift(0x5eed1234);
    let chains = 0;
    let rejected = 0;
    let multi = 0;
    for (let n = 0; n < 100_000; n++) {
      const len = rnd() % 160;
      const buf = new Uint8Array(len);
      for (let i = 0; i < len; i++) buf[i] = rnd() & 0xff;
      // Plant plausible `next` fields so long chains, loops and overlaps are actually exercised.
      const view = new DataView(buf.buffer);
      for (let at = 4; at + 4 <= len; at += 8) {
        const r = rnd() % 8;
        if (r < 5) view.setUint32(at, r === 0 ? 0 : (rnd() % 40) * (r === 1 ? 4 : 8), true);
      }
      const minOffset = [0, 8, 16, 24, 32][rnd() % 5]!;
      const first = rnd() % 3 === 0 ? rnd() : (rnd() % 24) * 8;
      const opts = { minOffset, minSizes: TYPE1_INFO_CAP_SIZES, ...(rnd() % 2 ? { limit: rnd() % 200 } : {}) };
      try {
        const chain = parseCapChain(buf, first, opts);
        checkChain(buf, chain, Math.max(minOffset, 1), Math.min(opts.limit ?? len, len));
        chains++;
        if (chain.length >= 2) multi++;
      } catch (e) {
        if (!(e instanceof SysError) || e.errno !== 'EINVAL') throw e;
        rejected++;
      }
    }
    // Both outcomes must be common, or the fuzz is not testing anything.
    expect(chains).toBeGreaterThan(1000);
    expect(rejected).toBeGreaterThan(1000);
    expect(multi).toBeGreaterThan(100);
  });

  it('property: decoders on any parsed cap give a value or EINVAL', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 128 }), fc.integer({ min: 0, max: 160 }), (buf, first) => {
        try {
          for (const cap of parseCapChain(buf, first, { minOffset: 8, align: 4 })) {
            for (const decode of [decodeIovaRangeCap, decodeMigrationCap, decodeDmaAvailCap, decodeSparseMmapCap, decodeRegionTypeCap, decodeMsixMappableCap, decodePciAtomicCompCap]) {
              try {
                decode(cap);
              } catch (e) {
                if (!isSysError(e, 'EINVAL')) throw e;
              }
            }
          }
        } catch (e) {
          if (!isSysError(e, 'EINVAL')) throw e;
        }
      }),
      { numRuns: 5000 },
    );
  });

  it('property: whatever the builder makes, the parser reads back', () => {
    const capArb = fc.record({ id: fc.integer({ min: 0, max: 0xffff }), version: fc.integer({ min: 0, max: 0xffff }), payload: fc.uint8Array({ maxLength: 40 }) });
    fc.assert(
      fc.property(fc.array(capArb, { maxLength: 8 }), fc.integer({ min: 1, max: 8 }).map((k) => k * 8), (caps, base) => {
        const b = new CapChainBuilder();
        for (const c of caps) b.add(c.id, c.version, c.payload);
        const buf = new Uint8Array(base + b.size);
        buf.set(b.build(base), base);
        const chain = parseCapChain(buf, caps.length ? base : 0, { minOffset: base });
        expect(chain.map((c) => [c.id, c.version])).toEqual(caps.map((c) => [c.id, c.version]));
        chain.forEach((c, i) => {
          expect(Array.from(c.bytes.subarray(8, 8 + caps[i]!.payload.length))).toEqual(Array.from(caps[i]!.payload));
        });
      }),
      { numRuns: 500 },
    );
  });
});
