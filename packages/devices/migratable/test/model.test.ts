/** The device model on its own: registers, interrupts, the DMA engine, quiesce/resume, save/load. */
import type { PciFunctionContext } from '@vfio-ts/platform';
import { SysError } from '@vfio-ts/uapi';
import { describe, expect, it } from 'vitest';
import { MIGRATABLE_ID_VALUE, MIG_DMA_CMD, MIG_DMA_STATUS, MIG_IRQ, MIG_MSI_CAP, MIG_REG, STATE_BLOB_SIZE, migratableFunction } from '../src/index.js';
import type { MigratableFunction } from '../src/index.js';

function bench(options: Parameters<typeof migratableFunction>[0] = {}) {
  let now = 0;
  const timers = new Set<{ at: number; fn: () => void }>();
  const ram = new Uint8Array(0x10000);
  const events: string[] = [];
  const ctx: PciFunctionContext = {
    bdf: '0000:00:05.0',
    dma: {
      read: (iova, n) => {
        if (iova + BigInt(n) > BigInt(ram.length)) throw new SysError('EFAULT', 'IOMMU fault');
        return ram.slice(Number(iova), Number(iova) + n);
      },
      write: (iova, data) => {
        if (iova + BigInt(data.length) > BigInt(ram.length)) throw new SysError('EFAULT', 'IOMMU fault');
        ram.set(data, Number(iova));
      },
    },
    setIntx: (level) => events.push(`intx ${level ? 1 : 0}`),
    msiNotify: (v) => events.push(`msi ${v}`),
    clock: {
      now: () => now,
      setTimeout: (fn, ms) => {
        const t = { at: now + ms, fn };
        timers.add(t);
        return { cancel: () => timers.delete(t) };
      },
      sleep: () => Promise.resolve(),
    },
  };
  const fn = migratableFunction(options);
  fn.attach(ctx);
  fn.configWrite(0x04, 2, 0x06); // memory + bus master
  const advance = (ms: number): void => {
    const end = now + ms;
    for (;;) {
      const next = [...timers].sort((a, b) => a.at - b.at)[0];
      if (!next || next.at > end) break;
      timers.delete(next);
      now = next.at;
      next.fn();
    }
    now = end;
  };
  const r = (off: number): number => new DataView(fn.barRead(0, BigInt(off), 4).buffer).getUint32(0, true);
  const w = (off: number, v: number): void => {
    fn.barWrite(0, BigInt(off), new Uint8Array(new Uint32Array([v >>> 0]).buffer));
  };
  return { fn, ram, events, advance, r, w };
}

function startDma(b: ReturnType<typeof bench>, barOffset: number, iova: number, length: number, cmd: number): void {
  b.w(MIG_REG.DMA_BAR_OFFSET, barOffset);
  b.w(MIG_REG.DMA_IOVA_LO, iova);
  b.w(MIG_REG.DMA_IOVA_HI, 0);
  b.w(MIG_REG.DMA_LENGTH, length);
  b.w(MIG_REG.DMA_CMD, cmd | MIG_DMA_CMD.START);
}

const enableMsi = (fn: MigratableFunction): void => {
  fn.configWrite(MIG_MSI_CAP + 2, 2, 1);
};

