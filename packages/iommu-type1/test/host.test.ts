/**
 * The backend installed in a whole host (`createHost({ plugins: [type1()] })`): the container flow through the
 * system-call surface, with a minimal in-test VFIO bus driver standing in for vfio-pci.
 */
import { describe, expect, it } from 'vitest';
import { createHost } from '@vfio-ts/core';
import type { HostPlugin, HostPluginApi, VfioDevice } from '@vfio-ts/core';
import { IOMMU_READ, IOMMU_WRITE } from '@vfio-ts/platform';
import type { PciFunction } from '@vfio-ts/platform';
import type { SimIommuGroup} from '@vfio-ts/sim';
import { pciFunctionFromConfig, simPlatform } from '@vfio-ts/sim';
import {
  VFIO_CHECK_EXTENSION,
  VFIO_DMA_UNMAP_FLAG_ALL,
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_SET_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  VFIO_UPDATE_VADDR,
  vfioIommuType1DmaMap,
  vfioIommuType1DmaUnmap,
  vfioIommuType1Info,
} from '@vfio-ts/uapi';
import { type1 } from '../src/index.js';
import { RW } from './helpers.js';

const BDF = '0000:00:03.0';

function fn(): PciFunction {
  const config = new Uint8Array(256);
  config.set([0x34, 0x12, 0x11, 0x11], 0);
  return pciFunctionFromConfig({ config, bars: '0:mem32:0x1000' });
}

/** A tiny VFIO bus driver: every probed function becomes an IOMMU-backed (or emulated) VFIO device. */
function miniDriver(emulated = false): { plugin: HostPlugin; devices: VfioDevice[]; unmaps: [bigint, bigint][] } {
  const devices: VfioDevice[] = [];
  const unmaps: [bigint, bigint][] = [];
  let api: HostPluginApi | undefined;
  return {
    devices,
    unmaps,
    plugin: {
      name: 'mini-vfio',
      setup(a) {
        api = a;
        a.registerPciDriver({
          name: 'mini-vfio',
          ids: [],
          driverManagedDma: true,
          probe(pdev) {
            const dev = api!.allocDevice({
              name: pdev.bdf,
              data: undefined,
              ops: {
                name: 'mini-vfio',
                dmaUnmap: (d, iova, length) => {
                  unmaps.push([iova, length]);
                  d.unpinPages(iova, Number(length / 4096n));
                },
              },
            });
            if (emulated) api!.registerEmulatedDevice(dev);
            else api!.registerGroupDevice(dev);
            devices.push(dev);
          },
          async remove() {},
        });
      },
    },
  };
}

function hostSetup(emulated = false, beforeSetIommu?: (p: ReturnType<ReturnType<typeof createHost>['spawn']>) => void) {
  const driver = miniDriver(emulated);
  const platform = simPlatform({ iommu: 'vtd', devices: [{ bdf: BDF, fn: fn() }] });
  const host = createHost({ platform, plugins: [type1(), driver.plugin] });
  const pdev = platform.pci.device(BDF)!;
  pdev.driverOverride = 'mini-vfio';
  platform.pci.bind(BDF, 'mini-vfio');
  const p = host.spawn({ uid: 0, capabilities: [], memlockLimit: 64n << 20n });
  const c = p.open('/dev/vfio/vfio');
  const groupPath = emulated ? p.readdir('/dev/vfio').find((n) => n !== 'vfio' && n !== 'devices')! : String(pdev.iommuGroup!.id);
  const g = p.open(`/dev/vfio/${groupPath}`);
  const fd = new Uint8Array(4);
  new DataView(fd.buffer).setInt32(0, c, true);
  p.ioctl(g, VFIO_GROUP_SET_CONTAINER, fd);
  beforeSetIommu?.(p);
  p.ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU);
  return { platform, host, p, c, g, driver, pdev };
}

