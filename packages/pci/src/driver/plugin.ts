/**
 * The vfio-pci host driver as a plugin (Linux vfio_pci.c + vfio_pci_core_register_device, inventory §3.1, §2.6),
 * and the same machinery for variant drivers (Linux drivers built on vfio_pci_core, e.g. mlx5-vfio-pci).
 */
import { parseBoolParam } from '@vfio-ts/core';
import type { HostPlugin, HostPluginApi, VfioDevice, VfioDeviceOps } from '@vfio-ts/core';
import type { PciDeviceHandle, PciDriver } from '@vfio-ts/platform';
import { SysError } from '@vfio-ts/uapi';
import { createVirqfdContext } from '@vfio-ts/virqfd';
import { createVfioPciIrqLayer } from '../intrs/index.js';
import type { CreateVfioPciIrqLayer } from '../intrs/types.js';
import { createVfioPciCore } from './core.js';
import type { VfioPciCoreOps } from './core.js';
import { VfioPciCoreDevice } from './device.js';
import type { VfioPciEnv, VfioPciLogOps, VfioPciMigrationOps, VfioPciParams } from './device.js';
import { needsPmRestore } from './pci-state.js';
import { pmForbid, pmPut, setPowerState } from './pm.js';

/** VFIO_MIGRATION_STOP_COPY: the one migration flag every migratable device must have (§5). */
const VFIO_MIGRATION_STOP_COPY = 1;
/** sysfs name of vfio-pci's module (its parameters live at /sys/module/vfio_pci/parameters). */
const MODULE = 'vfio_pci';

/** Options of {@link vfioPci}. */
export interface VfioPciOptions {
  /**
   * Dynamic ids added at load (the `ids=` module parameter): `'vvvv:dddd'` entries; also read from the
   * `vfio_pci.ids` host parameter (comma separated, `vendor:device[:subvendor:subdevice[:class:class_mask]]`).
   */
  readonly ids?: readonly string[];
  /** Replaces the interrupt layer (tests, experiments); default: this package's. */
  readonly createIrqLayer?: CreateVfioPciIrqLayer;
}

/** A vfio-pci-based variant driver (what a Linux variant module registers with pci_register_driver). */
export interface VfioPciVariantSpec {
  /** Driver name (its /sys/bus/pci/drivers/<name> directory and the device ops' name). */
  readonly name: string;
  /** Static `vendor:device` ids the driver binds to automatically. */
  readonly ids?: readonly string[];
  /** Builds the device ops from the core's (spread them and override; default: the core as it is). */
  ops?(core: VfioPciCoreOps): VfioDeviceOps<VfioPciCoreDevice>;
  /** Runs for each device before registration (set regions, variant state...); throw to refuse the probe. */
  init?(dev: VfioPciCoreDevice): void;
  /**
   * VFIO_MIGRATION_* flags; with `migOps` they must include STOP_COPY (else the probe fails with EINVAL). Set on
   * the VFIO device (`migrationFlags`) at probe.
   */
  readonly migrationFlags?: number;
  /**
   * Migration ops: all three of set state, get state and data size, or EINVAL at registration. Set on the VFIO
   * device (`migrationOps`, Linux device->mig_ops) at probe, where the `migration()` plugin's handlers read them.
   */
  readonly migOps?: VfioPciMigrationOps;
  /**
   * DMA logging ops: all three of start, stop and read-and-clear, or EINVAL at registration. Set on the VFIO
   * device (`logOps`) at probe.
   */
  readonly logOps?: VfioPciLogOps;
  /** Replaces the interrupt layer. */
  readonly createIrqLayer?: CreateVfioPciIrqLayer;
}

/** What registering a vfio-pci-based driver returns. */
export interface VfioPciDriverHandle {
  /** The VFIO device bound to `bdf` by this driver, if any. */
  device(bdf: string): VfioDevice<VfioPciCoreDevice> | undefined;
  /** Unregisters the driver (unbinding every device, each waiting for its users). */
  unregister(): Promise<void>;
}

/** Devices vfio-pci refuses unless `disable_denylist` (vfio_pci_dev_in_denylist): Intel QAT, DSA and IAX. */
const DENYLIST = new Set(['8086:19e2', '8086:19e3', '8086:37c8', '8086:37c9', '8086:0435', '8086:0443', '8086:0b25', '8086:0cfe']);

const hex4 = (n: number): string => n.toString(16).padStart(4, '0');

function readParams(api: HostPluginApi): VfioPciParams {
  const flag = (name: string): boolean => {
    try {
      return api.param(MODULE, name) === 'Y';
    } catch {
      return false;
    }
  };
  return {
    nointxmask: flag('nointxmask'),
    disableVga: flag('disable_vga'),
    disableIdleD3: flag('disable_idle_d3'),
    disableDenylist: flag('disable_denylist'),
  };
}