describe('the migratable device model', () => {
  it('has its identity, a scratch register and read-only registers', () => {
    const b = bench();
    expect(b.fn.configRead(0, 4)).toBe(0x11f01234);
    expect(b.r(MIG_REG.ID)).toBe(MIGRATABLE_ID_VALUE);
    b.w(MIG_REG.SCRATCH, 0x12345678);
    b.w(MIG_REG.COUNTER, 7);
    expect(b.r(MIG_REG.SCRATCH)).toBe(0x12345678);
    expect(b.r(MIG_REG.COUNTER)).toBe(0);
    expect(b.fn.barRead(0, 1n, 2)).toEqual(Uint8Array.of(0xff, 0xff)); // unaligned: all-ones
    expect(() => b.fn.barRead(2, BigInt(b.fn.memorySize), 1)).toThrow(SysError);
  });

  it('moves data chunk by chunk each tick, both ways, and counts completions with an interrupt', () => {
    const b = bench({ dmaChunkBytes: 0x1000 });
    enableMsi(b.fn);
    b.w(MIG_REG.IRQ_ENABLE, MIG_IRQ.DMA_DONE);
    b.ram.fill(9, 0x2000, 0x5000);
    startDma(b, 0x100, 0x2000, 0x3000, MIG_DMA_CMD.IRQ); // RAM → BAR2
    expect(b.r(MIG_REG.DMA_STATUS)).toBe(MIG_DMA_STATUS.BUSY);
    b.advance(2);
    expect(b.r(MIG_REG.DMA_DONE)).toBe(0x2000);
    b.w(MIG_REG.DMA_LENGTH, 1); // frozen while busy
    expect(b.r(MIG_REG.DMA_LENGTH)).toBe(0x3000);
    b.advance(1);
    expect(b.r(MIG_REG.DMA_STATUS)).toBe(0);
    expect(b.r(MIG_REG.COUNTER)).toBe(1);
    expect(b.r(MIG_REG.IRQ_STATUS)).toBe(MIG_IRQ.DMA_DONE);
    expect(b.events).toEqual(['msi 0']);
    expect(b.fn.barRead(2, 0x100n, 0x3000).every((x) => x === 9)).toBe(true);
    const dirty: string[] = [];
    b.fn.onDmaWrite = (iova, n) => dirty.push(`${iova}+${n}`);
    startDma(b, 0x100, 0x8000, 0x1800, MIG_DMA_CMD.TO_RAM); // BAR2 → RAM
    b.advance(5);
    expect(dirty).toEqual(['32768+4096', '36864+2048']);
    expect(b.ram.subarray(0x8000, 0x9800).every((x) => x === 9)).toBe(true);
  });

  it('reports an IOMMU fault as a DMA error interrupt', () => {
    const b = bench();
    b.w(MIG_REG.IRQ_ENABLE, MIG_IRQ.DMA_ERROR);
    startDma(b, 0, 0xf000, 0x2000, MIG_DMA_CMD.TO_RAM); // the second chunk runs off the end of RAM
    b.advance(1);
    expect(b.r(MIG_REG.DMA_STATUS)).toBe(MIG_DMA_STATUS.BUSY);
    b.advance(1);
    expect(b.r(MIG_REG.DMA_STATUS)).toBe(MIG_DMA_STATUS.ERROR);
    expect(b.r(MIG_REG.IRQ_STATUS)).toBe(MIG_IRQ.DMA_ERROR);
    expect(b.events).toEqual(['intx 1']); // MSI off: the INTx line
    b.w(MIG_REG.IRQ_ACK, MIG_IRQ.DMA_ERROR);
    expect(b.events).toEqual(['intx 1', 'intx 0']);
  });

  it('quiesced: no DMA progress and no interrupts; resume carries on where it stopped and delivers what was held', () => {
    const b = bench({ dmaChunkBytes: 0x1000, dmaTickMs: 4 });
    enableMsi(b.fn);
    b.w(MIG_REG.IRQ_ENABLE, 0x100);
    startDma(b, 0, 0, 0x2000, MIG_DMA_CMD.TO_RAM);
    b.advance(3); // 1 ms before the first chunk
    b.fn.quiesce();
    b.w(MIG_REG.IRQ_RAISE, 0x100);
    b.advance(100);
    expect(b.r(MIG_REG.DMA_DONE)).toBe(0);
    expect(b.events).toEqual([]);
    b.fn.resume();
    expect(b.events).toEqual(['msi 0']);
    b.advance(1);
    expect(b.r(MIG_REG.DMA_DONE)).toBe(0x1000);
  });

  it('saves and loads registers, DMA progress and memory all at once, or nothing', () => {
    const a = bench({ dmaChunkBytes: 0x1000, dmaTickMs: 4 });
    a.fn.barWrite(2, 0x3000n, Uint8Array.of(1, 2, 3));
    a.w(MIG_REG.SCRATCH, 42);
    startDma(a, 0, 0, 0x2000, MIG_DMA_CMD.TO_RAM);
    a.advance(6); // one chunk done, 2 ms to the next
    a.fn.quiesce();
    const regs = a.fn.saveRegisters();
    expect(regs.length).toBe(STATE_BLOB_SIZE);
    const pages = new Map(a.fn.snapshotPages());

    const b = bench({ dmaChunkBytes: 0x1000, dmaTickMs: 4 });
    b.w(MIG_REG.SCRATCH, 7);
    expect(() => { b.fn.loadState(regs.subarray(1), pages); }).toThrow(SysError);
    expect(() => { b.fn.loadState(regs, new Map([[999_999, new Uint8Array(4096)]])); }).toThrow(SysError);
    const other = bench({ memorySize: 0x20000 });
    expect(() => { other.fn.loadState(regs, pages); }).toThrow(SysError);
    expect(b.r(MIG_REG.SCRATCH)).toBe(7);
    b.fn.loadState(regs, pages);
    expect(b.fn.quiesced).toBe(true);
    expect(b.r(MIG_REG.SCRATCH)).toBe(42);
    expect(b.r(MIG_REG.DMA_DONE)).toBe(0x1000);
    expect(b.fn.barRead(2, 0x3000n, 3)).toEqual(Uint8Array.of(1, 2, 3));
    b.fn.resume();
    b.advance(1);
    expect(b.r(MIG_REG.DMA_DONE)).toBe(0x1000);
    b.advance(1);
    expect(b.r(MIG_REG.DMA_DONE)).toBe(0x2000);
  });

  it('copies a snapshotted page before a write changes it', () => {
    const b = bench();
    b.fn.barWrite(2, 0n, Uint8Array.of(1));
    const snap = b.fn.snapshotPages();
    b.fn.barWrite(2, 0n, Uint8Array.of(2));
    expect(snap[0]![1][0]).toBe(1);
    expect(b.fn.page(0)![0]).toBe(2);
  });
});
