/**
 * Acceptance (core issue) 1: the QEMU flow through the system-call surface with type1v2, GET_INFO and its
 * capability chain (with the short-argsz retry), and a test driver registered through VfioDeviceOps.
 */
import { describe, expect, it } from 'vitest';
import { cString, groupStatus, intArg } from '@vfio-ts/core';
import {
  decodeDmaAvailCap,
  decodeIovaRangeCap,
  decodeMigrationCap,
  parseCapChain,
  VFIO_API_VERSION,
  VFIO_CHECK_EXTENSION,
  VFIO_GET_API_VERSION,
  VFIO_GROUP_FLAGS_CONTAINER_SET,
  VFIO_GROUP_FLAGS_VIABLE,
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_INFO_CAPS,
  VFIO_IOMMU_INFO_PGSIZES,
  VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
  VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION,
  VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
  VFIO_SET_IOMMU,
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  VFIO_UNMAP_ALL,
  VFIO_SPAPR_TCE_IOMMU,
  vfioIommuType1Info,
} from '@vfio-ts/uapi';
import { dmaTestFunction, groupOf, REG, testHost } from './fixtures.js';

const BDF = '0000:00:03.0';

function setup() {
  const { host, log } = testHost([{ bdf: BDF, fn: dmaTestFunction(), driver: 'vfio-test' }]);
  const p = host.spawn({ uid: 0, capabilities: ['CAP_IPC_LOCK'], memlockLimit: 64n << 20n });
  return { host, log, p };
}

describe('the QEMU flow on type1v2', () => {
  it('opens a device as QEMU does and reaches the driver ops', () => {
    const { log, p } = setup();
    const container = p.open('/dev/vfio/vfio');
    expect(p.ioctl(container, VFIO_GET_API_VERSION)).toBe(VFIO_API_VERSION);
    expect(p.ioctl(container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU)).toBe(1);
    expect(p.ioctl(container, VFIO_CHECK_EXTENSION, VFIO_TYPE1_IOMMU)).toBe(1);
    expect(p.ioctl(container, VFIO_CHECK_EXTENSION, VFIO_UNMAP_ALL)).toBe(1);
    expect(p.ioctl(container, VFIO_CHECK_EXTENSION, VFIO_SPAPR_TCE_IOMMU)).toBe(0);

    const groupNo = groupOf(p, BDF);
    const group = p.open(`/dev/vfio/${groupNo}`);
    expect(groupStatus(p, group)).toBe(VFIO_GROUP_FLAGS_VIABLE);
    // SET_IOMMU before any group is attached: EINVAL.
    expect(() => p.ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU)).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
    p.ioctl(group, VFIO_GROUP_SET_CONTAINER, intArg(container));
    expect(groupStatus(p, group)).toBe(VFIO_GROUP_FLAGS_VIABLE | VFIO_GROUP_FLAGS_CONTAINER_SET);
    // GET_DEVICE_FD before SET_IOMMU is refused (no IOMMU model selected yet).
    expect(() => p.ioctl(group, VFIO_GROUP_GET_DEVICE_FD, cString(BDF))).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
    expect(p.ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU)).toBe(0);

    const device = p.ioctl(group, VFIO_GROUP_GET_DEVICE_FD, cString(BDF));
    expect(device).toBeGreaterThan(group);
    expect(log.opens).toEqual([BDF]);

    // write and read reach the driver's ops (and through them the model's registers).
    const v = new Uint8Array(8);
    new DataView(v.buffer).setBigUint64(0, 0xfeedn, true);
    expect(p.pwrite(device, v, BigInt(REG.ADDR))).toBe(8);
    expect(new DataView(p.pread(device, 8, BigInt(REG.ADDR)).buffer).getBigUint64(0, true)).toBe(0xfeedn);
    // an ioctl the core does not handle goes to the driver.
    expect(p.ioctl(device, 0x3b00 + 100 + 11)).toBe(0x1234);
    expect(log.ioctls).toEqual([0x3b00 + 100 + 11]);

    // A second open of the group is EBUSY, whoever tries.
    expect(() => p.open(`/dev/vfio/${groupNo}`)).toThrow(expect.objectContaining({ errno: 'EBUSY' }));
    const other = p.fork();
    expect(() => other.open(`/dev/vfio/${groupNo}`)).toThrow(expect.objectContaining({ errno: 'EBUSY' }));

    // The child shares the device file: the device closes only when the last reference goes.
    p.close(device);
    expect(log.closes).toEqual([]);
    other.exit(0);
    expect(log.closes).toEqual([BDF]);
  });

  it('GET_INFO reports page sizes and the capability chain, with the short-argsz retry', () => {
    const { p } = setup();
    const container = p.open('/dev/vfio/vfio');
    const group = p.open(`/dev/vfio/${groupOf(p, BDF)}`);
    p.ioctl(group, VFIO_GROUP_SET_CONTAINER, intArg(container));
    p.ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU);

    // First call with only the fixed struct: succeeds, flags CAPS, cap_offset 0, argsz = the size needed.
    const small = vfioIommuType1Info.encode({ argsz: vfioIommuType1Info.size });
    expect(p.ioctl(container, VFIO_IOMMU_GET_INFO, small)).toBe(0);
    const first = vfioIommuType1Info.decode(small);
    expect(first.flags & VFIO_IOMMU_INFO_PGSIZES).toBe(VFIO_IOMMU_INFO_PGSIZES);
    expect(first.flags & VFIO_IOMMU_INFO_CAPS).toBe(VFIO_IOMMU_INFO_CAPS);
    expect(first.cap_offset).toBe(0);
    expect(first.argsz).toBeGreaterThan(vfioIommuType1Info.size);
    // The VT-d model supports 4K, 2M and 1G pages.
    expect(first.iova_pgsizes).toBe((1n << 12n) | (1n << 21n) | (1n << 30n));

    // Retry with the size asked for: the chain follows the fixed struct, in the kernel's order.
    const full = new Uint8Array(first.argsz);
    vfioIommuType1Info.write(full, { argsz: first.argsz });
    p.ioctl(container, VFIO_IOMMU_GET_INFO, full);
    const info = vfioIommuType1Info.decode(full);
    expect(info.cap_offset).toBe(vfioIommuType1Info.size);
    const caps = parseCapChain(full, info.cap_offset);
    expect(caps.map((c) => c.id)).toEqual([
      VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION,
      VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
      VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
    ]);
    const mig = decodeMigrationCap(caps[0]!);
    expect(mig.pgsizeBitmap).toBe(4096n);
    expect(mig.maxDirtyBitmapSize).toBe(256n << 20n);
    expect(decodeDmaAvailCap(caps[1]!).avail).toBe(65535);
    // The valid IOVA ranges are the aperture minus the MSI window.
    const { ranges } = decodeIovaRangeCap(caps[2]!);
    expect(ranges).toEqual([
      { start: 0n, end: 0xfedfffffn },
      { start: 0xfef00000n, end: (1n << 48n) - 1n },
    ]);
  });
});
