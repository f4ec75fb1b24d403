/**
 * What the simulated PCI bus, sysfs and the platform need from an IOMMU group, whichever IOMMU model formed it: the
 * VT-d-like `SimIommuGroup` (a paging-domain group) and the sPAPR `SpaprIommuGroup` (a PE with TCE windows) both
 * implement it, so device DMA, host-driver ownership and sysfs treat them alike.
 */
import type { IommuGroup, IommuHardware } from '@vfio-ts/platform';

/** Where a DMA chunk lands after translation. */
export interface DmaChunk {
  readonly pa: bigint;
  readonly length: number;
}

/** An IOMMU group of the simulated host (hardware or software). */
export interface SimGroup extends IommuGroup {
  /** Member BDFs, in the order they joined (the bus and soft-group allocation push here). */
  readonly members: string[];
  /**
   * Members bound to host drivers that do DMA (iommu_device_use_default_domain); the bus counts them and
   * `claimDmaOwner` refuses with EPERM while non-zero.
   */
  kernelUsers: number;
  /** The IOMMU serving the group; `undefined` for a software group (no-IOMMU, emulated). */
  readonly hardware: IommuHardware | undefined;
  /** Group name (sysfs `name`), set for software groups. */
  readonly name: string | undefined;
  /**
   * What sysfs `type` prints (iommu_group_show_type, from the default domain): 'DMA' for a paging default
   * domain, 'unknown' when there is none or its type has no name (POWER's platform domain).
   */
  readonly defaultDomainType: 'DMA' | 'unknown';
  /**
   * Translates a device's DMA of `length` bytes at bus address `iova` into physical chunks, checking every page
   * before any byte moves; a fault is recorded by the hardware model and thrown as EFAULT.
   */
  translateDma(device: string, iova: bigint, length: number, write: boolean): DmaChunk[];
}
