/**
 * IOAS behaviour, after the selftest fixture `iommufd_ioas` (inventory §7.1) in its no-domain and domain
 * variants: area rules, IOVA allocation, allowed/reserved ranges, IOVA_RANGES, COPY, HUGE_PAGES, HW info.
 */
import { describe, expect, it } from 'vitest';
import {
  IOMMU_GET_HW_INFO,
  IOMMU_HW_INFO_TYPE_INTEL_VTD,
  IOMMU_HWPT_ALLOC,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_IOAS_COPY,
  IOMMU_IOAS_IOVA_RANGES,
  IOMMU_IOAS_MAP,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_OPTION_HUGE_PAGES,
  iommuHwInfo,
  iommuHwptAlloc,
  iommuIoasCopy,
  iommuIoasIovaRanges,
  iommuIoasMap,
} from '@vfio-ts/uapi';
import { U64_MAX } from '../src/index.js';
import { FIXED, MiB, PAGE, RW, errnoOf, setup } from './helpers.js';
import type { Fixture } from './helpers.js';

const BASE = MiB;
const BUFFER_SIZE = 16n * PAGE;

interface Variant {
  name: string;
  domain: boolean;
}

interface Fx {
  f: Fixture;
  ioas: number;
  buffer: bigint;
  devId: number | undefined;
  hwptId: number | undefined;
  domain: unknown;
}

function fixture(v: Variant): Fx {
  const f = setup();
  const ioas = f.ioasAlloc();
  const buffer = f.buffer(BUFFER_SIZE);
  const d = v.domain ? f.device(ioas) : undefined;
  return { f, ioas, buffer, devId: d?.devId, hwptId: d?.hwptId, domain: d?.group.domain };
}

