/**
 * The model bench: `FakeHost` is @vfio-ts/sim's `ModelTestContext` (sparse fake RAM behind an IOMMU with explicit
 * mapped windows, recorded interrupts, and a manual clock that only moves when the test says so) at 0000:00:03.0.
 */
export { ModelTestContext as FakeHost } from '@vfio-ts/sim';

/** Little-endian helpers for BAR accesses. */
export function le(value: bigint | number, size: number): Uint8Array {
  let v = BigInt(value);
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

export function fromLe(bytes: Uint8Array): bigint {
  let v = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]!);
  return v;
}
