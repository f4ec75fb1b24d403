/**
 * The simulated IOMMU ('vtd', an Intel VT-d-like model): paging domains with real 4-level page tables holding
 * 4K/2M/1G entries, IOMMU groups with DMA ownership (Linux iommu.c: claim/release, blocking and default domains),
 * reserved regions, and fault recording for device DMA.
 */
import type {
  DmaOwner,
  IommuDomain,
  IommuDomainStats,
  IommuFault,
  IommuHardware,
  ReservedRegion,
} from '@vfio-ts/platform';
import { IOMMU_READ, IOMMU_WRITE } from '@vfio-ts/platform';
import { sysError } from '@vfio-ts/uapi';
import type { DmaChunk, SimGroup } from './group.js';

export type { DmaChunk } from './group.js';

/** 4 KiB | 2 MiB | 1 GiB: the page sizes of a VT-d second-level table with 1G support. */
export const VTD_PGSIZE_BITMAP = (1n << 12n) | (1n << 21n) | (1n << 30n);

/** The x86 MSI doorbell window every VT-d group reports as reserved (IOAPIC_RANGE_START..END). */
export const X86_MSI_WINDOW: ReservedRegion = { start: 0xfee00000n, end: 0xfeefffffn, type: 'msi' };

/** Options of the 'vtd' model. */
export interface VtdOptions {
  /** Page sizes the page tables hold (bit n = 2^n bytes); a subset of 4K|2M|1G. Default all three. */
  pgsizeBitmap?: bigint;
  /** IOVA width in bits: the aperture is 0..2^bits-1 (default 48, at most 48). */
  apertureBits?: number;
  /** IOMMU_CAP_CACHE_COHERENCY (snoop control); default true. */
  cacheCoherent?: boolean;
  /** Interrupt remapping isolates MSIs (iommu_group_has_isolated_msi); default true. */
  isolatedMsi?: boolean;
}

const LEVEL_SHIFT = [0, 12, 21, 30, 39] as const;

interface Leaf {
  readonly leaf: true;
  /** Physical frame of the entry's first page. */
  readonly pfn: number;
  readonly prot: number;
  /** 1 = 4K, 2 = 2M, 3 = 1G. */
  readonly level: number;
}

interface Table {
  readonly leaf: false;
  readonly slots: (Table | Leaf | undefined)[];
  used: number;
}

function newTable(): Table {
  return { leaf: false, slots: new Array<Table | Leaf | undefined>(512), used: 0 };
}

const pow2 = (shift: number): number => 2 ** shift;

/** A paging domain with a VT-d-style 4-level page table. */
export class SimIommuDomain implements IommuDomain {
  private readonly root = newTable();
  private mapCalls = 0;
  private unmapCalls = 0;
  private readonly byLevel = [0, 0, 0, 0];
  private freed = false;
  /** Groups attached to the domain. */
  readonly groups = new Set<SimIommuGroup>();
  /** Page sizes present in the bitmap, largest first, as page-table levels. */
  private readonly levels: number[];

  constructor(
    readonly id: number,
    readonly pgsizeBitmap: bigint,
    readonly aperture: { readonly start: bigint; readonly end: bigint },
    readonly enforceCacheCoherency: boolean,
  ) {
    this.levels = [3, 2, 1].filter((l) => (pgsizeBitmap >> BigInt(LEVEL_SHIFT[l]!)) & 1n);
  }

  get stats(): IommuDomainStats {
    const entries = new Map<bigint, number>();
    for (const l of [1, 2, 3]) if (this.byLevel[l]! > 0) entries.set(1n << BigInt(LEVEL_SHIFT[l]!), this.byLevel[l]!);
    return { mapCalls: this.mapCalls, unmapCalls: this.unmapCalls, entriesByPageSize: entries };
  }

  private get minShift(): number {
    return LEVEL_SHIFT[this.levels[this.levels.length - 1]!]!;
  }

  private checkLive(): void {
    if (this.freed) throw sysError('ENODEV', 'domain was freed');
  }

