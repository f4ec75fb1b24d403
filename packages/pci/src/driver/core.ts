/**
 * The vfio-pci core (Linux vfio_pci_core.c): the device ops every vfio-pci-based driver shares. The plain vfio-pci
 * driver uses them as they are; a variant driver spreads them and overrides what it needs (the exported
 * `vfio_pci_core_*` functions of Linux), see {@link createVfioPciCore}.
 */
import { checkFeature, validateSetIrqs } from '@vfio-ts/core';
import type { IoctlArg, MmapRequest, SyscallContext, VfioDevice, VfioDeviceOps } from '@vfio-ts/core';
import type { MmioHandler, PciFunction } from '@vfio-ts/platform';
import {
  CapChainBuilder,
  SysError,
  VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY,
  VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP,
  VFIO_DEVICE_FEATURE_LOW_POWER_EXIT,
  VFIO_DEVICE_FEATURE_PCI_VF_TOKEN,
  VFIO_DEVICE_FEATURE_SET,
  VFIO_DEVICE_FEATURE_MASK,
  VFIO_DEVICE_FLAGS_CAPS,
  VFIO_DEVICE_FLAGS_PCI,
  VFIO_DEVICE_FLAGS_RESET,
  VFIO_DEVICE_GET_INFO,
  VFIO_DEVICE_GET_IRQ_INFO,
  VFIO_DEVICE_GET_PCI_HOT_RESET_INFO,
  VFIO_DEVICE_GET_REGION_INFO,
  VFIO_DEVICE_INFO_CAP_PCI_ATOMIC_COMP,
  VFIO_DEVICE_IOEVENTFD,
  VFIO_DEVICE_IOEVENTFD_SIZE_MASK,
  VFIO_DEVICE_PCI_HOT_RESET,
  VFIO_DEVICE_RESET,
  VFIO_DEVICE_SET_IRQS,
  VFIO_PCI_ATOMIC_COMP128,
  VFIO_PCI_ATOMIC_COMP32,
  VFIO_PCI_ATOMIC_COMP64,
  VFIO_PCI_ERR_IRQ_INDEX,
  VFIO_PCI_NUM_IRQS,
  VFIO_PCI_NUM_REGIONS,
  isSysError,
  pciAtomicCompCapPayload,
  vfioDeviceInfo,
  vfioDeviceIoeventfd,
  vfioIrqInfo,
  writeInfoWithCaps,
} from '@vfio-ts/uapi';
import { VfioPciConfig } from '../config/index.js';
import * as R from '../config/regs.js';
import type { VfioPciCoreDevice, VfioPciMsixInfo } from './device.js';
import { cfgRead, cfgWrite, findHwCapability, intxMaskSupported, restoreState, saveState, tryResetFunction, updateCommand } from './pci-state.js';
import {
  featureLowPowerEntry,
  featureLowPowerEntryWithWakeup,
  featureLowPowerExit,
  lowPowerExit,
  pmGet,
  pmPut,
  setPowerState,
} from './pm.js';
import { barInfo, barWrite, getRegionInfo, mmapFault, mmapRegion, probeMmaps, readBound, regionRw } from './regs-access.js';
import { VfioPciRegionIo } from './region-io.js';
import { devSetTryReset, getHotResetInfo, pciHotReset } from './reset.js';

/** The ops a vfio-pci-based driver has (all members present, so a variant can call the core's version). */
export type VfioPciCoreOps = Required<
  Pick<
    VfioDeviceOps<VfioPciCoreDevice>,
    | 'openDevice'
    | 'closeDevice'
    | 'read'
    | 'readInto'
    | 'write'
    | 'ioctl'
    | 'mmap'
    | 'mmapFault'
    | 'request'
    | 'deviceFeature'
    | 'pmRuntimeGet'
    | 'pmRuntimePut'
  >
> & { readonly name: string };

/**
 * Devices whose INTx masking is broken (vfio_pci_nointx): Intel XL710/X710/XXV710 and X550. vfio-pci hides their
 * INTx (pin 0) and keeps DisINTx set.
 */
