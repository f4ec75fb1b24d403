import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isSysError } from '@vfio-ts/uapi';
import {
  EDU_DMA_BUFFER_ADDR,
  EDU_DMA_CMD,
  EDU_ID_VALUE,
  EDU_IRQ,
  EDU_MSI_CAP_OFFSET,
  EDU_REG,
  EDU_STATUS,
  eduFunction,
} from '../src/index.js';
import type { EduFunction, EduOptions } from '../src/index.js';
import { FakeHost, fromLe, le } from './helpers.js';

const FIXTURE = new Uint8Array(readFileSync(new URL('./fixtures/edu.config.bin', import.meta.url)));
const CMD_MEM = 0x2;
const CMD_MASTER = 0x4;
const CMD_INTX_DISABLE = 0x400;
const MSI_FLAGS = EDU_MSI_CAP_OFFSET + 2;

function setup(options: EduOptions = {}, command = CMD_MEM | CMD_MASTER): { dev: EduFunction; host: FakeHost } {
  const dev = eduFunction(options);
  const host = new FakeHost();
  dev.attach(host);
  dev.configWrite(0x04, 2, command);
  return { dev, host };
}

const r32 = (dev: EduFunction, off: number): number => Number(fromLe(dev.barRead(0, BigInt(off), 4)));
const w32 = (dev: EduFunction, off: number, v: number): void => {
  dev.barWrite(0, BigInt(off), le(v, 4));
};
const r64 = (dev: EduFunction, off: number): bigint => fromLe(dev.barRead(0, BigInt(off), 8));
const w64 = (dev: EduFunction, off: number, v: bigint): void => {
  dev.barWrite(0, BigInt(off), le(v, 8));
};

function config(dev: EduFunction, size = 256): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i += 4) out.set(le(dev.configRead(i, 4), 4), i);
  return out;
}

function enableMsi(dev: EduFunction): void {
  dev.configWrite(EDU_MSI_CAP_OFFSET + 4, 4, 0xfee00000);
  dev.configWrite(EDU_MSI_CAP_OFFSET + 8, 4, 0);
  dev.configWrite(EDU_MSI_CAP_OFFSET + 12, 2, 0x4041);
  dev.configWrite(MSI_FLAGS, 2, 0x0001);
}

