/**
 * @vfio-ts/sim — a simulated host for vfio-ts: sparse physical memory, hugepage-backed address spaces, a VT-d-like
 * IOMMU with real page tables, a PCI topology whose IOMMU groups follow Linux's ACS rules, host drivers, eventfds,
 * a clock and sysfs. `simPlatform(options)` implements the `@vfio-ts/platform` contract.
 * @packageDocumentation
 */
export {
  simPlatform,
  SimPlatform,
  type SimPlatformOptions,
  type SimIommuModel,
  type VtdIommuOption,
  type SpaprIommuOption,
  type IommuOptionFor,
} from './platform.js';
export type { SimGroup } from './group.js';
export {
  pciFunctionFromConfig,
  parseBarSpec,
  ConfigSpaceFunction,
  findCapability,
  findExtCapability,
  listCapabilities,
  listExtCapabilities,
  PCI,
  type BarSpec,
  type ConfigReader,
  type PciFunctionFromConfigOptions,
} from './pci-config.js';
export {
  SimPciBus,
  SimPciDevice,
  parseBdf,
  formatBdf,
  type Bdf,
  type SimPciDeviceEntry,
  type SimPciFunctionEntry,
  type SimPciBridgeEntry,
  type SimHostDriverSpec,
} from './pci-bus.js';
export { SimIommu, SimIommuDomain, SimIommuGroup, VTD_PGSIZE_BITMAP, X86_MSI_WINDOW, type VtdOptions, type DmaChunk } from './iommu.js';
export { SimAddressSpace, type MappingInfo } from './address-space.js';
export { SimPhysicalMemory, PAGES_2M, PAGES_1G } from './physical.js';
export { SimEventFd } from './eventfd.js';
export { SimClock, type ClockMode } from './clock.js';
export { modelTestContext, ModelTestContext, ManualClock, toLe, fromLe, type ModelTestOptions } from './model-test.js';
export { SimSysfs } from './sysfs.js';
export * from './spapr/index.js';
