/**
 * Acceptance (a): a device in the middle of its work — registers programmed, interrupts enabled and one pending,
 * a DMA transfer under way — migrates between two hosts in one process (PRE_COPY rounds, STOP_COPY, RESUMING),
 * and at the destination carries on exactly as an identical device that never migrated (the control). A
 * corrupted or truncated stream fails RESUMING → STOP and the destination never runs half-loaded.
 */
import fc from 'fast-check';
import { POLLIN } from '@vfio-ts/core';
import {
  getDeviceState,
  getMigrationDataSize,
  getMigrationFlags,
  getPrecopyInfo,
  reportDmaLogging,
  setDeviceState,
  startDmaLogging,
  stopDmaLogging,
} from '@vfio-ts/migration';
import {
  SysError,
  VFIO_DEVICE_RESET,
  VFIO_DEVICE_STATE_ERROR,
  VFIO_DEVICE_STATE_PRE_COPY,
  VFIO_DEVICE_STATE_RESUMING,
  VFIO_DEVICE_STATE_RUNNING,
  VFIO_DEVICE_STATE_STOP,
  VFIO_DEVICE_STATE_STOP_COPY,
} from '@vfio-ts/uapi';
import { describe, expect, it } from 'vitest';
import { MIGRATABLE_MIGRATION_FLAGS, MIG_DMA_CMD, MIG_DMA_STATUS, MIG_REG, REGION_SHIFT } from '../src/index.js';
import { RAM_SIZE, bar2, drain, firstDifference, machine, registers } from './helpers.js';
import type { Machine } from './helpers.js';

function errnoOf(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (e) {
    if (e instanceof SysError) return e.errno;
    throw e;
  }
}