function nointxQuirk(vendor: number, device: number): boolean {
  if (vendor !== 0x8086) return false;
  return (
    device === 0x1572 ||
    device === 0x1574 ||
    device === 0x1580 ||
    device === 0x1581 ||
    (device >= 0x1583 && device <= 0x158b) ||
    (device >= 0x37d0 && device <= 0x37d2) ||
    device === 0x1563
  );
}

/** PCI_CLASS_DISPLAY_VGA. */
function isVga(classCode: number): boolean {
  return classCode >>> 8 === 0x0300;
}

/**
 * vfio_pci_core_enable + vfio_pci_core_finish_enable (first open, §3.1): resume, clear bus master, enable decoding,
 * try a function reset (its success is `reset_works`), save the state, probe INTx masking, build the config
 * virtualization and the interrupt layer, record the MSI-X table and which BARs can be mapped. Any failure puts
 * the function back as it was.
 */
export function vfioPciCoreEnable(dev: VfioPciCoreDevice): void {
  const { pdev, env } = dev;
  const fn = pdev.fn;
  if (!env.params.disableIdleD3) pmGet(dev);
  const before = saveState(fn);
  try {
    updateCommand(fn, 0, R.PCI_COMMAND_MASTER);
    // pci_enable_device: decode every kind of resource the function has.
    let decode = 0;
    for (const b of fn.bars) {
      if (b.size === 0n) continue;
      decode |= b.type === 'io' ? R.PCI_COMMAND_IO : R.PCI_COMMAND_MEMORY;
    }
    updateCommand(fn, decode, 0);
    try {
      tryResetFunction(pdev);
      dev.resetWorks = true;
    } catch (e) {
      if (!isSysError(e)) throw e;
      dev.resetWorks = false;
    }
    const savedState = saveState(fn);
    dev.nointx = false;
    dev.pci23 = false;
    if (!env.params.nointxmask) {
      if (nointxQuirk(pdev.vendor, pdev.device)) {
        dev.log('Masking broken INTx support');
        dev.nointx = true;
        updateCommand(fn, R.PCI_COMMAND_INTX_DISABLE, 0);
      } else {
        dev.pci23 = intxMaskSupported(fn);
      }
    }
    if (dev.pci23) updateCommand(fn, 0, R.PCI_COMMAND_INTX_DISABLE);
    const config = new VfioPciConfig(fn, {
      nointx: dev.nointx,
      hooks: {
        zapBarMappings: () => {
          dev.vdev.zapMappings();
        },
        intxMask: (masked) => {
          dev.open?.irqs.onConfigIntxMask(masked);
        },
        setPowerState: (state) => setPowerState(dev, state),
        resetFunction: () => {
          // vfio_exp_config_write / vfio_af_config_write: pci_try_reset_function, errors ignored.
          try {
            tryResetFunction(pdev);
          } catch (e) {
            if (!isSysError(e)) throw e;
          }
          dev.open?.irqs.afterReset?.();
        },
      },
    });
    const msix = readMsix(dev);
    const hasVga = !env.params.disableVga && isVga(pdev.classCode);
    const irqs = env.createIrqLayer({
      pdev,
      config,
      virqfd: env.virqfd,
      bars: {
        barSize: (bar) => barInfo(dev, bar)?.size ?? 0n,
        barIsMem: (bar) => {
          const b = barInfo(dev, bar);
          return b !== undefined && b.type !== 'io';
        },
        write: (bar, offset, data) => {
          barWrite(dev, bar, offset, data);
        },
      },
      log: (text) => {
        dev.log(text);
      },
      nointx: dev.nointx,
      pci23: dev.pci23,
      pcie: isPcie(dev),
    });
    const io = new VfioPciRegionIo(fn, config, msix, pdev.bdf);
    dev.open = { config, irqs, savedState, msix, hasVga, barMmap: probeMmaps(dev), io };
  } catch (e) {
    dev.open = undefined;
    restoreState(fn, before);
    if (!env.params.disableIdleD3) pmPut(dev);
    throw e;
  }
}

function isPcie(dev: VfioPciCoreDevice): boolean {
  return findHwCapability(dev.pdev.fn, R.PCI_CAP_ID.EXP) !== 0;
}

