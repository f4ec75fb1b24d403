/**
 * Power states and resets (inventory §3.5, §1.6): vfio_pci_set_power_state, DEVICE_RESET, the hot-reset info and
 * hot reset over the device set with proof of ownership through group fds, and the automatic bus reset of an idle
 * set at last close (vfio_pci_dev_set_try_reset).
 */
import type { DeviceSet, OpenFile, SyscallContext, VfioDevice } from '@vfio-ts/core';
import type { PciDeviceHandle } from '@vfio-ts/platform';
import { SysError, isSysError, vfioPciDependentDevice, vfioPciHotReset, vfioPciHotResetInfo } from '@vfio-ts/uapi';
import { VfioPciCoreDevice } from './device.js';
import { splitBdf } from './pci-state.js';
import { pmGet, pmPut, setPowerState } from './pm.js';

/** The vfio-pci state behind a member of a device set, if it is a vfio-pci (or variant) device. */
export function coreOf(d: VfioDevice): VfioPciCoreDevice | undefined {
  return d.data instanceof VfioPciCoreDevice ? d.data : undefined;
}

/**
 * The functions a hot reset of `pdev` would hit (pci_probe_reset_bus + pci_walk_bus): ENODEV when no bus reset is
 * possible (a root bus). Slot resets are not modelled by the platform, so the scope is always the bus.
 */
export function hotResetScope(pdev: PciDeviceHandle): readonly PciDeviceHandle[] {
  try {
    return pdev.busResetScope();
  } catch (e) {
    if (isSysError(e)) throw new SysError('ENODEV', `${pdev.bdf}: neither slot nor bus reset is possible`);
    throw e;
  }
}

/**
 * vfio_pci_dev_set_resettable: the PCI function to pass to the bus reset when every function it would hit is a
 * member of the set, else undefined.
 */
export function setResettable(set: DeviceSet): PciDeviceHandle | undefined {
  const first = set.devices.map(coreOf).find((c) => c !== undefined);
  if (!first) return undefined;
  let scope: readonly PciDeviceHandle[];
  try {
    scope = first.pdev.busResetScope();
  } catch {
    return undefined;
  }
  for (const p of scope) if (!set.find(p.bdf)) return undefined;
  return first.pdev;
}

function u32(bytes: Uint8Array, offset: number): number {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(offset, true);
}

/**
 * VFIO_DEVICE_GET_PCI_HOT_RESET_INFO (group path): ENODEV without a possible reset, ENOSPC with `count` set when
 * the array does not fit (the header is still copied out), EPERM when an affected function has no IOMMU group.
 */
export function getHotResetInfo(dev: VfioPciCoreDevice, bytes: Uint8Array): number {
  const minsz = vfioPciHotResetInfo.minsz;
  if (bytes.length < minsz) throw new SysError('EFAULT', 'vfio_pci_hot_reset_info beyond the buffer');
  const argsz = u32(bytes, 0);
  if (argsz < minsz) throw new SysError('EINVAL', `argsz ${argsz} < ${minsz}`);
  const scope = hotResetScope(dev.pdev);
  const count = scope.length;
  const entry = vfioPciDependentDevice.size;
  if (count > Math.floor((argsz - minsz) / entry)) {
    vfioPciHotResetInfo.write(bytes, { argsz, flags: 0, count });
    throw new SysError('ENOSPC', `${count} devices affected`);
  }
  const entries = scope.map((p) => {
    const group = p.iommuGroup;
    if (!group) throw new SysError('EPERM', `${p.bdf} has no IOMMU group`);
    return { group_id: group.id, ...splitBdf(p.bdf) };
  });
  if (bytes.length < minsz + count * entry) throw new SysError('EFAULT', 'devices[] beyond the buffer');
  vfioPciHotResetInfo.write(bytes, { argsz, flags: 0, count });
  entries.forEach((e, i) => {
    vfioPciDependentDevice.write(bytes, e, minsz + i * entry);
  });
  return 0;
}

/**
 * VFIO_DEVICE_PCI_HOT_RESET with group fds (§1.6): flags ≠ 0, count 0 or above the affected functions → EINVAL; a
 * bad fd → EBADF; an fd that is no VFIO group → EINVAL; then the set-wide reset ({@link devSetHotReset}).
 */