describe('edu config space', () => {
  it('matches the captured QEMU config space except what firmware writes', () => {
    const dev = eduFunction();
    const power = config(dev);
    const differs = [...power.keys()].filter((i) => power[i] !== FIXTURE[i]);
    // command (firmware enabled IO/MEM/SERR), BAR0 address, interrupt line.
    expect(differs).toEqual([0x04, 0x05, 0x12, 0x13, 0x3c]);
    expect(dev.configRead(0x10, 4)).toBe(0);
    // Replaying the firmware's writes reproduces the capture byte for byte.
    dev.configWrite(0x04, 2, 0x0103);
    dev.configWrite(0x10, 4, 0xfea00000);
    dev.configWrite(0x3c, 1, 0x0a);
    expect(config(dev)).toEqual(FIXTURE);
  });

  it('sizes BAR0 as a 1 MiB mem32 BAR and has no ROM', () => {
    const dev = eduFunction();
    dev.configWrite(0x10, 4, 0xffffffff);
    expect(dev.configRead(0x10, 4)).toBe(0xfff00000);
    for (const bar of [0x14, 0x18, 0x1c, 0x20, 0x24, 0x30]) {
      dev.configWrite(bar, 4, 0xffffffff);
      expect(dev.configRead(bar, 4)).toBe(0);
    }
    expect(dev.bars[0]).toEqual({ index: 0, type: 'mem32', prefetchable: false, size: 0x100000n });
    expect(dev.bars.slice(1).every((b) => b.size === 0n)).toBe(true);
  });

  it('keeps read-only registers read-only and clamps MSI multiple-message enable', () => {
    const dev = eduFunction();
    dev.configWrite(0x00, 4, 0);
    dev.configWrite(0x08, 4, 0);
    dev.configWrite(0x2c, 4, 0);
    dev.configWrite(0x3d, 1, 4);
    dev.configWrite(EDU_MSI_CAP_OFFSET, 2, 0xffff);
    expect(dev.configRead(0x00, 4)).toBe(0x11e81234);
    expect(dev.configRead(0x08, 4)).toBe(0x00ff0010);
    expect(dev.configRead(0x2c, 4)).toBe(0x11001af4);
    expect(dev.configRead(0x3d, 1)).toBe(1);
    expect(dev.configRead(EDU_MSI_CAP_OFFSET, 2)).toBe(0x0005);
    dev.configWrite(MSI_FLAGS, 2, 0x0071);
    expect(dev.configRead(MSI_FLAGS, 2)).toBe(0x0081);
    dev.configWrite(0x04, 2, 0xffff);
    expect(dev.configRead(0x04, 2)).toBe(0x0507);
  });

  it('reads all-ones above 256 bytes, serves unaligned accesses, rejects malformed ones with EINVAL', () => {
    const dev = eduFunction();
    expect(dev.configRead(0x100, 4)).toBe(0xffffffff);
    expect(dev.configRead(0xffc, 2)).toBe(0xffff);
    dev.configWrite(0x100, 4, 0);
    expect(() => dev.configRead(4096, 1)).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
    expect(() => dev.configRead(-1, 1)).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
    expect(dev.configRead(3, 2)).toBe(0x0011); // unaligned: device id high byte, command low byte
    expect(() => dev.configRead(4094, 4)).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
    expect(() => dev.configRead(0, 3 as 4)).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
    expect(() => dev.barRead(1, 0n, 4)).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
    expect(() => dev.barRead(0, 0xffffcn, 8)).toThrow(expect.objectContaining({ errno: 'EINVAL' }));
  });

  it('config writes never touch read-only bits (property)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            offset: fc.integer({ min: 0, max: 255 }),
            size: fc.constantFrom(1 as const, 2 as const, 4 as const),
            value: fc.integer({ min: 0, max: 0xffffffff }),
          }),
          { maxLength: 40 },
        ),
        (writes) => {
          const dev = eduFunction();
          const before = config(dev);
          for (const w of writes) {
            const offset = w.offset & ~(w.size - 1);
            dev.configWrite(offset, w.size, w.value);
          }
          const after = config(dev);
          // Bytes no write mask covers: identity, class, header, subsystem, pin, capability headers, the rest.
          const writable = new Set([0x04, 0x05, 0x0c, 0x11, 0x12, 0x13, 0x3c, 0x42, 0x44, 0x45, 0x46, 0x47]);
          for (let i = 0x48; i < 0x4e; i++) writable.add(i);
          for (let i = 0; i < 256; i++) if (!writable.has(i)) expect(after[i]).toBe(before[i]);
        },
      ),
    );
  });
});

