/**
 * Word-wise dirty bitmaps (DESIGN "bitmaps are word-wise"; inventory §1.5 idx 8, §5 report rule).
 *
 * - {@link DirtyBitmap}: what a device's dirty tracker holds — one bit per page of `pageSize`, stored sparsely
 *   in 32 Kib chunks of 32-bit words, so a 1 TiB address space costs only the chunks that were touched.
 * - {@link IovaBitmap}: the user's report bitmap for one DMA_LOGGING_REPORT window (Linux `struct iova_bitmap`):
 *   bit `((a - iova) / pageSize)` of an array of little-endian u64 words; `set(iova, length)` marks every report
 *   page the range touches, so a tracker page larger than the report page is replicated over several bits and
 *   smaller tracker pages aggregate into one.
 */

/** Bits per chunk of a {@link DirtyBitmap}: 1024 words of 32 bits. */
const CHUNK_WORDS = 1024;
const CHUNK_BITS = CHUNK_WORDS * 32;

function assertPageSize(pageSize: bigint): number {
  if (pageSize <= 0n || (pageSize & (pageSize - 1n)) !== 0n) throw new RangeError(`page size ${pageSize} is not a power of two`);
  let shift = 0;
  while (1n << BigInt(shift) !== pageSize) shift++;
  return shift;
}

/** Sets bits [start, end) of `words` (32-bit words), whole words at a time. */
export function setBits(words: Uint32Array, start: number, end: number): void {
  if (start >= end) return;
  let w = start >>> 5;
  const lastW = (end - 1) >>> 5;
  const headMask = (0xffffffff << (start & 31)) >>> 0;
  const tailMask = 0xffffffff >>> (31 - ((end - 1) & 31));
  if (w === lastW) {
    words[w] = (words[w]! | (headMask & tailMask)) >>> 0;
    return;
  }
  words[w] = (words[w]! | headMask) >>> 0;
  for (w++; w < lastW; w++) words[w] = 0xffffffff;
  words[lastW] = (words[lastW]! | tailMask) >>> 0;
}

/** Clears bits [start, end) of `words`. */
export function clearBits(words: Uint32Array, start: number, end: number): void {
  if (start >= end) return;
  let w = start >>> 5;
  const lastW = (end - 1) >>> 5;
  const headMask = (0xffffffff << (start & 31)) >>> 0;
  const tailMask = 0xffffffff >>> (31 - ((end - 1) & 31));
  if (w === lastW) {
    words[w] = (words[w]! & ~(headMask & tailMask)) >>> 0;
    return;
  }
  words[w] = (words[w]! & ~headMask) >>> 0;
  for (w++; w < lastW; w++) words[w] = 0;
  words[lastW] = (words[lastW]! & ~tailMask) >>> 0;
}

function popcount32(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}

/** Index of the lowest set bit of a non-zero 32-bit word. */
function ctz32(x: number): number {
  return 31 - Math.clz32(x & -x);
}

/** A run of consecutive dirty pages: page indexes `[start, start + count)`. */
export interface PageRun {
  readonly start: number;
  readonly count: number;
}

/** Receives dirty ranges: the shape of Linux's `iova_bitmap_set` (an {@link IovaBitmap} is one). */
export interface DirtySink {
  set(iova: bigint, length: bigint): void;
}

/**
 * A sparse, word-wise bitmap of pages. Page `i` covers `[base + i * pageSize, base + (i + 1) * pageSize)`;
 * page indexes are plain numbers (up to 2^53), addresses are bigints.
 */
export class DirtyBitmap {
  /** log2(pageSize). */
  readonly pageShift: number;
  private readonly chunks = new Map<number, Uint32Array>();

  constructor(
    readonly pageSize: bigint,
    readonly base = 0n,
  ) {
    this.pageShift = assertPageSize(pageSize);
  }

  /** Marks pages `[first, first + count)`. */
  setPages(first: number, count: number): void {
    this.forChunks(first, count, true, (words, s, e) => {
      setBits(words, s, e);
    });
  }

  /** Clears pages `[first, first + count)`; chunks that become empty are freed. */
  clearPages(first: number, count: number): void {
    this.forChunks(first, count, false, (words, s, e, key) => {
      clearBits(words, s, e);
      if (words.every((w) => w === 0)) this.chunks.delete(key);
    });
  }