/** msix_bar / msix_offset / msix_size from the hardware MSI-X capability ((QSIZE + 1) × 16 bytes). */
function readMsix(dev: VfioPciCoreDevice): VfioPciMsixInfo | undefined {
  const fn = dev.pdev.fn;
  const pos = findHwCapability(fn, R.PCI_CAP_ID.MSIX);
  if (!pos) return undefined;
  const flags = cfgRead(fn, pos + R.PCI_MSIX_FLAGS, 2);
  const table = cfgRead(fn, pos + R.PCI_MSIX_TABLE, 4);
  return {
    bar: table & 0x7,
    offset: BigInt((table & ~0x7) >>> 0),
    size: BigInt(((flags & R.PCI_MSIX_FLAGS_QSIZE) + 1) * 16),
  };
}

/**
 * vfio_pci_core_close_device → vfio_pci_core_disable (last close, §3.1): end low power, D0, stop bus mastering,
 * tear down every interrupt and ioeventfd, drop device regions and the config virtualization, mark `needs_reset`,
 * then put the saved state back around a function reset (success clears `needs_reset`) and finally try a bus reset
 * of the set when nobody in it is open any more.
 */
export function vfioPciCoreDisable(dev: VfioPciCoreDevice): Promise<void> {
  const { pdev, env } = dev;
  const fn = pdev.fn;
  const st = dev.opened;
  lowPowerExit(dev);
  pmGet(dev);
  setPowerState(dev, 0);
  updateCommand(fn, 0, R.PCI_COMMAND_MASTER);
  // closeAll stops every interrupt, ioeventfd and trigger synchronously; what it returns is the virqfd shutdown
  // flush, which the core waits for while it still holds the set lock (the device is gone from the user by then).
  const flushed = st.irqs.closeAll().catch((e: unknown) => {
    dev.log(`disabling interrupts failed: ${String(e)}`);
  });
  for (const r of dev.regions.splice(0)) r.release?.(dev);
  dev.open = undefined;
  dev.needsReset = true;
  // Disable INTx and MSI around the reset (as pci_reset_function does), then the state saved at open goes back.
  cfgWrite(fn, R.PCI_COMMAND, 2, R.PCI_COMMAND_INTX_DISABLE);
  if (dev.resetWorks) {
    try {
      pdev.functionReset();
      dev.needsReset = false;
    } catch (e) {
      if (!isSysError(e)) throw e;
    }
  }
  restoreState(fn, st.savedState);
  updateCommand(fn, 0, R.PCI_COMMAND_MASTER); // pci_disable_device
  const set = dev.vdev.set;
  if (set) devSetTryReset(set);
  pmPut(dev);
  if (!env.params.disableIdleD3) pmPut(dev);
  return flushed;
}

function structArg(arg: IoctlArg, minsz: number, what: string): Uint8Array {
  if (!(arg instanceof Uint8Array) || arg.length < minsz) throw new SysError('EFAULT', `${what} beyond the buffer`);
  return arg;
}

/** VFIO_DEVICE_GET_INFO: PCI (+RESET when a function reset works), 9 + device regions, 5 IRQ indexes, atomic cap. */
export function vfioPciGetInfo(dev: VfioPciCoreDevice, arg: IoctlArg): number {
  const bytes = structArg(arg, vfioDeviceInfo.minsz, 'vfio_device_info');
  const { argsz } = vfioDeviceInfo.decode(padded(bytes, vfioDeviceInfo.size));
  if (argsz < vfioDeviceInfo.minsz) throw new SysError('EINVAL', `argsz ${argsz} < ${vfioDeviceInfo.minsz}`);
  const caps = new CapChainBuilder();
  const atomic = atomicCompFlags(dev);
  if (atomic !== 0) caps.add(VFIO_DEVICE_INFO_CAP_PCI_ATOMIC_COMP, 1, pciAtomicCompCapPayload(atomic));
  writeInfoWithCaps(
    bytes,
    vfioDeviceInfo,
    {
      argsz,
      flags: VFIO_DEVICE_FLAGS_PCI | (dev.resetWorks ? VFIO_DEVICE_FLAGS_RESET : 0),
      num_regions: VFIO_PCI_NUM_REGIONS + dev.regions.length,
      num_irqs: VFIO_PCI_NUM_IRQS,
      cap_offset: 0,
      pad: 0,
    },
    VFIO_DEVICE_FLAGS_CAPS,
    caps,
  );
  return 0;
}