describe('edu registers', () => {
  it('identifies itself and inverts the liveness value', () => {
    const { dev } = setup();
    expect(r32(dev, EDU_REG.ID)).toBe(EDU_ID_VALUE);
    expect(r32(dev, EDU_REG.LIVENESS)).toBe(0);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), (v) => {
        w32(dev, EDU_REG.LIVENESS, v);
        expect(r32(dev, EDU_REG.LIVENESS)).toBe(~v >>> 0);
      }),
    );
  });

  it('follows the access-size rules of edu.c', () => {
    const { dev } = setup();
    expect(r64(dev, 0x00)).toBe(0xffff_ffff_ffff_ffffn); // 8-byte below 0x80
    expect(fromLe(dev.barRead(0, 0n, 2))).toBe(0xffffn); // 2-byte
    expect(fromLe(dev.barRead(0, 0x0cn, 4))).toBe(0xffffffffn); // unimplemented
    w64(dev, EDU_REG.DMA_SRC, 0x1234_5678_9abc_def0n);
    expect(r64(dev, EDU_REG.DMA_SRC)).toBe(0x1234_5678_9abc_def0n);
    expect(r32(dev, EDU_REG.DMA_SRC)).toBe(0x9abcdef0); // 4-byte read: low half
    expect(r32(dev, EDU_REG.DMA_SRC + 4)).toBe(0xffffffff); // upper half not addressable
    w32(dev, EDU_REG.DMA_SRC, 0x1000); // 4-byte write zero-extends
    expect(r64(dev, EDU_REG.DMA_SRC)).toBe(0x1000n);
    w32(dev, EDU_REG.DMA_SRC + 4, 0xffff); // ignored
    expect(r64(dev, EDU_REG.DMA_SRC)).toBe(0x1000n);
    dev.barWrite(0, BigInt(EDU_REG.LIVENESS), le(0x55, 2)); // 2-byte write ignored
    expect(r32(dev, EDU_REG.LIVENESS)).toBe(0);
    // A 16-byte read splits into two 8-byte accesses.
    w64(dev, EDU_REG.DMA_DST, 7n);
    expect(dev.barRead(0, BigInt(EDU_REG.DMA_SRC), 16)).toEqual(new Uint8Array([...le(0x1000n, 8), ...le(7n, 8)]));
  });

  it('does not decode BAR0 while memory space is disabled', () => {
    const { dev } = setup({}, 0);
    expect(r32(dev, EDU_REG.ID)).toBe(0xffffffff);
    w32(dev, EDU_REG.LIVENESS, 1);
    dev.configWrite(0x04, 2, CMD_MEM);
    expect(r32(dev, EDU_REG.LIVENESS)).toBe(0);
  });

  it('keeps the DMA buffer off the bus unless mmioDmaBuffer is set', () => {
    const plain = setup().dev;
    expect(r32(plain, Number(EDU_DMA_BUFFER_ADDR))).toBe(0xffffffff);
    const { dev } = setup({ mmioDmaBuffer: true });
    dev.barWrite(0, EDU_DMA_BUFFER_ADDR + 1n, new Uint8Array([1, 2, 3]));
    expect([...dev.barRead(0, EDU_DMA_BUFFER_ADDR, 4)]).toEqual([0, 1, 2, 3]);
    expect([...dev.dmaBuffer().subarray(0, 4)]).toEqual([0, 1, 2, 3]);
  });
});

describe('edu factorial', () => {
  it('computes asynchronously without an interrupt', () => {
    const { dev, host } = setup();
    w32(dev, EDU_REG.FACTORIAL, 5);
    expect(r32(dev, EDU_REG.STATUS) & EDU_STATUS.COMPUTING).toBe(EDU_STATUS.COMPUTING);
    expect(r32(dev, EDU_REG.FACTORIAL)).toBe(5);
    w32(dev, EDU_REG.FACTORIAL, 7); // ignored while computing
    host.clock.advance(1);
    expect(r32(dev, EDU_REG.STATUS)).toBe(0);
    expect(r32(dev, EDU_REG.FACTORIAL)).toBe(120);
    expect(host.intx).toEqual([]);
    expect(host.msi).toEqual([]);
  });

  it('matches n! mod 2^32 (property)', () => {
    const { dev, host } = setup();
    fc.assert(
      fc.property(fc.oneof(fc.integer({ min: 0, max: 200 }), fc.integer({ min: 0, max: 0xffffffff })), (n) => {
        w32(dev, EDU_REG.FACTORIAL, n);
        host.clock.advance(1);
        let ref = 1n;
        for (let i = 1n; i <= BigInt(Math.min(n, 100)); i++) ref = (ref * i) % (1n << 32n);
        expect(r32(dev, EDU_REG.FACTORIAL)).toBe(Number(ref));
      }),
    );
  });

  it('raises INTx when IRQ_FACT is set, and the ack lowers it', () => {
    const { dev, host } = setup();
    w32(dev, EDU_REG.STATUS, EDU_STATUS.IRQ_FACT);
    w32(dev, EDU_REG.FACTORIAL, 4);
    expect(host.intx).toEqual([]);
    host.clock.advance(1);
    expect(r32(dev, EDU_REG.FACTORIAL)).toBe(24);
    expect(host.intx).toEqual([true]);
    expect(r32(dev, EDU_REG.IRQ_STATUS)).toBe(EDU_IRQ.FACTORIAL);
    expect(dev.configRead(0x06, 2) & 0x8).toBe(0x8); // status.INTERRUPT
    w32(dev, EDU_REG.IRQ_ACK, EDU_IRQ.FACTORIAL);
    expect(host.intx).toEqual([true, false]);
    expect(dev.configRead(0x06, 2) & 0x8).toBe(0);
    expect(r32(dev, EDU_REG.STATUS)).toBe(EDU_STATUS.IRQ_FACT);
  });

  it('sends MSI vector 0 instead when MSI is enabled', () => {
    const { dev, host } = setup();
    enableMsi(dev);
    w32(dev, EDU_REG.STATUS, EDU_STATUS.IRQ_FACT);
    w32(dev, EDU_REG.FACTORIAL, 3);
    host.clock.advance(1);
    expect(host.msi).toEqual([0]);
    expect(host.intx).toEqual([]);
    w32(dev, EDU_REG.IRQ_ACK, EDU_IRQ.FACTORIAL);
    expect(r32(dev, EDU_REG.IRQ_STATUS)).toBe(0);
    expect(host.intx).toEqual([]);
  });
});

