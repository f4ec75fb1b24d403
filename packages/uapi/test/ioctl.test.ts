import { describe, expect, it } from 'vitest';
import * as uapi from '../src/index.js';
import { IOCTLS, STRUCTS, findIoctl, io, ioc, ioctlsByRequest } from '../src/index.js';

// Every request number, written out as a literal (inventory §1.0: 0x3B00 | (100 + n); §1.9: 0x3B00 | (0x80 + k)).
const EXPECTED: Record<string, number> = {
  VFIO_GET_API_VERSION: 0x3b64,
  VFIO_CHECK_EXTENSION: 0x3b65,
  VFIO_SET_IOMMU: 0x3b66,
  VFIO_GROUP_GET_STATUS: 0x3b67,
  VFIO_GROUP_SET_CONTAINER: 0x3b68,
  VFIO_GROUP_UNSET_CONTAINER: 0x3b69,
  VFIO_GROUP_GET_DEVICE_FD: 0x3b6a,
  VFIO_DEVICE_GET_INFO: 0x3b6b,
  VFIO_DEVICE_GET_REGION_INFO: 0x3b6c,
  VFIO_DEVICE_GET_IRQ_INFO: 0x3b6d,
  VFIO_DEVICE_SET_IRQS: 0x3b6e,
  VFIO_DEVICE_RESET: 0x3b6f,
  VFIO_DEVICE_GET_PCI_HOT_RESET_INFO: 0x3b70,
  VFIO_IOMMU_GET_INFO: 0x3b70,
  VFIO_IOMMU_SPAPR_TCE_GET_INFO: 0x3b70,
  VFIO_DEVICE_PCI_HOT_RESET: 0x3b71,
  VFIO_IOMMU_MAP_DMA: 0x3b71,
  VFIO_DEVICE_QUERY_GFX_PLANE: 0x3b72,
  VFIO_IOMMU_UNMAP_DMA: 0x3b72,
  VFIO_DEVICE_GET_GFX_DMABUF: 0x3b73,
  VFIO_IOMMU_ENABLE: 0x3b73,
  VFIO_DEVICE_IOEVENTFD: 0x3b74,
  VFIO_IOMMU_DISABLE: 0x3b74,
  VFIO_DEVICE_FEATURE: 0x3b75,
  VFIO_IOMMU_DIRTY_PAGES: 0x3b75,
  VFIO_IOMMU_SPAPR_REGISTER_MEMORY: 0x3b75,
  VFIO_DEVICE_BIND_IOMMUFD: 0x3b76,
  VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY: 0x3b76,
  VFIO_DEVICE_ATTACH_IOMMUFD_PT: 0x3b77,
  VFIO_IOMMU_SPAPR_TCE_CREATE: 0x3b77,
  VFIO_DEVICE_DETACH_IOMMUFD_PT: 0x3b78,
  VFIO_IOMMU_SPAPR_TCE_REMOVE: 0x3b78,
  VFIO_MIG_GET_PRECOPY_INFO: 0x3b79,
  VFIO_EEH_PE_OP: 0x3b79,
  IOMMU_DESTROY: 0x3b80,
  IOMMU_IOAS_ALLOC: 0x3b81,
  IOMMU_IOAS_ALLOW_IOVAS: 0x3b82,
  IOMMU_IOAS_COPY: 0x3b83,
  IOMMU_IOAS_IOVA_RANGES: 0x3b84,
  IOMMU_IOAS_MAP: 0x3b85,
  IOMMU_IOAS_UNMAP: 0x3b86,
  IOMMU_OPTION: 0x3b87,
  IOMMU_VFIO_IOAS: 0x3b88,
  IOMMU_HWPT_ALLOC: 0x3b89,
  IOMMU_GET_HW_INFO: 0x3b8a,
  IOMMU_HWPT_SET_DIRTY_TRACKING: 0x3b8b,
  IOMMU_HWPT_GET_DIRTY_BITMAP: 0x3b8c,
  IOMMU_HWPT_INVALIDATE: 0x3b8d,
  IOMMU_FAULT_QUEUE_ALLOC: 0x3b8e,
  IOMMU_IOAS_MAP_FILE: 0x3b8f,
  IOMMU_VIOMMU_ALLOC: 0x3b90,
  IOMMU_VDEVICE_ALLOC: 0x3b91,
  IOMMU_IOAS_CHANGE_PROCESS: 0x3b92,
  IOMMU_VEVENTQ_ALLOC: 0x3b93,
  IOMMU_HW_QUEUE_ALLOC: 0x3b94,
};

