/**
 * Region access (inventory §3.3, P8–P12): pread/pwrite at `index << 40` reaching the model, the virtualized
 * config region, EIO while memory decoding is off, the MSI-X table window, the ROM, and BAR mmap with its zap and
 * refault around memory-disable.
 */
import { EDU_REG } from '@vfio-ts/device-edu';
import { isSysError, vfioPciOffset } from '@vfio-ts/uapi';
import { describe, expect, it } from 'vitest';
import { E1000E_BDF, e1000eFunction, EDU_BDF, eduHost, le32, makeHost, openDev, u16, u32 } from './driver-helpers.js';

const BAR0 = vfioPciOffset(0);
const BAR2 = vfioPciOffset(2);
const BAR3 = vfioPciOffset(3);
const ROM = vfioPciOffset(6);
const CONFIG = vfioPciOffset(7);

function expectErrno(fn: () => unknown, errno: string): void {
  try {
    fn();
  } catch (e) {
    expect(isSysError(e) ? e.errno : e).toBe(errno);
    return;
  }
  throw new Error(`expected ${errno}`);
}

function edu() {
  const t = eduHost();
  return { ...t, fd: openDev(t, EDU_BDF).device };
}

function e1000e(rom?: Uint8Array) {
  const fn = e1000eFunction(rom);
  const t = makeHost([{ bdf: E1000E_BDF, fn, driver: 'vfio-pci' }]);
  return { ...t, fn, fd: openDev(t, E1000E_BDF).device };
}

