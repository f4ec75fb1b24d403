/**
 * Pinning, domains and accounting, after the selftest fixture `iommufd_mock_domain` and the access tests
 * (inventory §7, §7.1): pages are pinned once per pages object while domains exist, mirrored into every domain
 * with contiguous runs, charged per RLIMIT_MODE, shared by COPY, and released when the last user goes.
 */
import { describe, expect, it } from 'vitest';
import { IOMMU_READ, IOMMU_WRITE } from '@vfio-ts/platform';
import type { IommuDomain } from '@vfio-ts/platform';
import { IOMMU_IOAS_MAP, IOMMU_IOAS_MAP_READABLE, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_RLIMIT_MODE, iommuIoasMap } from '@vfio-ts/uapi';
import { SimIommuGroup } from '@vfio-ts/sim';
import { iommufdContextOf } from '../src/index.js';
import { FIXED, MiB, PAGE, RW, errnoOf, setup } from './helpers.js';
import type { Fixture } from './helpers.js';

/** Every page of `[iova, iova+len)` translates to the page behind the user address (check_mock_iova). */
function checkIova(f: Fixture, domain: IommuDomain, va: bigint, iova: bigint, len: bigint): void {
  for (let off = 0n; off < len; off += PAGE) {
    const t = domain.translate(iova + off);
    const page = f.p.mm.lookup(va + off);
    expect(t).toBeDefined();
    expect(t!.pa >> 12n).toBe(page!.pfn);
  }
}

/** Pin counts of the pages behind `[va, va+len)` (check_refs). */
function refs(f: Fixture, va: bigint, len: bigint): number[] {
  const out: number[] = [];
  for (let off = 0n; off < len; off += PAGE) out.push(f.platform.memory.pinCount(f.p.mm.lookup(va + off)!.pfn));
  return out;
}

describe.each([
  { name: 'one_domain', domains: 1, hugepages: false },
  { name: 'two_domains', domains: 2, hugepages: false },
  { name: 'one_domain_hugepage', domains: 1, hugepages: true },
  { name: 'two_domains_hugepage', domains: 2, hugepages: true },
])('iommufd_mock_domain ($name)', (v) => {
  const make = () => {
    const f = setup({ memlockLimit: 256n * MiB });
    const ioas = f.ioasAlloc();
    const devs = Array.from({ length: v.domains }, () => f.device(ioas));
    const bufSize = v.hugepages ? 4n * MiB : 8n * PAGE;
    return { f, ioas, devs, bufSize, domains: devs.map((d) => d.group.domain!) };
  };

  it('basic: a mapping lands in every domain; EFAULT when the user range is partly or wholly unmapped', () => {
    const { f, ioas, domains, bufSize } = make();
    const buffer = f.buffer(PAGE);
    const iova = f.map(ioas, buffer, PAGE);
    for (const d of domains) checkIova(f, d, buffer, iova, PAGE);
    const buf = f.buffer(bufSize, v.hugepages ? '2M' : undefined);
    f.p.munmap(buf + bufSize / 2n, bufSize / 2n);
    const before = f.sub.userLockedPages(1000);
    expect(errnoOf(() => f.map(ioas, buf, bufSize))).toBe('EFAULT');
    expect(f.sub.userLockedPages(1000)).toBe(before);
    expect(refs(f, buf, bufSize / 2n).every((r) => r === 0)).toBe(true);
    f.p.munmap(buf, bufSize / 2n);
    expect(errnoOf(() => f.map(ioas, buf, bufSize))).toBe('EFAULT');
    expect(f.ctx.ioasTable(ioas).areas.size).toBe(1);
  });

  it('all_aligns: every start/length maps correctly with balanced page refs', () => {
    const { f, ioas, domains, bufSize } = make();
    const buf = f.buffer(bufSize, v.hugepages ? '2M' : undefined);
    f.p.memory.write(buf, new Uint8Array([1])); // fault in
    const step = v.hugepages ? bufSize / 16n : PAGE;
    for (let start = 0n; start < bufSize; start += step) {
      for (let end = v.hugepages ? bufSize : start + PAGE; end <= bufSize; end += v.hugepages ? bufSize : PAGE) {
        const len = end - start;
        const iova = f.map(ioas, buf + start, len);
        for (const d of domains) checkIova(f, d, buf + start, iova, len);
        expect(refs(f, buf + start, len).every((r) => r === 1)).toBe(true);
        f.unmap(ioas, iova, len);
      }
    }
    expect(refs(f, buf, bufSize).every((r) => r === 0)).toBe(true);
    expect(f.sub.userLockedPages(1000)).toBe(0);
  });

  it('all_aligns_copy: a domain added and removed while areas exist is filled from the pinned pages', () => {
    const { f, ioas, domains, bufSize } = make();
    const buf = f.buffer(bufSize, v.hugepages ? '2M' : undefined);
    const step = v.hugepages ? bufSize / 4n : 2n * PAGE;
    for (let start = 0n; start < bufSize; start += step) {
      const len = bufSize - start;
      const iova = f.map(ioas, buf + start, len);
      const extra = f.device(ioas);
      for (const d of [...domains, extra.group.domain!]) checkIova(f, d, buf + start, iova, len);
      expect(refs(f, buf + start, len).every((r) => r === 1)).toBe(true);
      f.ctx.unbindDevice(extra.devId);
      f.unmap(ioas, iova, len);
    }
    expect(refs(f, buf, bufSize).every((r) => r === 0)).toBe(true);
  });

  it('hugepage-backed memory is mapped with large IOPTEs unless HUGE_PAGES=0', () => {
    const { f, ioas, domains } = make();
    const buf = f.buffer(4n * MiB, '2M');
    f.map(ioas, buf, 4n * MiB, { iova: 4n * MiB });
    expect(domains[0]!.stats.entriesByPageSize.get(2n * MiB)).toBe(2);
    const small = f.ioasAlloc();
    f.option(IOMMU_OPTION_HUGE_PAGES, small, 0n);
    const d = f.device(small);
    f.map(small, buf, 4n * MiB, { iova: 4n * MiB });
    expect(d.group.domain!.stats.entriesByPageSize.get(PAGE)).toBe(1024);
    expect(d.group.domain!.stats.entriesByPageSize.get(2n * MiB) ?? 0).toBe(0);
  });

  it('replace: moving a device to another IOAS frees its automatic HWPT (ENOENT afterwards)', () => {
    const { f, ioas, devs } = make();
    const other = f.ioasAlloc();
    const buffer = f.buffer(PAGE);
    const iova = f.map(other, buffer, PAGE);
    const dev = devs[0]!;
    const newHwpt = f.ctx.attach(dev.devId, other);
    expect(dev.group.domain!.translate(iova)).toBeDefined();
    if (v.domains === 1) expect(errnoOf(() => f.ctx.attach(dev.devId, dev.hwptId!))).toBe('ENOENT');
    else f.ctx.attach(dev.devId, dev.hwptId!);
    f.ctx.attach(dev.devId, ioas);
    if (v.domains === 1) expect(errnoOf(() => { f.destroy(newHwpt); })).toBe('ENOENT');
    f.unmap(other, iova, PAGE);
    f.destroy(other);
  });
});