describe('edu interrupts', () => {
  it('raise/ack registers drive INTx, gated by COMMAND.INTX_DISABLE', () => {
    const { dev, host } = setup();
    w32(dev, EDU_REG.IRQ_RAISE, 0x30);
    expect(host.intx).toEqual([true]);
    w32(dev, EDU_REG.IRQ_ACK, 0x10);
    expect(r32(dev, EDU_REG.IRQ_STATUS)).toBe(0x20);
    expect(host.intxLevel).toBe(true);
    dev.configWrite(0x04, 2, CMD_MEM | CMD_MASTER | CMD_INTX_DISABLE);
    expect(host.intxLevel).toBe(false);
    expect(dev.configRead(0x06, 2) & 0x8).toBe(0x8); // pending, masked
    dev.configWrite(0x04, 2, CMD_MEM | CMD_MASTER);
    expect(host.intxLevel).toBe(true);
    w32(dev, EDU_REG.IRQ_ACK, 0x20);
    expect(host.intx).toEqual([true, false, true, false]);
  });

  it('enabling MSI drops an asserted INTx; MSI needs bus mastering', () => {
    const { dev, host } = setup({}, CMD_MEM);
    w32(dev, EDU_REG.IRQ_RAISE, 1);
    expect(host.intxLevel).toBe(true);
    enableMsi(dev);
    expect(host.intxLevel).toBe(false);
    w32(dev, EDU_REG.IRQ_RAISE, 2);
    expect(host.msi).toEqual([]);
    dev.configWrite(0x04, 2, CMD_MEM | CMD_MASTER);
    w32(dev, EDU_REG.IRQ_RAISE, 2);
    expect(host.msi).toEqual([0]);
  });
});