describe('BAR read/write', () => {
  it('reaches the edu model: the ID register and the liveness check', () => {
    const o = edu();
    expect(u32(o.p.pread(o.fd, 4, BAR0 + BigInt(EDU_REG.ID)))).toBe(0x010000ed);
    expect(o.p.pwrite(o.fd, le32(0x12345678), BAR0 + BigInt(EDU_REG.LIVENESS))).toBe(4);
    expect(u32(o.p.pread(o.fd, 4, BAR0 + BigInt(EDU_REG.LIVENESS)))).toBe(~0x12345678 >>> 0);
  });

  it('clips at the end of the BAR, refuses offsets past it, and returns nothing for zero bytes', () => {
    const o = e1000e();
    expect(o.p.pread(o.fd, 8, BAR2 + 0x1cn).length).toBe(4);
    expectErrno(() => o.p.pread(o.fd, 4, BAR2 + 0x20n), 'EINVAL');
    expectErrno(() => o.p.pread(o.fd, 4, vfioPciOffset(4)), 'EINVAL');
    expectErrno(() => o.p.pread(o.fd, 4, vfioPciOffset(9)), 'EINVAL');
    expect(o.p.pread(o.fd, 0, vfioPciOffset(9)).length).toBe(0);
    // A huge count is clipped by the region, not allocated.
    expect(o.p.pread(o.fd, 0x7fffffff, BAR2).length).toBe(0x20);
    expectErrno(() => o.p.pread(o.fd, 0x7fffffff, CONFIG), 'EFAULT');
  });

  it('reads the MSI-X table window as all-ones and drops writes to it, but passes the PBA', () => {
    const o = e1000e();
    // Table: BAR3 offset 0, 5 entries (80 bytes); PBA at 0x2000.
    expect([...o.p.pread(o.fd, 8, BAR3 + 0x48n)]).toEqual([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    o.p.pwrite(o.fd, le32(0xdeadbeef), BAR3 + 0x10n);
    expect(u32(o.fn.barRead(3, 0x10n, 4))).toBe(0);
    // A read straddling the end of the window: 0xff then the function's bytes.
    o.fn.barWrite(3, 0x50n, le32(0x11223344));
    expect([...o.p.pread(o.fd, 8, BAR3 + 0x4cn)]).toEqual([0xff, 0xff, 0xff, 0xff, 0x44, 0x33, 0x22, 0x11]);
    o.p.pwrite(o.fd, le32(0xcafef00d), BAR3 + 0x2000n);
    expect(u32(o.fn.barRead(3, 0x2000n, 4))).toBe(0xcafef00d);
  });

  it('answers EIO on memory BARs while the user has memory decoding off, but not on I/O BARs', () => {
    const o = e1000e();
    const cmd = u16(o.p.pread(o.fd, 2, CONFIG + 4n));
    expect(cmd & 0x2).toBe(0x2);
    o.p.pwrite(o.fd, new Uint8Array([cmd & ~0x2 & 0xff, cmd >> 8]), CONFIG + 4n);
    expectErrno(() => o.p.pread(o.fd, 4, BAR0), 'EIO');
    expectErrno(() => o.p.pwrite(o.fd, le32(1), BAR0), 'EIO');
    expect(o.p.pread(o.fd, 4, BAR2).length).toBe(4);
    // Reads that stay inside the MSI-X window never touch the device: no EIO.
    expect(o.p.pread(o.fd, 4, BAR3).length).toBe(4);
    o.p.pwrite(o.fd, new Uint8Array([cmd & 0xff, cmd >> 8]), CONFIG + 4n);
    expect(o.p.pread(o.fd, 4, BAR0).length).toBe(4);
  });
});

describe('config region', () => {
  it('shows virtualized values: BAR sizing does not reach the device, pin and capabilities as vfio-pci presents them', () => {
    const o = e1000e();
    expect(u32(o.p.pread(o.fd, 4, CONFIG))).toBe(0x10d38086);
    const hwBar0 = o.fn.configRead(0x10, 4);
    o.p.pwrite(o.fd, le32(0xffffffff), CONFIG + 0x10n);
    expect(u32(o.p.pread(o.fd, 4, CONFIG + 0x10n))).toBe(0xfffe0000);
    expect(o.fn.configRead(0x10, 4)).toBe(hwBar0);
    expect(o.p.pread(o.fd, 1, CONFIG + 0x3dn)[0]).toBe(1);
    expect(o.p.pread(o.fd, 4096, CONFIG).length).toBe(4096);
    expectErrno(() => o.p.pread(o.fd, 4, CONFIG + 4094n), 'EFAULT');
    expectErrno(() => o.p.pread(o.fd, 4, CONFIG + 4096n), 'EFAULT');
  });
});

describe('ROM region', () => {
  it('reads the ROM image, all-ones past it, and is read-only', () => {
    const rom = new Uint8Array(0x1000);
    rom.set([0x55, 0xaa], 0);
    rom.set([0x1c, 0x00], 0x18);
    rom.set([0x50, 0x43, 0x49, 0x52], 0x1c);
    rom.set([0x01, 0x00], 0x1c + 0x10); // one 512-byte image
    rom[0x1c + 0x15] = 0x80;
    rom[0x100] = 0x5a;
    rom[0x300] = 0x77; // past the image
    const o = e1000e(rom);
    expect([...o.p.pread(o.fd, 2, ROM)]).toEqual([0x55, 0xaa]);
    expect(o.p.pread(o.fd, 1, ROM + 0x100n)[0]).toBe(0x5a);
    expect(o.p.pread(o.fd, 1, ROM + 0x300n)[0]).toBe(0xff);
    expectErrno(() => o.p.pwrite(o.fd, new Uint8Array([1]), ROM), 'EINVAL');
    expectErrno(() => o.p.pread(o.fd, 1, ROM + 0x40000n), 'EINVAL');
    // The ROM enable bit and COMMAND are back as they were.
    expect(o.fn.configRead(0x30, 4) & 1).toBe(0);
  });

  it('is EINVAL without a ROM and ENOMEM when the ROM holds no image', () => {
    const d = edu();
    expectErrno(() => d.p.pread(d.fd, 4, ROM), 'EINVAL');
    const o = e1000e();
    expectErrno(() => o.p.pread(o.fd, 4, ROM), 'ENOMEM');
  });
});

describe('BAR mmap', () => {
  it('maps a BAR: loads and stores reach the model', () => {
    const o = edu();
    const va = o.p.mmap({ length: 0x1000, fd: o.fd, offset: BAR0 });
    expect(u32(o.p.memory.read(va, 4))).toBe(0x010000ed);
    o.p.memory.write(va + 4n, le32(0xa5a5a5a5));
    expect(u32(o.p.memory.read(va + 4n, 4))).toBe(0x5a5a5a5a);
    o.p.munmap(va, 0x1000);
  });

  it('faults (SIGBUS) while memory decoding is off and works again once it is back on', () => {
    const o = edu();
    const va = o.p.mmap({ length: 0x1000, fd: o.fd, offset: BAR0 });
    const cmd = u16(o.p.pread(o.fd, 2, CONFIG + 4n));
    o.p.pwrite(o.fd, new Uint8Array([cmd & ~0x2 & 0xff, cmd >> 8]), CONFIG + 4n);
    expect(() => o.p.memory.read(va, 4)).toThrow(/EFAULT/);
    o.p.pwrite(o.fd, new Uint8Array([cmd & 0xff, cmd >> 8]), CONFIG + 4n);
    expect(u32(o.p.memory.read(va, 4))).toBe(0x010000ed);
  });

  it('refuses private mappings, non-BAR regions, I/O BARs and ranges past the BAR (EINVAL)', () => {
    const o = e1000e();
    expectErrno(() => o.p.mmap({ length: 0x1000, fd: o.fd, offset: BAR0, shared: false }), 'EINVAL');
    expectErrno(() => o.p.mmap({ length: 0x1000, fd: o.fd, offset: CONFIG }), 'EINVAL');
    expectErrno(() => o.p.mmap({ length: 0x1000, fd: o.fd, offset: ROM }), 'EINVAL');
    expectErrno(() => o.p.mmap({ length: 0x1000, fd: o.fd, offset: BAR2 }), 'EINVAL');
    expectErrno(() => o.p.mmap({ length: 0x21000, fd: o.fd, offset: BAR0 }), 'EINVAL');
    expectErrno(() => o.p.mmap({ length: 0x1000, fd: o.fd, offset: BAR0 + 0x20000n }), 'EINVAL');
    expectErrno(() => o.p.mmap({ length: 0x1000, fd: o.fd, offset: vfioPciOffset(9) }), 'EINVAL');
    // The MSI-X BAR maps whole (MSIX_MAPPABLE), table included.
    const va = o.p.mmap({ length: 0x4000, fd: o.fd, offset: BAR3 });
    o.p.memory.write(va, le32(0x01020304));
    expect(u32(o.fn.barRead(3, 0n, 4))).toBe(0x01020304);
  });
});
