/**
 * The 'spapr' IOMMU hardware model: a PowerNV-style PHB whose IOMMU groups are PEs, each with a TCE table group
 * (see {@link SpaprTableGroup}). The groups implement the platform `IommuGroup` contract and additionally carry
 * `spaprTableGroup`, the seam through which the sPAPR TCE backend reaches the windows (Linux
 * iommu_group_get_iommudata). They have no paging domains: the type1 backend cannot use them, as on POWER.
 */
import type { DmaOwner, IommuDomain, IommuFault, IommuGroup, IommuHardware, ReservedRegion } from '@vfio-ts/platform';
import { sysError } from '@vfio-ts/uapi';
import type { SimGroup } from '../group.js';
import { SpaprTableGroup } from './table-group.js';
import type { SpaprDmaChunk, SpaprTableGroupOptions } from './table-group.js';

/** An IOMMU group that reaches its sPAPR table group (the additive field the backend looks for). */
export interface SpaprCapableIommuGroup extends IommuGroup {
  readonly spaprTableGroup: SpaprTableGroup;
}

/**
 * The table group behind an IOMMU group, when it has one (Linux iommu_group_get_iommudata on POWER). Works on any
 * `IommuGroup` object that carries a `spaprTableGroup` field; no registry, so two hosts never share state.
 */
export function spaprTableGroupOf(group: IommuGroup | undefined): SpaprTableGroup | undefined {
  if (!group) return undefined;
  const tg = (group as Partial<SpaprCapableIommuGroup>).spaprTableGroup;
  return tg instanceof SpaprTableGroup ? tg : undefined;
}

/**
 * An IOMMU group of the 'spapr' model: one PE. It is a {@link SimGroup} like the VT-d model's groups, so the
 * simulated PCI bus routes its members' DMA through {@link translateDma} (the PE's TCE windows).
 */
export class SpaprIommuGroup implements SpaprCapableIommuGroup, SimGroup {
  readonly spaprTableGroup: SpaprTableGroup;
  readonly members: string[] = [];
  /** PEs are hardware groups and have no sysfs `name`. */
  readonly name: string | undefined = undefined;
  /** The PHB model the PE belongs to; `undefined` for a PE built standalone (backend unit tests). */
  readonly hardware: SpaprIommu | undefined;
  /** Devices of the group bound to host drivers that do DMA. */
  kernelUsers = 0;
  private owner: DmaOwner | undefined;
  private ownerCount = 0;

  constructor(
    readonly id: number,
    options: SpaprTableGroupOptions = {},
    sink?: (fault: IommuFault) => void,
    /** The PHB model the PE belongs to (mirrors SimIommuGroup.hardware). */
    hardware?: SpaprIommu,
  ) {
    this.hardware = hardware;
    this.spaprTableGroup = new SpaprTableGroup(id, options, sink);
  }

  devices(): readonly string[] {
    return this.members;
  }

  /**
   * sysfs `type`: the default domain of a POWER group is the platform domain (IOMMU_DOMAIN_PLATFORM), which
   * iommu_group_show_type does not name.
   */
  get defaultDomainType(): 'unknown' {
    return 'unknown';
  }

  /** PowerNV reports no reserved IOVA regions for a PE (MSIs are not in the TCE windows). */
  reservedRegions(): readonly ReservedRegion[] {
    return [];
  }

  get dmaOwner(): DmaOwner | undefined {
    return this.owner;
  }

  get dmaOwnerClaimed(): boolean {
    return this.kernelUsers > 0 || this.ownerCount > 0;
  }

  /**
   * iommu_group_claim_dma_owner: EPERM while a host driver or another owner uses the group. The first claim attaches
   * the blocking domain, which on POWER takes the table group's ownership (spapr_tce_blocked_iommu_attach_dev).
   */
  claimDmaOwner(owner: DmaOwner): void {
    if (this.kernelUsers > 0) throw sysError('EPERM', `group ${this.id} is in use by a host driver`);
    if (this.ownerCount > 0) {
      if (this.owner !== owner) throw sysError('EPERM', `group ${this.id} is owned by someone else`);
      this.ownerCount++;
      return;
    }
    this.spaprTableGroup.takeOwnership();
    this.owner = owner;
    this.ownerCount = 1;
  }

  /** Releases one claim; the last gives the windows back to the host (release_ownership). */
  releaseDmaOwner(owner: DmaOwner): void {
    if (this.ownerCount === 0 || this.owner !== owner) return;
    this.ownerCount--;
    if (this.ownerCount === 0) {
      this.owner = undefined;
      this.spaprTableGroup.releaseOwnership();
    }
  }

  attachDomain(_domain: IommuDomain): void {
    throw sysError('EINVAL', `group ${this.id}: sPAPR TCE groups take no paging domain`);
  }

  detachDomain(_domain: IommuDomain): void {
    // Nothing is ever attached.
  }

  get domain(): IommuDomain | undefined {
    return undefined;
  }

  get cacheCoherent(): boolean {
    return true;
  }

  get isolatedMsi(): boolean {
    return true;
  }

  /** There are no paging domains on a TCE IOMMU. */
  allocDomain(): IommuDomain {
    throw sysError('ENODEV', `group ${this.id}: sPAPR TCE IOMMU has no paging domains`);
  }

  /** A device DMA through the PE's TCE windows (the hook the simulated PCI DMA path calls). */
  translateDma(device: string, busAddr: bigint, length: number, write: boolean): SpaprDmaChunk[] {
    return this.spaprTableGroup.translateDma(device, busAddr, length, write);
  }
}

/** Options of the 'spapr' IOMMU model: defaults for every PE it creates. */
export interface SpaprIommuOptions extends SpaprTableGroupOptions {
  /** Writes a kernel log line (dmesg) for each fault. */
  readonly log?: (text: string) => void;
}

/** The 'spapr' IOMMU hardware: creates PEs (IOMMU groups) and records their DMA faults. */
export class SpaprIommu implements IommuHardware {
  readonly kind = 'spapr';
  private readonly faultLog: IommuFault[] = [];

  constructor(private readonly options: SpaprIommuOptions = {}) {}

  /** A new PE with `id` as its IOMMU group number; per-PE options override the model's defaults. */
  newGroup(id: number, options: SpaprTableGroupOptions = {}): SpaprIommuGroup {
    const { log: _log, ...defaults } = this.options;
    return new SpaprIommuGroup(
      id,
      { ...defaults, ...options },
      (f) => {
        this.recordFault(f);
      },
      this,
    );
  }

  /** There are no paging domains on a TCE IOMMU (type1 cannot drive it). */
  allocDomain(): IommuDomain {
    throw sysError('ENODEV', 'sPAPR TCE IOMMU has no paging domains');
  }

  faults(): readonly IommuFault[] {
    return this.faultLog;
  }

  private recordFault(fault: IommuFault): void {
    this.faultLog.push(fault);
    this.options.log?.(
      `EEH: Frozen PHB PE on device ${fault.device}: TCE ${fault.write ? 'write' : 'read'} fault at 0x${fault.iova.toString(16)} (${fault.reason})`,
    );
  }
}
