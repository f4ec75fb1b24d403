/**
 * A PowerNV IODA2-style IOMMU table group (Linux struct iommu_table_group and pnv_pci_ioda2_ops in
 * arch/powerpc/platforms/powernv/pci-ioda.c): the DMA windows of one PE. The host kernel owns it at first, with a
 * 32-bit default window at `tce32Start` and a 64-bit bypass window at 2^59; taking ownership (user space claims the
 * IOMMU group) removes both, and user space then creates up to two windows of its own (dynamic DMA windows, DDW).
 * Device DMA is translated through whichever window covers the bus address.
 */
import type { IommuFault, IommuTableGroup } from '@vfio-ts/platform';
import { sysError } from '@vfio-ts/uapi';
import { SpaprEehPe } from './eeh.js';
import { POWERNV_IOMMU_MAX_LEVELS, TCE_PCI_READ, TCE_PCI_WRITE, TceTable, tcePermOf, tceTableSize } from './tce-table.js';

/** Windows per table group (IOMMU_TABLE_GROUP_MAX_TABLES). */
export const IOMMU_TABLE_GROUP_MAX_TABLES = 2;

/** Bus address of the second window and of the host's 64-bit bypass (pe->tce_bypass_base, TVE #1 = bit 59). */
export const TCE_BYPASS_BASE = 1n << 59n;

/** TCE page sizes of a POWER9 PHB: 4 KiB, 64 KiB, 2 MiB and 1 GiB (ibm,supported-tce-sizes). */
export const POWER9_TCE_PGSIZES = (1n << 12n) | (1n << 16n) | (1n << 21n) | (1n << 30n);

/** TCE page sizes a POWER8 PHB has without a device-tree list: 4 KiB, 64 KiB, 16 MiB and 256 MiB. */
export const POWER8_TCE_PGSIZES = (1n << 12n) | (1n << 16n) | (1n << 24n) | (1n << 28n);

/** Options of one table group. */
export interface SpaprTableGroupOptions {
  /** Start of the 32-bit default window (tce32_start); default 0. */
  readonly tce32Start?: number;
  /** Size of the 32-bit default window (tce32_size, the PHB's M32 base); default 2 GiB. 0 = none. */
  readonly tce32Size?: number;
  /** Supported TCE page sizes (bit n = 2^n bytes); default {@link POWER9_TCE_PGSIZES}. Must include 4 KiB. */
  readonly pgsizes?: bigint;
  /** max_dynamic_windows_supported: 2 on IODA2, 0 for a PHB without DDW (v2 containers refuse it). */
  readonly maxDynamicWindows?: number;
  /** Largest number of TCE levels (max_levels); default 5. */
  readonly maxLevels?: number;
  /**
   * The platform's table-group operations family: two groups are compatible (may share a v2 container) only when
   * their families match, as Linux compares the create_table op. Default 'powernv-ioda2'.
   */
  readonly family?: string;
  /** Whether the platform lets user space remove windows (unset_window present); default true. */
  readonly removableWindows?: boolean;
  /** Whether the PE has EEH (eeh_iommu_group_to_pe finds a PE); default true. */
  readonly eeh?: boolean;
  /** Whether a DMA fault freezes the PE, as an IODA2 PHB does; default true. */
  readonly freezeOnFault?: boolean;
}

/** Where a DMA chunk lands after TCE translation. */
export interface SpaprDmaChunk {
  readonly pa: bigint;
  readonly length: number;
}

/** A fault recorder shared by the groups of one PHB. */
export type SpaprFaultSink = (fault: IommuFault) => void;

/** One PE's table group; implements the platform's {@link IommuTableGroup} contract. */
export class SpaprTableGroup implements IommuTableGroup {
  readonly tce32Start: number;
  readonly tce32Size: number;
  readonly pgsizes: bigint;
  readonly maxDynamicWindowsSupported: number;
  readonly maxLevels: number;
  readonly family: string;
  /** The PE's EEH state; `undefined` when the platform has no EEH for it. */
  readonly eeh: SpaprEehPe | undefined;
  /** Windows programmed into the PE (table_group->tables[]). */
  readonly tables: (TceTable | undefined)[] = [undefined, undefined];
  private owned = false;
  private bypass = false;
  private readonly freezeOnFault: boolean;
  private readonly removable: boolean;
  /** Bus addresses whose last DMA faulted, oldest first (the PHB's error log). */
  readonly faultLog: IommuFault[] = [];