describe('accounting (RLIMIT_MODE, CAP_IPC_LOCK, RLIMIT_MEMLOCK)', () => {
  it('charges the user by default, once per page however many domains and copies use it', () => {
    const f = setup();
    const a = f.ioasAlloc();
    const b = f.ioasAlloc();
    f.device(a);
    f.device(a);
    f.device(b);
    const buf = f.buffer(16n * PAGE);
    const iova = f.map(a, buf, 16n * PAGE);
    expect(f.sub.userLockedPages(1000)).toBe(16);
    expect(f.p.mm.memlock.lockedPages).toBe(0);
    // COPY shares the pinned pages: nothing new is charged or pinned.
    f.copy(b, a, iova + 4n * PAGE, 4n * PAGE);
    f.copy(a, a, iova, 16n * PAGE);
    expect(f.sub.userLockedPages(1000)).toBe(16);
    expect(refs(f, buf, 16n * PAGE).every((r) => r === 1)).toBe(true);
    f.unmap(a, 0n, (1n << 64n) - 1n);
    expect(f.sub.userLockedPages(1000)).toBe(4);
    f.p.close(f.fd);
    expect(f.sub.userLockedPages(1000)).toBe(0);
    expect(refs(f, buf, 16n * PAGE).every((r) => r === 0)).toBe(true);
  });

  it('two processes of one user share the per-user count; ENOMEM past RLIMIT_MEMLOCK unwinds', () => {
    const f = setup({ memlockLimit: 64n * PAGE });
    const a = f.ioasAlloc();
    f.device(a);
    const buf = f.buffer(128n * PAGE);
    f.map(a, buf, 48n * PAGE);
    expect(errnoOf(() => f.map(a, buf + 48n * PAGE, 32n * PAGE))).toBe('ENOMEM');
    expect(f.sub.userLockedPages(1000)).toBe(48);
    expect(refs(f, buf + 48n * PAGE, 32n * PAGE).every((r) => r === 0)).toBe(true);
    expect(f.ctx.ioasTable(a).areas.size).toBe(1);
    f.map(a, buf + 48n * PAGE, 16n * PAGE);
    expect(f.sub.userLockedPages(1000)).toBe(64);
  });

  it('RLIMIT_MODE=1 charges the process locked_vm (as type1 does)', () => {
    const f = setup({ caps: ['CAP_SYS_RESOURCE'] });
    f.option(IOMMU_OPTION_RLIMIT_MODE, 0, 1n);
    const a = f.ioasAlloc();
    f.device(a);
    const buf = f.buffer(8n * PAGE);
    const iova = f.map(a, buf, 8n * PAGE);
    expect(f.p.mm.memlock.lockedPages).toBe(8);
    expect(f.sub.userLockedPages(1000)).toBe(0);
    f.unmap(a, iova, 8n * PAGE);
    expect(f.p.mm.memlock.lockedPages).toBe(0);
  });

  it('CAP_IPC_LOCK: nothing is charged, and the limit does not apply', () => {
    const f = setup({ caps: ['CAP_IPC_LOCK'], memlockLimit: PAGE });
    const a = f.ioasAlloc();
    f.device(a);
    const buf = f.buffer(8n * PAGE);
    f.map(a, buf, 8n * PAGE);
    expect(f.sub.userLockedPages(1000)).toBe(0);
    expect(f.p.mm.memlock.lockedPages).toBe(0);
    expect(refs(f, buf, 8n * PAGE).every((r) => r === 1)).toBe(true);
  });

  it('an IOAS without domains pins nothing; the first domain pins and charges, the last one unpins', () => {
    const f = setup();
    const a = f.ioasAlloc();
    const buf = f.buffer(8n * PAGE);
    f.p.memory.write(buf, new Uint8Array(8 * 4096).fill(7));
    f.map(a, buf, 8n * PAGE, { iova: MiB });
    expect(f.sub.userLockedPages(1000)).toBe(0);
    const d = f.device(a);
    expect(f.sub.userLockedPages(1000)).toBe(8);
    checkIova(f, d.group.domain!, buf, MiB, 8n * PAGE);
    f.ctx.detach(d.devId);
    expect(f.sub.userLockedPages(1000)).toBe(0);
    expect(refs(f, buf, 8n * PAGE).every((r) => r === 0)).toBe(true);
  });

  it('a domain that cannot be filled (unmapped user memory) fails the attach and changes nothing', () => {
    const f = setup();
    const a = f.ioasAlloc();
    const good = f.buffer(4n * PAGE);
    f.map(a, good, 4n * PAGE, { iova: MiB });
    f.map(a, 1n << 40n, 4n * PAGE, { iova: 2n * MiB }); // lazily accepted without a domain
    expect(errnoOf(() => f.device(a))).toBe('EFAULT');
    expect(f.sub.userLockedPages(1000)).toBe(0);
    expect(refs(f, good, 4n * PAGE).every((r) => r === 0)).toBe(true);
    expect(f.ctx.objects().map((o) => o.type)).toEqual(['ioas', 'device']);
    expect(f.ctx.ioasTable(a).reserved).toHaveLength(0);
  });

  it('read-only maps pin without write access and map read-only', () => {
    const f = setup();
    const a = f.ioasAlloc();
    const d = f.device(a);
    const buf = f.p.mmap({ length: PAGE, prot: 1 });
    const iova = f.map(a, buf, PAGE, { flags: IOMMU_IOAS_MAP_READABLE });
    const t = d.group.domain!.translate(iova)!;
    expect(t.prot & IOMMU_WRITE).toBe(0);
    expect(t.prot & IOMMU_READ).toBe(IOMMU_READ);
    expect(errnoOf(() => f.map(a, buf, PAGE))).toBe('EFAULT');
  });
});

