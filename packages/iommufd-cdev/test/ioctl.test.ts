/**
 * The /dev/iommu ioctl framework (inventory §1.9, selftest fixture `iommufd`): size rules, E2BIG tails, ENOTTY,
 * EFAULT, object ids from 1, DESTROY, global options, IOMMU_VFIO_IOAS and the plain VFIO compat ioctls.
 */
import { describe, expect, it } from 'vitest';
import {
  IOMMU_DESTROY,
  IOMMU_FAULT_QUEUE_ALLOC,
  IOMMU_GET_HW_INFO,
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_FAULT_ID_VALID,
  IOMMU_HWPT_GET_DIRTY_BITMAP,
  IOMMU_HWPT_INVALIDATE,
  IOMMU_HWPT_SET_DIRTY_TRACKING,
  IOMMU_HWPT_ALLOC,
  IOMMU_IOAS_ALLOC,
  IOMMU_IOAS_ALLOW_IOVAS,
  IOMMU_IOAS_COPY,
  IOMMU_IOAS_IOVA_RANGES,
  IOMMU_IOAS_MAP,
  IOMMU_IOAS_UNMAP,
  IOMMU_OPTION,
  IOMMU_OPTION_HUGE_PAGES,
  IOMMU_OPTION_RLIMIT_MODE,
  IOMMU_VFIO_IOAS,
  IOMMU_VFIO_IOAS_CLEAR,
  IOMMU_VFIO_IOAS_GET,
  IOMMU_VFIO_IOAS_SET,
  VFIO_CHECK_EXTENSION,
  VFIO_GET_API_VERSION,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_SET_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  VFIO_TYPE1_IOMMU,
  VFIO_UNMAP_ALL,
  VFIO_DMA_CC_IOMMU,
  VFIO_NOIOMMU_IOMMU,
  iommuDestroy,
  iommuFaultAlloc,
  iommuHwInfo,
  iommuHwptGetDirtyBitmap,
  iommuHwptInvalidate,
  iommuHwptSetDirtyTracking,
  iommuHwptAlloc,
  iommuIoasAlloc,
  iommuIoasAllowIovas,
  iommuIoasCopy,
  iommuIoasIovaRanges,
  iommuIoasMap,
  iommuIoasUnmap,
  iommuOption,
  iommuVfioIoas,
  vfioIommuType1DmaMap,
  vfioIommuType1DmaUnmap,
  vfioIommuType1Info,
} from '@vfio-ts/uapi';
import type { StructCodec } from '@vfio-ts/uapi';
import { PAGE, errnoOf, setup } from './helpers.js';

const COMMANDS: [string, number, StructCodec<unknown>][] = [
  ['DESTROY', IOMMU_DESTROY, iommuDestroy],
  ['IOAS_ALLOC', IOMMU_IOAS_ALLOC, iommuIoasAlloc],
  ['IOAS_ALLOW_IOVAS', IOMMU_IOAS_ALLOW_IOVAS, iommuIoasAllowIovas],
  ['IOAS_COPY', IOMMU_IOAS_COPY, iommuIoasCopy],
  ['IOAS_IOVA_RANGES', IOMMU_IOAS_IOVA_RANGES, iommuIoasIovaRanges],
  ['IOAS_MAP', IOMMU_IOAS_MAP, iommuIoasMap],
  ['IOAS_UNMAP', IOMMU_IOAS_UNMAP, iommuIoasUnmap],
  ['OPTION', IOMMU_OPTION, iommuOption],
  ['VFIO_IOAS', IOMMU_VFIO_IOAS, iommuVfioIoas],
  ['HWPT_ALLOC', IOMMU_HWPT_ALLOC, iommuHwptAlloc],
  ['GET_HW_INFO', IOMMU_GET_HW_INFO, iommuHwInfo],
];

/** A zeroed argument of `total` bytes whose size field says `size`. */
function withSize(size: number, total = size): Uint8Array {
  const b = new Uint8Array(Math.max(total, 4));
  new DataView(b.buffer).setUint32(0, size, true);
  return b;
}

