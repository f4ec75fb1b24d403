/**
 * Runtime power management of vfio-pci devices (inventory §3.8): an idle device sits in D3hot unless
 * `disable_idle_d3`; every ioctl and region access resumes it; LOW_POWER_ENTRY lets an open device suspend (its BAR
 * mappings fault with SIGBUS until it exits), WITH_WAKEUP signals an eventfd on the next resume and ends the
 * session, LOW_POWER_EXIT ends it explicitly. A usage count stands in for the PM core's.
 */
import { SysError, isSysError, vfioDeviceLowPowerEntryWithWakeup } from '@vfio-ts/uapi';
import type { SyscallContext } from '@vfio-ts/core';
import type { VfioPciCoreDevice } from './device.js';
import type { PciPowerState } from '../config/index.js';
import { hwPowerState, restoreState, saveState, setHwPowerState } from './pci-state.js';

/**
 * vfio_pci_set_power_state: pci_set_power_state plus, for functions that reset themselves on D3hot→D0
 * (NoSoftRst clear), saving the state before entering D3hot and restoring it when back in D0. Returns false when
 * the transition was refused (the config layer then keeps the old PowerState).
 */
export function setPowerState(dev: VfioPciCoreDevice, state: PciPowerState): boolean {
  const fn = dev.pdev.fn;
  const cur = hwPowerState(fn);
  let save: ReturnType<typeof saveState> | undefined;
  let restore = false;
  if (dev.needsPmRestore) {
    if (cur < 3 && state >= 3) save = saveState(fn);
    if (cur >= 3 && state === 0) restore = true;
  }
  try {
    setHwPowerState(fn, state);
  } catch (e) {
    if (!isSysError(e)) throw e;
    return false;
  }
  if (save && hwPowerState(fn) >= 3) {
    dev.pmSave = save;
  } else if (restore && dev.pmSave) {
    restoreState(fn, dev.pmSave);
    dev.pmSave = undefined;
    // pci_restore_state also brings back MSI/MSI-X programming.
    dev.open?.irqs.afterReset?.();
  }
  if (dev.open) dev.open.config.powerState = state;
  return true;
}

/** Runtime suspend (vfio_pci_core_runtime_suspend + the PCI core's): back to D0 first, save state, then D3hot. */
function runtimeSuspend(dev: VfioPciCoreDevice): void {
  if (dev.runtimeSuspended) return;
  setPowerState(dev, 0);
  const fn = dev.pdev.fn;
  dev.runtimeSave = saveState(fn);
  try {
    setHwPowerState(fn, 3);
  } catch {
    /* no PM capability: the function stays in D0, the bookkeeping still says suspended */
  }
  dev.runtimeSuspended = true;
  if (dev.open) dev.open.config.powerState = 3;
}

/** Runtime resume: D0 and the saved state back, then the wake-up eventfd of a low-power session (if any). */
function runtimeResume(dev: VfioPciCoreDevice): void {
  if (!dev.runtimeSuspended) return;
  const fn = dev.pdev.fn;
  if (hwPowerState(fn) !== 0) setHwPowerState(fn, 0);
  if (dev.runtimeSave) restoreState(fn, dev.runtimeSave);
  dev.runtimeSave = undefined;
  dev.runtimeSuspended = false;
  if (dev.open) {
    dev.open.config.powerState = 0;
    dev.open.irqs.afterReset?.();
  }
  if (dev.pmWakeEventfd) {
    dev.pmWakeEventfd.signal();
    lowPowerExit(dev);
  }
}

/** pm_runtime_get (resume_and_get): takes a usage reference and resumes the device. */
export function pmGet(dev: VfioPciCoreDevice): void {
  dev.pmUsage++;
  runtimeResume(dev);
}

/** pm_runtime_put: drops a reference; at zero the device runtime-suspends. */
export function pmPut(dev: VfioPciCoreDevice): void {
  if (dev.pmUsage > 0) dev.pmUsage--;
  if (dev.pmUsage === 0) runtimeSuspend(dev);
}

/** pm_runtime_forbid at unbind: the device is resumed and kept in D0 from now on. */
export function pmForbid(dev: VfioPciCoreDevice): void {
  dev.pmUsage++;
  runtimeResume(dev);
}

/** __vfio_pci_runtime_pm_exit: ends a low-power session, taking back the usage reference entry dropped. */
export function lowPowerExit(dev: VfioPciCoreDevice): void {
  if (!dev.pmRuntimeEngaged) return;
  dev.pmRuntimeEngaged = false;
  dev.pmUsage++;
  dev.pmWakeEventfd = undefined;
}

/** vfio_pci_runtime_pm_entry: zap the mappings; EINVAL when a session is already engaged. */
function lowPowerEntry(dev: VfioPciCoreDevice, wake: VfioPciCoreDevice['pmWakeEventfd']): void {
  dev.vdev.zapMappings();
  if (dev.pmRuntimeEngaged) throw new SysError('EINVAL', 'low-power entry already engaged');
  dev.pmRuntimeEngaged = true;
  dev.pmWakeEventfd = wake;
  // put_noidle: the ioctl's own put then suspends the device.
  if (dev.pmUsage > 0) dev.pmUsage--;
}

/** VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY (SET, no data). */
export function featureLowPowerEntry(dev: VfioPciCoreDevice): number {
  lowPowerEntry(dev, undefined);
  return 0;
}

/** VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP: fd < 0 → EINVAL; a bad fd → EBADF/EINVAL from eventfd lookup. */
export function featureLowPowerEntryWithWakeup(dev: VfioPciCoreDevice, data: Uint8Array, call: SyscallContext): number {
  if (data.length < vfioDeviceLowPowerEntryWithWakeup.size) throw new SysError('EFAULT', 'feature data beyond the buffer');
  const { wakeup_eventfd: fd } = vfioDeviceLowPowerEntryWithWakeup.decode(data);
  if (fd < 0) throw new SysError('EINVAL', 'wakeup_eventfd must be an fd');
  lowPowerEntry(dev, call.eventfd(fd));
  return 0;
}

/** VFIO_DEVICE_FEATURE_LOW_POWER_EXIT: the ioctl already resumed the device; end the session if still engaged. */
export function featureLowPowerExit(dev: VfioPciCoreDevice): number {
  lowPowerExit(dev);
  return 0;
}