const exported = uapi as unknown as Record<string, unknown>;

describe('ioctl numbers', () => {
  it.each(Object.entries(EXPECTED))('%s = %s', (name, value) => {
    expect(exported[name]).toBe(value);
    expect(findIoctl(name)?.request).toBe(value);
  });

  it('the table has exactly one entry per name, and nothing else', () => {
    expect(IOCTLS.map((i) => i.name).sort()).toEqual(Object.keys(EXPECTED).sort());
    expect(new Set(IOCTLS.map((i) => i.name)).size).toBe(IOCTLS.length);
  });

  it('each entry is self-consistent', () => {
    for (const i of IOCTLS) {
      expect(i.nr).toBe(i.request & 0xff);
      expect(i.request >>> 8).toBe(0x3b); // type ';', direction none, size 0
      if (i.name.startsWith('VFIO_')) expect(i.nr).toBeGreaterThanOrEqual(100);
      else expect(i.nr).toBeGreaterThanOrEqual(0x80);
      if (i.struct !== null) expect(Object.keys(STRUCTS)).toContain(i.struct);
      if (i.arg === 'struct' && i.struct !== null) expect(i.struct).toMatch(/^(vfio|iommu)_/);
      expect(i.summary.length).toBeGreaterThan(10);
      expect(Object.isFrozen(i)).toBe(true);
    }
  });

  it('fd types follow the inventory', () => {
    const fd = (n: string) => findIoctl(n)?.fd;
    expect(fd('VFIO_SET_IOMMU')).toBe('container');
    expect(fd('VFIO_GROUP_GET_DEVICE_FD')).toBe('group');
    expect(fd('VFIO_DEVICE_FEATURE')).toBe('device');
    expect(fd('VFIO_DEVICE_BIND_IOMMUFD')).toBe('cdev');
    expect(fd('VFIO_MIG_GET_PRECOPY_INFO')).toBe('migration');
    expect(fd('IOMMU_IOAS_MAP')).toBe('iommufd');
    expect(findIoctl('VFIO_GROUP_SET_CONTAINER')?.arg).toBe('int-pointer');
    expect(findIoctl('VFIO_GROUP_GET_DEVICE_FD')?.arg).toBe('string');
    expect(findIoctl('VFIO_CHECK_EXTENSION')?.arg).toBe('value');
    expect(findIoctl('VFIO_DEVICE_RESET')?.arg).toBe('none');
    expect(findIoctl('VFIO_IOMMU_MAP_DMA')?.struct).toBe('vfio_iommu_type1_dma_map');
  });

  it('numbers shared across fd types come back together', () => {
    expect(ioctlsByRequest(0x3b70).map((i) => i.name).sort()).toEqual([
      'VFIO_DEVICE_GET_PCI_HOT_RESET_INFO',
      'VFIO_IOMMU_GET_INFO',
      'VFIO_IOMMU_SPAPR_TCE_GET_INFO',
    ]);
    expect(ioctlsByRequest(0x3b75).map((i) => i.fd).sort()).toEqual(['container', 'container', 'device']);
    expect(ioctlsByRequest(0x3b80).map((i) => i.name)).toEqual(['IOMMU_DESTROY']);
    expect(ioctlsByRequest(0x1234)).toEqual([]);
    expect(findIoctl('VFIO_NOPE')).toBeUndefined();
  });

  it('_IO/_IOC compute like Linux', () => {
    expect(io(0x3b, 100)).toBe(0x3b64);
    // _IOWR('V', 0, 0x68) = 0xc0685600 (VIDIOC_QUERYCAP is _IOR: 0x80685600)
    expect(ioc(2, 0x56, 0, 0x68)).toBe(0x80685600);
    expect(ioc(3, 0x56, 0, 0x68)).toBe(0xc0685600);
  });
});
