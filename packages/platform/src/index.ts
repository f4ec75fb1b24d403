/**
 * @vfio-ts/platform — the contracts the VFIO core stands on: process memory, the calling task, IOMMU hardware,
 * eventfds and PCI functions. Interfaces and small value types only; `@vfio-ts/sim` implements them.
 * @packageDocumentation
 */
export * from './memory.js';
export * from './task.js';
export * from './iommu.js';
export * from './eventfd.js';
export * from './pci.js';
export * from './vfs.js';
export * from './host.js';