  map(iova: bigint, pa: bigint, size: bigint, prot: number): void {
    this.checkLive();
    const min = 1n << BigInt(this.minShift);
    if (size <= 0n || iova < 0n || pa < 0n) throw sysError('EINVAL', 'bad range');
    if ((iova | pa | size) % min !== 0n) throw sysError('EINVAL', 'range not aligned to the minimum page size');
    if ((prot & (IOMMU_READ | IOMMU_WRITE)) === 0) throw sysError('EINVAL', 'mapping without read or write');
    if (iova < this.aperture.start || iova + size - 1n > this.aperture.end) {
      throw sysError('ERANGE', 'range outside the aperture');
    }
    let v = Number(iova);
    let p = Number(pa);
    const end = v + Number(size);
    if (this.present(this.root, 4, 0, v, end)) throw sysError('EEXIST', 'IOVA already mapped');
    this.mapCalls++;
    while (v < end) {
      // iommu_pgsize: the largest page size that the alignment of both addresses and the remaining size allow.
      let level = 1;
      for (const l of this.levels) {
        const sz = pow2(LEVEL_SHIFT[l]!);
        if (v % sz === 0 && p % sz === 0 && end - v >= sz) {
          level = l;
          break;
        }
      }
      this.setLeaf(v, { leaf: true, pfn: p / 4096, prot, level });
      const sz = pow2(LEVEL_SHIFT[level]!);
      v += sz;
      p += sz;
    }
  }

  /** True if any entry lies in [s, e) below `t` (a table of `level` covering from `base`). */
  private present(t: Table, level: number, base: number, s: number, e: number): boolean {
    if (t.used === 0) return false;
    const span = pow2(LEVEL_SHIFT[level]!);
    const first = Math.max(0, Math.floor((s - base) / span));
    const last = Math.min(511, Math.floor((e - 1 - base) / span));
    for (let i = first; i <= last; i++) {
      const slot = t.slots[i];
      if (!slot) continue;
      if (slot.leaf) return true;
      if (this.present(slot, level - 1, base + i * span, s, e)) return true;
    }
    return false;
  }

  private setLeaf(iova: number, leaf: Leaf): void {
    let t = this.root;
    for (let level = 4; ; level--) {
      const i = Math.floor(iova / pow2(LEVEL_SHIFT[level]!)) % 512;
      const slot = t.slots[i];
      if (level === leaf.level) {
        // An empty lower table left behind by earlier unmaps is replaced by the large entry.
        if (!slot) t.used++;
        t.slots[i] = leaf;
        this.byLevel[leaf.level]!++;
        return;
      }
      let next = slot;
      if (!next || next.leaf) {
        next = newTable();
        t.slots[i] = next;
        t.used++;
      }
      t = next;
    }
  }

  unmap(iova: bigint, size: bigint): bigint {
    this.checkLive();
    const min = 1n << BigInt(this.minShift);
    if (size <= 0n || iova < 0n || (iova | size) % min !== 0n) {
      throw sysError('EINVAL', 'range not aligned to the minimum page size');
    }
    this.unmapCalls++;
    const s = Number(iova);
    const e = s + Number(size);
    return BigInt(this.clear(this.root, 4, 0, s, e));
  }

  /** Removes every entry overlapping [s, e) (large entries go whole) and prunes empty tables; returns bytes. */
  private clear(t: Table, level: number, base: number, s: number, e: number): number {
    if (t.used === 0) return 0;
    const span = pow2(LEVEL_SHIFT[level]!);
    const first = Math.max(0, Math.floor((s - base) / span));
    const last = Math.min(511, Math.floor((e - 1 - base) / span));
    let bytes = 0;
    for (let i = first; i <= last; i++) {
      const slot = t.slots[i];
      if (!slot) continue;
      if (slot.leaf) {
        bytes += span;
        this.byLevel[slot.level]!--;
        t.slots[i] = undefined;
        t.used--;
      } else {
        bytes += this.clear(slot, level - 1, base + i * span, s, e);
        if (slot.used === 0) {
          t.slots[i] = undefined;
          t.used--;
        }
      }
    }
    return bytes;
  }

  translate(iova: bigint): { pa: bigint; prot: number } | undefined {
    if (this.freed || iova < 0n || iova > this.aperture.end) return undefined;
    const v = Number(iova);
    let t: Table = this.root;
    for (let level = 4; level >= 1; level--) {
      const span = pow2(LEVEL_SHIFT[level]!);
      const slot = t.slots[Math.floor(v / span) % 512];
      if (!slot) return undefined;
      if (slot.leaf) {
        return { pa: BigInt(slot.pfn) * 4096n + BigInt(v % span), prot: slot.prot };
      }
      t = slot;
    }
    return undefined;
  }

