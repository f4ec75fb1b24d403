/**
 * The host plugins the CLI's simulated hosts load: the type1 IOMMU backend and the vfio-pci driver.
 */
import type { HostPlugin } from '@vfio-ts/core';
import { type1 } from '@vfio-ts/iommu-type1';
import { vfioPci } from '@vfio-ts/pci';

/** The type1 IOMMU backend. */
export function iommuType1(): HostPlugin {
  return type1();
}

/** The vfio-pci driver. */
export function vfioPciPlugin(): HostPlugin {
  return vfioPci();
}
