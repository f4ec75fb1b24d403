/**
 * The VFIO type1 container ABI on /dev/iommu (inventory §1.9.4, selftest fixture `vfio_compat_mock_domain`):
 * SET_IOMMU v1 turns large pages off and allows cutting mappings, v2 refuses partial unmaps; GET_INFO's
 * capability chain never writes past argsz; UNMAP_ALL needs iova = size = 0.
 */
import { describe, expect, it } from 'vitest';
import {
  IOMMU_OPTION_HUGE_PAGES,
  IOMMU_VFIO_IOAS,
  IOMMU_VFIO_IOAS_SET,
  VFIO_CHECK_EXTENSION,
  VFIO_DMA_CC_IOMMU,
  VFIO_DMA_UNMAP_FLAG_ALL,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_SET_IOMMU,
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  iommuVfioIoas,
  vfioIommuType1DmaMap,
  vfioIommuType1DmaUnmap,
  vfioIommuType1Info,
} from '@vfio-ts/uapi';
import { MiB, PAGE, errnoOf, setup } from './helpers.js';

function compat(type: number) {
  const f = setup({ memlockLimit: 64n * MiB });
  const ioas = f.ioasAlloc();
  const dev = f.device(ioas);
  f.p.ioctl(f.fd, IOMMU_VFIO_IOAS, iommuVfioIoas.encode({ size: 12, op: IOMMU_VFIO_IOAS_SET, ioas_id: ioas }));
  f.p.ioctl(f.fd, VFIO_SET_IOMMU, type);
  const map = (iova: bigint, vaddr: bigint, size: bigint): number =>
    f.p.ioctl(f.fd, VFIO_IOMMU_MAP_DMA, vfioIommuType1DmaMap.encode({ argsz: 32, flags: 3, vaddr, iova, size }));
  const unmap = (iova: bigint, size: bigint, flags = 0): bigint => {
    const b = vfioIommuType1DmaUnmap.encode({ argsz: 24, flags, iova, size });
    f.p.ioctl(f.fd, VFIO_IOMMU_UNMAP_DMA, b);
    return vfioIommuType1DmaUnmap.decode(b).size;
  };
  return { f, ioas, dev, map, unmap };
}