describe('/dev/iommu node and file', () => {
  it('is a 0666 char device any user opens; simple_close', () => {
    const f = setup({ uid: 4242 });
    const fd = f.p.open('/dev/iommu');
    f.p.close(fd);
    f.p.close(f.fd);
    expect(f.sub.contexts).toHaveLength(0);
  });

  it('cmd_fail: destroy id 0 is ENOENT, a NULL argument EFAULT, a number below the base ENOTTY', () => {
    const f = setup();
    expect(errnoOf(() => { f.destroy(0); })).toBe('ENOENT');
    expect(errnoOf(() => f.p.ioctl(f.fd, IOMMU_DESTROY, 0))).toBe('EFAULT');
    expect(errnoOf(() => f.p.ioctl(f.fd, IOMMU_DESTROY))).toBe('EFAULT');
    expect(errnoOf(() => f.p.ioctl(f.fd, (0x3b << 8) | 0x7f, iommuDestroy.encode({ size: 8 })))).toBe('ENOTTY');
    // Past the last 6.12 command, and an encoding with a size field.
    expect(errnoOf(() => f.p.ioctl(f.fd, (0x3b << 8) | 0xa0, iommuDestroy.encode({ size: 8 })))).toBe('ENOTTY');
    expect(errnoOf(() => f.p.ioctl(f.fd, IOMMU_DESTROY | (8 << 16), iommuDestroy.encode({ size: 8 })))).toBe('ENOTTY');
  });

  it('cmd_length: below minsz EINVAL, a non-zero tail E2BIG, a zero tail accepted — for every command', () => {
    for (const [name, nr, codec] of COMMANDS) {
      const f = setup();
      expect([name, errnoOf(() => f.p.ioctl(f.fd, nr, withSize(codec.minsz - 1, codec.size + 8)))]).toEqual([name, 'EINVAL']);
      const big = withSize(codec.size + 8);
      big[codec.size + 7] = 1;
      expect([name, errnoOf(() => f.p.ioctl(f.fd, nr, big))]).toEqual([name, 'E2BIG']);
      // A zero tail gets past the size checks: whatever the command then says, it is not about the size.
      const zero = withSize(codec.size + 8);
      let errno: string | undefined;
      try {
        f.p.ioctl(f.fd, nr, zero);
      } catch (e) {
        errno = (e as { errno: string }).errno;
      }
      expect([name, errno]).not.toEqual([name, 'E2BIG']);
    }
  });

  it('cmd_ex_fail: IOAS_ALLOC with a longer zero-tailed struct works and writes only known bytes', () => {
    const f = setup();
    const b = new Uint8Array(64);
    new DataView(b.buffer).setUint32(0, 64, true);
    expect(f.p.ioctl(f.fd, IOMMU_IOAS_ALLOC, b)).toBe(0);
    expect(iommuIoasAlloc.decode(b).out_ioas_id).toBe(1);
    expect(b.subarray(12).every((x) => x === 0)).toBe(true);
  });

  it('reads and answers through a user pointer as well as struct bytes', () => {
    const f = setup();
    const at = f.p.mmap({ length: 4096n });
    f.p.memory.write(at, iommuIoasAlloc.encode({ size: 12 }));
    expect(f.p.ioctl(f.fd, IOMMU_IOAS_ALLOC, at)).toBe(0);
    expect(iommuIoasAlloc.decode(f.p.memory.read(at, 12)).out_ioas_id).toBe(1);
    // A non-zero tail read from user memory.
    const b = iommuIoasAlloc.encode({ size: 20 });
    f.p.memory.write(at, new Uint8Array(24));
    f.p.memory.write(at, b);
    f.p.memory.write(at + 16n, new Uint8Array([9]));
    new DataView(new ArrayBuffer(4)).setUint32(0, 20, true);
    const hdr = new Uint8Array(4);
    new DataView(hdr.buffer).setUint32(0, 20, true);
    f.p.memory.write(at, hdr);
    expect(errnoOf(() => f.p.ioctl(f.fd, IOMMU_IOAS_ALLOC, at))).toBe('E2BIG');
    // An unmapped pointer.
    expect(errnoOf(() => f.p.ioctl(f.fd, IOMMU_IOAS_ALLOC, 0x1000))).toBe('EFAULT');
  });

  it('IOAS_ALLOC: flags are EOPNOTSUPP; ids start at 1 and the lowest free id is reused', () => {
    const f = setup();
    expect(errnoOf(() => f.p.ioctl(f.fd, IOMMU_IOAS_ALLOC, iommuIoasAlloc.encode({ size: 12, flags: 1 })))).toBe('EOPNOTSUPP');
    expect([f.ioasAlloc(), f.ioasAlloc(), f.ioasAlloc()]).toEqual([1, 2, 3]);
    f.destroy(2);
    expect(errnoOf(() => { f.destroy(2); })).toBe('ENOENT');
    expect(f.ioasAlloc()).toBe(2);
    expect(f.ioasAlloc()).toBe(4);
  });

  it('DESTROY of an IOAS in use by an HWPT is EBUSY; of a bound device EBUSY', () => {
    const f = setup();
    const ioas = f.ioasAlloc();
    const d = f.device(ioas);
    expect(errnoOf(() => { f.destroy(ioas); })).toBe('EBUSY');
    expect(errnoOf(() => { f.destroy(d.hwptId!); })).toBe('EBUSY');
    expect(errnoOf(() => { f.destroy(d.devId); })).toBe('EBUSY');
    f.ctx.detach(d.devId);
    // The automatic HWPT went with its last device.
    expect(errnoOf(() => { f.destroy(d.hwptId!); })).toBe('ENOENT');
    f.destroy(ioas);
  });

  it('global_options: RLIMIT_MODE get/set needs CAP_SYS_RESOURCE and no objects; HUGE_PAGES on object 0 is ENOENT', () => {
    const root = setup({ uid: 0, caps: ['CAP_SYS_RESOURCE'] });
    expect(root.option(IOMMU_OPTION_RLIMIT_MODE, 0)).toBe(0n);
    root.option(IOMMU_OPTION_RLIMIT_MODE, 0, 1n);
    expect(root.option(IOMMU_OPTION_RLIMIT_MODE, 0)).toBe(1n);
    root.option(IOMMU_OPTION_RLIMIT_MODE, 0, 0n);
    expect(errnoOf(() => root.option(IOMMU_OPTION_RLIMIT_MODE, 0, 2n))).toBe('EINVAL');
    expect(errnoOf(() => root.option(IOMMU_OPTION_RLIMIT_MODE, 1, 0n))).toBe('EOPNOTSUPP');
    expect(errnoOf(() => root.option(IOMMU_OPTION_HUGE_PAGES, 0, 0n))).toBe('ENOENT');
    expect(errnoOf(() => root.option(99, 0))).toBe('EOPNOTSUPP');
    root.ioasAlloc();
    expect(errnoOf(() => root.option(IOMMU_OPTION_RLIMIT_MODE, 0, 1n))).toBe('EBUSY');
    const user = setup();
    expect(errnoOf(() => user.option(IOMMU_OPTION_RLIMIT_MODE, 0, 1n))).toBe('EPERM');
    // A failed option does not write val64 back.
    const b = iommuOption.encode({ size: 24, option_id: IOMMU_OPTION_RLIMIT_MODE, op: 7, val64: 5n });
    expect(errnoOf(() => user.p.ioctl(user.fd, IOMMU_OPTION, b))).toBe('EOPNOTSUPP');
    expect(iommuOption.decode(b).val64).toBe(5n);
    // __reserved must be zero.
    expect(errnoOf(() => user.p.ioctl(user.fd, IOMMU_OPTION, iommuOption.encode({ size: 24, __reserved: 1 })))).toBe('EOPNOTSUPP');
  });

  it('vfio_ioas: GET without one is ENODEV, SET of an unknown id ENOENT, then set/get/clear', () => {
    const f = setup();
    const cmd = (op: number, id = 0): Uint8Array => iommuVfioIoas.encode({ size: 12, op, ioas_id: id });
    expect(errnoOf(() => f.p.ioctl(f.fd, IOMMU_VFIO_IOAS, cmd(IOMMU_VFIO_IOAS_GET)))).toBe('ENODEV');
    expect(errnoOf(() => f.p.ioctl(f.fd, IOMMU_VFIO_IOAS, cmd(IOMMU_VFIO_IOAS_SET, 55)))).toBe('ENOENT');
    const ioas = f.ioasAlloc();
    f.p.ioctl(f.fd, IOMMU_VFIO_IOAS, cmd(IOMMU_VFIO_IOAS_SET, ioas));
    const g = cmd(IOMMU_VFIO_IOAS_GET);
    f.p.ioctl(f.fd, IOMMU_VFIO_IOAS, g);
    expect(iommuVfioIoas.decode(g).ioas_id).toBe(ioas);
    f.p.ioctl(f.fd, IOMMU_VFIO_IOAS, cmd(IOMMU_VFIO_IOAS_CLEAR));
    expect(errnoOf(() => f.p.ioctl(f.fd, IOMMU_VFIO_IOAS, cmd(IOMMU_VFIO_IOAS_GET)))).toBe('ENODEV');
    expect(errnoOf(() => f.p.ioctl(f.fd, IOMMU_VFIO_IOAS, cmd(9)))).toBe('EOPNOTSUPP');
    // Destroying the compat IOAS clears it.
    f.p.ioctl(f.fd, IOMMU_VFIO_IOAS, cmd(IOMMU_VFIO_IOAS_SET, ioas));
    f.destroy(ioas);
    expect(errnoOf(() => f.p.ioctl(f.fd, IOMMU_VFIO_IOAS, cmd(IOMMU_VFIO_IOAS_GET)))).toBe('ENODEV');
  });

  it('simple_ioctls / map_cmd / unmap_cmd / info_cmd / set_iommu_cmd: the VFIO compat ABI without a compat IOAS', () => {
    const f = setup();
    expect(f.p.ioctl(f.fd, VFIO_GET_API_VERSION)).toBe(0);
    expect(f.p.ioctl(f.fd, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU)).toBe(1);
    expect(f.p.ioctl(f.fd, VFIO_CHECK_EXTENSION, VFIO_TYPE1_IOMMU)).toBe(1);
    expect(f.p.ioctl(f.fd, VFIO_CHECK_EXTENSION, VFIO_UNMAP_ALL)).toBe(1);
    expect(errnoOf(() => f.p.ioctl(f.fd, VFIO_CHECK_EXTENSION, VFIO_DMA_CC_IOMMU))).toBe('ENODEV');
    expect(f.p.ioctl(f.fd, VFIO_CHECK_EXTENSION, VFIO_NOIOMMU_IOMMU)).toBe(1);
    expect(f.p.ioctl(f.fd, VFIO_CHECK_EXTENSION, 7)).toBe(0);
    const map = vfioIommuType1DmaMap.encode({ argsz: 31, flags: 3, size: PAGE });
    expect(errnoOf(() => f.p.ioctl(f.fd, VFIO_IOMMU_MAP_DMA, map))).toBe('EINVAL');
    expect(errnoOf(() => f.p.ioctl(f.fd, VFIO_IOMMU_MAP_DMA, vfioIommuType1DmaMap.encode({ argsz: 32, flags: 1 << 4 })))).toBe('EINVAL');
    expect(errnoOf(() => f.p.ioctl(f.fd, VFIO_IOMMU_MAP_DMA, vfioIommuType1DmaMap.encode({ argsz: 32, flags: 3 })))).toBe('ENODEV');
    expect(errnoOf(() => f.p.ioctl(f.fd, VFIO_IOMMU_UNMAP_DMA, vfioIommuType1DmaUnmap.encode({ argsz: 23 })))).toBe('EINVAL');
    expect(errnoOf(() => f.p.ioctl(f.fd, VFIO_IOMMU_UNMAP_DMA, vfioIommuType1DmaUnmap.encode({ argsz: 24, flags: 1 << 5 })))).toBe('EINVAL');
    expect(errnoOf(() => f.p.ioctl(f.fd, VFIO_IOMMU_UNMAP_DMA, vfioIommuType1DmaUnmap.encode({ argsz: 24 })))).toBe('ENODEV');
    expect(errnoOf(() => f.p.ioctl(f.fd, VFIO_IOMMU_GET_INFO, vfioIommuType1Info.encode({ argsz: 15 })))).toBe('EINVAL');
    expect(errnoOf(() => f.p.ioctl(f.fd, VFIO_IOMMU_GET_INFO, vfioIommuType1Info.encode({ argsz: 16 })))).toBe('ENODEV');
    expect(errnoOf(() => f.p.ioctl(f.fd, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU))).toBe('ENODEV');
    expect(errnoOf(() => f.p.ioctl(f.fd, VFIO_SET_IOMMU, 2))).toBe('EINVAL');
    // Unknown VFIO-range commands.
    expect(errnoOf(() => f.p.ioctl(f.fd, (0x3b << 8) | 0x7e))).toBe('ENOTTY');
  });

  it('dirty tracking, invalidation and fault queues: what the simulated VT-d does not offer', () => {
    const f = setup();
    const ioas = f.ioasAlloc();
    const d = f.device(ioas);
    const dirty = (id: number): Uint8Array => iommuHwptSetDirtyTracking.encode({ size: 16, flags: 1, hwpt_id: id });
    expect(errnoOf(() => f.p.ioctl(f.fd, IOMMU_HWPT_SET_DIRTY_TRACKING, dirty(99)))).toBe('ENOENT');
    expect(errnoOf(() => f.p.ioctl(f.fd, IOMMU_HWPT_SET_DIRTY_TRACKING, dirty(ioas)))).toBe('ENOENT');
    expect(errnoOf(() => f.p.ioctl(f.fd, IOMMU_HWPT_SET_DIRTY_TRACKING, dirty(d.hwptId!)))).toBe('EOPNOTSUPP');
    expect(errnoOf(() => f.p.ioctl(f.fd, IOMMU_HWPT_SET_DIRTY_TRACKING, iommuHwptSetDirtyTracking.encode({ size: 16, flags: 2, hwpt_id: d.hwptId! })))).toBe('EOPNOTSUPP');
    expect(errnoOf(() => f.p.ioctl(f.fd, IOMMU_HWPT_GET_DIRTY_BITMAP, iommuHwptGetDirtyBitmap.encode({ size: 48, hwpt_id: d.hwptId! })))).toBe('EOPNOTSUPP');
    expect(errnoOf(() => f.p.ioctl(f.fd, IOMMU_HWPT_INVALIDATE, iommuHwptInvalidate.encode({ size: 32, hwpt_id: d.hwptId! })))).toBe('ENOENT');
    expect(errnoOf(() => f.p.ioctl(f.fd, IOMMU_FAULT_QUEUE_ALLOC, iommuFaultAlloc.encode({ size: 16 })))).toBe('EOPNOTSUPP');
    const alloc = iommuHwptAlloc.encode({ size: 48, flags: IOMMU_HWPT_FAULT_ID_VALID, dev_id: d.devId, pt_id: ioas, fault_id: 5 });
    expect(errnoOf(() => f.p.ioctl(f.fd, IOMMU_HWPT_ALLOC, alloc))).toBe('ENOENT');
    const dt = iommuHwptAlloc.encode({ size: 48, flags: IOMMU_HWPT_ALLOC_DIRTY_TRACKING, dev_id: d.devId, pt_id: ioas });
    expect(errnoOf(() => f.p.ioctl(f.fd, IOMMU_HWPT_ALLOC, dt))).toBe('EOPNOTSUPP');
    const data = iommuHwptAlloc.encode({ size: 48, dev_id: d.devId, pt_id: ioas, data_len: 8 });
    expect(errnoOf(() => f.p.ioctl(f.fd, IOMMU_HWPT_ALLOC, data))).toBe('EINVAL');
    // Nested on an automatic (not NEST_PARENT) HWPT: EINVAL; without user data EOPNOTSUPP; on a real parent the
    // simulated VT-d has no stage-1 support (EOPNOTSUPP).
    const nested = (pt: number, len = 24): Uint8Array => iommuHwptAlloc.encode({ size: 48, dev_id: d.devId, pt_id: pt, data_type: 1, data_len: len });
    expect(errnoOf(() => f.p.ioctl(f.fd, IOMMU_HWPT_ALLOC, nested(d.hwptId!)))).toBe('EINVAL');
    expect(errnoOf(() => f.p.ioctl(f.fd, IOMMU_HWPT_ALLOC, iommuHwptAlloc.encode({ size: 48, dev_id: d.devId, pt_id: d.hwptId! })))).toBe('EOPNOTSUPP');
    const parent = iommuHwptAlloc.encode({ size: 48, flags: IOMMU_HWPT_ALLOC_NEST_PARENT, dev_id: d.devId, pt_id: ioas });
    f.p.ioctl(f.fd, IOMMU_HWPT_ALLOC, parent);
    const parentId = iommuHwptAlloc.decode(parent).out_hwpt_id;
    expect(errnoOf(() => f.p.ioctl(f.fd, IOMMU_HWPT_ALLOC, nested(parentId)))).toBe('EOPNOTSUPP');
    f.destroy(parentId);
    // The failures created nothing.
    expect(f.ctx.objects().map((o) => o.type)).toEqual(['ioas', 'device', 'hwpt-paging']);
  });

  it('closing the file frees every object', () => {
    const f = setup();
    const a = f.ioasAlloc();
    f.map(a, f.buffer(PAGE * 4n), PAGE * 4n);
    f.device(a);
    f.ioasAlloc();
    expect(f.ctx.objectCount).toBe(4);
    f.p.close(f.fd);
    expect(f.ctx.objectCount).toBe(0);
    expect(f.sub.userLockedPages(1000)).toBe(0);
  });
});