describe('type1 in a host', () => {
  it('maps process memory for a device: the IOMMU translates to the pages the process sees', () => {
    const { platform, p, c, pdev } = hostSetup();
    expect(p.ioctl(c, VFIO_CHECK_EXTENSION, VFIO_UPDATE_VADDR)).toBe(1);
    const va = p.mmap({ length: 2n << 20n, hugepage: '2M' });
    p.memory.write(va + 0x1234n, new Uint8Array([0xde, 0xad]));
    p.ioctl(c, VFIO_IOMMU_MAP_DMA, vfioIommuType1DmaMap.encode({ argsz: 32, flags: RW, vaddr: va, iova: 0x100000n, size: 2n << 20n }));
    const group = pdev.iommuGroup as SimIommuGroup;
    const t = group.domain!.translate(0x101234n)!;
    expect([...platform.memory.read(t.pa, 2)]).toEqual([0xde, 0xad]);
    expect(t.prot & (IOMMU_READ | IOMMU_WRITE)).toBe(IOMMU_READ | IOMMU_WRITE);
    // GET_INFO through the container fd.
    const info = vfioIommuType1Info.encode({ argsz: 256 });
    const big = new Uint8Array(256);
    big.set(info);
    p.ioctl(c, VFIO_IOMMU_GET_INFO, big);
    expect(vfioIommuType1Info.decode(big).cap_offset).toBe(24);
    const un = vfioIommuType1DmaUnmap.encode({ argsz: 24, flags: VFIO_DMA_UNMAP_FLAG_ALL });
    p.ioctl(c, VFIO_IOMMU_UNMAP_DMA, un);
    expect(vfioIommuType1DmaUnmap.decode(un).size).toBe(2n << 20n);
    expect(group.domain!.translate(0x101234n)).toBeUndefined();
  });

  it('honours the dma_entry_limit module parameter written through sysfs (read when SET_IOMMU opens the backend)', () => {
    const { p, c } = hostSetup(false, (proc) => {
      const param = proc.open('/sys/module/vfio_iommu_type1/parameters/dma_entry_limit', 1);
      proc.write(param, new TextEncoder().encode('1\n'));
      proc.close(param);
    });
    const va = p.mmap({ length: 8192n });
    p.ioctl(c, VFIO_IOMMU_MAP_DMA, vfioIommuType1DmaMap.encode({ argsz: 32, flags: RW, vaddr: va, iova: 0n, size: 4096n }));
    let errno: string | undefined;
    try {
      p.ioctl(c, VFIO_IOMMU_MAP_DMA, vfioIommuType1DmaMap.encode({ argsz: 32, flags: RW, vaddr: va + 4096n, iova: 4096n, size: 4096n }));
    } catch (e) {
      errno = (e as { errno?: string }).errno;
    }
    expect(errno).toBe('ENOSPC');
    const text = new TextDecoder().decode(p.read(p.open('/sys/module/vfio_iommu_type1/parameters/dma_entry_limit'), 64));
    expect(text.trim()).toBe('1');
  });

  it('pins pages for an emulated device through the core and asks it to unpin on unmap', () => {
    const { p, c, g, driver } = hostSetup(true);
    expect(p.ioctl(c, VFIO_CHECK_EXTENSION, VFIO_UPDATE_VADDR)).toBe(0);
    const va = p.mmap({ length: 4n << 12n });
    p.ioctl(c, VFIO_IOMMU_MAP_DMA, vfioIommuType1DmaMap.encode({ argsz: 32, flags: RW, vaddr: va, iova: 0x10000n, size: 4n << 12n }));
    const dev = driver.devices[0]!;
    const name = new TextEncoder().encode(BDF + '\0');
    p.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, name);
    const [pfn] = dev.pinPages(0x11000n, 1, IOMMU_READ | IOMMU_WRITE);
    expect(pfn).toBe(p.mm.lookup(va + 4096n)!.pfn);
    // Nothing else pins without an IOMMU domain: only the external pin is accounted.
    expect(p.mm.memlock.lockedPages).toBe(1);
    const un = vfioIommuType1DmaUnmap.encode({ argsz: 24, flags: VFIO_DMA_UNMAP_FLAG_ALL });
    p.ioctl(c, VFIO_IOMMU_UNMAP_DMA, un);
    expect(driver.unmaps).toEqual([[0x10000n, 4n << 12n]]);
    expect(p.mm.memlock.lockedPages).toBe(0);
  });
});
