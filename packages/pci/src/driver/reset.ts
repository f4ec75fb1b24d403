/**
 * Power states and resets (inventory §3.5, §1.6): vfio_pci_set_power_state, DEVICE_RESET, the hot-reset info and
 * hot reset over the device set with proof of ownership — group fds for group-opened devices, the iommufd context
 * for cdev-opened ones — and the automatic bus reset of an idle set at last close (vfio_pci_dev_set_try_reset).
 */
import type { DeviceSet, IommufdHandle, OpenFile, SyscallContext, VfioDevice } from '@vfio-ts/core';
import type { PciDeviceHandle } from '@vfio-ts/platform';
import {
  SysError,
  VFIO_PCI_DEVID_NOT_OWNED,
  VFIO_PCI_DEVID_OWNED,
  VFIO_PCI_HOT_RESET_FLAG_DEV_ID,
  VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED,
  isSysError,
  vfioPciDependentDevice,
  vfioPciHotReset,
  vfioPciHotResetInfo,
} from '@vfio-ts/uapi';
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
 * How the caller of a hot reset proves it owns every device of the set (vfio_pci_dev_set_hot_reset, §1.6): the
 * VFIO group files it passed (group-opened devices), or the iommufd context its cdev-opened device is bound to
 * (`iommufd` undefined — a device without a physical binding — proves nothing).
 */
export type HotResetProof = readonly OpenFile[] | { readonly iommufd: IommufdHandle | undefined };

/**
 * The `devid` of one affected function in a cdev caller's GET_PCI_HOT_RESET_INFO (vfio_pci_fill_devs' DEV_ID
 * branch): its devid when bound to the caller's context, VFIO_PCI_DEVID_OWNED when the context owns its IOMMU group
 * through a sibling, VFIO_PCI_DEVID_NOT_OWNED otherwise — including functions outside the device set, which a hot
 * reset would hit but nobody in VFIO controls.
 */
function dependentDevid(dev: VfioPciCoreDevice, bdf: string, ictx: IommufdHandle | undefined): number {
  const member = dev.vdev.set?.find(bdf);
  if (!member || !ictx) return VFIO_PCI_DEVID_NOT_OWNED;
  const id = dev.env.api.iommufdDeviceId(member, ictx);
  if (typeof id === 'number') return id;
  return id === 'owned' ? VFIO_PCI_DEVID_OWNED : VFIO_PCI_DEVID_NOT_OWNED;
}

/**
 * VFIO_DEVICE_GET_PCI_HOT_RESET_INFO: ENODEV without a possible reset, ENOSPC with `count` set (and flags 0) when
 * the array does not fit (the header is still copied out). A group-opened caller gets each function's IOMMU group
 * (EPERM when one has none); a cdev-opened caller gets flags DEV_ID | DEV_ID_OWNED and a devid per function, any
 * VFIO_PCI_DEVID_NOT_OWNED entry clearing DEV_ID_OWNED (§1.6).
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
  const iommufd = dev.env.api.deviceIommufdInfo(dev.vdev);
  let flags = 0;
  let entries: { group_id: number; segment: number; bus: number; devfn: number }[];
  if (iommufd.cdevOpened) {
    // Linux fills the devids under the device-set mutex so bindings cannot change midway; a system call here runs
    // to completion without yielding, so the walk already sees one consistent state (and a trylock would turn an
    // unrelated asynchronous open in the set into a spurious EBUSY).
    flags = VFIO_PCI_HOT_RESET_FLAG_DEV_ID | VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED;
    entries = scope.map((p) => {
      const devid = dependentDevid(dev, p.bdf, iommufd.ictx);
      if (devid === VFIO_PCI_DEVID_NOT_OWNED) flags &= ~VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED;
      // `devid` shares the u32 of `group_id`: NOT_OWNED (-1) goes out as 0xffffffff.
      return { group_id: devid >>> 0, ...splitBdf(p.bdf) };
    });
  } else {
    entries = scope.map((p) => {
      const group = p.iommuGroup;
      if (!group) throw new SysError('EPERM', `${p.bdf} has no IOMMU group`);
      return { group_id: group.id, ...splitBdf(p.bdf) };
    });
  }
  if (bytes.length < minsz + count * entry) throw new SysError('EFAULT', 'devices[] beyond the buffer');
  vfioPciHotResetInfo.write(bytes, { argsz, flags, count });
  entries.forEach((e, i) => {
    vfioPciDependentDevice.write(bytes, e, minsz + i * entry);
  });
  return 0;
}

/**
 * VFIO_DEVICE_PCI_HOT_RESET (§1.6): flags ≠ 0 → EINVAL; a zero-length array is the cdev form and only the cdev
 * form (a group-opened caller with count 0, or a cdev-opened caller with count > 0 → EINVAL); ENODEV without a
 * possible reset. Group form: count above the affected functions → EINVAL, a bad fd → EBADF, an fd that is no VFIO
 * group → EINVAL. Then the set-wide reset ({@link devSetHotReset}), ownership proven by the groups or by the
 * caller's iommufd context.
 */
export function pciHotReset(dev: VfioPciCoreDevice, bytes: Uint8Array, call: SyscallContext): number {
  const minsz = vfioPciHotReset.minsz;
  if (bytes.length < minsz) throw new SysError('EFAULT', 'vfio_pci_hot_reset beyond the buffer');
  const hdr = vfioPciHotReset.decode(bytes);
  if (hdr.argsz < minsz || hdr.flags !== 0) throw new SysError('EINVAL', 'bad vfio_pci_hot_reset header');
  const iommufd = dev.env.api.deviceIommufdInfo(dev.vdev);
  if ((hdr.count !== 0) === iommufd.cdevOpened) {
    throw new SysError('EINVAL', iommufd.cdevOpened ? 'cdev-opened devices take no group fds' : 'group-opened devices need group fds');
  }
  const scope = hotResetScope(dev.pdev);
  if (iommufd.cdevOpened) {
    devSetHotReset(dev, { iommufd: iommufd.ictx });
    return 0;
  }
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
 * Whether the proof covers `member`: one of the group files holds it, or it is bound to the iommufd context or its
 * IOMMU group is owned by that context through a sibling (it cannot belong to another context then).
 */
function proves(dev: VfioPciCoreDevice, proof: HotResetProof, member: VfioDevice): boolean {
  const api = dev.env.api;
  if ('iommufd' in proof) return proof.iommufd !== undefined && api.iommufdDeviceId(member, proof.iommufd) !== 'not-owned';
  return proof.some((g) => api.fileHasDevice(g, member));
}

/**
 * vfio_pci_dev_set_hot_reset: under the set lock, every affected function must be in the set (EINVAL) and every
 * member must be owned by the caller (EINVAL) — covered by one of the group files, or bound to / group-owned by the
 * iommufd context ({@link HotResetProof}); BAR mappings of all members are zapped, all are put in D0, then the bus
 * is reset. The set lock is taken without waiting: a set busy with an open or close is EBUSY (the memory_lock
 * trylock of Linux answers the same way for contention).
 */
export function devSetHotReset(dev: VfioPciCoreDevice, proof: HotResetProof): void {
  const set = dev.vdev.set;
  if (!set) throw new SysError('EINVAL', 'device has no device set');
  if (!set.lock.tryAcquire()) throw new SysError('EBUSY', 'device set is busy');
  try {
    const pdev = setResettable(set);
    if (!pdev) throw new SysError('EINVAL', 'a function the reset would hit is outside the device set');
    const members = set.devices;
    for (const m of members) {
      if (!proves(dev, proof, m)) throw new SysError('EINVAL', `${m.name} is not owned by the caller`);
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
