/**
 * A process's virtual memory on the simulated host (Linux mm_struct): a sorted array of mappings (binary search,
 * log n per lookup), anonymous memory allocated on first touch, hugepage-backed mappings made of contiguous
 * blocks, device mappings served by an MMIO handler, pinning (pin_user_pages) and locked_vm accounting.
 */
import type {
  AddressSpace,
  AnonymousMapOptions,
  HugepageSize,
  MemlockAccount,
  MmioHandler,
  PageLookup,
  PinnedRun,
} from '@vfio-ts/platform';
import { PAGE_SIZE, PROT_READ, PROT_WRITE } from '@vfio-ts/platform';
import { sysError } from '@vfio-ts/uapi';
import { PAGES_1G, PAGES_2M, type SimPhysicalMemory } from './physical.js';

/** Lowest mappable page (vm.mmap_min_addr = 65536). */
const MIN_VPN = 0x10000 / PAGE_SIZE;
/** Top of the mmap area; mappings are placed top-down below it, like Linux's default layout. */
const MMAP_TOP_VPN = 0x7f0000000000 / PAGE_SIZE;
/** Highest user page + 1 (47-bit user space). */
const USER_END_VPN = 0x800000000000 / PAGE_SIZE;

/** Memory object behind anonymous mappings; shared between the pieces of a split mapping and across fork. */
interface AnonObject {
  readonly kind: 'anon';
  /** Pages per backing unit: 1 (4K), 512 (2M) or 262144 (1G). */
  readonly unit: number;
  readonly shared: boolean;
  /** Unit index → first frame of the unit. */
  readonly frames: Map<number, number>;
  readonly vmas: Set<Vma>;
}

/** Device memory behind device mappings (a BAR). */
interface DeviceObject {
  readonly kind: 'device';
  readonly handler: MmioHandler;
  readonly onUnmap: (() => void) | undefined;
  /** Synthetic physical frames reserved for the mapping (P2P DMA through the IOMMU reaches the handler). */
  readonly mmioBase: number;
  readonly vmas: Set<Vma>;
}

interface Vma {
  /** First page and end page (exclusive), virtual page numbers. */
  start: number;
  end: number;
  readonly prot: number;
  readonly obj: AnonObject | DeviceObject;
  /** Page offset of `start` inside the object. */
  objOffset: number;
}

/** A mapping as {@link SimAddressSpace.mappings} describes it. */
export interface MappingInfo {
  readonly start: bigint;
  readonly end: bigint;
  readonly prot: number;
  readonly kind: 'anon' | 'device';
  readonly shared: boolean;
  readonly hugepage: HugepageSize | undefined;
}

const UNIT_PAGES: Record<HugepageSize, number> = { '2M': PAGES_2M, '1G': PAGES_1G };

class SimMemlock implements MemlockAccount {
  lockedPages = 0;
  adjust(deltaPages: number, limitBytes?: bigint | null): void {
    if (!Number.isInteger(deltaPages)) throw sysError('EINVAL', 'memlock delta must be an integer');
    if (deltaPages > 0 && limitBytes !== undefined && limitBytes !== null) {
      // Linux __account_locked_vm: locked_vm + npages > rlimit >> PAGE_SHIFT → ENOMEM, nothing charged.
      if (BigInt(this.lockedPages + deltaPages) > limitBytes / BigInt(PAGE_SIZE)) {
        throw sysError('ENOMEM', 'RLIMIT_MEMLOCK exceeded');
      }
    }
    this.lockedPages = Math.max(0, this.lockedPages + deltaPages);
  }
}

function toVpn(vaddr: bigint, what: string): number {
  if (vaddr < 0n || vaddr % BigInt(PAGE_SIZE) !== 0n) throw sysError('EINVAL', `${what} is not page aligned`);
  return Number(vaddr / BigInt(PAGE_SIZE));
}

function pagesOf(length: bigint): number {
  if (length <= 0n) throw sysError('EINVAL', 'length must be positive');
  const pages = (length + BigInt(PAGE_SIZE) - 1n) / BigInt(PAGE_SIZE);
  if (pages > BigInt(USER_END_VPN)) throw sysError('ENOMEM', 'length exceeds the address space');
  return Number(pages);
}

