/**
 * Word-wise dirty bitmaps (inventory §4 "Dirty tracking"). A bitmap is a `Uint32Array` whose length is a whole
 * number of u64 words, so its bytes are exactly the little-endian `u64[]` the kernel copies to user space:
 * bit n ⇔ byte n>>3, bit n&7 (x86_64 and every other little-endian host Node runs on).
 */

/** Bytes of a bitmap of `nbits` bits, rounded up to whole u64 words (DIRTY_BITMAP_BYTES). */
export function dirtyBitmapBytes(nbits: bigint): bigint {
  return ((nbits + 63n) / 64n) * 8n;
}

/** The largest number of pages one vfio_dma may track (INT_MAX bits → 256 MiB of bitmap). */
export const DIRTY_BITMAP_PAGES_MAX = 0x7fffffffn;
/** The max_dirty_bitmap_size reported in the MIGRATION capability. */
export const DIRTY_BITMAP_SIZE_MAX = dirtyBitmapBytes(DIRTY_BITMAP_PAGES_MAX);

/** A zeroed bitmap for `nbits` bits. */
export function newBitmap(nbits: number): Uint32Array {
  return new Uint32Array(Math.ceil(nbits / 64) * 2);
}

/** Sets bits `[from, from + n)`. */
export function setBits(bm: Uint32Array, from: number, n: number): void {
  if (n <= 0) return;
  let i = from;
  const end = from + n;
  // Leading partial word.
  while (i < end && (i & 31) !== 0) {
    bm[i >>> 5]! |= 1 << (i & 31);
    i++;
  }
  // Whole words.
  const wholeEnd = end - (end & 31);
  if (i < wholeEnd) {
    bm.fill(0xffffffff, i >>> 5, wholeEnd >>> 5);
    i = wholeEnd;
  }
  while (i < end) {
    bm[i >>> 5]! |= 1 << (i & 31);
    i++;
  }
}

/** Whether bit `i` is set. */
export function testBit(bm: Uint32Array, i: number): boolean {
  return ((bm[i >>> 5]! >>> (i & 31)) & 1) === 1;
}

/**
 * The bytes to write at u64 word `floor(shift/64)`-aligned position for a bitmap whose bit 0 lands at bit `shift`
 * (0..63) of the first word: `dirtyBitmapBytes(nbits + shift)` bytes, as bitmap_shift_left produces them.
 */
export function shiftedBytes(bm: Uint32Array, nbits: number, shift: number): Uint8Array {
  const totalBits = nbits + shift;
  const words32 = Math.ceil(totalBits / 64) * 2;
  if (shift === 0) {
    return new Uint8Array(bm.buffer, bm.byteOffset, words32 * 4);
  }
  const out = new Uint32Array(words32);
  const ws = shift >>> 5;
  const bs = shift & 31;
  const srcWords = bm.length;
  for (let w = ws; w < words32; w++) {
    const s = w - ws;
    const lo = s < srcWords ? bm[s]! : 0;
    if (bs === 0) {
      out[w] = lo;
    } else {
      const prev = s - 1 >= 0 && s - 1 < srcWords ? bm[s - 1]! : 0;
      out[w] = ((lo << bs) | (prev >>> (32 - bs))) >>> 0;
    }
  }
  // Bits past nbits + shift must be clear (the source may carry stale bits past nbits).
  const tail = totalBits & 31;
  const lastIdx = (totalBits - 1) >>> 5;
  if (tail !== 0) out[lastIdx] = (out[lastIdx]! & ((1 << tail) - 1)) >>> 0;
  for (let w = lastIdx + 1; w < words32; w++) out[w] = 0;
  return new Uint8Array(out.buffer);
}
