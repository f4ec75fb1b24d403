import { describe, expect, it } from 'vitest';
import { findCapability, parseBarSpec, pciFunctionFromConfig } from '../src/index.js';
import { expectErrno, fixture } from './helpers.js';

const E1000E_BARS = '0:mem32:0x20000,1:mem32:0x20000,2:io:0x20,3:mem32:0x4000,rom:0x40000';

describe('pciFunctionFromConfig on captured config spaces', () => {
  it('edu: BAR sizing reads back the size mask, then the address is restored', () => {
    const f = pciFunctionFromConfig({ config: fixture('edu'), bars: '0:mem32:0x100000' });
    expect(f.configSize).toBe(256);
    expect(f.configRead(0x00, 4)).toBe(0x11e81234);
    expect(f.configRead(0x10, 4)).toBe(0xfea00000);
    f.configWrite(0x10, 4, 0xffffffff);
    expect(f.configRead(0x10, 4) >>> 0).toBe(0xfff00000);
    f.configWrite(0x10, 4, 0xfea00000);
    expect(f.configRead(0x10, 4)).toBe(0xfea00000);
    // Unimplemented BARs read 0 and ignore writes.
    f.configWrite(0x14, 4, 0xffffffff);
    expect(f.configRead(0x14, 4)).toBe(0);
    expect(f.bars.map((b) => b.size)).toEqual([0x100000n, 0n, 0n, 0n, 0n, 0n]);
    // MSI control: enable and MME writable, capability bits read-only.
    const msi = findCapability((o, s) => f.configRead(o, s), 0x05);
    expect(msi).toBe(0x40);
    f.configWrite(msi + 2, 2, 0xffff);
    expect(f.configRead(msi + 2, 2)).toBe(0x0080 | 0x0071);
    // Read-only identity registers.
    f.configWrite(0x00, 4, 0);
    expect(f.configRead(0x00, 2)).toBe(0x1234);
  });

  it('e1000e: I/O BAR, ROM BAR with its enable bit, W1C status bits, PM and PCIe controls', () => {
    const f = pciFunctionFromConfig({ config: fixture('e1000e'), bars: E1000E_BARS });
    expect(f.configSize).toBe(4096);
    expect(f.romSize).toBe(0x40000n);
    f.configWrite(0x18, 4, 0xffffffff);
    expect(f.configRead(0x18, 4) >>> 0).toBe(0xffffffe1);
    f.configWrite(0x1c, 4, 0xffffffff);
    expect(f.configRead(0x1c, 4) >>> 0).toBe(0xffffc000);
    // ROM: size mask plus the enable bit.
    f.configWrite(0x30, 4, 0xffffffff);
    expect(f.configRead(0x30, 4) >>> 0).toBe(0xfffc0001);
    f.configWrite(0x30, 4, 0xfeb40000);
    expect(f.configRead(0x30, 4) >>> 0).toBe(0xfeb40000);
    // Byte writes into a BAR merge with the register.
    f.configWrite(0x13, 1, 0x12);
    expect(f.configRead(0x10, 4) >>> 0).toBe(0x12b80000 & 0xfffe0000);
    // Status: error bits are RW1C, capability-list bit read-only.
    const before = f.configRead(0x06, 2);
    expect(before & 0x10).toBe(0x10);
    f.configWrite(0x06, 2, 0xffff);
    expect(f.configRead(0x06, 2)).toBe(before & ~0xf900);
    // Command: only the usual bits stick.
    f.configWrite(0x04, 2, 0xffff);
    expect(f.configRead(0x04, 2)).toBe(0x0547);
    // Bytes of the extended AER capability keep their header.
    expect(f.configRead(0x100, 4) & 0xffff).toBe(0x0001);
  });

  it('BAR memory is sparse RAM', () => {
    const f = pciFunctionFromConfig({ config: fixture('e1000e'), bars: E1000E_BARS, rom: new Uint8Array([0x55, 0xaa]) });
    expect([...f.barRead(0, 0x1fffen, 2)]).toEqual([0, 0]);
    f.barWrite(0, 0x1fffen, new Uint8Array([1, 2]));
    expect([...f.barRead(0, 0x1fff0n, 16)].slice(14)).toEqual([1, 2]);
    expectErrno(() => f.barRead(0, 0x1ffffn, 2), 'EINVAL');
    expectErrno(() => f.barRead(4, 0n, 1), 'EINVAL');
    expect([...f.romRead(0n, 3)]).toEqual([0x55, 0xaa, 0]);
  });

  it('64-bit and prefetchable BARs span two registers', () => {
    const c = fixture('edu');
    const f = pciFunctionFromConfig({ config: c, bars: [{ index: 2, type: 'mem64-pref', size: 1n << 33n }] });
    expect(f.configRead(0x18, 4)).toBe(0x0c);
    f.configWrite(0x18, 4, 0xffffffff);
    f.configWrite(0x1c, 4, 0xffffffff);
    expect(f.configRead(0x18, 4) >>> 0).toBe(0x0000000c);
    expect(f.configRead(0x1c, 4) >>> 0).toBe(0xfffffffe);
    expect(f.bars[2]).toEqual({ index: 2, type: 'mem64', prefetchable: true, size: 1n << 33n });
  });

  it('PM reset on D3hot→D0 returns the function to power-on state', () => {
    const f = pciFunctionFromConfig({ config: fixture('e1000e'), bars: E1000E_BARS });
    f.configWrite(0xcc, 2, 3); // D3hot
    f.configWrite(0xcc, 2, 0); // D0: NoSoftReset is clear, so the function resets
    expect(f.resets).toEqual(['pm']);
    expect(f.configRead(0x10, 4)).toBe(0);
    expect(f.configRead(0x04, 2)).toBe(0);
    expect(f.configRead(0x00, 4)).toBe(0x10d38086);
  });

  it('rejects bad specs and accesses', () => {
    const c = fixture('edu');
    expectErrno(() => pciFunctionFromConfig({ config: c.subarray(0, 100), bars: [] }), 'EINVAL');
    expectErrno(() => pciFunctionFromConfig({ config: c, bars: '0:mem32:0x3000' }), 'EINVAL');
    expectErrno(() => pciFunctionFromConfig({ config: c, bars: '5:mem64:0x1000' }), 'EINVAL');
    expectErrno(() => pciFunctionFromConfig({ config: c, bars: '0:mem64:0x1000,1:io:0x10' }), 'EINVAL');
    expectErrno(() => pciFunctionFromConfig({ config: c, bars: '0:weird:0x1000' }), 'EINVAL');
    expectErrno(() => pciFunctionFromConfig({ config: c, bars: 'rom:0x100' }), 'EINVAL');
    const f = pciFunctionFromConfig({ config: c, bars: '' });
    expectErrno(() => f.configRead(0x11, 2), 'EINVAL');
    expectErrno(() => f.configRead(4096, 1), 'EINVAL');
    expect(parseBarSpec('0:mem32:1M,2:io:32,rom:256K')).toEqual({
      bars: [
        { index: 0, type: 'mem32', size: 1n << 20n },
        { index: 2, type: 'io', size: 32n },
      ],
      romSize: 256n << 10n,
    });
  });

  it('Interrupt Status is hardware-owned', () => {
    const f = pciFunctionFromConfig({ config: fixture('edu'), bars: '0:mem32:0x100000' });
    f.setInterruptStatus(true);
    expect(f.configRead(0x06, 2) & 0x08).toBe(0x08);
    f.configWrite(0x06, 2, 0xffff);
    expect(f.configRead(0x06, 2) & 0x08).toBe(0x08);
    f.setInterruptStatus(false);
    expect(f.configRead(0x06, 2) & 0x08).toBe(0);
  });

  it('honours explicit wmask and w1cmask', () => {
    const c = fixture('edu');
    const wmask = new Uint8Array(256);
    wmask[0x3c] = 0x0f;
    const w1c = new Uint8Array(256);
    w1c[0x3d] = 0x01;
    const f = pciFunctionFromConfig({ config: c, bars: '0:mem32:0x100000', wmask, w1cmask: w1c });
    f.configWrite(0x3c, 2, 0xffff);
    expect(f.configRead(0x3c, 1)).toBe(0x0f);
    expect(f.configRead(0x3d, 1)).toBe(0x00); // interrupt pin 1 cleared by W1C
    f.configWrite(0x04, 2, 0xffff);
    expect(f.configRead(0x04, 2)).toBe(0x0103);
    // BAR sizing follows the BAR list whatever the mask says.
    f.configWrite(0x10, 4, 0xffffffff);
    expect(f.configRead(0x10, 4) >>> 0).toBe(0xfff00000);
  });
});