/** The simulated {@link AddressSpace}. */
export class SimAddressSpace implements AddressSpace {
  readonly memlock = new SimMemlock();
  /** Mappings sorted by start, non-overlapping. */
  private vmas: Vma[] = [];
  private destroyed = false;

  constructor(
    readonly id: number,
    private readonly phys: SimPhysicalMemory,
    private readonly nextId: () => number,
  ) {}

  // ---- lookup ----------------------------------------------------------------------------------------------

  /** Index of the last mapping starting at or below `vpn`, or -1. */
  private floorIndex(vpn: number): number {
    let lo = 0;
    let hi = this.vmas.length - 1;
    let ans = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.vmas[mid]!.start <= vpn) {
        ans = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return ans;
  }

  private find(vpn: number): Vma | undefined {
    const i = this.floorIndex(vpn);
    if (i < 0) return undefined;
    const v = this.vmas[i]!;
    return vpn < v.end ? v : undefined;
  }

  private overlaps(start: number, end: number): boolean {
    const i = this.floorIndex(end - 1);
    return i >= 0 && this.vmas[i]!.end > start;
  }

  private insert(v: Vma): void {
    const i = this.floorIndex(v.start);
    this.vmas.splice(i + 1, 0, v);
    v.obj.vmas.add(v);
  }

  /** Mappings in address order, for tests and `describe`. */
  mappings(): MappingInfo[] {
    return this.vmas.map((v) => ({
      start: BigInt(v.start) * BigInt(PAGE_SIZE),
      end: BigInt(v.end) * BigInt(PAGE_SIZE),
      prot: v.prot,
      kind: v.obj.kind,
      shared: v.obj.kind === 'device' || v.obj.shared,
      hugepage: v.obj.kind === 'anon' ? hugepageName(v.obj.unit) : undefined,
    }));
  }

  // ---- mmap / munmap ---------------------------------------------------------------------------------------

  private place(npages: number, align: number, addr: bigint | undefined): number {
    if (this.destroyed) throw sysError('ENOMEM', 'address space is gone');
    if (addr !== undefined) {
      const vpn = toVpn(addr, 'address');
      if (vpn % align !== 0) throw sysError('EINVAL', 'address is not aligned to the hugepage size');
      if (vpn < MIN_VPN) throw sysError('EPERM', 'address below mmap_min_addr');
      if (vpn + npages > USER_END_VPN) throw sysError('ENOMEM', 'mapping exceeds the address space');
      if (this.overlaps(vpn, vpn + npages)) throw sysError('EEXIST', 'range already mapped');
      return vpn;
    }
    // Top-down: the highest gap below MMAP_TOP that fits (Linux's default mmap layout).
    for (let i = this.vmas.length - 1; i >= -1; i--) {
      const gapStart = i >= 0 ? this.vmas[i]!.end : MIN_VPN;
      const gapEnd = Math.min(i + 1 < this.vmas.length ? this.vmas[i + 1]!.start : MMAP_TOP_VPN, MMAP_TOP_VPN);
      if (gapEnd - gapStart < npages) continue;
      const start = Math.floor((gapEnd - npages) / align) * align;
      if (start >= gapStart) return start;
    }
    throw sysError('ENOMEM', 'no room for the mapping');
  }

  mmapAnonymous(length: bigint, options: AnonymousMapOptions = {}): bigint {
    const unit = options.hugepage === undefined ? 1 : UNIT_PAGES[options.hugepage];
    if (unit === undefined) throw sysError('EINVAL', 'unknown hugepage size');
    // hugetlb mappings are rounded up to whole hugepages, as mmap(MAP_HUGETLB) does.
    let npages = pagesOf(length);
    npages = Math.ceil(npages / unit) * unit;
    const prot = options.prot ?? PROT_READ | PROT_WRITE;
    if (!Number.isInteger(prot) || prot < 0 || prot > 7) throw sysError('EINVAL', 'bad prot');
    const start = this.place(npages, unit, options.addr);
    const obj: AnonObject = { kind: 'anon', unit, shared: options.shared ?? false, frames: new Map(), vmas: new Set() };
    this.insert({ start, end: start + npages, prot, obj, objOffset: 0 });
    return BigInt(start) * BigInt(PAGE_SIZE);
  }

