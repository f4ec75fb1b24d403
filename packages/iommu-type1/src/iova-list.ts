/**
 * The valid-IOVA list of a container (inventory §4 "IOVA ranges"): the intersection of the domains' apertures
 * minus every attached group's reserved regions (except direct-relaxable ones). Ranges are inclusive, sorted
 * and disjoint. Functions here are pure: they return new lists so a failed attach leaves the old one in place.
 */
import type { ReservedRegion } from '@vfio-ts/platform';

/** An inclusive IOVA range. */
export interface IovaRange {
  readonly start: bigint;
  readonly end: bigint;
}

/** Whether `[start, end]` lies inside one range of `list`; an empty list (emulated groups only) allows anything. */
export function iovaRangeValid(list: readonly IovaRange[], start: bigint, end: bigint): boolean {
  if (list.length === 0) return true;
  return list.some((r) => start >= r.start && end <= r.end);
}

/**
 * Narrows `list` to the aperture `[start, end]` (vfio_iommu_aper_resize). An empty list becomes the aperture.
 */
export function resizeToAperture(list: readonly IovaRange[], start: bigint, end: bigint): IovaRange[] {
  if (list.length === 0) return [{ start, end }];
  const out: IovaRange[] = [];
  for (const r of list) {
    const s = r.start > start ? r.start : start;
    const e = r.end < end ? r.end : end;
    if (s <= e) out.push({ start: s, end: e });
  }
  return out;
}

/** Reserved regions that carve holes into the valid list (all but direct-relaxable, as Linux). */
export function excludingRegions(regions: readonly ReservedRegion[]): ReservedRegion[] {
  return regions.filter((r) => r.type !== 'direct-relaxable');
}

/**
 * Removes the reserved regions from `list` (vfio_iommu_resv_exclude). Returns `undefined` when nothing is left,
 * which the kernel reports as EINVAL.
 */
export function excludeReserved(list: readonly IovaRange[], regions: readonly ReservedRegion[]): IovaRange[] | undefined {
  let cur: IovaRange[] = [...list];
  for (const resv of excludingRegions(regions)) {
    const next: IovaRange[] = [];
    for (const r of cur) {
      if (resv.start > r.end || resv.end < r.start) {
        next.push(r);
        continue;
      }
      if (resv.start > r.start) next.push({ start: r.start, end: resv.start - 1n });
      if (resv.end < r.end) next.push({ start: resv.end + 1n, end: r.end });
    }
    cur = next;
  }
  return cur.length === 0 ? undefined : cur;
}
