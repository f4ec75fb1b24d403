/**
 * Acceptance (core issue) 6 and 7: a device writes guest memory through a mapped IOVA; an unmapped IOVA faults
 * and memory is untouched; an unprivileged user is held to RLIMIT_MEMLOCK and to file modes.
 */
import { describe, expect, it } from 'vitest';
import { openVfioDevice } from '@vfio-ts/core';
import type { Process } from '@vfio-ts/core';
import {
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_TYPE1v2_IOMMU,
  vfioIommuType1DmaMap,
  vfioIommuType1DmaUnmap,
} from '@vfio-ts/uapi';
import { dmaTestFunction, groupOf, REG, testHost } from './fixtures.js';

const BDF = '0000:00:03.0';
const MiB = 1n << 20n;

function u64(v: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, v, true);
  return b;
}
function readU64(p: Process, fd: number, off: number): bigint {
  return new DataView(p.pread(fd, 8, BigInt(off)).buffer).getBigUint64(0, true);
}
function map(p: Process, container: number, vaddr: bigint, iova: bigint, size: bigint, flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE): void {
  p.ioctl(container, VFIO_IOMMU_MAP_DMA, vfioIommuType1DmaMap.encode({ argsz: 32, flags, vaddr, iova, size }));
}
function lockedPages(host: ReturnType<typeof testHost>['host'], p: Process): number {
  return host.describe().processes.find((x) => x.pid === p.pid)!.lockedPages;
}

describe('device DMA through type1', () => {
  it('reaches guest memory through a mapped IOVA, faults on an unmapped one and leaves memory untouched', () => {
    const { host } = testHost([{ bdf: BDF, fn: dmaTestFunction(), driver: 'vfio-test' }]);
    const p = host.spawn({ uid: 0, capabilities: ['CAP_IPC_LOCK'], memlockLimit: 64n * MiB });
    const fds = openVfioDevice(p, { group: groupOf(p, BDF), device: BDF, iommuType: VFIO_TYPE1v2_IOMMU });
    const guest = p.mmap({ length: 2n * MiB });
    p.memory.write(guest + 0x100n, u64(0x1111n));
    map(p, fds.container, guest, 0x100000n, 2n * MiB);

    // Device → memory: DMA write at IOVA 0x100040 lands at guest + 0x40.
    p.pwrite(fds.device, u64(0x100040n), BigInt(REG.ADDR));
    p.pwrite(fds.device, u64(0xdeadbeefcafef00dn), BigInt(REG.WRITE));
    expect(readU64(p, fds.device, REG.STATUS) & 0xffffffffn).toBe(0n);
    expect(new DataView(p.memory.read(guest + 0x40n, 8).buffer).getBigUint64(0, true)).toBe(0xdeadbeefcafef00dn);

    // Memory → device: DMA read at IOVA 0x100100 sees what the CPU wrote.
    p.pwrite(fds.device, u64(0x100100n), BigInt(REG.ADDR));
    p.pwrite(fds.device, u64(1n), BigInt(REG.READ));
    expect(readU64(p, fds.device, REG.DATA)).toBe(0x1111n);

    // An unmapped IOVA faults: the device sees the error, the IOMMU logs it, no memory changes.
    const before = p.memory.read(guest, Number(2n * MiB));
    p.pwrite(fds.device, u64(0x900000n), BigInt(REG.ADDR));
    p.pwrite(fds.device, u64(0x4242n), BigInt(REG.WRITE));
    expect(readU64(p, fds.device, REG.STATUS) & 0xffffffffn).toBe(1n);
    expect(host.platform.iommu!.faults().at(-1)).toMatchObject({ device: BDF, iova: 0x900000n, write: true });
    expect(host.log().some((l) => /fault/i.test(l.text))).toBe(true);
    expect(Buffer.compare(p.memory.read(guest, Number(2n * MiB)), before)).toBe(0);

    // After UNMAP_DMA the old IOVA faults too.
    const unmap = vfioIommuType1DmaUnmap.encode({ argsz: 24, iova: 0x100000n, size: 2n * MiB });
    p.ioctl(fds.container, VFIO_IOMMU_UNMAP_DMA, unmap);
    expect(vfioIommuType1DmaUnmap.decode(unmap).size).toBe(2n * MiB);
    p.pwrite(fds.device, u64(0x100040n), BigInt(REG.ADDR));
    p.pwrite(fds.device, u64(0x7777n), BigInt(REG.WRITE));
    expect(readU64(p, fds.device, REG.STATUS) & 0xffffffffn).toBe(1n);
    expect(new DataView(p.memory.read(guest + 0x40n, 8).buffer).getBigUint64(0, true)).toBe(0xdeadbeefcafef00dn);
  });

  it('a read-only mapping refuses device writes', () => {
    const { host } = testHost([{ bdf: BDF, fn: dmaTestFunction(), driver: 'vfio-test' }]);
    const p = host.spawn({ uid: 0, capabilities: ['CAP_IPC_LOCK'], memlockLimit: 64n * MiB });
    const fds = openVfioDevice(p, { group: groupOf(p, BDF), device: BDF, iommuType: VFIO_TYPE1v2_IOMMU });
    const guest = p.mmap({ length: 1n * MiB });
    map(p, fds.container, guest, 0n, 1n * MiB, VFIO_DMA_MAP_FLAG_READ);
    p.pwrite(fds.device, u64(0x80n), BigInt(REG.ADDR));
    p.pwrite(fds.device, u64(0x55n), BigInt(REG.WRITE));
    expect(readU64(p, fds.device, REG.STATUS) & 0xffffffffn).toBe(1n);
    expect(host.platform.iommu!.faults().at(-1)).toMatchObject({ reason: 'permission' });
    expect(p.memory.read(guest + 0x80n, 8)).toEqual(new Uint8Array(8));
  });
});

