import { SysError, VFIO_DEVICE_MIG_STATE, VFIO_MIGRATION_P2P, VFIO_MIGRATION_PRE_COPY, VFIO_MIGRATION_STOP_COPY } from '@vfio-ts/uapi';
import type { UserMemory } from '../src/index.js';

export const M = VFIO_DEVICE_MIG_STATE;

/** Every combination of the optional flags, with STOP_COPY. */
export const FLAG_SETS = [0, VFIO_MIGRATION_P2P, VFIO_MIGRATION_PRE_COPY, VFIO_MIGRATION_P2P | VFIO_MIGRATION_PRE_COPY].map(
  (f) => f | VFIO_MIGRATION_STOP_COPY,
);

/** Runs `fn` and returns the errno it threw, or undefined. */
export function errnoOf(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (e) {
    if (e instanceof SysError) return e.errno;
    throw e;
  }
}

/** A small sparse user memory: mapped regions only; anything else is EFAULT. */
export class FakeMemory implements UserMemory {
  private readonly regions: { base: bigint; bytes: Uint8Array }[] = [];

  map(base: bigint, size: number): Uint8Array {
    const bytes = new Uint8Array(size);
    this.regions.push({ base, bytes });
    return bytes;
  }

  private find(addr: bigint, n: number): { bytes: Uint8Array; off: number } {
    for (const r of this.regions) {
      if (addr >= r.base && addr + BigInt(n) <= r.base + BigInt(r.bytes.length)) return { bytes: r.bytes, off: Number(addr - r.base) };
    }
    throw new SysError('EFAULT', `bad address ${addr}`);
  }

  read(addr: bigint, length: number): Uint8Array {
    const { bytes, off } = this.find(addr, length);
    return bytes.slice(off, off + length);
  }

  write(addr: bigint, data: Uint8Array): void {
    const { bytes, off } = this.find(addr, data.length);
    bytes.set(data, off);
  }
}

/** Deterministic pseudo-random bytes. */
export function bytesOf(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Marks a region read-only: writes into it fail with EFAULT. */
export class ReadOnlyMemory extends FakeMemory {
  override write(addr: bigint, _data: Uint8Array): void {
    throw new SysError('EFAULT', `read-only ${addr}`);
  }
}