function padded(bytes: Uint8Array, size: number): Uint8Array {
  if (bytes.length >= size) return bytes;
  const out = new Uint8Array(size);
  out.set(bytes);
  return out;
}


/**
 * vfio_pci_info_atomic_cap: each completer width the function claims in DEVCAP2 for which AtomicOps can be
 * enabled to the root (pci_enable_atomic_ops_to_root: an endpoint, switch ports routing AtomicOps, a root port
 * completing that width, no upstream port blocking egress); enabling sets AtomicOp Requester Enable.
 */
function atomicCompFlags(dev: VfioPciCoreDevice): number {
  const fn = dev.pdev.fn;
  const exp = findHwCapability(fn, R.PCI_CAP_ID.EXP);
  // DEVCAP2 exists only in version-2 PCIe capabilities (pcie_capability_reg_implemented reads 0 otherwise).
  if (!exp || expVersion(fn, exp) < 2) return 0;
  const devcap2 = cfgRead(fn, exp + R.PCI_EXP_DEVCAP2, 4);
  let flags = 0;
  const widths: [number, number][] = [
    [R.PCI_EXP_DEVCAP2_ATOMIC_COMP32, VFIO_PCI_ATOMIC_COMP32],
    [R.PCI_EXP_DEVCAP2_ATOMIC_COMP64, VFIO_PCI_ATOMIC_COMP64],
    [R.PCI_EXP_DEVCAP2_ATOMIC_COMP128, VFIO_PCI_ATOMIC_COMP128],
  ];
  for (const [hw, bit] of widths) if (devcap2 & hw && enableAtomicOpsToRoot(dev, hw)) flags |= bit;
  return flags;
}

function expVersion(fn: PciFunction, exp: number): number {
  return cfgRead(fn, exp + R.PCI_EXP_FLAGS, 2) & R.PCI_EXP_FLAGS_VERS;
}

function enableAtomicOpsToRoot(dev: VfioPciCoreDevice, capMask: number): boolean {
  const fn = dev.pdev.fn;
  const exp = findHwCapability(fn, R.PCI_CAP_ID.EXP);
  const type = (cfgRead(fn, exp + R.PCI_EXP_FLAGS, 2) & R.PCI_EXP_FLAGS_TYPE) >> 4;
  // Endpoint, legacy endpoint, RC integrated endpoint.
  if (type !== 0 && type !== 1 && type !== 9) return false;
  const bus = dev.env.api.platform.pci;
  for (let up = dev.pdev.parent; up !== undefined; ) {
    const bridge = bus.device(up);
    if (!bridge) break;
    const bexp = findHwCapability(bridge.fn, R.PCI_CAP_ID.EXP);
    const btype = bexp ? (cfgRead(bridge.fn, bexp + R.PCI_EXP_FLAGS, 2) & R.PCI_EXP_FLAGS_TYPE) >> 4 : -1;
    const v2 = bexp !== 0 && expVersion(bridge.fn, bexp) >= 2;
    const cap = v2 ? cfgRead(bridge.fn, bexp + R.PCI_EXP_DEVCAP2, 4) : 0;
    if ((btype === 5 || btype === 6) && !(cap & R.PCI_EXP_DEVCAP2_ATOMIC_ROUTE)) return false; // upstream / downstream port
    if (btype === 4 && (cap & capMask) !== capMask) return false; // root port
    if (btype === 5 && v2 && cfgRead(bridge.fn, bexp + R.PCI_EXP_DEVCTL2, 2) & R.PCI_EXP_DEVCTL2_ATOMIC_EGRESS_BLOCK) return false;
    up = bridge.parent;
  }
  const ctl2 = cfgRead(fn, exp + R.PCI_EXP_DEVCTL2, 2);
  if (!(ctl2 & R.PCI_EXP_DEVCTL2_ATOMIC_REQ)) cfgWrite(fn, exp + R.PCI_EXP_DEVCTL2, 2, ctl2 | R.PCI_EXP_DEVCTL2_ATOMIC_REQ);
  return true;
}