describe('security', () => {
  it('an unprivileged user needs the group node, and is held to RLIMIT_MEMLOCK with no pin left behind', () => {
    const { host } = testHost([{ bdf: BDF, fn: dmaTestFunction(), driver: 'vfio-test' }]);
    const user = host.spawn({ uid: 1000, capabilities: [], memlockLimit: 1n * MiB });
    const groupNo = groupOf(user, BDF);
    expect(() => user.open(`/dev/vfio/${groupNo}`)).toThrow(expect.objectContaining({ errno: 'EACCES' }));
    host.chown(`/dev/vfio/${groupNo}`, 1000, 1000);
    const fds = openVfioDevice(user, { group: groupNo, device: BDF, iommuType: VFIO_TYPE1v2_IOMMU });

    const guest = user.mmap({ length: 4n * MiB });
    // 1 MiB fits the limit exactly.
    map(user, fds.container, guest, 0n, 1n * MiB);
    expect(lockedPages(host, user)).toBe(256);
    // One more page is over it: ENOMEM, nothing more pinned or accounted, and a warning in the log.
    expect(() => { map(user, fds.container, guest + 1n * MiB, 1n * MiB, 2n * MiB); }).toThrow(expect.objectContaining({ errno: 'ENOMEM' }));
    expect(lockedPages(host, user)).toBe(256);
    for (let page = 0n; page < 512n; page++) {
      const pfn = user.mm.lookup(guest + 1n * MiB + page * 4096n)?.pfn;
      if (pfn !== undefined) expect(host.platform.memory.pinCount(pfn)).toBe(0);
    }
    expect(host.log().some((l) => /RLIMIT_MEMLOCK|memlock|locked memory/i.test(l.text))).toBe(true);

    // Closing the container unpins and unaccounts everything.
    user.close(fds.device);
    user.close(fds.group);
    user.close(fds.container);
    expect(lockedPages(host, user)).toBe(0);

    // CAP_IPC_LOCK bypasses the limit (and root reaches the user's node only with CAP_DAC_OVERRIDE).
    expect(() => host.spawn({ uid: 0, capabilities: [], memlockLimit: 0n }).open(`/dev/vfio/${groupNo}`)).toThrow(
      expect.objectContaining({ errno: 'EACCES' }),
    );
    const admin = host.spawn({ uid: 0, capabilities: ['CAP_IPC_LOCK', 'CAP_DAC_OVERRIDE'], memlockLimit: 1n * MiB });
    const afds = openVfioDevice(admin, { group: groupNo, device: BDF, iommuType: VFIO_TYPE1v2_IOMMU });
    const g2 = admin.mmap({ length: 4n * MiB });
    map(admin, afds.container, g2, 0n, 4n * MiB);
    expect(lockedPages(host, admin)).toBe(1024);
  });
});