const pattern = (n: number, seed: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

/** The guest driver's work: BAR2 contents, registers, interrupts, and a DMA of 32 KiB (8 ticks) started. */
function program(m: Machine): void {
  m.p.pwrite(m.device, pattern(0x8000, 7), (2n << REGION_SHIFT) + 0x8000n);
  m.p.memory.write(m.ram + 0x1000n, pattern(0x4000, 3));
  m.setReg(MIG_REG.SCRATCH, 0xdeadbeef);
  m.setReg(MIG_REG.IRQ_ENABLE, 0x103);
  m.setReg(MIG_REG.IRQ_RAISE, 0x100); // a pending (enabled, unacknowledged) interrupt
  m.setReg(MIG_REG.DMA_BAR_OFFSET, 0x8000);
  m.setReg(MIG_REG.DMA_IOVA_LO, 0x40000);
  m.setReg(MIG_REG.DMA_IOVA_HI, 0);
  m.setReg(MIG_REG.DMA_LENGTH, 0x8000);
  m.setReg(MIG_REG.DMA_CMD, MIG_DMA_CMD.START | MIG_DMA_CMD.TO_RAM | MIG_DMA_CMD.IRQ);
  m.advance(3);
}

function ramOf(m: Machine): Uint8Array {
  return m.p.memory.read(m.ram, Number(RAM_SIZE));
}

function bits(bm: Uint8Array): number[] {
  const out: number[] = [];
  bm.forEach((b, i) => {
    for (let j = 0; j < 8; j++) if ((b >> j) & 1) out.push(i * 8 + j);
  });
  return out;
}

/** The VMM's side of a live migration from `src` to `dst` (both machines already programmed at src). */
function liveMigrate(src: Machine, dst: Machine, control: Machine): number {
  // Device DMA into guest RAM is tracked by the device (DMA logging); the VMM copies RAM once, then the dirty pages.
  expect(startDmaLogging(src.p, src.device, [{ iova: 0n, length: RAM_SIZE }], 4096n)).toBe(4096n);
  dst.p.memory.write(dst.ram, ramOf(src));

  const out = setDeviceState(src.p, src.device, VFIO_DEVICE_STATE_PRE_COPY);
  const into = setDeviceState(dst.p, dst.device, VFIO_DEVICE_STATE_RESUMING);
  expect(getDeviceState(dst.p, dst.device)).toBe(VFIO_DEVICE_STATE_RESUMING);
  let rounds = 0;
  // Pre-copy rounds while the device keeps running (one tick of device time per round).
  for (; rounds < 4; rounds++) {
    const info = getPrecopyInfo(src.p, out);
    const parts = drain(src.p, out);
    expect(parts.reduce((n, c) => n + c.length, 0)).toBe(info.initialBytes + info.dirtyBytes);
    for (const c of parts) dst.p.write(into, c);
    if (rounds === 0) expect(info.initialBytes).toBeGreaterThan(0x8000);
    src.advance(1);
    control.advance(1);
    // A user write to BAR2 during pre-copy is dirty data of the next round.
    if (rounds === 1) {
      for (const m of [src, control]) m.p.pwrite(m.device, pattern(16, 99), (2n << REGION_SHIFT) + 0x100n);
    }
  }
  // Stop-and-copy: from here the device is stopped until the destination runs.
  expect(setDeviceState(src.p, src.device, VFIO_DEVICE_STATE_STOP_COPY)).toBe(-1); // same fd, no new one
  const atStop = registers(src);
  expect(atStop['DMA_STATUS']! & MIG_DMA_STATUS.BUSY).toBe(MIG_DMA_STATUS.BUSY); // DMA still under way
  for (const c of drain(src.p, out)) dst.p.write(into, c);
  // Guest RAM pages the device wrote since the first copy.
  const dirty = bits(reportDmaLogging(src.p, src.device, 0n, RAM_SIZE, 4096n));
  expect(dirty.length).toBeGreaterThan(0);
  for (const page of dirty) {
    const off = BigInt(page) * 4096n;
    dst.p.memory.write(dst.ram + off, src.p.memory.read(src.ram + off, 4096));
  }
  stopDmaLogging(src.p, src.device);
  expect(setDeviceState(dst.p, dst.device, VFIO_DEVICE_STATE_RUNNING)).toBe(-1);
  expect(setDeviceState(src.p, src.device, VFIO_DEVICE_STATE_STOP)).toBe(-1);
  src.p.close(out);
  dst.p.close(into);
  expect(registers(dst)).toEqual(atStop);
  return rounds;
}

describe('live migration of a device mid-work between two hosts', () => {
  it('the destination carries on exactly like a device that never migrated', () => {
    const src = machine();
    const dst = machine();
    const control = machine();
    expect(getMigrationFlags(src.p, src.device)).toBe(MIGRATABLE_MIGRATION_FLAGS);
    // The destination had its own, different life before.
    dst.setReg(MIG_REG.SCRATCH, 0x1111);
    dst.p.pwrite(dst.device, pattern(0x1000, 1), 2n << REGION_SHIFT);
    program(src);
    program(control);
    expect(src.takeMsi()).toBe(1n); // the software interrupt
    expect(control.takeMsi()).toBe(1n);
    expect(getMigrationDataSize(src.p, src.device)).toBeGreaterThan(0x8000n);

    expect(liveMigrate(src, dst, control)).toBe(4);

    // Identical observable state at the moment the destination runs.
    expect(registers(dst)).toEqual(registers(control));
    expect(firstDifference(bar2(dst), bar2(control))).toBe('same');
    expect(firstDifference(ramOf(dst), ramOf(control))).toBe('same');
    expect(registers(dst)['IRQ_STATUS']! & 0x100).toBe(0x100); // the pending interrupt came along

    // ... and it carries on: the DMA completes, the completion interrupt arrives, the counter moves.
    for (let t = 0; t < 10; t++) {
      dst.advance(1);
      control.advance(1);
      expect(registers(dst)).toEqual(registers(control));
    }
    expect(registers(dst)['COUNTER']).toBe(1);
    expect(registers(dst)['DMA_STATUS']).toBe(0);
    expect(firstDifference(ramOf(dst), ramOf(control))).toBe('same');
    expect(firstDifference(ramOf(dst).subarray(0x40000, 0x48000), pattern(0x8000, 7))).toBe('same');
    expect(dst.takeMsi()).toBe(1n);
    expect(control.takeMsi()).toBe(1n);
    // The guest acknowledges on both.
    for (const m of [dst, control]) m.setReg(MIG_REG.IRQ_ACK, 0x101);
    expect(registers(dst)).toEqual(registers(control));
    // The source, stopped, never moved on.
    expect(src.fn.quiesced).toBe(true);
    expect(registers(src)['COUNTER']).toBe(0);
  });

  it('STOP → STOP_COPY without pre-copy carries the same state', () => {
    const src = machine();
    const dst = machine();
    const control = machine();
    program(src);
    program(control);
    const out = setDeviceState(src.p, src.device, VFIO_DEVICE_STATE_STOP_COPY);
    expect(errnoOf(() => getPrecopyInfo(src.p, out))).toBe('EINVAL');
    const stream = drain(src.p, out);
    const into = setDeviceState(dst.p, dst.device, VFIO_DEVICE_STATE_RESUMING);
    for (const c of stream) dst.p.write(into, c);
    dst.p.memory.write(dst.ram, ramOf(src));
    setDeviceState(dst.p, dst.device, VFIO_DEVICE_STATE_RUNNING);
    expect(registers(dst)).toEqual(registers(control));
    expect(firstDifference(bar2(dst), bar2(control))).toBe('same');
    dst.advance(10);
    control.advance(10);
    expect(registers(dst)).toEqual(registers(control));
    expect(firstDifference(ramOf(dst), ramOf(control))).toBe('same');
  });

  it('the stream is the state at STOP_COPY: later BAR and register writes do not reach it', () => {
    const src = machine();
    const dst = machine();
    src.p.pwrite(src.device, pattern(0x2000, 5), 2n << REGION_SHIFT);
    src.setReg(MIG_REG.SCRATCH, 1);
    const out = setDeviceState(src.p, src.device, VFIO_DEVICE_STATE_STOP_COPY);
    // Before anything is read, and again after the first bytes: neither write reaches the stream.
    src.p.pwrite(src.device, new Uint8Array(0x1000), 2n << REGION_SHIFT);
    src.setReg(MIG_REG.SCRATCH, 2);
    const first = src.p.read(out, 100);
    src.p.pwrite(src.device, new Uint8Array(0x2000), 2n << REGION_SHIFT);
    const into = setDeviceState(dst.p, dst.device, VFIO_DEVICE_STATE_RESUMING);
    dst.p.write(into, first);
    for (const c of drain(src.p, out)) dst.p.write(into, c);
    setDeviceState(dst.p, dst.device, VFIO_DEVICE_STATE_RUNNING);
    expect(firstDifference(bar2(dst).subarray(0, 0x2000), pattern(0x2000, 5))).toBe('same');
    expect(dst.reg(MIG_REG.SCRATCH)).toBe(1);
  });
});

describe('the saving fd in PRE_COPY', () => {
  it('is not readable once drained, and a poll wakes when the running device dirties memory', async () => {
    const m = machine();
    m.p.pwrite(m.device, pattern(0x3000, 1), 2n << REGION_SHIFT);
    const out = setDeviceState(m.p, m.device, VFIO_DEVICE_STATE_PRE_COPY);
    drain(m.p, out);
    expect(errnoOf(() => m.p.read(out, 10))).toBe('ENOMSG');
    expect(await m.p.poll([{ fd: out, events: POLLIN }], 0)).toEqual([{ fd: out, revents: 0 }]);
    // The clock is manual: only the device's write can end this wait.
    const waiting = m.p.poll([{ fd: out, events: POLLIN }], 1000);
    m.p.pwrite(m.device, Uint8Array.of(1), (2n << REGION_SHIFT) + 0x5000n);
    expect((await waiting)[0]!.revents & POLLIN).toBe(POLLIN);
    expect(getPrecopyInfo(m.p, out).dirtyBytes).toBeGreaterThan(4096);
    expect(drain(m.p, out).length).toBeGreaterThan(0);
  });
});

describe('a bad stream never runs at the destination', () => {
  // One saved stream, reused by every case.
  const src = machine();
  program(src);
  const stream = (() => {
    const out = setDeviceState(src.p, src.device, VFIO_DEVICE_STATE_STOP_COPY);
    const parts = drain(src.p, out, 1 << 20);
    const all = new Uint8Array(parts.reduce((n, c) => n + c.length, 0));
    let at = 0;
    for (const c of parts) {
      all.set(c, at);
      at += c.length;
    }
    return all;
  })();
  const dst = machine();

  function tryLoad(bytes: Uint8Array): string | undefined {
    // From a known state: reset, a recognisable register, then RESUMING.
    dst.p.ioctl(dst.device, VFIO_DEVICE_RESET);
    dst.setReg(MIG_REG.SCRATCH, 0x5a5a);
    const before = dst.fn.saveRegisters();
    const into = setDeviceState(dst.p, dst.device, VFIO_DEVICE_STATE_RESUMING);
    dst.p.write(into, bytes);
    const errno = errnoOf(() => setDeviceState(dst.p, dst.device, VFIO_DEVICE_STATE_RUNNING));
    dst.p.close(into);
    if (errno !== undefined) {
      expect(getDeviceState(dst.p, dst.device)).toBe(VFIO_DEVICE_STATE_ERROR);
      expect(dst.fn.quiesced).toBe(true);
      expect(dst.fn.saveRegisters()).toEqual(before);
      expect(dst.reg(MIG_REG.SCRATCH)).toBe(0x5a5a);
      // ERROR is sticky until reset.
      expect(errnoOf(() => setDeviceState(dst.p, dst.device, VFIO_DEVICE_STATE_STOP))).toBe('EINVAL');
    }
    return errno;
  }

  it('loads the intact stream', () => {
    expect(tryLoad(stream)).toBeUndefined();
    expect(dst.reg(MIG_REG.SCRATCH)).toBe(0xdeadbeef);
  });

  it('fails every truncation with EINVAL', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: stream.length - 1 }), (cut) => {
        expect(tryLoad(stream.subarray(0, cut))).toBe('EINVAL');
      }),
      { numRuns: 40 },
    );
  });

  it('fails every single-byte corruption with EINVAL', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: stream.length - 1 }), fc.integer({ min: 1, max: 255 }), (at, flip) => {
        const bad = stream.slice();
        bad[at]! ^= flip;
        expect(tryLoad(bad)).toBe('EINVAL');
      }),
      { numRuns: 40 },
    );
  });

  it('fails a stream with bytes appended after END', () => {
    const longer = new Uint8Array(stream.length + 1);
    longer.set(stream);
    expect(tryLoad(longer)).toBe('EINVAL');
  });

  it('refuses a stream from a device with another BAR2 size (foreign tag)', () => {
    const other = machine({ memorySize: 0x20000 });
    const into = setDeviceState(other.p, other.device, VFIO_DEVICE_STATE_RESUMING);
    other.p.write(into, stream);
    expect(errnoOf(() => setDeviceState(other.p, other.device, VFIO_DEVICE_STATE_STOP))).toBe('EINVAL');
    expect(getDeviceState(other.p, other.device)).toBe(VFIO_DEVICE_STATE_ERROR);
  });
});