  mmapDevice(length: bigint, handler: MmioHandler, options: { prot?: number; addr?: bigint; onUnmap?: () => void } = {}): bigint {
    const npages = pagesOf(length);
    const prot = options.prot ?? PROT_READ | PROT_WRITE;
    if (!Number.isInteger(prot) || prot < 0 || prot > 7) throw sysError('EINVAL', 'bad prot');
    const start = this.place(npages, 1, options.addr);
    const obj: DeviceObject = {
      kind: 'device',
      handler,
      onUnmap: options.onUnmap,
      mmioBase: this.phys.allocMmio(npages, handler),
      vmas: new Set(),
    };
    this.insert({ start, end: start + npages, prot, obj, objOffset: 0 });
    return BigInt(start) * BigInt(PAGE_SIZE);
  }

  munmap(vaddr: bigint, length: bigint): void {
    const start = toVpn(vaddr, 'address');
    if (length <= 0n || vaddr + length > BigInt(USER_END_VPN) * BigInt(PAGE_SIZE)) {
      throw sysError('EINVAL', 'bad munmap range');
    }
    const end = start + pagesOf(length);
    const first = Math.max(0, this.floorIndex(start));
    const hit: Vma[] = [];
    for (let i = first; i < this.vmas.length && this.vmas[i]!.start < end; i++) {
      const v = this.vmas[i]!;
      if (v.end > start) hit.push(v);
    }
    // hugetlb mappings split only at hugepage boundaries (EINVAL otherwise, as hugetlb_vm_op_split); check all
    // before changing anything.
    for (const v of hit) {
      if (v.obj.kind !== 'anon' || v.obj.unit === 1) continue;
      const u = v.obj.unit;
      const cutS = Math.max(start, v.start) - v.start + v.objOffset;
      const cutE = Math.min(end, v.end) - v.start + v.objOffset;
      if (cutS % u !== 0 || cutE % u !== 0) throw sysError('EINVAL', 'unmap splits a hugepage');
    }
    for (const v of hit) this.cut(v, start, end);
  }

  /** Removes [start, end) from mapping `v`, keeping the remainders, and releases what nothing maps anymore. */
  private cut(v: Vma, start: number, end: number): void {
    const idx = this.floorIndex(v.start);
    this.vmas.splice(idx, 1);
    v.obj.vmas.delete(v);
    const cutS = Math.max(start, v.start);
    const cutE = Math.min(end, v.end);
    if (v.start < cutS) this.insert({ start: v.start, end: cutS, prot: v.prot, obj: v.obj, objOffset: v.objOffset });
    if (cutE < v.end) {
      this.insert({ start: cutE, end: v.end, prot: v.prot, obj: v.obj, objOffset: v.objOffset + (cutE - v.start) });
    }
    this.releaseRange(v.obj, v.objOffset + (cutS - v.start), v.objOffset + (cutE - v.start));
  }

  /** Releases object pages [a, b) that no mapping (in any process) covers anymore. */
  private releaseRange(obj: AnonObject | DeviceObject, a: number, b: number): void {
    if (obj.kind === 'device') {
      if (obj.vmas.size === 0) {
        this.phys.freeMmio(obj.mmioBase);
        obj.onUnmap?.();
      }
      return;
    }
    // Subtract what the object's other mappings still cover.
    let free: [number, number][] = [[a, b]];
    for (const o of obj.vmas) {
      const os = o.objOffset;
      const oe = o.objOffset + (o.end - o.start);
      const next: [number, number][] = [];
      for (const [s, e] of free) {
        if (oe <= s || os >= e) next.push([s, e]);
        else {
          if (s < os) next.push([s, os]);
          if (oe < e) next.push([oe, e]);
        }
      }
      free = next;
    }
    const u = obj.unit;
    for (const [s, e] of free) {
      const us = Math.ceil(s / u);
      const ue = Math.floor(e / u);
      if (ue - us > obj.frames.size) {
        for (const [unitIdx, base] of [...obj.frames]) {
          if (unitIdx >= us && unitIdx < ue) this.releaseUnit(obj, unitIdx, base);
        }
      } else {
        for (let unitIdx = us; unitIdx < ue; unitIdx++) {
          const base = obj.frames.get(unitIdx);
          if (base !== undefined) this.releaseUnit(obj, unitIdx, base);
        }
      }
    }
  }