  /** True when page `index` is dirty. */
  testPage(index: number): boolean {
    const words = this.chunks.get(Math.floor(index / CHUNK_BITS));
    if (!words) return false;
    const bit = index % CHUNK_BITS;
    return ((words[bit >>> 5]! >>> (bit & 31)) & 1) === 1;
  }

  /** Marks every page that `[iova, iova + length)` touches (addresses below `base` are ignored). */
  setRange(iova: bigint, length: bigint): void {
    const r = this.pagesOf(iova, length);
    if (r) this.setPages(r.start, r.count);
  }

  /** Clears every page that `[iova, iova + length)` touches. */
  clearRange(iova: bigint, length: bigint): void {
    const r = this.pagesOf(iova, length);
    if (r) this.clearPages(r.start, r.count);
  }

  /** True when the page holding `iova` is dirty. */
  test(iova: bigint): boolean {
    if (iova < this.base) return false;
    return this.testPage(Number((iova - this.base) >> BigInt(this.pageShift)));
  }

  /** Number of dirty pages. */
  count(): number {
    let n = 0;
    for (const words of this.chunks.values()) for (const w of words) n += popcount32(w);
    return n;
  }

  /** True when no page is dirty. */
  isEmpty(): boolean {
    return this.chunks.size === 0;
  }

  /** Forgets every dirty page. */
  clearAll(): void {
    this.chunks.clear();
  }

  /**
   * Runs of dirty pages in ascending order, optionally limited to page indexes `[from, to)`. Works a word at a
   * time and skips chunks that were never touched.
   */
  *runs(from = 0, to = Number.MAX_SAFE_INTEGER): Generator<PageRun> {
    const keys = [...this.chunks.keys()].sort((a, b) => a - b);
    let runStart = -1;
    let runEnd = -1;
    for (const key of keys) {
      const chunkBase = key * CHUNK_BITS;
      if (chunkBase >= to) break;
      if (chunkBase + CHUNK_BITS <= from) continue;
      const words = this.chunks.get(key)!;
      for (let wi = 0; wi < CHUNK_WORDS; wi++) {
        let w = words[wi]!;
        if (w === 0) continue;
        const wordBase = chunkBase + wi * 32;
        while (w !== 0) {
          const lo = ctz32(w);
          // Length of the run of ones starting at `lo`.
          const inverted = ~(w >>> lo) >>> 0;
          const len = inverted === 0 ? 32 - lo : Math.min(ctz32(inverted), 32 - lo);
          let s = wordBase + lo;
          let e = s + len;
          w = lo + len >= 32 ? 0 : (w & ~(((1 << len) - 1) << lo)) >>> 0;
          if (e <= from || s >= to) continue;
          s = Math.max(s, from);
          e = Math.min(e, to);
          if (s === runEnd) {
            runEnd = e;
          } else {
            if (runStart >= 0) yield { start: runStart, count: runEnd - runStart };
            runStart = s;
            runEnd = e;
          }
        }
      }
    }
    if (runStart >= 0) yield { start: runStart, count: runEnd - runStart };
  }

  /** Dirty page indexes in ascending order. */
  *pages(): Generator<number> {
    for (const r of this.runs()) for (let i = 0; i < r.count; i++) yield r.start + i;
  }

  /**
   * Reports the dirty pages touching `[iova, iova + length)` to `sink` and clears them: the `log_read_and_clear`
   * a dirty-tracking device implements (§2.4). Pages are reported whole, as a hardware tracker reports its own
   * granularity, except that nothing below `iova` is reported; a page straddling the window end is reported past
   * it (Linux's iova_bitmap carries such bits into the next window, see {@link IovaBitmap.spill}).
   */
  readAndClear(iova: bigint, length: bigint, sink: DirtySink): void {
    const r = this.pagesOf(iova, length);
    if (!r) return;
    const shift = BigInt(this.pageShift);
    const found: PageRun[] = [...this.runs(r.start, r.start + r.count)];
    for (const run of found) {
      let a = this.base + (BigInt(run.start) << shift);
      const b = this.base + (BigInt(run.start + run.count) << shift);
      if (a < iova) a = iova;
      if (b > a) sink.set(a, b - a);
      this.clearPages(run.start, run.count);
    }
  }