  free(): void {
    if (this.freed) return;
    if (this.groups.size > 0) throw sysError('EBUSY', 'domain still has attached groups');
    this.freed = true;
  }

  /** True once {@link free} succeeded. */
  get isFreed(): boolean {
    return this.freed;
  }
}

/** The IOMMU hardware model. */
export class SimIommu implements IommuHardware {
  readonly kind = 'vtd';
  readonly pgsizeBitmap: bigint;
  readonly aperture: { readonly start: bigint; readonly end: bigint };
  readonly cacheCoherent: boolean;
  readonly isolatedMsi: boolean;
  private nextDomain = 1;
  private readonly faultLog: IommuFault[] = [];

  constructor(
    options: VtdOptions,
    private readonly log: (text: string) => void,
  ) {
    const bitmap = options.pgsizeBitmap ?? VTD_PGSIZE_BITMAP;
    if ((bitmap & (1n << 12n)) === 0n || (bitmap & ~VTD_PGSIZE_BITMAP) !== 0n) {
      throw sysError('EINVAL', 'pgsizeBitmap must contain 4K and only 4K/2M/1G');
    }
    const bits = options.apertureBits ?? 48;
    if (!Number.isInteger(bits) || bits < 32 || bits > 48) throw sysError('EINVAL', 'apertureBits must be 32..48');
    this.pgsizeBitmap = bitmap;
    this.aperture = { start: 0n, end: (1n << BigInt(bits)) - 1n };
    this.cacheCoherent = options.cacheCoherent ?? true;
    this.isolatedMsi = options.isolatedMsi ?? true;
  }

  allocDomain(): SimIommuDomain {
    return new SimIommuDomain(this.nextDomain++, this.pgsizeBitmap, this.aperture, this.cacheCoherent);
  }

  faults(): readonly IommuFault[] {
    return this.faultLog;
  }

  /** Records a fault and prints it the way the VT-d driver does (dmar_fault_do_one). */
  recordFault(fault: IommuFault): void {
    this.faultLog.push(fault);
    const [, bus = '00', devfn = '00.0'] = fault.device.split(':');
    const reason =
      fault.reason === 'blocked'
        ? '[fault reason 0x02] Present bit in context entry is clear'
        : fault.write
          ? '[fault reason 0x05] PTE Write access is not set'
          : '[fault reason 0x06] PTE Read access is not set';
    this.log(
      `DMAR: [DMA ${fault.write ? 'Write' : 'Read'} NO_PASID] Request device [${bus}:${devfn}] fault addr 0x${fault.iova.toString(16)} ${reason}`,
    );
  }
}


/**
 * An IOMMU group. Ownership follows Linux iommu.c: a DMA-doing host driver bound to a member counts as a (kernel)
 * owner; user space claims exclusively; the last release returns the group to its default domain.
 */
export class SimIommuGroup implements SimGroup {
  private owner: DmaOwner | undefined;
  private ownerCount = 0;
  /** Devices of the group bound to drivers that do DMA (iommu_device_use_default_domain). */
  kernelUsers = 0;
  private attached: SimIommuDomain | undefined;
  readonly members: string[] = [];

  constructor(
    readonly id: number,
    /** The hardware, or undefined for a software group (no-IOMMU / emulated). */
    readonly hardware: SimIommu | undefined,
    /** Group name (sysfs `name`), set for software groups. */
    readonly name: string | undefined,
  ) {}

  devices(): readonly string[] {
    return this.members;
  }

  /** A hardware group's default domain is the (identity stand-in for the) DMA domain; software groups have none. */
  get defaultDomainType(): 'DMA' | 'unknown' {
    return this.hardware ? 'DMA' : 'unknown';
  }

  reservedRegions(): readonly ReservedRegion[] {
    return this.hardware ? [X86_MSI_WINDOW] : [];
  }

  get dmaOwner(): DmaOwner | undefined {
    return this.owner;
  }