function declareParams(api: HostPluginApi): void {
  const bool = (name: string, mode: number, description: string): void => {
    api.declareParam(MODULE, name, { default: 'N', mode, parse: parseBoolParam, description });
  };
  // Linux reads these once at module init (vfio_pci_core_set_params); so does the plugin at setup.
  api.declareParam(MODULE, 'ids', { default: '', mode: 0, description: 'Initial PCI IDs to add to the vfio driver' });
  bool('nointxmask', 0o644, 'Disable support for PCI 2.3 style INTx masking.');
  bool('disable_vga', 0o444, 'Disable VGA resource access through vfio-pci');
  bool('disable_idle_d3', 0o644, 'Disable using the PCI D3 low power state for idle, unused devices');
  bool('enable_sriov', 0o644, 'Enable support for SR-IOV configuration.');
  bool('disable_denylist', 0o444, 'Disable use of device denylist.');
}

/** vfio_pci_fill_ids: `vendor:device[:...]` entries, separated by commas; bad ones are logged and skipped. */
function parseIds(text: string, log: (t: string) => void): string[] {
  const out: string[] = [];
  for (const id of text.split(',').map((s) => s.trim()).filter((s) => s.length > 0)) {
    const fields = id.split(':');
    if (fields.length < 2 || fields.length > 6 || !fields.every((f) => /^[0-9a-f]{1,8}$/i.test(f))) {
      log(`vfio_pci: unable to parse id string "${id}"`);
      continue;
    }
    out.push(`${hex4(parseInt(fields[0]!, 16) & 0xffff)}:${hex4(parseInt(fields[1]!, 16) & 0xffff)}`);
  }
  return out;
}

interface DriverSetup {
  readonly name: string;
  readonly ids: readonly string[];
  readonly ops: VfioDeviceOps<VfioPciCoreDevice>;
  readonly denylist: boolean;
  readonly spec: VfioPciVariantSpec | undefined;
}

/**
 * vfio_pci_core_register_device (§3.1 P1, P2): a type-0 header only (EINVAL); complete migration/logging ops, which
 * then go on the VFIO device with the migration flags (`migrationOps`, `logOps`, `migrationFlags`);
 * the device set is the function itself on a root bus, else its bus (no slot resets are modelled); the power
 * state is probed and set to D0 and, unless `disable_idle_d3`, the idle device runtime-suspends; then the VFIO
 * device is registered with its IOMMU group.
 */
function registerCoreDevice(api: HostPluginApi, dev: VfioPciCoreDevice): void {
  const { pdev, vdev } = dev;
  if (pdev.headerType !== 0) throw new SysError('EINVAL', `${pdev.bdf} has header type ${pdev.headerType}`);
  if (dev.migOps) {
    const m = dev.migOps;
    const complete =
      typeof m.migrationGetState === 'function' &&
      typeof m.migrationSetState === 'function' &&
      typeof m.migrationGetDataSize === 'function';
    if (!complete || (dev.migrationFlags & VFIO_MIGRATION_STOP_COPY) === 0) {
      throw new SysError('EINVAL', 'incomplete migration ops');
    }
  }
  if (dev.logOps) {
    const l = dev.logOps;
    if (typeof l.logStart !== 'function' || typeof l.logStop !== 'function' || typeof l.logReadAndClear !== 'function') {
      throw new SysError('EINVAL', 'incomplete DMA logging ops');
    }
  }
  // Linux keeps these on the vfio_device (device->mig_ops, log_ops, migration_flags), where the core's feature
  // handlers (the migration() plugin) look for them; ops an `init` put on the VFIO device itself stay.
  if (dev.migOps) vdev.migrationOps = dev.migOps;
  if (dev.logOps) vdev.logOps = dev.logOps;
  if (dev.migrationFlags !== 0) vdev.migrationFlags = dev.migrationFlags;
  // §2.6: whatever a bus reset would hit shares one set, so the last close can reset the bus.
  if (pdev.parent !== undefined) vdev.assignDeviceSet(busSetId(pdev));
  dev.needsPmRestore = needsPmRestore(pdev.fn);
  setPowerState(dev, 0);
  dev.pmUsage = 1;
  if (!dev.env.params.disableIdleD3) pmPut(dev);
  try {
    api.registerGroupDevice(vdev);
  } catch (e) {
    pmForbid(dev);
    throw e;
  }
}

/** The device-set key of a PCI bus (Linux uses the struct pci_bus pointer); shared by every vfio-pci-based driver. */
export function busSetId(pdev: PciDeviceHandle): string {
  return `pci-bus:${pdev.bdf.slice(0, 7).toLowerCase()}`;
}

