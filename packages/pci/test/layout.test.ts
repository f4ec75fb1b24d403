import { describe, expect, it } from 'vitest';
import { isSysError } from '@vfio-ts/uapi';
import { PCI_CAP_ID, PCI_EXT_CAP_ID, VfioPciConfig } from '../src/index.js';
import { buildConfig, e1000e, edu, fakeFunction, header, le } from './helpers.js';

/** Follows the standard chain the way a user driver does. */
function userChain(cfg: VfioPciConfig): [number, number][] {
  const out: [number, number][] = [];
  if ((cfg.read(0x06, 2) & 0x10) === 0) return out;
  let pos = cfg.read(0x34, 1);
  for (let i = 0; pos && i < 48; i++) {
    out.push([cfg.read(pos, 1), pos]);
    pos = cfg.read(pos + 1, 1);
  }
  return out;
}

/** Follows the extended chain from 0x100. */
function userExtChain(cfg: VfioPciConfig): [number, number][] {
  const out: [number, number][] = [];
  let pos = 0x100;
  for (let i = 0; pos && i < 64; i++) {
    const h = cfg.read(pos, 4);
    if (h === 0) break;
    out.push([h & 0xffff, pos]);
    pos = (h >>> 20) & 0xffc;
  }
  return out;
}

describe('capability map', () => {
  it('maps the edu fixture: 256 bytes, MSI (64-bit, 14 bytes) at 0x40', () => {
    const cfg = new VfioPciConfig(edu());
    expect(cfg.size).toBe(256);
    expect(cfg.capabilities()).toEqual([{ id: PCI_CAP_ID.MSI, offset: 0x40, length: 14, extended: false, hidden: false }]);
    expect(userChain(cfg)).toEqual([[PCI_CAP_ID.MSI, 0x40]]);
  });

  it('maps the e1000e fixture: PM, MSI, PCIe v1 RC endpoint (12 bytes), MSI-X; AER and DSN', () => {
    const cfg = new VfioPciConfig(e1000e());
    expect(cfg.size).toBe(4096);
    expect(cfg.capabilities().map((c) => [c.id, c.offset, c.length, c.extended])).toEqual([
      [PCI_CAP_ID.PM, 0xc8, 8, false],
      [PCI_CAP_ID.MSI, 0xd0, 14, false],
      [PCI_CAP_ID.EXP, 0xe0, 12, false],
      [PCI_CAP_ID.MSIX, 0xa0, 12, false],
      [PCI_EXT_CAP_ID.ERR, 0x100, 44, true],
      [PCI_EXT_CAP_ID.DSN, 0x140, 12, true],
    ]);
    expect(userChain(cfg).map(([id]) => id)).toEqual([PCI_CAP_ID.PM, PCI_CAP_ID.MSI, PCI_CAP_ID.EXP, PCI_CAP_ID.MSIX]);
    expect(userExtChain(cfg)).toEqual([
      [PCI_EXT_CAP_ID.ERR, 0x100],
      [PCI_EXT_CAP_ID.DSN, 0x140],
    ]);
    expect(cfg.findCapability(PCI_CAP_ID.MSIX)).toBe(0xa0);
    expect(cfg.findCapability(PCI_EXT_CAP_ID.DSN, true)).toBe(0x140);
    expect(cfg.findCapability(PCI_CAP_ID.AF)).toBeUndefined();
  });

  it('unlinks hidden standard capabilities (SLOTID, DBG) and leaves their bytes raw', () => {
    const fn = fakeFunction(
      buildConfig(
        256,
        header(0x40, {
          0x40: [PCI_CAP_ID.PM, 0x48, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00],
          0x48: [PCI_CAP_ID.SLOTID, 0x50, 0x21, 0x05],
          0x50: [PCI_CAP_ID.MSI, 0x60, 0x00, 0x00],
          0x60: [PCI_CAP_ID.DBG, 0x70, 0x11, 0x22],
          0x70: [PCI_CAP_ID.AF, 0x00, 0x06, 0x03],
        }),
      ),
    );
    const cfg = new VfioPciConfig(fn);
    expect(userChain(cfg)).toEqual([
      [PCI_CAP_ID.PM, 0x40],
      [PCI_CAP_ID.MSI, 0x50],
      [PCI_CAP_ID.AF, 0x70],
    ]);
    expect(cfg.capabilities().filter((c) => c.hidden).map((c) => c.offset)).toEqual([0x48, 0x60]);
    // The device's own pointers are untouched.
    expect(fn.peek(0x41, 1)).toBe(0x48);
    // Hidden bytes are unclaimed: raw read and raw write.
    expect(cfg.read(0x48, 4)).toBe(fn.peek(0x48, 4));
    cfg.write(0x62, 2, 0xbeef);
    expect(fn.peek(0x62, 2)).toBe(0xbeef);
    expect(cfg.read(0x62, 2)).toBe(0xbeef);
  });

  it('clears STATUS.CAP_LIST when every capability is hidden', () => {
    const fn = fakeFunction(buildConfig(256, header(0x40, { 0x40: [PCI_CAP_ID.SSVID, 0x00, 0, 0, 0x34, 0x12, 0x78, 0x56] })));
    const cfg = new VfioPciConfig(fn);
    expect(cfg.read(0x06, 2) & 0x10).toBe(0);
    expect(cfg.read(0x34, 1)).toBe(0);
    expect(fn.peek(0x06, 2) & 0x10).toBe(0x10);
  });

  it('replaces a hidden first extended capability with a placeholder and skips later hidden ones', () => {
    const ext = (id: number, ver: number, next: number): number[] => le((id | (ver << 16) | (next << 20)) >>> 0, 4);
    const fn = fakeFunction(
      buildConfig(
        4096,
        header(0x40, {
          0x40: [PCI_CAP_ID.EXP, 0x00, 0x02, 0x00, 0, 0, 0, 0],
          0x100: ext(PCI_EXT_CAP_ID.PASID, 1, 0x140),
          0x140: [...ext(PCI_EXT_CAP_ID.DSN, 1, 0x180), 1, 2, 3, 4, 5, 6, 7, 8],
          0x180: ext(PCI_EXT_CAP_ID.L1SS, 1, 0x1c0),
          0x1c0: [...ext(PCI_EXT_CAP_ID.ACS, 1, 0), 0x1f, 0, 0, 0],
        }),
      ),
    );
    const cfg = new VfioPciConfig(fn);
    // ID 0, version 0, next kept.
    expect(cfg.read(0x100, 4)).toBe((0x140 << 20) >>> 0);
    expect(userExtChain(cfg)).toEqual([
      [0, 0x100],
      [PCI_EXT_CAP_ID.DSN, 0x140],
      [PCI_EXT_CAP_ID.ACS, 0x1c0],
    ]);
    // DSN's next now skips L1SS; the device still says 0x180.
    expect((cfg.read(0x140, 4) >>> 20) & 0xffc).toBe(0x1c0);
    expect((fn.peek(0x140, 4) >>> 20) & 0xffc).toBe(0x180);
    // Hidden L1SS bytes are raw.
    cfg.write(0x184, 4, 0x12345678);
    expect(fn.peek(0x184, 4)).toBe(0x12345678);
  });

  it('reports no extended capabilities when none is visible', () => {
    const fn = fakeFunction(
      buildConfig(4096, header(0x40, { 0x40: [PCI_CAP_ID.EXP, 0x00, 0x02, 0x00], 0x100: le(PCI_EXT_CAP_ID.PASID | (1 << 16), 4) })),
    );
    const cfg = new VfioPciConfig(fn);
    expect(cfg.read(0x100, 4)).toBe(0);
  });

  it('does not walk extended space for a conventional function', () => {
    const cfg = new VfioPciConfig(edu());
    expect(cfg.capabilities().some((c) => c.extended)).toBe(false);
  });

  it('survives a looping capability chain', () => {
    const fn = fakeFunction(buildConfig(256, header(0x40, { 0x40: [PCI_CAP_ID.MSIX, 0x40, 0, 0] })));
    const cfg = new VfioPciConfig(fn);
    expect(cfg.read(0x40, 1)).toBe(PCI_CAP_ID.MSIX);
  });
});

