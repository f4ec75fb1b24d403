/**
 * Device DMA dirty logging (inventory §1.5 idx 6–8, §2.4): the `vfio_log_ops` contract, Linux's range
 * combining for trackers with fewer slots than requested ranges (`vfio_combine_iova_ranges`), and
 * {@link DmaLogger}, a ready-made tracker a vendor driver can compose.
 */
import { SysError } from '@vfio-ts/uapi';
import type { DirtySink } from './bitmap.js';
import { DirtyBitmap } from './bitmap.js';

/** One IOVA range to track: `[iova, iova + length)`. */
export interface IovaRange {
  readonly iova: bigint;
  readonly length: bigint;
}

/**
 * `struct vfio_log_ops` (§2.4). The core keeps no logging state: the driver rejects a second start and copes
 * with stop/report in the wrong state.
 */
export interface DmaLoggingOps {
  /**
   * `log_start`: `ranges` are validated (aligned to `pageSize`, non-overlapping) and sorted by IOVA. Return the
   * page size actually used when the tracker cannot log at `pageSize` (it is written back to user space).
   */
  logStart(ranges: readonly IovaRange[], pageSize: bigint): bigint | void;
  /** `log_stop`. */
  logStop(): void;
  /** `log_read_and_clear`: report (via `dirty.set`) and clear the dirty pages of `[iova, iova + length)`. */
  logReadAndClear(iova: bigint, length: bigint, dirty: DirtySink): void;
}

const U64_MAX = (1n << 64n) - 1n;

/**
 * `vfio_combine_iova_ranges`: shrinks sorted, non-overlapping `ranges` to at most `maxRanges` by repeatedly
 * merging the two neighbours with the smallest gap (the first such pair on ties); with `maxRanges` 1 the result
 * spans first start to last end. Returns a new array; the input is untouched. Nothing to do when the ranges
 * already fit or `maxRanges` is 0 (Linux WARNs and returns).
 */
export function combineIovaRanges(ranges: readonly IovaRange[], maxRanges: number): IovaRange[] {
  const nodes = ranges.map((r) => ({ start: r.iova, last: r.iova + r.length - 1n }));
  if (nodes.length === 0 || nodes.length <= maxRanges || maxRanges < 1) return ranges.map((r) => ({ ...r }));
  if (maxRanges === 1) {
    const first = nodes[0]!;
    const last = nodes[nodes.length - 1]!;
    return [{ iova: first.start, length: last.last - first.start + 1n }];
  }
  while (nodes.length > maxRanges) {
    let best = 1;
    let minGap = U64_MAX;
    for (let i = 1; i < nodes.length; i++) {
      // Linux measures the gap as next.start - prev.last (one more than the hole); only the order matters.
      const gap = nodes[i]!.start - nodes[i - 1]!.last;
      if (gap < minGap) {
        minGap = gap;
        best = i;
      }
    }
    nodes[best - 1]!.last = nodes[best]!.last;
    nodes.splice(best, 1);
  }
  return nodes.map((n) => ({ iova: n.start, length: n.last - n.start + 1n }));
}

/** Options of a {@link DmaLogger}. */
export interface DmaLoggerOptions {
  /** How many ranges the tracker can hold; more are combined (default: unlimited). */
  readonly maxRanges?: number;
  /**
   * The tracker's page size; when set it overrides the requested one and is reported back through
   * DMA_LOGGING_START (a driver may change `page_size`, §1.5 idx 6).
   */
  readonly pageSize?: bigint;
}

/**
 * A dirty-page tracker implementing {@link DmaLoggingOps}: the device model calls {@link markDirty} for each DMA
 * write; DMA_LOGGING_REPORT reads and clears through {@link logReadAndClear}. Writes outside the tracked ranges
 * are not recorded (a hardware tracker only watches what it was given). Errors follow mlx5: a second start
 * and a report while stopped are EINVAL, a stop while stopped is a no-op.
 */
export class DmaLogger implements DmaLoggingOps {
  private bitmap: DirtyBitmap | undefined;
  private tracked: IovaRange[] = [];

  constructor(private readonly options: DmaLoggerOptions = {}) {}

  /** True while logging. */
  get active(): boolean {
    return this.bitmap !== undefined;
  }

  /** The ranges being tracked (after combining), sorted. */
  get ranges(): readonly IovaRange[] {
    return this.tracked;
  }

  /** The page size being logged at, while active. */
  get pageSize(): bigint | undefined {
    return this.bitmap?.pageSize;
  }

  logStart(ranges: readonly IovaRange[], pageSize: bigint): bigint {
    if (this.bitmap) throw new SysError('EINVAL', 'DMA logging already started');
    const size = this.options.pageSize ?? pageSize;
    if (size <= 0n || (size & (size - 1n)) !== 0n) throw new SysError('EINVAL', `page size ${size} is not a power of two`);
    const max = this.options.maxRanges;
    this.tracked = max !== undefined ? combineIovaRanges(ranges, max) : ranges.map((r) => ({ ...r }));
    this.bitmap = new DirtyBitmap(size);
    return size;
  }

  logStop(): void {
    this.bitmap = undefined;
    this.tracked = [];
  }

  logReadAndClear(iova: bigint, length: bigint, dirty: DirtySink): void {
    if (!this.bitmap) throw new SysError('EINVAL', 'DMA logging is not started');
    this.bitmap.readAndClear(iova, length, dirty);
  }

  /** The device wrote `[iova, iova + length)`: marks the tracked pages it touches. */
  markDirty(iova: bigint, length: bigint): void {
    if (!this.bitmap || length <= 0n) return;
    const end = iova + length;
    // Ranges are sorted and few (≤ 256): find the first that ends after `iova` by binary search.
    let lo = 0;
    let hi = this.tracked.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const r = this.tracked[mid]!;
      if (r.iova + r.length <= iova) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < this.tracked.length; i++) {
      const r = this.tracked[i]!;
      if (r.iova >= end) break;
      const a = r.iova > iova ? r.iova : iova;
      const rEnd = r.iova + r.length;
      const b = rEnd < end ? rEnd : end;
      if (b > a) this.bitmap.setRange(a, b - a);
    }
  }
}

/** DESIGN's name for a device's DMA logging ops (Linux `vfio_log_ops`). */
export type VfioLogOps = DmaLoggingOps;