function registerDriver(api: HostPluginApi, setup: DriverSetup, createIrqLayer: CreateVfioPciIrqLayer): VfioPciDriverHandle {
  const params = readParams(api);
  const env: VfioPciEnv = {
    api,
    params,
    virqfd: createVirqfdContext({ onError: (e) => { api.log(`${setup.name}: virqfd: ${String(e)}`); } }),
    createIrqLayer,
    log: (text) => {
      api.log(text);
    },
  };
  const bound = new Map<string, VfioDevice<VfioPciCoreDevice>>();
  const driver: PciDriver = {
    name: setup.name,
    ids: setup.ids,
    driverManagedDma: true,
    probe: (pdev) => {
      const id = `${hex4(pdev.vendor)}:${hex4(pdev.device)}`;
      if (setup.denylist && DENYLIST.has(id)) {
        if (params.disableDenylist) {
          api.log(`${setup.name} ${pdev.bdf}: device denylist disabled - allowing device ${id}.`);
        } else {
          api.log(`${setup.name} ${pdev.bdf}: ${id} exists in vfio-pci device denylist, driver probing disallowed.`);
          throw new SysError('EINVAL', `${id} is denylisted`);
        }
      }
      const data = new VfioPciCoreDevice(pdev, env);
      const vdev = api.allocDevice({ name: pdev.bdf, ops: setup.ops, data });
      data.vdev = vdev;
      try {
        const spec = setup.spec;
        if (spec?.migrationFlags !== undefined) data.migrationFlags = spec.migrationFlags;
        if (spec?.migOps) data.migOps = spec.migOps;
        if (spec?.logOps) data.logOps = spec.logOps;
        spec?.init?.(data);
        registerCoreDevice(api, data);
      } catch (e) {
        vdev.put();
        throw e;
      }
      bound.set(pdev.bdf, vdev);
    },
    remove: async (pdev) => {
      const vdev = bound.get(pdev.bdf);
      if (!vdev) return;
      // vfio_pci_core_unregister_device: waits for every user (REQ is signalled meanwhile), then the device is
      // resumed and kept in D0, and the last reference goes.
      await vdev.unregister();
      bound.delete(pdev.bdf);
      pmForbid(vdev.data);
      vdev.put();
    },
  };
  const undo = api.registerPciDriver(driver);
  return {
    device: (bdf) => bound.get(bdf.toLowerCase()),
    unregister: undo,
  };
}

/**
 * The `vfio-pci` driver: binds only through driver_override or dynamic ids (sysfs `new_id`, the `ids` option or
 * `vfio_pci.ids` parameter), refuses bridges (EINVAL) and denylisted devices, and registers each bound function as
 * a VFIO device in its IOMMU group.
 */
export function vfioPci(options: VfioPciOptions = {}): HostPlugin {
  return {
    name: 'vfio-pci',
    setup(api) {
      declareParams(api);
      registerDriver(
        api,
        { name: 'vfio-pci', ids: [], ops: createVfioPciCore('vfio-pci'), denylist: true, spec: undefined },
        options.createIrqLayer ?? createVfioPciIrqLayer,
      );
      const ids = [...(options.ids ?? []), ...parseIds(api.param(MODULE, 'ids'), (t) => { api.log(t); })];
      for (const id of ids) {
        try {
          api.platform.pci.addDynamicId('vfio-pci', id);
          api.log(`vfio_pci: add [${id}[ffffffff:ffffffff]] class 0x000000/00000000`);
        } catch (e) {
          api.log(`vfio_pci: failed to add dynamic id ${id}: ${String(e)}`);
        }
      }
    },
  };
}

/**
 * Registers a vfio-pci-based variant driver. With the plugin API (inside a plugin's setup) it registers at once and
 * returns the driver's handle; with the spec alone it returns a host plugin that does so (same as
 * {@link vfioPciVariant}). The driver binds by its static ids (or driver_override / new_id), and its devices are
 * vfio-pci devices whose ops are `spec.ops(core)`.
 */
export function registerVfioPciVariant(spec: VfioPciVariantSpec): HostPlugin;
export function registerVfioPciVariant(api: HostPluginApi, spec: VfioPciVariantSpec): VfioPciDriverHandle;
export function registerVfioPciVariant(
  a: HostPluginApi | VfioPciVariantSpec,
  b?: VfioPciVariantSpec,
): VfioPciDriverHandle | HostPlugin {
  if (b === undefined) return vfioPciVariant(a as VfioPciVariantSpec);
  const api = a as HostPluginApi;
  const spec = b;
  const core = createVfioPciCore(spec.name);
  const ops = spec.ops ? { ...spec.ops(core) } : core;
  // A variant that overrides `read` but kept the core's `readInto` would have preadInto bypass its read: drop the
  // inherited readInto, so the VFIO core falls back to the variant's read plus a copy.
  if (ops.read !== core.read && ops.readInto === core.readInto) delete (ops as Partial<VfioPciCoreOps>).readInto;
  return registerDriver(
    api,
    { name: spec.name, ids: spec.ids ?? [], ops: { ...ops, name: ops.name ?? spec.name }, denylist: false, spec },
    spec.createIrqLayer ?? createVfioPciIrqLayer,
  );
}

/** A variant driver as a host plugin (`createHost({ plugins: [type1(), vfioPci(), vfioPciVariant({...})] })`). */
export function vfioPciVariant(spec: VfioPciVariantSpec): HostPlugin {
  return {
    name: spec.name,
    setup(api) {
      registerVfioPciVariant(api, spec);
    },
  };
}