describe.each([
  { name: 'no_domain', domain: false },
  { name: 'mock_domain', domain: true },
])('iommufd_ioas ($name)', (v) => {
  it('ioas_auto_destroy / ioas_area_auto_destroy: close frees an IOAS with many areas', () => {
    const { f, ioas, buffer } = fixture(v);
    for (let i = 0n; i < 10n; i++) f.map(ioas, buffer, PAGE, { iova: BASE + i * PAGE });
    f.p.close(f.fd);
    expect(f.ctx.objectCount).toBe(0);
    expect(f.sub.userLockedPages(1000)).toBe(0);
  });

  it('ioas_destroy / ioas_area_destroy: areas do not block destroy; an HWPT does (EBUSY)', () => {
    const { f, ioas, buffer } = fixture(v);
    f.map(ioas, buffer, PAGE, { iova: BASE });
    if (v.domain) expect(errnoOf(() => { f.destroy(ioas); })).toBe('EBUSY');
    else f.destroy(ioas);
  });

  it('hwpt_attach: a device attaches directly to an existing HWPT (ENOENT without one)', () => {
    const { f, hwptId, domain } = fixture(v);
    if (hwptId !== undefined) {
      const d = f.device(hwptId);
      expect(d.hwptId).toBe(hwptId);
      expect(d.group.domain).toBe(domain);
    } else {
      expect(errnoOf(() => f.device(77))).toBe('ENOENT');
    }
  });

  it('area: unmap of nothing ENOENT, split ENOENT, overlapping fixed maps EEXIST, unmap-all (also empty)', () => {
    const { f, ioas, buffer } = fixture(v);
    for (let i = 0n; i < 10n; i++) expect(errnoOf(() => f.unmap(ioas, i * PAGE, PAGE))).toBe('ENOENT');
    for (let i = 0n; i < 10n; i++) f.map(ioas, buffer, PAGE, { iova: BASE + i * PAGE });
    for (let i = 0n; i < 10n; i++) expect(f.unmap(ioas, BASE + i * PAGE, PAGE)).toBe(PAGE);
    f.map(ioas, buffer, 2n * PAGE, { iova: BASE + 16n * PAGE });
    expect(errnoOf(() => f.unmap(ioas, BASE + 16n * PAGE, PAGE))).toBe('ENOENT');
    expect(errnoOf(() => f.unmap(ioas, BASE + 17n * PAGE, PAGE))).toBe('ENOENT');
    for (const [len, at] of [[2n, 16n], [1n, 16n], [1n, 17n], [2n, 15n], [3n, 15n]] as const) {
      expect(errnoOf(() => f.map(ioas, buffer, len * PAGE, { iova: BASE + at * PAGE }))).toBe('EEXIST');
    }
    expect(f.unmap(ioas, 0n, U64_MAX)).toBe(2n * PAGE);
    expect(f.unmap(ioas, 0n, U64_MAX)).toBe(0n);
  });

  it('unmap_fully_contained_areas: one unmap may cover several whole areas; a partial one changes nothing', () => {
    const { f, ioas, buffer } = fixture(v);
    const base = BASE + 4n * PAGE;
    for (let i = 0n; i < 4n; i++) f.map(ioas, buffer, 8n * PAGE, { iova: base + i * 16n * PAGE });
    expect(errnoOf(() => f.unmap(ioas, base - 4n * PAGE, 8n * PAGE))).toBe('ENOENT');
    expect(errnoOf(() => f.unmap(ioas, base + 3n * 16n * PAGE + 8n * PAGE - 4n * PAGE, 8n * PAGE))).toBe('ENOENT');
    // Whole first area plus half of the second: refused, and the first area is still there.
    expect(errnoOf(() => f.unmap(ioas, base, 20n * PAGE))).toBe('ENOENT');
    expect(f.ctx.ioasTable(ioas).areas.size).toBe(4);
    expect(f.unmap(ioas, base - 4n * PAGE, 3n * 16n * PAGE + 8n * PAGE + 4n * PAGE)).toBe(32n * PAGE);
  });

  it('area_auto_iova: aligned allocation, avoiding reserved ranges, inside allowed ranges; EADDRINUSE', () => {
    const { f, ioas, buffer } = fixture(v);
    const iovas: bigint[] = [];
    for (let i = 0; i < 10; i++) iovas.push(f.map(ioas, buffer, PAGE));
    for (const iova of iovas) f.unmap(ioas, iova, PAGE);
    const ffsAlign = (len: bigint): bigint => len & -len;
    const big = v.domain ? f.buffer(1n << 22n) : 1n << 31n; // without a domain nothing is pinned, any address maps
    const maps = (check: (iova: bigint, len: bigint) => void): void => {
      const got: [bigint, bigint][] = [];
      for (let i = 1n; i <= 10n; i++) {
        const len = PAGE * i;
        const iova = f.map(ioas, v.domain ? big : buffer, len);
        expect(iova % ffsAlign(len)).toBe(0n);
        check(iova, len);
        got.push([iova, len]);
      }
      for (const [iova, len] of got) f.unmap(ioas, iova, len);
    };
    maps(() => undefined);
    // Avoids a reserved region (the selftest's IOMMU_TEST_OP_ADD_RESERVED).
    const owner = {};
    f.ctx.ioasTable(ioas).reserve(4n * PAGE, 104n * PAGE - 1n, owner);
    maps((iova) => {
      expect(iova > 4n * PAGE && iova < 104n * PAGE).toBe(false);
    });
    expect(errnoOf(() => { f.allow(ioas, [{ start: PAGE, last: 600n * PAGE }]); })).toBe('EADDRINUSE');
    const range = { start: 200n * PAGE, last: 600n * PAGE - 1n };
    f.allow(ioas, [range]);
    maps((iova, len) => {
      expect(iova >= range.start && iova + len <= range.last + 1n).toBe(true);
    });
  });

  it('area_allowed: reserved vs allowed intersection is EADDRINUSE in both orders', () => {
    const { f, ioas } = fixture(v);
    const t = f.ctx.ioasTable(ioas);
    f.allow(ioas, [{ start: BASE, last: BASE + 600n * PAGE }]);
    expect(errnoOf(() => { t.reserve(BASE + PAGE, BASE + 2n * PAGE - 1n, {}); })).toBe('EADDRINUSE');
    f.allow(ioas, []);
    t.reserve(BASE + PAGE, BASE + 2n * PAGE - 1n, {});
    expect(errnoOf(() => { f.allow(ioas, [{ start: BASE, last: BASE + 600n * PAGE }]); })).toBe('EADDRINUSE');
    // Bad lists: start >= last, overlapping entries.
    expect(errnoOf(() => { f.allow(ioas, [{ start: 5n * PAGE, last: 5n * PAGE }]); })).toBe('EINVAL');
    expect(errnoOf(() => { f.allow(ioas, [{ start: 0n, last: 10n }, { start: 5n, last: 20n }]); })).toBe('EINVAL');
  });

  it('copy_area: COPY inside one IOAS and across IOASes', () => {
    const { f, ioas, buffer } = fixture(v);
    f.map(ioas, buffer, PAGE, { iova: BASE });
    f.copy(ioas, ioas, BASE, PAGE, { dstIova: BASE + PAGE });
    const other = f.ioasAlloc();
    f.copy(other, ioas, BASE, PAGE, { dstIova: 0n });
    expect(f.ctx.ioasTable(other).areas.size).toBe(1);
    // Auto IOVA on the destination, and flag checks.
    const auto = f.copy(other, ioas, BASE, PAGE);
    expect(auto).not.toBe(0n);
    expect(errnoOf(() => f.copy(other, ioas, BASE, PAGE, { flags: 0 }))).toBe('EINVAL');
    expect(errnoOf(() => f.copy(other, ioas, BASE, PAGE, { flags: 1 << 5 }))).toBe('EOPNOTSUPP');
    expect(errnoOf(() => f.copy(other, 99, BASE, PAGE))).toBe('ENOENT');
    expect(errnoOf(() => f.copy(99, ioas, BASE, PAGE))).toBe('ENOENT');
    expect(errnoOf(() => f.copy(other, ioas, BASE, U64_MAX))).toBe('EOVERFLOW');
  });

  it('iova_ranges: reporting, EMSGSIZE with the needed count, two ranges around a reserved hole', () => {
    const { f, ioas } = fixture(v);
    const r = f.ranges(ioas);
    if (!v.domain) {
      expect(r.num).toBe(1);
      expect(r.ranges[0]).toEqual({ start: 0n, last: U64_MAX });
      expect(r.alignment).toBe(1n);
    } else {
      // The VT-d aperture (48 bits) and the x86 MSI window are reserved by the attach.
      expect(r.ranges).toEqual([
        { start: 0n, last: 0xfedfffffn },
        { start: 0xfef00000n, last: (1n << 48n) - 1n },
      ]);
      expect(r.alignment).toBe(PAGE);
    }
    expect(errnoOf(() => f.ranges(ioas, 0))).toBe('EMSGSIZE');
    const arr = f.p.mmap({ length: 4096n });
    const b = iommuIoasIovaRanges.encode({ size: 32, ioas_id: ioas, num_iovas: 0, allowed_iovas: arr });
    expect(errnoOf(() => f.p.ioctl(f.fd, IOMMU_IOAS_IOVA_RANGES, b))).toBe('EMSGSIZE');
    expect(iommuIoasIovaRanges.decode(b).num_iovas).toBe(r.num);
    expect(f.p.memory.read(arr, 32).every((x) => x === 0)).toBe(true);
    f.ctx.ioasTable(ioas).reserve(PAGE, 2n * PAGE - 1n, {});
    const two = f.ranges(ioas);
    expect(two.ranges[0]).toEqual({ start: 0n, last: PAGE - 1n });
    expect(two.ranges[1]!.start).toBe(2n * PAGE);
    // Room for one: the first is filled, the count says how many there are.
    const b1 = iommuIoasIovaRanges.encode({ size: 32, ioas_id: ioas, num_iovas: 1, allowed_iovas: arr });
    expect(errnoOf(() => f.p.ioctl(f.fd, IOMMU_IOAS_IOVA_RANGES, b1))).toBe('EMSGSIZE');
    expect(iommuIoasIovaRanges.decode(b1).num_iovas).toBe(two.num);
    expect(f.p.memory.read(arr + 16n, 16).every((x) => x === 0)).toBe(true);
    expect(errnoOf(() => f.p.ioctl(f.fd, IOMMU_IOAS_IOVA_RANGES, iommuIoasIovaRanges.encode({ size: 32, ioas_id: ioas, __reserved: 1 })))).toBe('EOPNOTSUPP');
  });

  it('ioas_option_huge_pages: get/set per IOAS, invalid value EINVAL', () => {
    const { f, ioas } = fixture(v);
    expect(f.option(IOMMU_OPTION_HUGE_PAGES, ioas)).toBe(1n);
    f.option(IOMMU_OPTION_HUGE_PAGES, ioas, 0n);
    expect(f.option(IOMMU_OPTION_HUGE_PAGES, ioas)).toBe(0n);
    expect(errnoOf(() => f.option(IOMMU_OPTION_HUGE_PAGES, ioas, 2n))).toBe('EINVAL');
    f.option(IOMMU_OPTION_HUGE_PAGES, ioas, 1n);
    expect(f.option(IOMMU_OPTION_HUGE_PAGES, ioas)).toBe(1n);
  });

  it('ioas_iova_alloc: every length 1..2*PAGE maps; with a domain only page multiples (EINVAL otherwise)', () => {
    const { f, ioas, buffer } = fixture(v);
    for (let len = 1n; len < 2n * PAGE; len += v.domain ? 1n : 7n) {
      if (v.domain && len % PAGE !== 0n) {
        expect(errnoOf(() => f.map(ioas, buffer, len))).toBe('EINVAL');
      } else {
        const iova = f.map(ioas, buffer, len);
        f.unmap(ioas, iova, len);
      }
    }
  });

  it('ioas_align_change: HUGE_PAGES=0 enforces PAGE_SIZE alignment; a misaligned area blocks it (EADDRINUSE)', () => {
    const { f, ioas, buffer } = fixture(v);
    if (v.domain) {
      // With a domain holding mappings, the option cannot change at all.
      f.map(ioas, buffer, PAGE, { iova: BASE });
      expect(errnoOf(() => f.option(IOMMU_OPTION_HUGE_PAGES, ioas, 0n))).toBe('EINVAL');
      return;
    }
    f.map(ioas, buffer, PAGE, { iova: BASE });
    f.option(IOMMU_OPTION_HUGE_PAGES, ioas, 0n);
    expect(errnoOf(() => f.map(ioas, buffer + 512n, PAGE, { iova: BASE + PAGE }))).toBe('EINVAL');
    f.option(IOMMU_OPTION_HUGE_PAGES, ioas, 0n);
    f.option(IOMMU_OPTION_HUGE_PAGES, ioas, 1n);
    f.map(ioas, buffer + 512n, PAGE, { iova: BASE + PAGE });
    expect(errnoOf(() => f.option(IOMMU_OPTION_HUGE_PAGES, ioas, 0n))).toBe('EADDRINUSE');
    expect(f.option(IOMMU_OPTION_HUGE_PAGES, ioas)).toBe(1n);
    f.unmap(ioas, BASE + PAGE, PAGE);
    f.unmap(ioas, BASE, PAGE);
  });

  it('copy_sweep: COPY of sub-ranges at many offsets; outside the area ENOENT', () => {
    const { f, ioas, buffer } = fixture(v);
    const dst = f.ioasAlloc();
    const unit = v.domain ? PAGE : 512n;
    const last = v.domain ? BASE + BUFFER_SIZE - 1n : BASE + BUFFER_SIZE - 2n;
    f.map(ioas, buffer, last - BASE + 1n, { iova: BASE });
    let ok = 0;
    for (let iova = BASE - PAGE; iova <= last; iova += v.domain ? PAGE / 2n : 511n) {
      if (iova < BASE || iova + unit - 1n > last) {
        expect(errnoOf(() => f.copy(dst, ioas, iova, unit, { dstIova: BASE }))).toBe('ENOENT');
      } else if (v.domain && iova % PAGE !== 0n) {
        // The destination has no domain, so an unaligned source is fine there too; the source keeps its rules.
        f.copy(dst, ioas, iova, unit, { dstIova: BASE + (iova % PAGE) });
        f.unmap(dst, BASE + (iova % PAGE), unit);
        ok++;
      } else {
        f.copy(dst, ioas, iova, unit, { dstIova: BASE });
        f.unmap(dst, BASE, unit);
        ok++;
      }
    }
    expect(ok).toBeGreaterThan(10);
    f.destroy(dst);
  });

  it('map argument rules: flags EOPNOTSUPP, no access EINVAL, overflow EOVERFLOW, zero length EINVAL, reserved EINVAL', () => {
    const { f, ioas, buffer } = fixture(v);
    expect(errnoOf(() => f.map(ioas, buffer, PAGE, { flags: 1 << 3 }))).toBe('EOPNOTSUPP');
    expect(errnoOf(() => f.p.ioctl(f.fd, IOMMU_IOAS_MAP, iommuIoasMap.encode({ size: 40, flags: RW, ioas_id: ioas, __reserved: 1, user_va: buffer, length: PAGE })))).toBe('EOPNOTSUPP');
    expect(errnoOf(() => f.map(ioas, buffer, PAGE, { flags: FIXED, iova: BASE }))).toBe('EINVAL');
    expect(errnoOf(() => f.map(ioas, buffer, U64_MAX))).toBe('EOVERFLOW');
    expect(errnoOf(() => f.map(ioas, buffer, PAGE, { iova: U64_MAX }))).toBe('EOVERFLOW');
    expect(errnoOf(() => f.map(ioas, buffer, 0n))).toBe('EINVAL');
    expect(errnoOf(() => f.map(ioas, U64_MAX - PAGE, 2n * PAGE))).toBe('EOVERFLOW');
    expect(errnoOf(() => f.map(ioas, buffer, 2n * PAGE, { iova: U64_MAX - PAGE + 1n }))).toBe('EOVERFLOW');
    expect(errnoOf(() => f.map(42, buffer, PAGE))).toBe('ENOENT');
    f.ctx.ioasTable(ioas).reserve(BASE, BASE + PAGE - 1n, {});
    expect(errnoOf(() => f.map(ioas, buffer, PAGE, { iova: BASE }))).toBe('EINVAL');
    // A read-only mapping cannot be copied as writeable (EPERM).
    const ro = f.map(ioas, buffer, PAGE, { flags: IOMMU_IOAS_MAP_READABLE });
    expect(errnoOf(() => f.copy(ioas, ioas, ro, PAGE))).toBe('EPERM');
    f.copy(ioas, ioas, ro, PAGE, { flags: IOMMU_IOAS_MAP_READABLE });
    // Allowed ranges with no room left: ENOSPC.
    f.allow(ioas, [{ start: 64n * MiB, last: 64n * MiB + PAGE - 1n }]);
    expect(errnoOf(() => f.map(ioas, buffer, 2n * PAGE))).toBe('ENOSPC');
    expect(errnoOf(() => f.p.ioctl(f.fd, IOMMU_IOAS_COPY, iommuIoasCopy.encode({ size: 40, flags: RW, dst_ioas_id: ioas, src_ioas_id: ioas, length: 0n })))).toBe('EINVAL');
  });

  it('get_hw_info: zero / exact / larger (tail zeroed) / smaller buffers; ENOENT without a device', () => {
    const { f, devId } = fixture(v);
    const call = (len: number, fill = 0xaa): { data: Uint8Array; info: ReturnType<typeof iommuHwInfo.decode> } => {
      const at = f.p.mmap({ length: 4096n });
      f.p.memory.write(at, new Uint8Array(64).fill(fill));
      const b = iommuHwInfo.encode({ size: 40, dev_id: devId ?? 1, data_len: len, data_uptr: len ? at : 0n });
      f.p.ioctl(f.fd, IOMMU_GET_HW_INFO, b);
      return { data: f.p.memory.read(at, 64), info: iommuHwInfo.decode(b) };
    };
    if (devId === undefined) {
      expect(errnoOf(() => call(24))).toBe('ENOENT');
      return;
    }
    const zero = call(0);
    expect(zero.info.data_len).toBe(24);
    expect(zero.info.out_data_type).toBe(IOMMU_HW_INFO_TYPE_INTEL_VTD);
    expect(zero.data.every((x) => x === 0xaa)).toBe(true);
    const exact = call(24);
    expect(exact.data.subarray(0, 24).every((x) => x === 0)).toBe(true);
    expect(exact.data[24]).toBe(0xaa);
    const larger = call(32);
    expect(larger.data.subarray(0, 32).every((x) => x === 0)).toBe(true);
    expect(larger.data[32]).toBe(0xaa);
    const smaller = call(4);
    expect(smaller.data.subarray(0, 4).every((x) => x === 0)).toBe(true);
    expect(smaller.data[4]).toBe(0xaa);
    expect(smaller.info.data_len).toBe(24);
    expect(errnoOf(() => f.p.ioctl(f.fd, IOMMU_GET_HW_INFO, iommuHwInfo.encode({ size: 40, flags: 1, dev_id: devId })))).toBe('EOPNOTSUPP');
  });

  it('alloc_hwpt: unknown flags EOPNOTSUPP, NEST_PARENT, rotation with EBUSY while attached', () => {
    const { f, ioas, devId } = fixture(v);
    const alloc = (flags: number, dev = devId ?? 1, pt = ioas): number => {
      const b = iommuHwptAlloc.encode({ size: 48, flags, dev_id: dev, pt_id: pt });
      f.p.ioctl(f.fd, IOMMU_HWPT_ALLOC, b);
      return iommuHwptAlloc.decode(b).out_hwpt_id;
    };
    if (devId === undefined) {
      expect(errnoOf(() => alloc(0))).toBe('ENOENT');
      return;
    }
    expect(errnoOf(() => alloc(~IOMMU_HWPT_ALLOC_NEST_PARENT >>> 0))).toBe('EOPNOTSUPP');
    expect(errnoOf(() => alloc(0, devId, 99))).toBe('EINVAL');
    expect(errnoOf(() => alloc(0, devId, devId))).toBe('EINVAL');
    const h0 = alloc(0);
    const h1 = alloc(IOMMU_HWPT_ALLOC_NEST_PARENT);
    f.ctx.attach(devId, h0);
    expect(errnoOf(() => { f.destroy(h0); })).toBe('EBUSY');
    f.ctx.attach(devId, h1);
    expect(errnoOf(() => { f.destroy(h1); })).toBe('EBUSY');
    f.ctx.attach(devId, ioas);
    f.destroy(h1);
    const d2 = f.device(h0);
    expect(d2.hwptId).toBe(h0);
    f.ctx.unbindDevice(d2.devId);
    f.destroy(h0);
    // An IOAS used by an explicit HWPT cannot be destroyed.
    const h2 = alloc(0);
    expect(errnoOf(() => { f.destroy(ioas); })).toBe('EBUSY');
    f.destroy(h2);
  });
});