describe('edu DMA', () => {
  const RAM = 0x100000n;

  function dma(dev: EduFunction, src: bigint, dst: bigint, count: number, cmd: number): void {
    w64(dev, EDU_REG.DMA_SRC, src);
    w64(dev, EDU_REG.DMA_DST, dst);
    w64(dev, EDU_REG.DMA_COUNT, BigInt(count));
    w64(dev, EDU_REG.DMA_CMD, BigInt(cmd));
  }

  it('copies RAM → EDU → RAM with a DMA interrupt over INTx', () => {
    const { dev, host } = setup();
    host.map(RAM, 0x10000n);
    const data = new Uint8Array(100).map((_, i) => (i * 7 + 3) & 0xff);
    host.poke(RAM, data);
    dma(dev, RAM, EDU_DMA_BUFFER_ADDR, 100, EDU_DMA_CMD.START | EDU_DMA_CMD.IRQ);
    expect(r64(dev, EDU_REG.DMA_CMD) & 1n).toBe(1n);
    w64(dev, EDU_REG.DMA_COUNT, 5n); // frozen while running
    expect(r64(dev, EDU_REG.DMA_COUNT)).toBe(100n);
    host.clock.advance(1);
    expect(r64(dev, EDU_REG.DMA_CMD) & 1n).toBe(0n);
    expect(dev.dmaBuffer().subarray(0, 100)).toEqual(data);
    expect(host.intx).toEqual([true]);
    expect(r32(dev, EDU_REG.IRQ_STATUS)).toBe(EDU_IRQ.DMA);
    w32(dev, EDU_REG.IRQ_ACK, EDU_IRQ.DMA);

    dma(dev, EDU_DMA_BUFFER_ADDR, RAM + 100n, 100, EDU_DMA_CMD.START | EDU_DMA_CMD.TO_RAM | EDU_DMA_CMD.IRQ);
    expect(host.peek(RAM + 100n, 100)).toEqual(new Uint8Array(100));
    host.clock.advance(1);
    expect(host.peek(RAM + 100n, 100)).toEqual(data);
    expect(host.intx).toEqual([true, false, true]);
  });

  it('signals DMA completion over MSI and without IRQ bit raises nothing', () => {
    const { dev, host } = setup();
    host.map(RAM, 0x1000n);
    enableMsi(dev);
    dma(dev, RAM, EDU_DMA_BUFFER_ADDR, 16, EDU_DMA_CMD.START);
    host.clock.advance(1);
    expect(host.msi).toEqual([]);
    dma(dev, RAM, EDU_DMA_BUFFER_ADDR, 16, EDU_DMA_CMD.START | EDU_DMA_CMD.IRQ);
    host.clock.advance(1);
    expect(host.msi).toEqual([0]);
    expect(host.intx).toEqual([]);
  });

  it('clamps RAM addresses to the 28-bit DMA mask', () => {
    const log: string[] = [];
    const { dev, host } = setup({ log: (m) => log.push(m) });
    host.map(0x1000n, 0x1000n);
    host.poke(0x1000n, new Uint8Array([9, 8, 7, 6]));
    dma(dev, 0x1_1000_1000n, EDU_DMA_BUFFER_ADDR, 4, EDU_DMA_CMD.START);
    host.clock.advance(1);
    expect([...dev.dmaBuffer().subarray(0, 4)]).toEqual([9, 8, 7, 6]);
    expect(log.some((m) => m.includes('clamping'))).toBe(true);
    // A wider mask reaches the real address (and here faults because nothing is mapped there).
    const wide = setup({ dmaMask: (1n << 64n) - 1n });
    wide.host.map(0x1000n, 0x1000n);
    dma(wide.dev, 0x1_1000_1000n, EDU_DMA_BUFFER_ADDR, 4, EDU_DMA_CMD.START);
    wide.host.clock.advance(1);
    expect(wide.host.faults).toEqual([0x1_1000_1000n]);
  });

  it('refuses transfers outside the 4 KiB buffer but still completes', () => {
    const log: string[] = [];
    const { dev, host } = setup({ log: (m) => log.push(m) });
    host.map(RAM, 0x10000n);
    dma(dev, RAM, EDU_DMA_BUFFER_ADDR + 4000n, 200, EDU_DMA_CMD.START | EDU_DMA_CMD.IRQ);
    host.clock.advance(1);
    expect(log.some((m) => m.includes('out of bounds'))).toBe(true);
    expect(r64(dev, EDU_REG.DMA_CMD) & 1n).toBe(0n);
    expect(host.intx).toEqual([true]);
    expect(dev.dmaBuffer()).toEqual(new Uint8Array(4096));
  });

  it('an IOMMU fault leaves memory alone and records a received master abort (RW1C)', () => {
    const { dev, host } = setup();
    dma(dev, 0x5000n, EDU_DMA_BUFFER_ADDR, 8, EDU_DMA_CMD.START | EDU_DMA_CMD.IRQ);
    host.clock.advance(1);
    expect(host.faults).toEqual([0x5000n]);
    expect(dev.configRead(0x06, 2) & 0x2000).toBe(0x2000);
    expect(host.intx).toEqual([true]);
    dev.configWrite(0x06, 2, 0x2000);
    expect(dev.configRead(0x06, 2) & 0x2000).toBe(0);
    expect(dev.configRead(0x06, 2) & 0x10).toBe(0x10);
    // Writes toward RAM fault silently.
    dma(dev, EDU_DMA_BUFFER_ADDR, 0x5000n, 8, EDU_DMA_CMD.START | EDU_DMA_CMD.TO_RAM);
    host.clock.advance(1);
    expect(host.faults).toEqual([0x5000n, 0x5000n]);
    expect(dev.configRead(0x06, 2) & 0x2000).toBe(0);
  });

  it('does no DMA without bus mastering', () => {
    const { dev, host } = setup({}, CMD_MEM);
    host.map(RAM, 0x1000n);
    host.poke(RAM, new Uint8Array([1, 2, 3]));
    dma(dev, RAM, EDU_DMA_BUFFER_ADDR, 3, EDU_DMA_CMD.START);
    host.clock.advance(1);
    expect([...dev.dmaBuffer().subarray(0, 3)]).toEqual([0, 0, 0]);
  });

  it('starts work written before attach once attached', () => {
    const dev = eduFunction();
    dev.configWrite(0x04, 2, CMD_MEM | CMD_MASTER);
    w32(dev, EDU_REG.FACTORIAL, 6);
    const host = new FakeHost();
    dev.attach(host);
    host.clock.advance(1);
    expect(r32(dev, EDU_REG.FACTORIAL)).toBe(720);
  });
});

