/**
 * Small fakes of the platform contracts (task, address space, IOMMU group and domain) so the backend can be
 * driven directly, independent of @vfio-ts/sim.
 */
import type {
  AddressSpace,
  Capability,
  IommuDomain,
  IommuDomainStats,
  IommuGroup,
  MemlockAccount,
  PageLookup,
  PinnedRun,
  ReservedRegion,
  Task,
} from '@vfio-ts/platform';
import { PROT_READ, PROT_WRITE } from '@vfio-ts/platform';
import type { IommuBackendEnv, VfioGroupRef, VfioGroupType } from '@vfio-ts/core';
import { SysError } from '@vfio-ts/uapi';

export const PAGE = 4096n;

/** Pin counts per physical page, shared by every fake address space of a test. */
export class FakePhys {
  readonly pins = new Map<bigint, number>();
  readonly data = new Map<bigint, Uint8Array>();
  #nextPfn = 0x100000n;
  allocPfns(n: number, align = 1): bigint {
    const a = BigInt(align);
    const base = ((this.#nextPfn + a - 1n) / a) * a;
    this.#nextPfn = base + BigInt(n) + 1n; // +1: consecutive regions are not contiguous with each other
    return base;
  }
  addPins(pfn: bigint, n: number, delta: number): void {
    for (let i = 0n; i < BigInt(n); i++) {
      const v = (this.pins.get(pfn + i) ?? 0) + delta;
      if (v < 0) throw new Error(`pin count of pfn ${pfn + i} below zero`);
      if (v === 0) this.pins.delete(pfn + i);
      else this.pins.set(pfn + i, v);
    }
  }
  get totalPins(): number {
    let n = 0;
    for (const v of this.pins.values()) n += v;
    return n;
  }
}

class FakeMemlock implements MemlockAccount {
  lockedPages = 0;
  adjust(deltaPages: number, limitBytes?: bigint | null): void {
    if (deltaPages > 0 && limitBytes !== undefined && limitBytes !== null) {
      if (BigInt(this.lockedPages + deltaPages) > limitBytes / PAGE) throw new SysError('ENOMEM', 'RLIMIT_MEMLOCK');
    }
    this.lockedPages += deltaPages;
    if (this.lockedPages < 0) throw new Error('locked pages below zero');
  }
}

interface Region {
  start: bigint;
  npages: number;
  prot: number;
  device: boolean;
  /** pfn of page i: base + i*stride (stride 2 makes every page its own run). */
  base: bigint;
  stride: bigint;
}

/** A fake address space: regions of pages with a chosen physical layout. */
export class FakeMm implements AddressSpace {
  readonly memlock = new FakeMemlock();
  readonly regions: Region[] = [];
  #next = 0x10000000n;
  constructor(
    readonly phys: FakePhys,
    readonly id = 1,
  ) {}

  /** Maps `npages` pages: contiguous (one run), `scattered` (each page its own run) or in `unitPages`-page units. */
  add(npages: number, opts: { prot?: number; layout?: 'contiguous' | 'scattered'; device?: boolean; addr?: bigint } = {}): bigint {
    const start = opts.addr ?? this.#next;
    if (opts.addr === undefined) this.#next += BigInt(npages + 16) * PAGE;
    const stride = opts.layout === 'scattered' ? 2n : 1n;
    const base = this.phys.allocPfns(npages * Number(stride));
    this.regions.push({ start, npages, prot: opts.prot ?? PROT_READ | PROT_WRITE, device: opts.device ?? false, base, stride });
    return start;
  }

  #find(vaddr: bigint): { r: Region; i: number } | undefined {
    for (const r of this.regions) {
      if (vaddr >= r.start && vaddr < r.start + BigInt(r.npages) * PAGE) return { r, i: Number((vaddr - r.start) / PAGE) };
    }
    return undefined;
  }

  mmapAnonymous(length: bigint): bigint {
    return this.add(Number(length / PAGE));
  }
  mmapDevice(length: bigint): bigint {
    return this.add(Number(length / PAGE), { device: true });
  }
  munmap(vaddr: bigint): void {
    const i = this.regions.findIndex((r) => r.start === vaddr);
    if (i >= 0) this.regions.splice(i, 1);
  }
  read(vaddr: bigint, length: number): Uint8Array {
    const out = new Uint8Array(length);
    for (let k = 0; k < length; k++) {
      const a = vaddr + BigInt(k);
      const f = this.#find(a);
      if (!f || f.r.device || (f.r.prot & PROT_READ) === 0) throw new SysError('EFAULT', 'read');
      const pfn = f.r.base + BigInt(f.i) * f.r.stride;
      out[k] = this.phys.data.get(pfn)?.[Number(a % PAGE)] ?? 0;
    }
    return out;
  }
  write(vaddr: bigint, data: Uint8Array): void {
    for (let k = 0; k < data.length; k++) {
      const f = this.#find(vaddr + BigInt(k));
      if (!f || f.r.device || (f.r.prot & PROT_WRITE) === 0) throw new SysError('EFAULT', 'write');
    }
    for (let k = 0; k < data.length; k++) {
      const a = vaddr + BigInt(k);
      const f = this.#find(a)!;
      const pfn = f.r.base + BigInt(f.i) * f.r.stride;
      let page = this.phys.data.get(pfn);
      if (!page) this.phys.data.set(pfn, (page = new Uint8Array(4096)));
      page[Number(a % PAGE)] = data[k]!;
    }
  }
  lookup(vaddr: bigint): PageLookup | undefined {
    const f = this.#find(vaddr);
    if (!f) return undefined;
    return { pfn: f.r.base + BigInt(f.i) * f.r.stride, prot: f.r.prot, pageSize: PAGE, device: f.r.device };
  }
  pin(vaddr: bigint, npages: number, options: { write: boolean }): PinnedRun[] {
    const runs: { vaddr: bigint; pfn: bigint; npages: number }[] = [];
    for (let k = 0; k < npages; k++) {
      const va = vaddr + BigInt(k) * PAGE;
      const f = this.#find(va);
      if (!f || f.r.device || (f.r.prot & PROT_READ) === 0 || (options.write && (f.r.prot & PROT_WRITE) === 0)) {
        throw new SysError('EFAULT', `pin 0x${va.toString(16)}`);
      }
      const pfn = f.r.base + BigInt(f.i) * f.r.stride;
      const last = runs[runs.length - 1];
      if (last && last.pfn + BigInt(last.npages) === pfn && last.vaddr + BigInt(last.npages) * PAGE === va) last.npages++;
      else runs.push({ vaddr: va, pfn, npages: 1 });
    }
    for (const r of runs) this.phys.addPins(r.pfn, r.npages, 1);
    return runs;
  }
  unpin(pfn: bigint, npages: number): void {
    this.phys.addPins(pfn, npages, -1);
  }
  fork(): AddressSpace {
    throw new Error('not in fakes');
  }
  destroy(): void {
    this.regions.length = 0;
  }
}

export class FakeTask implements Task {
  readonly logs: string[] = [];
  constructor(
    readonly mm: FakeMm,
    readonly caps: Capability[] = [],
    public memlockLimit: bigint | null = null,
    readonly pid = 100,
  ) {}
  readonly uid = 0;
  readonly gid = 0;
  capable(cap: Capability): boolean {
    return this.caps.includes(cap);
  }
  log(text: string): void {
    this.logs.push(text);
  }
}

export interface DomainOptions {
  pgsizeBitmap?: bigint;
  aperture?: { start: bigint; end: bigint };
  coherent?: boolean;
}

/** A page-table fake that keeps one entry per 4 KiB page but counts map calls. */
export class FakeDomain implements IommuDomain {
  readonly pgsizeBitmap: bigint;
  readonly aperture: { start: bigint; end: bigint };
  readonly enforceCacheCoherency: boolean;
  readonly entries = new Map<bigint, { pa: bigint; prot: number }>();
  mapCalls = 0;
  unmapCalls = 0;
  freed = false;
  /** Fails a map call whose range contains this IOVA (fault injection). */
  failAt: bigint | undefined;
  constructor(
    opts: DomainOptions = {},
    readonly id = 0,
  ) {
    this.pgsizeBitmap = opts.pgsizeBitmap ?? (1n << 12n) | (1n << 21n) | (1n << 30n);
    this.aperture = opts.aperture ?? { start: 0n, end: (1n << 48n) - 1n };
    this.enforceCacheCoherency = opts.coherent ?? true;
  }
  map(iova: bigint, pa: bigint, size: bigint, prot: number): void {
    this.mapCalls++;
    if (iova < this.aperture.start || iova + size - 1n > this.aperture.end) throw new SysError('ERANGE', 'aperture');
    if (this.failAt !== undefined && this.failAt >= iova && this.failAt < iova + size) throw new SysError('ENOMEM', 'injected');
    for (let o = 0n; o < size; o += PAGE) if (this.entries.has(iova + o)) throw new SysError('EEXIST', 'mapped');
    for (let o = 0n; o < size; o += PAGE) this.entries.set(iova + o, { pa: pa + o, prot });
  }
  unmap(iova: bigint, size: bigint): bigint {
    this.unmapCalls++;
    let n = 0n;
    for (let o = 0n; o < size; o += PAGE) if (this.entries.delete(iova + o)) n += PAGE;
    return n;
  }
  translate(iova: bigint): { pa: bigint; prot: number } | undefined {
    const e = this.entries.get(iova - (iova % PAGE));
    return e ? { pa: e.pa + (iova % PAGE), prot: e.prot } : undefined;
  }
  get stats(): IommuDomainStats {
    return { mapCalls: this.mapCalls, unmapCalls: this.unmapCalls, entriesByPageSize: new Map([[PAGE, this.entries.size]]) };
  }
  free(): void {
    this.freed = true;
  }
}

export class FakeGroup implements IommuGroup {
  attached: IommuDomain | undefined;
  readonly allocated: FakeDomain[] = [];
  constructor(
    readonly id: number,
    readonly domainOptions: DomainOptions = {},
    readonly regions: ReservedRegion[] = [{ start: 0xfee00000n, end: 0xfeefffffn, type: 'msi' }],
    readonly isolatedMsi = true,
  ) {}
  devices(): readonly string[] {
    return [`0000:00:0${this.id}.0`];
  }
  reservedRegions(): readonly ReservedRegion[] {
    return this.regions;
  }
  claimDmaOwner(): void {}
  releaseDmaOwner(): void {}
  readonly dmaOwner = undefined;
  attachDomain(domain: IommuDomain): void {
    if (this.attached) throw new SysError('EBUSY', 'attached');
    this.attached = domain;
  }
  detachDomain(domain: IommuDomain): void {
    if (this.attached === domain) this.attached = undefined;
  }
  get domain(): IommuDomain | undefined {
    return this.attached;
  }
  get cacheCoherent(): boolean {
    return this.domainOptions.coherent ?? true;
  }
  allocDomain(): FakeDomain {
    const d = new FakeDomain(this.domainOptions, this.id * 100 + this.allocated.length);
    this.allocated.push(d);
    return d;
  }
}

export function groupRef(g: FakeGroup | undefined, id: number, type: VfioGroupType = 'iommu'): VfioGroupRef {
  return { id, type, iommuGroup: g };
}

export class FakeEnv implements IommuBackendEnv {
  readonly logs: string[] = [];
  readonly params = new Map<string, string>([
    ['dma_entry_limit', '65535'],
    ['disable_hugepages', 'N'],
    ['allow_unsafe_interrupts', 'N'],
  ]);
  param(name: string): string {
    return this.params.get(name) ?? '';
  }
  log(text: string): void {
    this.logs.push(text);
  }
}