describe.each([
  { name: 'Ver1v2', type: VFIO_TYPE1v2_IOMMU },
  { name: 'Ver1v0', type: VFIO_TYPE1_IOMMU },
])('vfio_compat_mock_domain ($name)', (v) => {
  it('option_huge_pages: v1 turns large pages off, v2 keeps them', () => {
    const { f, ioas } = compat(v.type);
    expect(f.option(IOMMU_OPTION_HUGE_PAGES, ioas)).toBe(v.type === VFIO_TYPE1_IOMMU ? 0n : 1n);
    expect(f.p.ioctl(f.fd, VFIO_CHECK_EXTENSION, VFIO_DMA_CC_IOMMU)).toBe(1);
  });

  it('map: map/unmap, UNMAP_ALL needs iova = size = 0, page-by-page unmap in shuffled order', () => {
    const { f, map, unmap, dev } = compat(v.type);
    const buf = f.buffer(16n * PAGE);
    map(MiB, buf, 16n * PAGE);
    expect(dev.group.domain!.translate(MiB)).toBeDefined();
    expect(f.sub.userLockedPages(1000)).toBe(16);
    expect(unmap(MiB, 16n * PAGE)).toBe(16n * PAGE);
    map(MiB, buf, 16n * PAGE);
    expect(errnoOf(() => unmap(MiB, 16n * PAGE, VFIO_DMA_UNMAP_FLAG_ALL))).toBe('EINVAL');
    expect(errnoOf(() => unmap(1n, 0n, VFIO_DMA_UNMAP_FLAG_ALL))).toBe('EINVAL');
    expect(unmap(0n, 0n, VFIO_DMA_UNMAP_FLAG_ALL)).toBe(16n * PAGE);
    expect(f.sub.userLockedPages(1000)).toBe(0);
    const order = [5, 0, 9, 3, 15, 1, 12, 7, 2, 14, 8, 4, 11, 6, 13, 10];
    for (let i = 0n; i < 16n; i++) map(MiB + i * PAGE, buf + i * PAGE, PAGE);
    for (const i of order) expect(unmap(MiB + BigInt(i) * PAGE, PAGE)).toBe(PAGE);
    expect(errnoOf(() => unmap(MiB, PAGE))).toBe('ENOENT');
  });

  it('huge_map: v1 may unmap pieces of a large mapping, v2 refuses (ENOENT)', () => {
    const { f, map, unmap } = compat(v.type);
    const buf = f.buffer(2n * MiB, '2M');
    map(2n * MiB, buf, 2n * MiB);
    if (v.type === VFIO_TYPE1_IOMMU) {
      expect(unmap(2n * MiB + 64n * PAGE, 16n * PAGE)).toBe(16n * PAGE);
      expect(unmap(2n * MiB, 64n * PAGE)).toBe(64n * PAGE);
      expect(f.sub.userLockedPages(1000)).toBe(512 - 80);
      expect(unmap(2n * MiB, 2n * MiB)).toBe(2n * MiB - 80n * PAGE);
    } else {
      const b = vfioIommuType1DmaUnmap.encode({ argsz: 24, iova: 2n * MiB + 64n * PAGE, size: 16n * PAGE });
      expect(errnoOf(() => f.p.ioctl(f.fd, VFIO_IOMMU_UNMAP_DMA, b))).toBe('ENOENT');
      expect(vfioIommuType1DmaUnmap.decode(b).size).toBe(0n);
      expect(unmap(2n * MiB, 2n * MiB)).toBe(2n * MiB);
    }
    expect(f.sub.userLockedPages(1000)).toBe(0);
  });

  it('get_info: pre-cap ABI, the capability chain at every argsz never writes past argsz', () => {
    const { f } = compat(v.type);
    const at = f.p.mmap({ length: 4096n });
    const call = (argsz: number): { info: ReturnType<typeof vfioIommuType1Info.decode>; bytes: Uint8Array } => {
      f.p.memory.write(at, new Uint8Array(512).fill(0xcc));
      f.p.memory.write(at, vfioIommuType1Info.encode({ argsz }).subarray(0, 16));
      f.p.ioctl(f.fd, VFIO_IOMMU_GET_INFO, at);
      const bytes = f.p.memory.read(at, 512);
      return { info: vfioIommuType1Info.decode(bytes.subarray(0, Math.min(argsz, 24))), bytes };
    };
    const pre = call(16);
    expect(pre.info.iova_pgsizes).toBe(PAGE);
    expect(pre.info.flags & 1).toBe(1);
    expect(pre.bytes[16]).toBe(0xcc);
    const full = pre.info.argsz;
    expect(full).toBe(24 + 16 + 16 + 16 * 2);
    for (let argsz = 16; argsz <= full + 8; argsz++) {
      const r = call(argsz);
      expect(r.bytes.subarray(argsz).every((x) => x === 0xcc)).toBe(true);
      expect(r.info.argsz).toBe(full);
      if (argsz >= full) {
        expect(r.info.cap_offset).toBe(24);
        const dv = new DataView(r.bytes.buffer, r.bytes.byteOffset);
        // DMA_AVAIL (3) first, then IOVA_RANGE (1) with the two usable ranges around the MSI window.
        expect(dv.getUint16(24, true)).toBe(3);
        expect(dv.getUint32(32, true)).toBe(0xffffffff);
        const next = dv.getUint32(28, true);
        expect(next).toBe(40);
        expect(dv.getUint16(next, true)).toBe(1);
        expect(dv.getUint32(next + 4, true)).toBe(0);
        expect(dv.getUint32(next + 8, true)).toBe(2);
        expect(dv.getBigUint64(next + 16 + 8, true)).toBe(0xfedfffffn);
      } else if (argsz >= 24) {
        expect(r.info.cap_offset).toBe(0);
      }
    }
  });
});