  constructor(
    readonly id: number,
    options: SpaprTableGroupOptions = {},
    private readonly sink?: SpaprFaultSink,
  ) {
    const pgsizes = options.pgsizes ?? POWER9_TCE_PGSIZES;
    if ((pgsizes & (1n << 12n)) === 0n) throw sysError('EINVAL', 'pgsizes must include 4 KiB');
    const tce32Size = options.tce32Size ?? 0x8000_0000;
    const tce32Start = options.tce32Start ?? 0;
    if (!Number.isInteger(tce32Size) || tce32Size < 0 || tce32Size > 0x1_0000_0000) throw sysError('EINVAL', 'bad tce32Size');
    if (!Number.isInteger(tce32Start) || tce32Start < 0 || tce32Start % 4096 !== 0) throw sysError('EINVAL', 'bad tce32Start');
    this.tce32Start = tce32Start;
    this.tce32Size = tce32Size;
    this.pgsizes = pgsizes;
    this.maxDynamicWindowsSupported = options.maxDynamicWindows ?? IOMMU_TABLE_GROUP_MAX_TABLES;
    this.maxLevels = options.maxLevels ?? POWERNV_IOMMU_MAX_LEVELS;
    this.family = options.family ?? 'powernv-ioda2';
    this.removable = options.removableWindows ?? true;
    this.eeh = (options.eeh ?? true) ? new SpaprEehPe() : undefined;
    this.freezeOnFault = options.freezeOnFault ?? true;
    this.setupDefaultConfig();
  }

  /** True while user space (VFIO) owns the group's windows. */
  get isOwned(): boolean {
    return this.owned;
  }

  /** Whether the host's 64-bit bypass window (bus 2^59 + pa) is on. */
  get bypassEnabled(): boolean {
    return this.bypass;
  }

  /**
   * pnv_pci_ioda2_setup_default_config: the host's own 32-bit window (4K pages, multi-level) and the bypass.
   * The host maps nothing into it in this model; it exists so that ownership changes are visible.
   */
  private setupDefaultConfig(): void {
    if (this.tce32Size > 0) {
      const size = 1n << BigInt(BigInt(this.tce32Size).toString(2).length - 1);
      this.tables[0] = new TceTable({ pageShift: 12, busOffset: BigInt(this.tce32Start), windowSize: size, levels: 2 });
    }
    this.bypass = true;
  }

  /** Bytes of memory a window would take (get_table_size); 0n when the geometry is refused. */
  getTableSize(pageShift: number, windowSize: bigint, levels: number): bigint {
    return tceTableSize(pageShift, windowSize, levels);
  }

  /**
   * Creates (does not program) a table for window `num` (create_table): window 0 starts at tce32_start, window 1
   * at 2^59. EINVAL for a geometry the PHB cannot walk.
   */
  createTable(num: number, pageShift: number, windowSize: bigint, levels: number): TceTable {
    if (num !== 0 && num !== 1) throw sysError('EINVAL', `bad window number ${num}`);
    if (levels > this.maxLevels) throw sysError('EINVAL', `at most ${this.maxLevels} levels`);
    const busOffset = num === 0 ? BigInt(this.tce32Start) : TCE_BYPASS_BASE;
    return new TceTable({ pageShift, busOffset, windowSize, levels });
  }

  /** Programs `table` as window `num` of this PE (set_window); EBUSY if the slot holds another table. */
  setWindow(num: number, table: TceTable): void {
    if (num !== 0 && num !== 1) throw sysError('EINVAL', `bad window number ${num}`);
    if (table.isFreed) throw sysError('EINVAL', 'table was freed');
    const cur = this.tables[num];
    if (cur && cur !== table) throw sysError('EBUSY', `window ${num} is in use`);
    this.tables[num] = table;
  }