/** VFIO_DEVICE_GET_IRQ_INFO: argsz < 16 or index ≥ 5 → EINVAL; ERR only for PCI Express functions. */
export function vfioPciGetIrqInfo(dev: VfioPciCoreDevice, arg: IoctlArg): number {
  const bytes = structArg(arg, vfioIrqInfo.minsz, 'vfio_irq_info');
  const v = vfioIrqInfo.decode(bytes);
  if (v.argsz < vfioIrqInfo.minsz || v.index >= VFIO_PCI_NUM_IRQS) throw new SysError('EINVAL', 'bad vfio_irq_info');
  if (v.index === VFIO_PCI_ERR_IRQ_INDEX && !isPcie(dev)) throw new SysError('EINVAL', 'ERR needs PCI Express');
  const info = dev.opened.irqs.irqInfo(v.index);
  vfioIrqInfo.write(bytes, { argsz: v.argsz, flags: info.flags, index: v.index, count: info.count });
  return 0;
}

/** VFIO_DEVICE_SET_IRQS: the core's validation against the index's vector count, then the interrupt layer. */
export function vfioPciSetIrqs(dev: VfioPciCoreDevice, arg: IoctlArg, call: SyscallContext): number {
  if (!(arg instanceof Uint8Array)) throw new SysError('EFAULT', 'vfio_irq_set beyond the buffer');
  const irqs = dev.opened.irqs;
  const v = validateSetIrqs(arg, (index) => (index < VFIO_PCI_NUM_IRQS ? irqs.irqCount(index) : 0), VFIO_PCI_NUM_IRQS);
  irqs.setIrqs(v, call);
  return 0;
}

/** VFIO_DEVICE_IOEVENTFD: header checks (argsz, one size flag, fd ≥ −1), then the interrupt layer. */
export function vfioPciIoeventfd(dev: VfioPciCoreDevice, arg: IoctlArg, call: SyscallContext): number {
  const bytes = structArg(arg, vfioDeviceIoeventfd.minsz, 'vfio_device_ioeventfd');
  const v = vfioDeviceIoeventfd.decode(padded(bytes, vfioDeviceIoeventfd.size));
  if (v.argsz < vfioDeviceIoeventfd.minsz) throw new SysError('EINVAL', 'argsz < 28');
  if ((v.flags & ~VFIO_DEVICE_IOEVENTFD_SIZE_MASK) !== 0) throw new SysError('EINVAL', 'unknown ioeventfd flags');
  const size = v.flags & VFIO_DEVICE_IOEVENTFD_SIZE_MASK;
  if (size === 0 || (size & (size - 1)) !== 0 || v.fd < -1) throw new SysError('EINVAL', 'bad ioeventfd size or fd');
  return dev.opened.irqs.ioeventfd(bytes, call);
}

/**
 * VFIO_DEVICE_RESET: EINVAL unless a function reset works; mappings are zapped and the function put in D0 first.
 */
export function vfioPciReset(dev: VfioPciCoreDevice): number {
  if (!dev.resetWorks) throw new SysError('EINVAL', 'no working function reset');
  dev.vdev.zapMappings();
  setPowerState(dev, 0);
  tryResetFunction(dev.pdev);
  dev.open?.irqs.afterReset?.();
  return 0;
}