describe('access path', () => {
  it('passes unclaimed bytes straight to the device (reads and writes)', () => {
    const fn = edu();
    const cfg = new VfioPciConfig(fn);
    fn.poke(0x80, 4, 0xcafef00d);
    expect(cfg.read(0x80, 4)).toBe(0xcafef00d);
    cfg.write(0x90, 4, 0x01020304);
    expect(fn.peek(0x90, 4)).toBe(0x01020304);
    // 0x4e..0x4f follow the 14-byte MSI capability: unclaimed.
    cfg.write(0x4e, 2, 0xa5a5);
    expect(fn.peek(0x4e, 2)).toBe(0xa5a5);
  });

  it('splits region accesses into naturally aligned 1/2/4-byte pieces', () => {
    const fn = edu();
    const cfg = new VfioPciConfig(fn);
    fn.log.length = 0;
    cfg.readBytes(0x81, 7);
    expect(fn.log.map((a) => [a.offset, a.size])).toEqual([
      [0x81, 1],
      [0x82, 2],
      [0x84, 4],
    ]);
    fn.log.length = 0;
    cfg.writeBytes(0x83, new Uint8Array([1, 2, 3, 4, 5, 6]));
    expect(fn.log.filter((a) => a.op === 'w').map((a) => [a.offset, a.size])).toEqual([
      [0x83, 1],
      [0x84, 4],
      [0x88, 1],
    ]);
    expect(Array.from(fn.bytes.subarray(0x83, 0x89))).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('never lets a piece cross a capability boundary', () => {
    const fn = edu();
    const cfg = new VfioPciConfig(fn);
    fn.poke(0x4e, 2, 0x7777);
    fn.log.length = 0;
    const bytes = cfg.readBytes(0x4c, 4);
    // 0x4c..0x4d is MSI data (virtual, no device read); 0x4e..0x4f is raw.
    expect(fn.log.map((a) => [a.offset, a.size])).toEqual([[0x4e, 2]]);
    expect(bytes[2]).toBe(0x77);
  });

  it('reads whole config space byte-identical to 1/2/4-byte reads', () => {
    const cfg = new VfioPciConfig(e1000e());
    const all = cfg.readBytes(0, 4096);
    for (let off = 0; off < 4096; off += 4) {
      expect(cfg.read(off, 4)).toBe((all[off]! | (all[off + 1]! << 8) | (all[off + 2]! << 16) | (all[off + 3]! << 24)) >>> 0);
    }
  });

  it('rejects out-of-range accesses with EFAULT and changes nothing', () => {
    const fn = edu();
    const cfg = new VfioPciConfig(fn);
    const before = fn.bytes.slice();
    const expectErr = (f: () => unknown, errno: string): void => {
      try {
        f();
        expect.unreachable();
      } catch (e) {
        expect(isSysError(e)).toBe(true);
        expect((e as { errno: string }).errno).toBe(errno);
      }
    };
    expectErr(() => cfg.readBytes(0xff, 2), 'EFAULT');
    expectErr(() => cfg.readBytes(256, 1), 'EFAULT');
    expectErr(() => cfg.readBytes(-1, 1), 'EFAULT');
    expectErr(() => cfg.writeBytes(0xfe, new Uint8Array(4)), 'EFAULT');
    expectErr(() => cfg.read(0, 3 as 4), 'EINVAL');
    expectErr(() => {
      cfg.write(0, 4, 1.5);
    }, 'EINVAL');
    expectErr(() => cfg.readBytes(0.5, 1), 'EINVAL');
    expect(cfg.readBytes(4000, 0)).toHaveLength(0);
    expect(cfg.writeBytes(9999, new Uint8Array(0))).toBe(0);
    expect(fn.bytes).toEqual(before);
  });
});
