import { readFileSync } from 'node:fs';
import type { PciBarInfo, PciFunction } from '@vfio-ts/platform';

/** One hardware config access, as the function saw it. */
export interface HwAccess {
  readonly op: 'r' | 'w';
  readonly offset: number;
  readonly size: number;
  readonly value: number;
}

/** A passive PCI function backed by config bytes (everything writable), logging what reaches it. */
export interface FakeFunction extends PciFunction {
  readonly bytes: Uint8Array;
  readonly log: HwAccess[];
  /** Little-endian hardware value, read without logging. */
  peek(offset: number, size: number): number;
  /** Sets hardware bytes behind the virtualization's back (device-side change). */
  poke(offset: number, size: number, value: number): void;
}

export function fakeFunction(config: Uint8Array, bars: readonly PciBarInfo[] = [], romSize?: bigint): FakeFunction {
  const bytes = new Uint8Array(4096).fill(0);
  bytes.set(config);
  const log: HwAccess[] = [];
  const peek = (offset: number, size: number): number => {
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = v * 256 + (bytes[offset + i] ?? 0);
    return v;
  };
  const poke = (offset: number, size: number, value: number): void => {
    for (let i = 0; i < size; i++) bytes[offset + i] = (value >>> (8 * i)) & 0xff;
  };
  return {
    bytes,
    log,
    peek,
    poke,
    bars,
    ...(romSize !== undefined ? { romSize } : {}),
    configRead(offset, size) {
      const value = peek(offset, size);
      log.push({ op: 'r', offset, size, value });
      return value;
    },
    configWrite(offset, size, value) {
      log.push({ op: 'w', offset, size, value });
      poke(offset, size, value);
    },
  };
}

const FIXTURES = new URL('./fixtures/', import.meta.url);

export function fixture(name: 'edu' | 'e1000e'): Uint8Array {
  return new Uint8Array(readFileSync(new URL(`${name}.config.bin`, FIXTURES)));
}

/** BARs of the fixtures, from fixtures/README.md. */
export const EDU_BARS: readonly PciBarInfo[] = [{ index: 0, type: 'mem32', prefetchable: false, size: 0x100000n }];
export const E1000E_BARS: readonly PciBarInfo[] = [
  { index: 0, type: 'mem32', prefetchable: false, size: 0x20000n },
  { index: 1, type: 'mem32', prefetchable: false, size: 0x20000n },
  { index: 2, type: 'io', prefetchable: false, size: 0x20n },
  { index: 3, type: 'mem32', prefetchable: false, size: 0x4000n },
];
export const E1000E_ROM = 0x40000n;

export const edu = (): FakeFunction => fakeFunction(fixture('edu'), EDU_BARS);
export const e1000e = (): FakeFunction => fakeFunction(fixture('e1000e'), E1000E_BARS, E1000E_ROM);

/** Builds a config space from pieces: a header plus capabilities written at given offsets. */
export function buildConfig(size: 256 | 4096, pieces: Record<number, readonly number[]>): Uint8Array {
  const b = new Uint8Array(size);
  for (const [off, data] of Object.entries(pieces)) b.set(data, Number(off));
  return b;
}

/** Little-endian bytes of a value. */
export function le(value: number, size: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < size; i++) out.push((value >>> (8 * i)) & 0xff);
  return out;
}

/** A type-0 header with vendor 0x1af4, device 0x1000, capability list at `capPtr` (0 = none). */
export function header(capPtr: number, extra: Record<number, readonly number[]> = {}): Record<number, readonly number[]> {
  return {
    0x00: [...le(0x1af4, 2), ...le(0x1000, 2)],
    0x04: [...le(0x0000, 2), ...le(capPtr ? 0x0010 : 0, 2)],
    0x08: [0x01, 0x00, 0x00, 0x02],
    0x34: [capPtr],
    0x3c: [0x0b, 0x01],
    ...extra,
  };
}