  /** iommu_group_dma_owner_claimed: a DMA-doing host driver or user space owns the group. */
  get dmaOwnerClaimed(): boolean {
    return this.kernelUsers > 0 || this.ownerCount > 0;
  }

  claimDmaOwner(owner: DmaOwner): void {
    // iommu_device_claim_dma_owner: -EPERM while the group is used by a kernel driver or another owner.
    if (this.kernelUsers > 0) throw sysError('EPERM', `group ${this.id} is in use by a host driver`);
    if (this.ownerCount > 0) {
      if (this.owner !== owner) throw sysError('EPERM', `group ${this.id} is owned by someone else`);
      this.ownerCount++;
      return;
    }
    // __iommu_take_dma_ownership: a domain attached outside ownership makes the group busy.
    if (this.attached) throw sysError('EBUSY', `group ${this.id} is attached to a domain`);
    this.owner = owner;
    this.ownerCount = 1;
  }

  releaseDmaOwner(owner: DmaOwner): void {
    if (this.ownerCount === 0 || this.owner !== owner) return; // WARN_ON in Linux; nothing to undo
    this.ownerCount--;
    if (this.ownerCount === 0) {
      this.owner = undefined;
      // Back to the default domain, whatever user space left attached.
      if (this.attached) {
        this.attached.groups.delete(this);
        this.attached = undefined;
      }
    }
  }

  attachDomain(domain: IommuDomain): void {
    if (!this.hardware) throw sysError('ENODEV', `group ${this.id} has no IOMMU`);
    if (!(domain instanceof SimIommuDomain) || domain.isFreed) throw sysError('EINVAL', 'not a domain of this IOMMU');
    if (this.attached) throw sysError('EBUSY', `group ${this.id} is already attached to a domain`);
    this.attached = domain;
    domain.groups.add(this);
  }

  detachDomain(domain: IommuDomain): void {
    if (this.attached !== domain) return;
    this.attached.groups.delete(this);
    this.attached = undefined;
  }

  get domain(): IommuDomain | undefined {
    return this.attached;
  }

  get cacheCoherent(): boolean {
    return this.hardware?.cacheCoherent ?? false;
  }

  /** Whether MSIs are isolated (interrupt remapping); software groups have no IOMMU and so no isolation. */
  get isolatedMsi(): boolean {
    return this.hardware?.isolatedMsi ?? false;
  }

  /** A paging domain on the IOMMU serving the group (iommu_paging_domain_alloc); ENODEV for software groups. */
  allocDomain(): SimIommuDomain {
    if (!this.hardware) throw sysError('ENODEV', `group ${this.id} has no IOMMU`);
    return this.hardware.allocDomain();
  }

  /**
   * Translates a device's DMA of `length` bytes at `iova`: through the attached domain, blocked while user space
   * owns the group without one, identity otherwise. Every page is checked before any byte moves; a fault is
   * recorded (and logged) and thrown as EFAULT.
   */
  translateDma(device: string, iova: bigint, length: number, write: boolean): DmaChunk[] {
    if (iova < 0n || length < 0) throw sysError('EINVAL', 'bad DMA range');
    const domain = this.attached;
    if (!this.hardware || (!domain && !this.owner)) return [{ pa: iova, length }];
    const fault = (at: bigint, reason: IommuFault['reason']): never => {
      this.hardware!.recordFault({ device, iova: at, write, reason });
      throw sysError('EFAULT', `DMA ${write ? 'write' : 'read'} fault at 0x${at.toString(16)} (${reason})`);
    };
    if (!domain) return fault(iova, 'blocked');
    const chunks: { pa: bigint; length: number }[] = [];
    let at = iova;
    let left = length;
    const need = write ? IOMMU_WRITE : IOMMU_READ;
    while (left > 0) {
      const t = domain.translate(at);
      if (!t) return fault(at, 'not-present');
      if ((t.prot & need) === 0) return fault(at, 'permission');
      const n = Math.min(left, 4096 - Number(at % 4096n));
      const last = chunks[chunks.length - 1];
      if (last && last.pa + BigInt(last.length) === t.pa) last.length += n;
      else chunks.push({ pa: t.pa, length: n });
      at += BigInt(n);
      left -= n;
    }
    return chunks;
  }
}