  private releaseUnit(obj: AnonObject, unitIdx: number, base: number): void {
    obj.frames.delete(unitIdx);
    if (obj.unit === 1) this.phys.release4k(base);
    else this.phys.releaseHuge(base);
  }

  // ---- faults ----------------------------------------------------------------------------------------------

  /** The frame behind object page `objPage`, allocating its unit when `allocate`. */
  private frameOf(obj: AnonObject, objPage: number, allocate: boolean): number | undefined {
    const unitIdx = Math.floor(objPage / obj.unit);
    let base = obj.frames.get(unitIdx);
    if (base === undefined) {
      if (!allocate) return undefined;
      base = obj.unit === 1 ? this.phys.alloc4k() : this.phys.allocHuge(obj.unit);
      obj.frames.set(unitIdx, base);
    }
    return base + (objPage % obj.unit);
  }

  /** Checks that [vpn, vpn+npages) is mapped with `need` protection; returns the mappings in order. */
  private span(vpn: number, npages: number, need: number, allowDevice: boolean): Vma[] {
    const out: Vma[] = [];
    let p = vpn;
    const end = vpn + npages;
    while (p < end) {
      const v = this.find(p);
      if (!v) throw sysError('EFAULT', `address 0x${(BigInt(p) * BigInt(PAGE_SIZE)).toString(16)} is not mapped`);
      if ((v.prot & need) !== need) throw sysError('EFAULT', 'access not permitted by the mapping');
      if (!allowDevice && v.obj.kind === 'device') throw sysError('EFAULT', 'device memory cannot be pinned');
      out.push(v);
      p = v.end;
    }
    return out;
  }

  read(vaddr: bigint, length: number): Uint8Array {
    return this.access(vaddr, length, PROT_READ, undefined);
  }

  write(vaddr: bigint, data: Uint8Array): void {
    this.access(vaddr, data.length, PROT_WRITE, data);
  }

  /** A CPU load or store: the whole range is checked before any byte moves, so a fault changes nothing. */
  private access(vaddr: bigint, length: number, need: number, data: Uint8Array | undefined): Uint8Array {
    if (!Number.isInteger(length) || length < 0) throw sysError('EINVAL', 'bad length');
    if (vaddr < 0n) throw sysError('EFAULT', 'negative address');
    const out = data === undefined ? new Uint8Array(length) : data;
    if (length === 0) return out;
    const firstVpn = Number(vaddr / BigInt(PAGE_SIZE));
    const lastVpn = Number((vaddr + BigInt(length) - 1n) / BigInt(PAGE_SIZE));
    const vmas = this.span(firstVpn, lastVpn - firstVpn + 1, need, true);
    let addr = vaddr;
    let done = 0;
    for (const v of vmas) {
      const vEnd = BigInt(v.end) * BigInt(PAGE_SIZE);
      const n = Number(vEnd - addr < BigInt(length - done) ? vEnd - addr : BigInt(length - done));
      const objByte = addr - BigInt(v.start) * BigInt(PAGE_SIZE) + BigInt(v.objOffset) * BigInt(PAGE_SIZE);
      if (v.obj.kind === 'device') {
        if (data === undefined) out.set(v.obj.handler.read(objByte, n).subarray(0, n), done);
        else v.obj.handler.write(objByte, data.subarray(done, done + n));
      } else {
        this.anonAccess(v.obj, objByte, out, done, n, data !== undefined);
      }
      done += n;
      addr += BigInt(n);
    }
    return out;
  }

  private anonAccess(obj: AnonObject, objByte: bigint, buf: Uint8Array, bufOff: number, n: number, isWrite: boolean): void {
    let byte = Number(objByte);
    let done = 0;
    while (done < n) {
      const page = Math.floor(byte / PAGE_SIZE);
      const off = byte % PAGE_SIZE;
      const chunk = Math.min(n - done, PAGE_SIZE - off);
      // A read of a never-touched page sees the zero page and allocates nothing (Linux maps ZERO_PAGE).
      const pfn = this.frameOf(obj, page, isWrite);
      if (pfn !== undefined) {
        const pa = BigInt(pfn) * BigInt(PAGE_SIZE) + BigInt(off);
        if (isWrite) this.phys.write(pa, buf.subarray(bufOff + done, bufOff + done + chunk));
        else buf.set(this.phys.read(pa, chunk), bufOff + done);
      }
      done += chunk;
      byte += chunk;
    }
  }