export function pciHotReset(dev: VfioPciCoreDevice, bytes: Uint8Array, call: SyscallContext): number {
  const minsz = vfioPciHotReset.minsz;
  if (bytes.length < minsz) throw new SysError('EFAULT', 'vfio_pci_hot_reset beyond the buffer');
  const hdr = vfioPciHotReset.decode(bytes);
  if (hdr.argsz < minsz || hdr.flags !== 0) throw new SysError('EINVAL', 'bad vfio_pci_hot_reset header');
  // Group-opened devices must prove ownership with a non-empty array (a zero-length array is the cdev form).
  if (hdr.count === 0) throw new SysError('EINVAL', 'group-opened devices need group fds');
  const scope = hotResetScope(dev.pdev);
  if (hdr.count > scope.length) throw new SysError('EINVAL', `${hdr.count} group fds for ${scope.length} devices`);
  if (bytes.length < minsz + 4 * hdr.count) throw new SysError('EFAULT', 'group_fds[] beyond the buffer');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const files: OpenFile[] = [];
  try {
    for (let i = 0; i < hdr.count; i++) {
      const fd = view.getInt32(minsz + 4 * i, true);
      const file = call.file(fd).get();
      if (!dev.env.api.fileIsGroup(file)) {
        file.put();
        throw new SysError('EINVAL', `fd ${fd} is not a VFIO group`);
      }
      files.push(file);
    }
    devSetHotReset(dev, files);
  } finally {
    for (const f of files) f.put();
  }
  return 0;
}

/**
 * vfio_pci_dev_set_hot_reset: under the set lock, every member must be covered by one of the groups (EINVAL) and
 * every affected function must be in the set (EINVAL); BAR mappings of all members are zapped, all are put in D0,
 * then the bus is reset. The set lock is taken without waiting: a set busy with an open or close is EBUSY (the
 * memory_lock trylock of Linux answers the same way for contention).
 */
export function devSetHotReset(dev: VfioPciCoreDevice, groups: readonly OpenFile[]): void {
  const set = dev.vdev.set;
  if (!set) throw new SysError('EINVAL', 'device has no device set');
  if (!set.lock.tryAcquire()) throw new SysError('EBUSY', 'device set is busy');
  try {
    const pdev = setResettable(set);
    if (!pdev) throw new SysError('EINVAL', 'a function the reset would hit is outside the device set');
    const members = set.devices;
    for (const m of members) {
      if (!groups.some((g) => dev.env.api.fileHasDevice(g, m))) {
        throw new SysError('EINVAL', `${m.name} is not owned through the given groups`);
      }
    }
    const cores = members.map(coreOf).filter((c): c is VfioPciCoreDevice => c !== undefined);
    // Members may be runtime-suspended: resume them all around the reset (vfio_pci_dev_set_pm_runtime_get).
    for (const c of cores) pmGet(c);
    try {
      for (const m of members) m.zapMappings();
      for (const c of cores) setPowerState(c, 0);
      pdev.busReset();
      for (const c of cores) c.open?.irqs.afterReset?.();
    } finally {
      for (const c of cores) pmPut(c);
    }
  } finally {
    set.lock.release();
  }
}

/**
 * vfio_pci_dev_set_try_reset at last close: when no member of the set is open any more and one needs a reset,
 * reset the bus if every affected function is in the set; success clears needs_reset on every member. Called with
 * the set lock held by the core (the closing device's open count is already 0 here, so "no other open" is 0).
 */
export function devSetTryReset(set: DeviceSet): void {
  if (set.openCount > 0) return;
  const members = set.devices.map(coreOf);
  if (!members.some((c) => c?.needsReset === true)) return;
  const pdev = setResettable(set);
  if (!pdev) return;
  const cores = members.filter((c): c is VfioPciCoreDevice => c !== undefined);
  const idleD3 = cores.filter((c) => !c.env.params.disableIdleD3);
  for (const c of idleD3) pmGet(c);
  let done = false;
  try {
    pdev.busReset();
    done = true;
  } catch (e) {
    if (!isSysError(e)) throw e;
  } finally {
    for (const c of idleD3) pmPut(c);
  }
  if (done) for (const c of cores) c.needsReset = false;
}