describe('accesses (emulated devices)', () => {
  it('access_pin: pin/unpin, double user, a domain added while pinned maps the same pages', () => {
    const f = setup();
    const a = f.ioasAlloc();
    const buf = f.buffer(16n * PAGE);
    const iova = f.map(a, buf, 16n * PAGE, { iova: MiB });
    const unmaps: [bigint, bigint][] = [];
    const acc = f.ctx.createAccess({ unmap: (i, l) => unmaps.push([i, l]) });
    acc.attach(a);
    const pfns = acc.pinPages(iova, 4n * PAGE, true);
    expect(pfns).toHaveLength(4);
    expect(pfns[0]).toBe(f.p.mm.lookup(buf)!.pfn);
    expect(f.sub.userLockedPages(1000)).toBe(4);
    acc.pinPages(iova, 4n * PAGE, true);
    expect(f.sub.userLockedPages(1000)).toBe(4);
    const d = f.device(a);
    checkIova(f, d.group.domain!, buf, iova, 16n * PAGE);
    expect(f.sub.userLockedPages(1000)).toBe(16);
    acc.unpinPages(iova, 4n * PAGE);
    acc.unpinPages(iova, 4n * PAGE);
    expect(errnoOf(() => { acc.unpinPages(iova, 4n * PAGE); })).toBe('EINVAL');
    expect(errnoOf(() => acc.pinPages(3n * MiB, PAGE, false))).toBe('ENOENT');
    acc.destroy();
    f.ctx.detach(d.devId);
    expect(f.sub.userLockedPages(1000)).toBe(0);
  });

  it('access_pin_unmap: a user unmap makes the access unpin first; access_rw copies through the IOAS', () => {
    const f = setup();
    const a = f.ioasAlloc();
    const buf = f.buffer(4n * PAGE);
    const iova = f.map(a, buf, 4n * PAGE, { iova: MiB });
    const acc = f.ctx.createAccess({
      unmap: (i, l) => {
        expect([i, l]).toEqual([iova, 4n * PAGE]);
        acc.unpinPages(iova + PAGE, PAGE);
      },
    });
    acc.attach(a);
    acc.pinPages(iova + PAGE, PAGE, false);
    acc.rw(iova + 100n, new Uint8Array([1, 2, 3]), true);
    expect([...f.p.memory.read(buf + 100n, 3)]).toEqual([1, 2, 3]);
    const out = new Uint8Array(3);
    acc.rw(iova + 100n, out, false);
    expect([...out]).toEqual([1, 2, 3]);
    expect(f.unmap(a, iova, 4n * PAGE)).toBe(4n * PAGE);
    expect(f.sub.userLockedPages(1000)).toBe(0);
    expect(errnoOf(() => { acc.rw(iova, new Uint8Array(1), false); })).toBe('ENOENT');
    // While attached, the access keeps the IOAS busy.
    expect(errnoOf(() => { f.destroy(a); })).toBe('EBUSY');
    acc.detach();
    f.destroy(a);
  });

  it('an access that pins pages keeps the IOAS PAGE_SIZE aligned (EADDRINUSE over a misaligned area)', () => {
    const f = setup();
    const a = f.ioasAlloc();
    const buf = f.buffer(4n * PAGE);
    const iova = f.map(a, buf + 8n, PAGE);
    const acc = f.ctx.createAccess({ unmap: () => undefined });
    expect(errnoOf(() => { acc.attach(a); })).toBe('EADDRINUSE');
    f.unmap(a, iova, PAGE);
    acc.attach(a);
    expect(f.ranges(a).alignment).toBe(PAGE);
    expect(errnoOf(() => f.map(a, buf + 8n, PAGE))).toBe('EINVAL');
    acc.detach();
    expect(f.ranges(a).alignment).toBe(1n);
    const loose = f.ctx.createAccess({ unmap: () => undefined, needsPinPages: false });
    loose.attach(a);
    f.map(a, buf + 8n, PAGE);
  });

  it('user_copy: pages pinned by an access in a domain-less IOAS are copied into an IOAS with domains; replace', () => {
    const f = setup();
    const withDomain = f.ioasAlloc();
    const d = f.device(withDomain);
    const src = f.ioasAlloc();
    const buf = f.buffer(16n * PAGE);
    const srcIova = f.map(src, buf, 16n * PAGE);
    const acc = f.ctx.createAccess({ unmap: () => undefined });
    acc.attach(src);
    acc.pinPages(srcIova, 16n * PAGE, true);
    f.copy(withDomain, src, srcIova, 16n * PAGE, { dstIova: MiB });
    checkIova(f, d.group.domain!, buf, MiB, 16n * PAGE);
    expect(f.sub.userLockedPages(1000)).toBe(16);
    const next = f.ioasAlloc();
    expect(errnoOf(() => { acc.replace(next); })).toBe('EINVAL');
    acc.unpinPages(srcIova, 16n * PAGE);
    acc.replace(next);
    expect(acc.ioasId).toBe(next);
    f.unmap(withDomain, MiB, 16n * PAGE);
    f.destroy(src);
    acc.destroy();
    expect(f.sub.userLockedPages(1000)).toBe(0);
  });
});

