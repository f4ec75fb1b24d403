import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ERRNO,
  SysError,
  checkArgsz,
  copyOut,
  errnoName,
  iommuHwptAlloc,
  iommuIoasMap,
  isSysError,
  readIommufdArg,
  readVfioArg,
  sysError,
  unknownFlags,
  vfioDeviceInfo,
  vfioIommuType1DmaMap,
  vfioIommuType1Info,
} from '../src/index.js';

function errnoOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    if (e instanceof SysError) return e.errno;
    throw e;
  }
  return undefined;
}

describe('errno', () => {
  it('SysError carries name and number', () => {
    const e = sysError('EINVAL', 'why');
    expect(e.code).toBe(22);
    expect(e.message).toBe('EINVAL: why');
    expect(isSysError(e, 'EINVAL')).toBe(true);
    expect(isSysError(e, 'EBUSY')).toBe(false);
    expect(errnoName(ERRNO.EEXIST)).toBe('EEXIST');
    expect(errnoName(4095)).toBeUndefined();
  });
});

describe('argsz (inventory §1.0)', () => {
  it('short argsz is EINVAL', () => {
    const buf = vfioIommuType1DmaMap.encode({ argsz: 31 });
    expect(errnoOf(() => checkArgsz(buf, 32))).toBe('EINVAL');
    expect(errnoOf(() => readVfioArg(buf, vfioIommuType1DmaMap))).toBe('EINVAL');
  });

  it('a user buffer shorter than minsz is EFAULT (the copy of the fixed part faults before argsz is read)', () => {
    expect(errnoOf(() => readVfioArg(new Uint8Array(3), vfioIommuType1DmaMap))).toBe('EFAULT');
    expect(errnoOf(() => checkArgsz(vfioIommuType1DmaMap.encode({ argsz: 32 }).subarray(0, 31), 32))).toBe('EFAULT');
  });

  it('long argsz is accepted and only the known fields are read', () => {
    const buf = new Uint8Array(64).fill(0xee);
    buf.set(vfioIommuType1DmaMap.encode({ argsz: 64, flags: 3, vaddr: 0x1000n, iova: 0x2000n, size: 0x3000n }));
    const { value, argsz } = readVfioArg(buf, vfioIommuType1DmaMap);
    expect(argsz).toBe(64);
    expect(value).toEqual({ argsz: 64, flags: 3, vaddr: 0x1000n, iova: 0x2000n, size: 0x3000n });
  });

  it('an old caller with argsz between minsz and sizeof reads the tail as zero', () => {
    const buf = new Uint8Array(24).fill(0xee);
    buf.set(vfioIommuType1Info.encode({ argsz: 16, flags: 1, iova_pgsizes: 4096n }).subarray(0, 16));
    expect(readVfioArg(buf, vfioIommuType1Info).value).toEqual({ argsz: 16, flags: 1, iova_pgsizes: 4096n, cap_offset: 0, pad: 0 });
  });

  it('copyOut writes exactly min(argsz, sizeof) bytes, for every argsz', () => {
    fc.assert(
      fc.property(fc.integer({ min: 16, max: 64 }), (argsz) => {
        const buf = new Uint8Array(80).fill(0xaa);
        const n = copyOut(buf, vfioDeviceInfo, { argsz, flags: 0xffffffff, num_regions: 9, num_irqs: 5, cap_offset: 24, pad: 0 }, argsz);
        expect(n).toBe(Math.min(argsz, 24));
        expect(buf.subarray(n).every((b) => b === 0xaa)).toBe(true);
        expect(vfioDeviceInfo.decode(buf.subarray(0, n))).toMatchObject({ argsz, flags: 0xffffffff, num_regions: 9, num_irqs: 5 });
      }),
    );
  });

  it('copyOut into a buffer too short for min(argsz, sizeof) is EFAULT and writes nothing', () => {
    const buf = new Uint8Array(20).fill(1);
    expect(errnoOf(() => copyOut(buf, vfioDeviceInfo, { argsz: 24 }, 24))).toBe('EFAULT');
    expect(buf.every((b) => b === 1)).toBe(true);
  });

  it('codec.write honours the limit byte-wise, as a partial copy_to_user would', () => {
    const buf = new Uint8Array(32).fill(0xaa);
    vfioIommuType1DmaMap.write(buf, { argsz: 32, flags: 1, vaddr: 0x1122334455667788n }, 0, 12);
    expect(Array.from(buf.subarray(8, 16))).toEqual([0x88, 0x77, 0x66, 0x55, 0xaa, 0xaa, 0xaa, 0xaa]);
  });
});

describe('iommufd size (inventory §1.9)', () => {
  it('size < minsz is EINVAL', () => {
    expect(errnoOf(() => readIommufdArg(iommuIoasMap.encode({ size: 39 }), iommuIoasMap))).toBe('EINVAL');
  });
  it('a non-zero byte beyond the known struct is E2BIG; zeros are fine', () => {
    const buf = new Uint8Array(48);
    buf.set(iommuIoasMap.encode({ size: 48, ioas_id: 1, length: 4096n }));
    expect(readIommufdArg(buf, iommuIoasMap).value.ioas_id).toBe(1);
    buf[45] = 1;
    expect(errnoOf(() => readIommufdArg(buf, iommuIoasMap))).toBe('E2BIG');
  });
  it('size beyond the buffer is EFAULT', () => {
    expect(errnoOf(() => readIommufdArg(iommuIoasMap.encode({ size: 64 }), iommuIoasMap))).toBe('EFAULT');
    expect(errnoOf(() => readIommufdArg(new Uint8Array(2), iommuIoasMap))).toBe('EFAULT');
  });
  it('an older, shorter HWPT_ALLOC (6.6: 24 bytes) reads newer fields as zero', () => {
    const buf = iommuHwptAlloc.encode({ size: 24, flags: 1, dev_id: 2, pt_id: 3, data_type: 9, fault_id: 7 }).subarray(0, 24);
    expect(readIommufdArg(buf, iommuHwptAlloc).value).toMatchObject({ flags: 1, dev_id: 2, pt_id: 3, data_type: 0, fault_id: 0 });
  });
});

describe('unknownFlags', () => {
  it('returns the bits outside the known mask', () => {
    expect(unknownFlags(0b1011, 0b0011)).toBe(0b1000);
    expect(unknownFlags(0x80000000 | 1, 1)).toBe(0x80000000);
    expect(unknownFlags(7, 7)).toBe(0);
    expect(unknownFlags(1n << 63n, 1n)).toBe(1n << 63n);
  });
  it('property: x & known and unknownFlags(x, known) partition x', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 0xffffffff }), (x, known) => {
        const u = unknownFlags(x, known);
        expect(((u | (x & known)) >>> 0)).toBe(x);
        expect(u & known).toBe(0);
      }),
    );
  });
});