  lookup(vaddr: bigint): PageLookup | undefined {
    if (vaddr < 0n) return undefined;
    const vpn = Number(vaddr / BigInt(PAGE_SIZE));
    const v = this.find(vpn);
    if (!v) return undefined;
    const objPage = vpn - v.start + v.objOffset;
    if (v.obj.kind === 'device') {
      return { pfn: BigInt(v.obj.mmioBase + objPage), prot: v.prot, pageSize: BigInt(PAGE_SIZE), device: true };
    }
    const pfn = this.frameOf(v.obj, objPage, true)!;
    return { pfn: BigInt(pfn), prot: v.prot, pageSize: BigInt(v.obj.unit * PAGE_SIZE), device: false };
  }

  // ---- pinning ---------------------------------------------------------------------------------------------

  pin(vaddr: bigint, npages: number, options: { write: boolean }): PinnedRun[] {
    const vpn = toVpn(vaddr, 'address');
    if (!Number.isInteger(npages) || npages < 0) throw sysError('EINVAL', 'bad page count');
    if (npages === 0) return [];
    if (vpn + npages > USER_END_VPN) throw sysError('EFAULT', 'range exceeds the address space');
    // Validate everything first: pinning is all or nothing (pin_user_pages unwinds on failure).
    const vmas = this.span(vpn, npages, options.write ? PROT_WRITE : PROT_READ, false);
    const runs: { vpn: number; pfn: number; n: number }[] = [];
    const end = vpn + npages;
    let p = vpn;
    for (const v of vmas) {
      const obj = v.obj as AnonObject;
      const segEnd = Math.min(end, v.end);
      while (p < segEnd) {
        const objPage = p - v.start + v.objOffset;
        const pfn = this.frameOf(obj, objPage, true)!;
        // Within one backing unit pages are contiguous; take the rest of the unit at once.
        const n = Math.min(segEnd - p, obj.unit - (objPage % obj.unit));
        const last = runs[runs.length - 1];
        if (last && last.vpn + last.n === p && last.pfn + last.n === pfn) last.n += n;
        else runs.push({ vpn: p, pfn, n });
        p += n;
      }
    }
    for (const r of runs) this.phys.addPins(r.pfn, r.n, 1);
    return runs.map((r) => ({ vaddr: BigInt(r.vpn) * BigInt(PAGE_SIZE), pfn: BigInt(r.pfn), npages: r.n }));
  }

  unpin(pfn: bigint, npages: number): void {
    if (npages <= 0) return;
    this.phys.addPins(Number(pfn), npages, -1);
  }

  // ---- fork / exit -----------------------------------------------------------------------------------------

  fork(): AddressSpace {
    const child = new SimAddressSpace(this.nextId(), this.phys, this.nextId);
    const copies = new Map<AnonObject, AnonObject>();
    for (const v of this.vmas) {
      let obj: AnonObject | DeviceObject = v.obj;
      if (obj.kind === 'anon' && !obj.shared) {
        let copy = copies.get(obj);
        if (!copy) {
          copy = this.copyObject(obj);
          copies.set(obj, copy);
        }
        obj = copy;
      }
      child.insert({ start: v.start, end: v.end, prot: v.prot, obj, objOffset: v.objOffset });
    }
    return child;
  }

  /** A private copy of an anonymous object: new frames, data copied for touched pages only. */
  private copyObject(obj: AnonObject): AnonObject {
    const copy: AnonObject = { kind: 'anon', unit: obj.unit, shared: false, frames: new Map(), vmas: new Set() };
    for (const [unitIdx, base] of obj.frames) {
      const nb = obj.unit === 1 ? this.phys.alloc4k() : this.phys.allocHuge(obj.unit);
      copy.frames.set(unitIdx, nb);
      this.phys.copyFrames(base, nb, obj.unit);
    }
    return copy;
  }

  destroy(): void {
    for (const v of [...this.vmas]) this.cut(v, v.start, v.end);
    this.destroyed = true;
  }
}

function hugepageName(unit: number): HugepageSize | undefined {
  return unit === PAGES_2M ? '2M' : unit === PAGES_1G ? '1G' : undefined;
}
