/**
 * The type1 backend as a host plugin: module parameters (§4) and the `VfioIommuDriverOps` registration (§2.5).
 */
import type { HostPluginApiBase, VfioIommuDriverOps } from '@vfio-ts/core';
import { SysError, VFIO_TYPE1_IOMMU, VFIO_TYPE1v2_IOMMU, __VFIO_RESERVED_TYPE1_NESTING_IOMMU } from '@vfio-ts/uapi';
import { Type1Container } from './container.js';
import { type1Ioctl } from './ioctl.js';
import { parseBoolParam, parseUintParam } from './params.js';

/** The kernel module whose parameters the backend reads (/sys/module/vfio_iommu_type1/parameters/*). */
export const TYPE1_MODULE = 'vfio_iommu_type1';
/** The backend's registered name. */
export const TYPE1_NAME = 'vfio-iommu-type1';

/** Default values for the module parameters (each stays writable at run time through sysfs, mode 0644). */
export interface Type1Options {
  /** `dma_entry_limit`: mappings per container (Linux default 65535). */
  readonly dmaEntryLimit?: number;
  /** `disable_hugepages`: pin and map one page at a time (default false). */
  readonly disableHugepages?: boolean;
  /** `allow_unsafe_interrupts`: attach groups without MSI isolation (default false). */
  readonly allowUnsafeInterrupts?: boolean;
}

/** The backend ops: one {@link Type1Container} per container that selected type1 or type1v2. */
export function type1DriverOps(): VfioIommuDriverOps<Type1Container> {
  return {
    name: TYPE1_NAME,
    module: TYPE1_MODULE,
    open(type, env) {
      switch (type) {
        case VFIO_TYPE1_IOMMU:
          return new Type1Container(false, env);
        case VFIO_TYPE1v2_IOMMU:
        case __VFIO_RESERVED_TYPE1_NESTING_IOMMU:
          // The reserved nesting type opens as v2 (never offered by CHECK_EXTENSION).
          return new Type1Container(true, env);
        default:
          throw new SysError('EINVAL', `type1 does not implement IOMMU type ${type}`);
      }
    },
    release(data) {
      data.release();
    },
    ioctl(data, cmd, arg, call) {
      return type1Ioctl(data, cmd, arg, call);
    },
    attachGroup(data, group) {
      data.attachGroup(group);
    },
    detachGroup(data, group) {
      data.detachGroup(group);
    },
    pinPages(data, group, iova, npage, prot) {
      return data.pinPages(group.id, iova, npage, prot);
    },
    unpinPages(data, iova, npage) {
      data.unpinPages(iova, npage);
    },
    registerDevice(data, device) {
      data.registerDevice(device);
    },
    unregisterDevice(data, device) {
      data.unregisterDevice(device);
    },
    dmaRw(data, iova, buf, write) {
      data.dmaRw(iova, buf, write);
    },
    describe(data) {
      return { ...data.describe() };
    },
  };
}

/** A host plugin, as `createHost({ plugins })` takes it. */
export interface Type1Plugin {
  readonly name: 'vfio-iommu-type1';
  /** Declares the module parameters and registers the backend; returns the registration's undo. */
  setup(api: HostPluginApiBase): () => void;
}

/**
 * The type1 IOMMU backend plugin.
 *
 * @example
 * const host = createHost({ platform: simPlatform({ iommu: 'vtd', devices }), plugins: [type1()] });
 */
export function type1(options: Type1Options = {}): Type1Plugin {
  return {
    name: TYPE1_NAME,
    setup(api) {
      api.declareParam(TYPE1_MODULE, 'dma_entry_limit', {
        default: String(options.dmaEntryLimit ?? 65535),
        mode: 0o644,
        parse: parseUintParam,
        description: 'Maximum number of user DMA mappings per container (65535).',
      });
      api.declareParam(TYPE1_MODULE, 'disable_hugepages', {
        default: options.disableHugepages ? 'Y' : 'N',
        mode: 0o644,
        parse: parseBoolParam,
        description: 'Disable VFIO IOMMU support for IOMMU hugepages.',
      });
      api.declareParam(TYPE1_MODULE, 'allow_unsafe_interrupts', {
        default: options.allowUnsafeInterrupts ? 'Y' : 'N',
        mode: 0o644,
        parse: parseBoolParam,
        description: 'Enable VFIO IOMMU support for on platforms without interrupt remapping support.',
      });
      return api.registerIommuDriver(type1DriverOps());
    },
  };
}
