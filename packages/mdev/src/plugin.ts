/**
 * How the mdev bus attaches to a host: `mdev()` as a plugin, `mdevBus(api)` for drivers (it loads the bus on
 * first use, as modprobe pulls in the mdev module for a vendor driver) and `registerMdevParent(api, ...)`.
 */
import type { HostPlugin, HostPluginApi } from '@vfio-ts/core';
import { MdevBus } from './mdev.js';
import type { MdevParent } from './mdev.js';
import type { MdevParentOptions } from './types.js';

/**
 * The bus of each host, keyed by the host's plugin API object (one per host): the attachment point of
 * per-host state, so two hosts in a process never share a bus.
 */
const buses = new WeakMap<HostPluginApi, MdevBus>();

/** The mdev bus of the host behind `api`, created (with /sys/bus/mdev) on first use. */
export function mdevBus(api: HostPluginApi): MdevBus {
  let bus = buses.get(api);
  if (!bus) {
    bus = new MdevBus(api);
    buses.set(api, bus);
  }
  return bus;
}

/**
 * mdev_register_parent on the host behind `api`: the parent's types appear under
 * `<parent>/mdev_supported_types/` and devices can be created by writing UUIDs to their `create` files.
 * Undo with `parent.unregister()`.
 */
export function registerMdevParent<TT>(api: HostPluginApi, options: MdevParentOptions<TT>): MdevParent<TT> {
  return mdevBus(api).registerParent(options);
}

/** The mdev bus as a host plugin (optional: vendor drivers load it themselves through {@link mdevBus}). */
export function mdev(): HostPlugin {
  return {
    name: 'mdev',
    setup(api: HostPluginApi): void {
      mdevBus(api);
    },
  };
}