describe('fork_gone / fork_present', () => {
  it('pages mapped by a child are pinned from its memory while it lives; after its exit EFAULT', () => {
    for (const alive of [true, false]) {
      const f = setup();
      const a = f.ioasAlloc();
      const child = f.p.fork();
      const va = child.mmap({ length: 4n * PAGE });
      child.memory.write(va, new Uint8Array([0x5a]));
      const b = iommuIoasMap.encode({ size: 40, flags: RW | FIXED, ioas_id: a, user_va: va, length: 4n * PAGE, iova: MiB });
      child.ioctl(f.fd, IOMMU_IOAS_MAP, b);
      const pfn = child.mm.lookup(va)!.pfn;
      if (!alive) child.exit();
      if (alive) {
        const d = f.device(a);
        expect(d.group.domain!.translate(MiB)!.pa >> 12n).toBe(pfn);
        expect(f.sub.userLockedPages(1000)).toBe(4);
      } else {
        expect(errnoOf(() => f.device(a))).toBe('EFAULT');
        expect(f.sub.userLockedPages(1000)).toBe(0);
      }
    }
  });
});

describe('attach narrows the IOAS (reserved regions, aperture) — both ways with ALLOW_IOVAS and areas', () => {
  it('an allowed range or an area over the MSI window or beyond the aperture makes the attach EADDRINUSE, unwound', () => {
    const f = setup();
    const a = f.ioasAlloc();
    f.allow(a, [{ start: 0xfe000000n, last: 0xfeffffffn }]);
    const group = () => f.device();
    const d = group();
    expect(errnoOf(() => f.ctx.attach(d.devId, a))).toBe('EADDRINUSE');
    expect(d.group.domain).toBeUndefined();
    expect(f.ctx.objects().map((o) => o.type)).toEqual(['ioas', 'device']);
    f.allow(a, []);
    const buf = f.buffer(PAGE);
    f.map(a, buf, PAGE, { iova: 0xfee00000n });
    expect(errnoOf(() => f.ctx.attach(d.devId, a))).toBe('EADDRINUSE');
    // Unpinnable memory elsewhere does not change the answer: the reservation conflict comes first.
    f.map(a, 1n << 40n, PAGE, { iova: 64n * MiB });
    expect(errnoOf(() => f.ctx.attach(d.devId, a))).toBe('EADDRINUSE');
    f.unmap(a, 64n * MiB, PAGE);
    f.unmap(a, 0xfee00000n, PAGE);
    f.map(a, buf, PAGE, { iova: 1n << 50n });
    expect(errnoOf(() => f.ctx.attach(d.devId, a))).toBe('EADDRINUSE');
    expect(f.sub.userLockedPages(1000)).toBe(0);
    f.unmap(a, 1n << 50n, PAGE);
    f.ctx.attach(d.devId, a);
    // Now the MSI window is reserved: fixed maps there are EINVAL, allowed ranges over it EADDRINUSE.
    expect(errnoOf(() => f.map(a, buf, PAGE, { iova: 0xfee00000n }))).toBe('EINVAL');
    expect(errnoOf(() => { f.allow(a, [{ start: 0xfe000000n, last: 0xfeffffffn }]); })).toBe('EADDRINUSE');
    // Detach gives the space back.
    f.ctx.detach(d.devId);
    f.map(a, buf, PAGE, { iova: 0xfee00000n });
  });

  it('two processes of one user share the per-user locked count; each is held to its own RLIMIT_MEMLOCK', () => {
    const f = setup({ memlockLimit: 64n * PAGE });
    const a = f.ioasAlloc();
    f.device(a);
    f.map(a, f.buffer(24n * PAGE), 24n * PAGE);
    const q = f.p.fork();
    q.setrlimit('memlock', 32n * PAGE);
    const fd = q.open('/dev/iommu');
    const ctx = iommufdContextOf(q.file(fd))!;
    const ioas = ctx.allocIoas();
    const dev = ctx.bindDevice({ name: 'x', iommuGroup: new SimIommuGroup(300, f.platform.iommu, undefined) });
    ctx.attach(dev, ioas);
    const va = q.mmap({ length: 16n * PAGE });
    // 24 + 16 pages exceed q's 32-page limit although q itself holds nothing yet.
    expect(errnoOf(() => ctx.mapUser(ctx.ioasTable(ioas), q, va, 16n * PAGE, undefined, 3))).toBe('ENOMEM');
    ctx.mapUser(ctx.ioasTable(ioas), q, va, 8n * PAGE, undefined, 3);
    expect(f.sub.userLockedPages(1000)).toBe(32);
    // The parent's own 64-page limit still has room.
    f.map(a, f.buffer(16n * PAGE), 16n * PAGE);
    expect(f.sub.userLockedPages(1000)).toBe(48);
    q.close(fd);
    expect(f.sub.userLockedPages(1000)).toBe(40);
  });
});
