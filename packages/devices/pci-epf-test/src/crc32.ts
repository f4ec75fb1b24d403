/**
 * Linux's `crc32_le(seed, data, len)`: the reflected CRC-32 (polynomial 0xedb88320) with no pre- or
 * post-inversion of its own. pci-epf-test and pci_endpoint_test both call it as `crc32_le(~0, buf, size)`, which is
 * the bitwise inverse of the zlib/IEEE CRC-32 of the same bytes.
 */

function makeTable(): Uint32Array {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
}

// A constant lookup table (never mutated after creation), not mutable module state.
const TABLE: Readonly<Uint32Array> = makeTable();

/**
 * Computes Linux `crc32_le(seed, data)`. The checksum pci-epf-test writes to and expects in CHECKSUM is
 * `crc32Le(0xffffffff, data)`.
 */
export function crc32Le(seed: number, data: Uint8Array): number {
  let crc = seed >>> 0;
  for (let i = 0; i < data.length; i++) crc = TABLE[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8);
  return crc >>> 0;
}