describe('edu reset', () => {
  it('returns registers, buffer, timers, pin and config space to power-on', () => {
    const { dev, host } = setup({ mmioDmaBuffer: true });
    const power = config(eduFunction());
    enableMsi(dev);
    dev.configWrite(MSI_FLAGS, 2, 0); // back to INTx for the pin check
    dev.configWrite(0x10, 4, 0xfe000000);
    w32(dev, EDU_REG.LIVENESS, 1);
    w32(dev, EDU_REG.STATUS, EDU_STATUS.IRQ_FACT);
    w32(dev, EDU_REG.FACTORIAL, 10);
    w32(dev, EDU_REG.IRQ_RAISE, 4);
    dev.barWrite(0, EDU_DMA_BUFFER_ADDR, new Uint8Array([1]));
    w64(dev, EDU_REG.DMA_CMD, 1n);
    expect(host.intxLevel).toBe(true);
    dev.reset('flr');
    expect(host.intxLevel).toBe(false);
    expect(host.clock.pending).toBe(0);
    expect(config(dev)).toEqual(power);
    dev.configWrite(0x04, 2, CMD_MEM);
    expect(r32(dev, EDU_REG.LIVENESS)).toBe(0);
    expect(r32(dev, EDU_REG.STATUS)).toBe(0);
    expect(r32(dev, EDU_REG.FACTORIAL)).toBe(0);
    expect(r32(dev, EDU_REG.IRQ_STATUS)).toBe(0);
    expect(r64(dev, EDU_REG.DMA_CMD)).toBe(0n);
    expect(dev.dmaBuffer()).toEqual(new Uint8Array(4096));
    host.clock.advance(10);
    expect(host.intx).toEqual([true, false]);
  });

  it('rejects bad options with EINVAL', () => {
    for (const bad of [{ dmaMask: -1n }, { dmaMask: 1n << 64n }, { dmaDelayMs: -1 }, { factorialDelayMs: NaN }]) {
      let err: unknown;
      try {
        eduFunction(bad);
      } catch (e) {
        err = e;
      }
      expect(isSysError(err, 'EINVAL')).toBe(true);
    }
  });
});