/** vfio_pci_core_ioctl: every device ioctl but DEVICE_FEATURE; unknown → ENOTTY. */
export function vfioPciCoreIoctl(dev: VfioPciCoreDevice, cmd: number, arg: IoctlArg, call: SyscallContext): number {
  switch (cmd) {
    case VFIO_DEVICE_GET_INFO:
      return vfioPciGetInfo(dev, arg);
    case VFIO_DEVICE_GET_IRQ_INFO:
      return vfioPciGetIrqInfo(dev, arg);
    case VFIO_DEVICE_GET_PCI_HOT_RESET_INFO:
      return getHotResetInfo(dev, structArg(arg, 12, 'vfio_pci_hot_reset_info'));
    case VFIO_DEVICE_GET_REGION_INFO:
      return getRegionInfo(dev, structArg(arg, 32, 'vfio_region_info'));
    case VFIO_DEVICE_IOEVENTFD:
      return vfioPciIoeventfd(dev, arg, call);
    case VFIO_DEVICE_PCI_HOT_RESET:
      return pciHotReset(dev, structArg(arg, 12, 'vfio_pci_hot_reset'), call);
    case VFIO_DEVICE_RESET:
      return vfioPciReset(dev);
    case VFIO_DEVICE_SET_IRQS:
      return vfioPciSetIrqs(dev, arg, call);
    default:
      throw new SysError('ENOTTY', `unknown vfio-pci ioctl ${cmd.toString(16)}`);
  }
}

/** vfio_pci_core_ioctl_feature: the low-power features and the VF token; anything else ENOTTY. */
export function vfioPciCoreFeature(dev: VfioPciCoreDevice, flags: number, data: Uint8Array, dataSize: number, call: SyscallContext): number {
  switch (flags & VFIO_DEVICE_FEATURE_MASK) {
    case VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY:
      return checkFeature(flags, dataSize, VFIO_DEVICE_FEATURE_SET, 0) ? featureLowPowerEntry(dev) : 0;
    case VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP:
      return checkFeature(flags, dataSize, VFIO_DEVICE_FEATURE_SET, 8) ? featureLowPowerEntryWithWakeup(dev, data, call) : 0;
    case VFIO_DEVICE_FEATURE_LOW_POWER_EXIT:
      return checkFeature(flags, dataSize, VFIO_DEVICE_FEATURE_SET, 0) ? featureLowPowerExit(dev) : 0;
    case VFIO_DEVICE_FEATURE_PCI_VF_TOKEN:
      // Only an SR-IOV PF owned by vfio-pci has a VF token; the platform models no SR-IOV.
      throw new SysError('ENOTTY', 'no VF token on this device');
    default:
      throw new SysError('ENOTTY', `feature ${flags & VFIO_DEVICE_FEATURE_MASK} is not supported by vfio-pci`);
  }
}

/**
 * Whether a region access may skip the runtime-PM get/put around it: the device is awake and someone (the open
 * itself, unless LOW_POWER_ENTRY dropped it) holds a usage reference, so the get would not resume and the put would
 * not suspend — the pair is a no-op, and the access then takes the per-open fast path.
 */
function pmActive(dev: VfioPciCoreDevice): boolean {
  return dev.pmUsage > 0 && !dev.runtimeSuspended;
}

/** read(2) of the device fd: zero bytes → nothing; otherwise resume, access the region, let the device idle again. */
export function vfioPciCoreRead(dev: VfioPciCoreDevice, length: number, offset: bigint): Uint8Array {
  if (length === 0) return new Uint8Array(0);
  const open = dev.open;
  if (open !== undefined && pmActive(dev)) {
    const out = open.io.read(length, offset);
    if (out !== undefined) return out;
  }
  pmGet(dev);
  try {
    const buf = new Uint8Array(readBound(dev, offset, length));
    return buf.subarray(0, regionRw(dev, offset, buf, false));
  } finally {
    pmPut(dev);
  }
}

/**
 * pread(2) of the device fd into the caller's `buf` (`Process.preadInto`): the per-open fast path writes the value
 * straight into `buf`; anything it does not take goes through {@link vfioPciCoreRead} and is copied.
 */
export function vfioPciCoreReadInto(dev: VfioPciCoreDevice, buf: Uint8Array, offset: bigint): number {
  if (buf.length === 0) return 0;
  const open = dev.open;
  if (open !== undefined && pmActive(dev)) {
    const n = open.io.readInto(buf, offset);
    if (n !== undefined) return n;
  }
  return readIntoByCopy(dev, buf, offset);
}