  /**
   * Removes window `num` from this PE (unset_window). Absent when the platform does not let user space remove
   * windows (the backend then refuses TCE_REMOVE with EPERM); see {@link SpaprTableGroupOptions.removableWindows}.
   */
  get unsetWindow(): ((num: number) => void) | undefined {
    if (!this.removable) return undefined;
    return (num) => {
      this.dropWindow(num);
    };
  }

  private dropWindow(num: number): void {
    if (num === 0 || num === 1) this.tables[num] = undefined;
  }

  /**
   * take_ownership (pnv_ioda2_take_ownership): the bypass goes off and the host's default window is removed and
   * freed, its TCEs with it. Called when user space claims the IOMMU group.
   */
  takeOwnership(): void {
    if (this.owned) return;
    this.bypass = false;
    const host = this.tables[0];
    this.dropWindow(0);
    host?.free();
    this.owned = true;
  }

  /**
   * release_ownership (pnv_ioda2_release_ownership): back to the host's default configuration, unless user space
   * left a window 0 programmed (Linux then leaves the PE alone).
   */
  releaseOwnership(): void {
    if (!this.owned) return;
    this.owned = false;
    if (this.tables[0]) return;
    this.dropWindow(1);
    this.setupDefaultConfig();
  }

  /** The window covering `busAddr`, if any. */
  windowAt(busAddr: bigint): TceTable | undefined {
    for (const t of this.tables) {
      if (!t) continue;
      const idx = busAddr >> BigInt(t.pageShift);
      if (idx >= BigInt(t.offset) && idx < BigInt(t.offset + t.size)) return t;
    }
    return undefined;
  }

  /**
   * Translates one device access at `busAddr` to a host physical address through the TCEs (or the host's bypass
   * when it is on). A missing TCE, a permission mismatch or a frozen PE is a fault: it is recorded, freezes the PE
   * (EEH) and throws EFAULT.
   */
  translate(device: string, busAddr: bigint, write: boolean): { pa: bigint; pageEnd: bigint } {
    const fault = (reason: IommuFault['reason']): never => {
      const f: IommuFault = { device, iova: busAddr, write, reason };
      this.faultLog.push(f);
      this.sink?.(f);
      if (this.freezeOnFault && reason !== 'blocked') this.eeh?.freeze();
      throw sysError('EFAULT', `TCE ${write ? 'write' : 'read'} fault at 0x${busAddr.toString(16)} (${reason})`);
    };
    if (busAddr < 0n) return fault('not-present');
    if (this.eeh && !this.eeh.dmaEnabled) return fault('blocked');
    const t = this.windowAt(busAddr);
    if (!t) {
      if (this.bypass && busAddr >= TCE_BYPASS_BASE) return { pa: busAddr - TCE_BYPASS_BASE, pageEnd: busAddr + 4096n - (busAddr % 4096n) };
      return fault('not-present');
    }
    const index = Number(busAddr >> BigInt(t.pageShift));
    const e = t.get(index);
    if (!e) return fault('not-present');
    const need = write ? TCE_PCI_WRITE : TCE_PCI_READ;
    if ((tcePermOf(e.direction) & need) === 0) return fault('permission');
    const off = busAddr & (t.pageSize - 1n);
    return { pa: e.hpa + off, pageEnd: busAddr - off + t.pageSize };
  }

  /**
   * Translates a device DMA of `length` bytes at `busAddr` into physical chunks; every TCE page is checked before
   * any byte moves. Throws EFAULT (after recording the fault) on the first bad page.
   */
  translateDma(device: string, busAddr: bigint, length: number, write: boolean): SpaprDmaChunk[] {
    if (!Number.isInteger(length) || length < 0) throw sysError('EINVAL', 'bad DMA length');
    const chunks: { pa: bigint; length: number }[] = [];
    let at = busAddr;
    let left = length;
    while (left > 0) {
      const { pa, pageEnd } = this.translate(device, at, write);
      const n = Math.min(left, Number(pageEnd - at));
      const last = chunks[chunks.length - 1];
      if (last && last.pa + BigInt(last.length) === pa) last.length += n;
      else chunks.push({ pa, length: n });
      at += BigInt(n);
      left -= n;
    }
    return chunks;
  }
}
