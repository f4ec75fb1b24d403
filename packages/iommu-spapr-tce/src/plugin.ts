/**
 * The sPAPR TCE backend as a host plugin (Linux tce_iommu_driver_ops, "iommu-vfio-powerpc"; inventory §2.5).
 */
import type { HostPluginApiBase, VfioIommuDriverOps } from '@vfio-ts/core';
import type { AddressSpace } from '@vfio-ts/platform';
import { SysError, VFIO_SPAPR_TCE_IOMMU, VFIO_SPAPR_TCE_v2_IOMMU } from '@vfio-ts/uapi';
import { TceContainer } from './container.js';
import type { SpaprTceEnv } from './container.js';
import { spaprIoctl } from './ioctl.js';
import { MmIommuContext } from './prereg.js';
import { defaultTableGroupOf } from './table-group.js';
import type { TableGroupLookup } from './table-group.js';

/** The backend's registered name (tce_iommu_driver_ops.name). */
export const SPAPR_TCE_NAME = 'iommu-vfio-powerpc';
/** The kernel module the backend stands for. */
export const SPAPR_TCE_MODULE = 'vfio_iommu_spapr_tce';

/** Options of the backend. */
export interface SpaprTceOptions {
  /** Whether the platform has EEH (eeh_enabled(): CHECK_EXTENSION(VFIO_EEH) and EEH ENABLE); default true. */
  readonly eeh?: boolean;
  /**
   * How to find the table group of an IOMMU group (iommu_group_get_iommudata). Default: the group's
   * `spaprTableGroup` field, which `@vfio-ts/sim`'s 'spapr' IOMMU model provides.
   */
  readonly tableGroupOf?: TableGroupLookup;
  /** Kernel log sink for the backend's warnings when used without a host (the host's log otherwise). */
  readonly log?: (text: string) => void;
}

/**
 * The backend ops: one {@link TceContainer} per container that selected VFIO_SPAPR_TCE_IOMMU (2) or
 * VFIO_SPAPR_TCE_v2_IOMMU (7). Pre-registered memory is kept per address space and shared by every container of
 * this ops object (one host), as Linux keeps it in the mm.
 */
export function spaprTceDriverOps(options: SpaprTceOptions = {}): VfioIommuDriverOps<TceContainer> {
  const registries = new WeakMap<AddressSpace, MmIommuContext>();
  let hostLog: ((text: string) => void) | undefined = options.log;
  const env: SpaprTceEnv = {
    eehEnabled: options.eeh ?? true,
    tableGroupOf: options.tableGroupOf ?? defaultTableGroupOf,
    registryOf(mm) {
      let r = registries.get(mm);
      if (!r) {
        r = new MmIommuContext(mm);
        registries.set(mm, r);
      }
      return r;
    },
    log(text) {
      hostLog?.(text);
    },
  };
  return {
    name: SPAPR_TCE_NAME,
    module: SPAPR_TCE_MODULE,
    open(type, backendEnv) {
      hostLog ??= (text) => {
        backendEnv.log(text);
      };
      if (type !== VFIO_SPAPR_TCE_IOMMU && type !== VFIO_SPAPR_TCE_v2_IOMMU) {
        env.log('tce_vfio: Wrong IOMMU type');
        throw new SysError('EINVAL', `sPAPR TCE does not implement IOMMU type ${type}`);
      }
      return new TceContainer(type === VFIO_SPAPR_TCE_v2_IOMMU, env);
    },
    release(data) {
      data.release();
    },
    ioctl(data, cmd, arg, call) {
      return spaprIoctl(data, cmd, arg, call, env);
    },
    attachGroup(data, group) {
      data.attachGroup(group);
    },
    detachGroup(data, group) {
      data.detachGroup(group);
    },
    describe(data) {
      return { ...data.describe() };
    },
  };
}

/** A host plugin, as `createHost({ plugins })` takes it. */
export interface SpaprTcePlugin {
  readonly name: 'iommu-vfio-powerpc';
  /** Registers the backend; returns the registration's undo. */
  setup(api: HostPluginApiBase): () => void;
}

/**
 * The sPAPR TCE IOMMU backend plugin.
 *
 * @example
 * const host = createHost({ platform, plugins: [spaprTce(), vfioPci()] });
 */
export function spaprTce(options: SpaprTceOptions = {}): SpaprTcePlugin {
  return {
    name: SPAPR_TCE_NAME,
    setup(api) {
      const ops = spaprTceDriverOps({
        ...options,
        log:
          options.log ??
          ((text) => {
            api.log(text);
          }),
      });
      return api.registerIommuDriver(ops);
    },
  };
}