/** The general path of {@link vfioPciCoreReadInto}: the read op and a copy (kept out of its inlinable body). */
function readIntoByCopy(dev: VfioPciCoreDevice, buf: Uint8Array, offset: bigint): number {
  const out = vfioPciCoreRead(dev, buf.length, offset);
  buf.set(out);
  return out.length;
}

/** write(2) of the device fd; returns bytes written. */
export function vfioPciCoreWrite(dev: VfioPciCoreDevice, data: Uint8Array, offset: bigint): number {
  if (data.length === 0) return 0;
  const open = dev.open;
  if (open !== undefined && pmActive(dev)) {
    const n = open.io.write(data, offset);
    if (n !== undefined) return n;
  }
  pmGet(dev);
  try {
    return regionRw(dev, offset, data.slice(), true);
  } finally {
    pmPut(dev);
  }
}

/**
 * vfio_pci_core_aer_err_detected: an AER error on the function is relayed to the user's ERR eventfd; the answer
 * to the PCI core is always "can recover" (the user decides). Returns whether an eventfd was signalled.
 */
export function vfioPciCoreAerErrDetected(dev: VfioPciCoreDevice): { readonly result: 'can-recover'; readonly signalled: boolean } {
  const signalled = dev.open?.irqs.errSignal() ?? false;
  return { result: 'can-recover', signalled };
}

/** vfio_pci_core_request: signal the REQ eventfd, or say once that the unbind waits for the user. */
export function vfioPciCoreRequest(dev: VfioPciCoreDevice, count: number): void {
  const signalled = dev.open?.irqs.requestSignal(count) ?? false;
  if (signalled) {
    if (count % 10 === 0) dev.log(`Relaying device request to user (#${count})`);
  } else if (count === 0) {
    dev.log('No device request channel registered, blocked until released by user');
  }
}

/**
 * The vfio-pci core ops (the `vfio_pci_core_*` functions Linux exports). A variant driver spreads them and
 * overrides members, calling the core's version where Linux variants call `vfio_pci_core_*`:
 * ```ts
 * const core = createVfioPciCore();
 * const ops = { ...core, name: 'my-vfio-pci', openDevice(d) { core.openDevice(d); setUpMigration(d.data); } };
 * ```
 */
export function createVfioPciCore(name = 'vfio-pci'): VfioPciCoreOps {
  return {
    name,
    openDevice: (d: VfioDevice<VfioPciCoreDevice>) => {
      vfioPciCoreEnable(d.data);
    },
    closeDevice: (d: VfioDevice<VfioPciCoreDevice>) => vfioPciCoreDisable(d.data),
    read: (d: VfioDevice<VfioPciCoreDevice>, length: number, offset: bigint) => vfioPciCoreRead(d.data, length, offset),
    readInto: (d: VfioDevice<VfioPciCoreDevice>, buf: Uint8Array, offset: bigint) => vfioPciCoreReadInto(d.data, buf, offset),
    write: (d: VfioDevice<VfioPciCoreDevice>, data: Uint8Array, offset: bigint) => vfioPciCoreWrite(d.data, data, offset),
    ioctl: (d: VfioDevice<VfioPciCoreDevice>, cmd: number, arg: IoctlArg, call: SyscallContext) =>
      vfioPciCoreIoctl(d.data, cmd, arg, call),
    mmap: (d: VfioDevice<VfioPciCoreDevice>, req: MmapRequest): MmioHandler => mmapRegion(d.data, req),
    mmapFault: (d: VfioDevice<VfioPciCoreDevice>, req: MmapRequest): MmioHandler => mmapFault(d.data, req),
    request: (d: VfioDevice<VfioPciCoreDevice>, count: number) => {
      vfioPciCoreRequest(d.data, count);
    },
    deviceFeature: (d: VfioDevice<VfioPciCoreDevice>, flags: number, data: Uint8Array, dataSize: number, call: SyscallContext) =>
      vfioPciCoreFeature(d.data, flags, data, dataSize, call),
    pmRuntimeGet: (d: VfioDevice<VfioPciCoreDevice>) => {
      pmGet(d.data);
    },
    pmRuntimePut: (d: VfioDevice<VfioPciCoreDevice>) => {
      pmPut(d.data);
    },
  };
}