  /** Page index range touched by `[iova, iova + length)`, clipped at `base`; undefined when empty. */
  private pagesOf(iova: bigint, length: bigint): PageRun | undefined {
    if (length <= 0n) return undefined;
    let a = iova;
    const b = iova + length;
    if (b <= this.base) return undefined;
    if (a < this.base) a = this.base;
    const shift = BigInt(this.pageShift);
    const first = (a - this.base) >> shift;
    const last = (b - 1n - this.base) >> shift;
    const count = last - first + 1n;
    if (first > BigInt(Number.MAX_SAFE_INTEGER) || count > BigInt(Number.MAX_SAFE_INTEGER) - first) {
      throw new RangeError('dirty range beyond 2^53 pages');
    }
    return { start: Number(first), count: Number(count) };
  }

  private forChunks(
    first: number,
    count: number,
    create: boolean,
    fn: (words: Uint32Array, start: number, end: number, key: number) => void,
  ): void {
    if (count <= 0) return;
    let at = first;
    const end = first + count;
    while (at < end) {
      const key = Math.floor(at / CHUNK_BITS);
      const chunkStart = key * CHUNK_BITS;
      const stop = Math.min(end, chunkStart + CHUNK_BITS);
      let words = this.chunks.get(key);
      if (!words && create) {
        words = new Uint32Array(CHUNK_WORDS);
        this.chunks.set(key, words);
      }
      if (words) fn(words, at - chunkStart, stop - chunkStart, key);
      at = stop;
    }
  }
}

/**
 * One window of a user's report bitmap (Linux `struct iova_bitmap`): covers `[iova, iova + length)` at
 * `pageSize` per bit; bit `k` lives in u64 word `k / 64`, bit `k % 64`, little-endian. Bits are only ever set.
 */
export class IovaBitmap implements DirtySink {
  /** log2(pageSize). */
  readonly pageShift: number;
  /** The bitmap as 32-bit words (two per u64 word, low half first). */
  readonly words: Uint32Array;
  /** Number of meaningful bits (`ceil(length / pageSize)`). */
  readonly bits: number;
  /** Ranges set past the window's end, for the next window of the same report. */
  readonly spill: { iova: bigint; length: bigint }[] = [];

  /** `initial` (optional) is the user's current bitmap bytes: bits already set stay set. */
  constructor(
    readonly iova: bigint,
    readonly length: bigint,
    readonly pageSize: bigint,
    initial?: Uint8Array,
  ) {
    this.pageShift = assertPageSize(pageSize);
    const nbits = length <= 0n ? 0n : ((length - 1n) >> BigInt(this.pageShift)) + 1n;
    if (nbits > BigInt(2 ** 40)) throw new RangeError('report window too large');
    this.bits = Number(nbits);
    this.words = new Uint32Array(Math.ceil(this.bits / 64) * 2);
    if (initial) {
      const n = Math.min(initial.length >>> 2, this.words.length);
      const dv = new DataView(initial.buffer, initial.byteOffset, initial.byteLength);
      for (let i = 0; i < n; i++) this.words[i] = dv.getUint32(i * 4, true);
    }
  }

  /** Size of the bitmap in bytes (whole u64 words). */
  get byteLength(): number {
    return this.words.length * 4;
  }

  /**
   * `iova_bitmap_set`: marks every report page `[iova, iova + length)` touches. A part before the window is
   * dropped; a part past its end is kept in {@link spill} so the next window of the same report can apply it
   * (Linux's `set_ahead_length`).
   */
  set(iova: bigint, length: bigint): void {
    if (length <= 0n) return;
    let a = iova;
    let b = iova + length;
    const end = this.iova + this.length;
    if (a < this.iova) a = this.iova;
    if (b > end) {
      const from = a > end ? a : end;
      this.spill.push({ iova: from, length: b - from });
      b = end;
    }
    if (b <= a) return;
    const shift = BigInt(this.pageShift);
    const first = Number((a - this.iova) >> shift);
    const last = Number((b - 1n - this.iova) >> shift);
    setBits(this.words, first, last + 1);
  }

  /** True when bit `index` is set. */
  testBit(index: number): boolean {
    return ((this.words[index >>> 5]! >>> (index & 31)) & 1) === 1;
  }

  /** The bitmap as the little-endian u64 words user space reads. */
  toBytes(): Uint8Array {
    const out = new Uint8Array(this.byteLength);
    const dv = new DataView(out.buffer);
    for (let i = 0; i < this.words.length; i++) dv.setUint32(i * 4, this.words[i]!, true);
    return out;
  }
}
