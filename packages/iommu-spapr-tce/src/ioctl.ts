/**
 * Container ioctls of the sPAPR TCE backend (Linux tce_iommu_ioctl), decoded from the binary structs of
 * `@vfio-ts/uapi` with the kernel's argsz rules. Inventory §1.8, §8.3.
 */
import type { CallContext, IoctlArg } from '@vfio-ts/core';
import {
  SysError,
  VFIO_CHECK_EXTENSION,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_EEH,
  VFIO_EEH_PE_OP,
  VFIO_IOMMU_DISABLE,
  VFIO_IOMMU_ENABLE,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_SPAPR_INFO_DDW,
  VFIO_IOMMU_SPAPR_REGISTER_MEMORY,
  VFIO_IOMMU_SPAPR_TCE_CREATE,
  VFIO_IOMMU_SPAPR_TCE_GET_INFO,
  VFIO_IOMMU_SPAPR_TCE_REMOVE,
  VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_SPAPR_TCE_IOMMU,
  VFIO_SPAPR_TCE_v2_IOMMU,
  copyOut,
  readVfioArg,
  vfioIommuSpaprRegisterMemory,
  vfioIommuSpaprTceCreate,
  vfioIommuSpaprTceInfo,
  vfioEehPeOp,
  vfioIommuSpaprTceRemove,
  vfioIommuType1DmaMap,
  vfioIommuType1DmaUnmap,
} from '@vfio-ts/uapi';
import { structArg } from './container.js';
import type { SpaprTceEnv, TceContainer } from './container.js';
import { eehPeOp } from './eeh.js';
import type { TceDirection } from './table-group.js';

/** The value of a by-value argument (CHECK_EXTENSION's extension number). */
function valueArg(arg: IoctlArg): number {
  if (arg === undefined) return 0;
  if (typeof arg === 'number') return arg;
  if (typeof arg === 'bigint') return Number(BigInt.asUintN(64, arg));
  return -1;
}

/** VFIO_CHECK_EXTENSION (§1.1): types 2 and 7, EEH (5) when the platform has it; anything else 0. */
export function spaprCheckExtension(ext: number, env: Pick<SpaprTceEnv, 'eehEnabled'>): number {
  switch (ext) {
    case VFIO_SPAPR_TCE_IOMMU:
    case VFIO_SPAPR_TCE_v2_IOMMU:
      return 1;
    case VFIO_EEH:
      return env.eehEnabled ? 1 : 0;
    default:
      return 0;
  }
}

/**
 * Linux 6.12 validates the bus address of MAP/UNMAP with iommu_tce_put_param_check / iommu_tce_clear_param_check,
 * macros that evaluate to 1 (not -EINVAL) on failure, and returns that value: an iova not aligned to the TCE page
 * makes the ioctl return 1 without mapping or unmapping anything. vfio-ts keeps that result.
 */
const PARAM_CHECK_FAILED = 1;

/** Dispatches one container ioctl. `data` is null only for VFIO_CHECK_EXTENSION before SET_IOMMU. */
export function spaprIoctl(data: TceContainer | null, cmd: number, arg: IoctlArg, call: CallContext, env: SpaprTceEnv): number {
  if (cmd === VFIO_CHECK_EXTENSION) return spaprCheckExtension(valueArg(arg), env);
  if (!data) throw new SysError('EINVAL', 'no sPAPR TCE container');
  const c = data;
  const task = call.task;
  // Sanity check so that one process cannot drive another process's mm (§1.8).
  c.checkMm(task);
  switch (cmd) {
    case VFIO_IOMMU_SPAPR_TCE_GET_INFO:
      return getInfo(c, arg);
    case VFIO_IOMMU_MAP_DMA:
      return mapDma(c, arg, call);
    case VFIO_IOMMU_UNMAP_DMA:
      return unmapDma(c, arg, call);
    case VFIO_IOMMU_SPAPR_REGISTER_MEMORY: {
      if (!c.v2) break;
      c.mmSet(task);
      const { value } = readVfioArg(structArg(arg, vfioIommuSpaprRegisterMemory.minsz), vfioIommuSpaprRegisterMemory);
      if (value.flags !== 0) throw new SysError('EINVAL', 'register_memory.flags must be 0');
      c.registerMemory(value.vaddr, value.size, task);
      return 0;
    }
    case VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY: {
      if (!c.v2) break;
      if (!c.mm) throw new SysError('EPERM', 'nothing was ever registered');
      const { value } = readVfioArg(structArg(arg, vfioIommuSpaprRegisterMemory.minsz), vfioIommuSpaprRegisterMemory);
      if (value.flags !== 0) throw new SysError('EINVAL', 'register_memory.flags must be 0');
      c.unregisterMemory(value.vaddr, value.size);
      return 0;
    }
    case VFIO_IOMMU_ENABLE:
      if (c.v2) break;
      c.enable(task);
      return 0;
    case VFIO_IOMMU_DISABLE:
      if (c.v2) break;
      c.disable();
      return 0;
    case VFIO_EEH_PE_OP: {
      // Applied to every group in list order; the first non-zero result (an error or a state) ends the loop.
      for (const g of c.groups) {
        const pe = g.tableGroup.eeh;
        if (!pe) throw new SysError('ENODEV', `group ${g.ref.id} has no EEH PE`);
        const ret = eehPeOp(pe, structArg(arg, vfioEehPeOp.minsz), env.eehEnabled);
        if (ret !== 0) return ret;
      }
      return 0;
    }
    case VFIO_IOMMU_SPAPR_TCE_CREATE: {
      if (!c.v2) break;
      c.mmSet(task);
      if (c.groups.length === 0) throw new SysError('ENXIO', 'no group attached');
      const bytes = structArg(arg, vfioIommuSpaprTceCreate.minsz);
      const { value } = readVfioArg(bytes, vfioIommuSpaprTceCreate);
      if (value.flags !== 0) throw new SysError('EINVAL', 'tce_create.flags must be 0');
      c.createDefaultWindow(task);
      const start = c.createWindow(value.page_shift, value.window_size, value.levels, task);
      vfioIommuSpaprTceCreate.write(bytes, { start_addr: start });
      return 0;
    }
    case VFIO_IOMMU_SPAPR_TCE_REMOVE: {
      if (!c.v2) break;
      c.mmSet(task);
      if (c.groups.length === 0) throw new SysError('ENXIO', 'no group attached');
      const { value } = readVfioArg(structArg(arg, vfioIommuSpaprTceRemove.minsz), vfioIommuSpaprTceRemove);
      if (value.flags !== 0) throw new SysError('EINVAL', 'tce_remove.flags must be 0');
      // Removing the default window before it exists just cancels its lazy creation (§1.8).
      if (c.defWindowPending && value.start_addr === 0n) {
        c.defWindowPending = false;
        return 0;
      }
      c.removeWindow(value.start_addr);
      return 0;
    }
    default:
      break;
  }
  throw new SysError('ENOTTY', `sPAPR TCE container has no ioctl 0x${cmd.toString(16)}`);
}

/**
 * VFIO_IOMMU_SPAPR_TCE_GET_INFO: the first group's 32-bit window, and DDW parameters for v2 on a platform with
 * dynamic windows. `ddw` is copied only when argsz covers it (32); otherwise 16 bytes. ENXIO without a group.
 */
function getInfo(c: TceContainer, arg: IoctlArg): number {
  const tg = c.firstTableGroup();
  if (!tg) throw new SysError('ENXIO', 'no group attached');
  const bytes = structArg(arg, vfioIommuSpaprTceInfo.minsz);
  const { argsz } = readVfioArg(bytes, vfioIommuSpaprTceInfo);
  const ddw = c.v2 && tg.maxDynamicWindowsSupported > 0;
  const n = argsz >= vfioIommuSpaprTceInfo.size ? vfioIommuSpaprTceInfo.size : vfioIommuSpaprTceInfo.minsz;
  copyOut(
    bytes,
    vfioIommuSpaprTceInfo,
    {
      argsz,
      flags: ddw ? VFIO_IOMMU_SPAPR_INFO_DDW : 0,
      dma32_window_start: tg.tce32Start,
      dma32_window_size: tg.tce32Size,
      ddw_pgsizes: ddw ? tg.pgsizes : 0n,
      ddw_max_dynamic_windows_supported: ddw ? tg.maxDynamicWindowsSupported : 0,
      ddw_levels: ddw ? tg.maxLevels : 0,
    },
    n,
  );
  return 0;
}

/** Direction of a mapping from MAP_DMA flags (device perspective): READ → to device, WRITE → from device. */
function directionOf(flags: number): TceDirection {
  const r = (flags & VFIO_DMA_MAP_FLAG_READ) !== 0;
  const w = (flags & VFIO_DMA_MAP_FLAG_WRITE) !== 0;
  if (r && w) return 'bidirectional';
  if (r) return 'to-device';
  if (w) return 'from-device';
  return 'none';
}

/** VFIO_IOMMU_MAP_DMA through the TCE table of the window holding `iova`. */
function mapDma(c: TceContainer, arg: IoctlArg, call: CallContext): number {
  if (!c.enabled) throw new SysError('EPERM', c.v2 ? 'no memory pre-registered' : 'container not enabled');
  const { value: p } = readVfioArg(structArg(arg, vfioIommuType1DmaMap.minsz), vfioIommuType1DmaMap);
  if ((p.flags & ~(VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE)) !== 0) {
    throw new SysError('EINVAL', 'unknown MAP_DMA flags');
  }
  c.createDefaultWindow(call.task);
  const found = c.findTable(p.iova);
  if (!found) throw new SysError('ENXIO', `no DMA window at 0x${p.iova.toString(16)}`);
  const { table } = found;
  const mask = (1n << BigInt(table.pageShift)) - 1n;
  if ((p.size & mask) !== 0n || (p.vaddr & mask) !== 0n) throw new SysError('EINVAL', 'size/vaddr not TCE page aligned');
  const direction = directionOf(p.flags);
  if (direction === 'none') throw new SysError('EINVAL', 'mapping neither readable nor writable');
  if ((p.iova & mask) !== 0n) return PARAM_CHECK_FAILED;
  checkInWindow(table, p.iova, p.size);
  if (p.size === 0n) return 0;
  if (c.v2) c.buildV2(table, { vaddr: p.vaddr, iova: p.iova, size: p.size, direction });
  else c.buildV1(table, { vaddr: p.vaddr, iova: p.iova, size: p.size, direction }, call.task);
  return 0;
}

/**
 * Linux checks only the first TCE of the range against the window and would walk past the table's end; vfio-ts
 * refuses such a range with EINVAL instead of touching entries outside the window.
 */
function checkInWindow(table: { readonly offset: number; readonly size: number; readonly pageShift: number }, iova: bigint, size: bigint): void {
  const end = BigInt(table.offset + table.size) << BigInt(table.pageShift);
  if (iova + size > end) throw new SysError('EINVAL', 'range runs past the end of the DMA window');
}

/** VFIO_IOMMU_UNMAP_DMA: clears the TCEs of the range (flags must be 0; `size` is not written back). */
function unmapDma(c: TceContainer, arg: IoctlArg, call: CallContext): number {
  if (!c.enabled) throw new SysError('EPERM', c.v2 ? 'no memory pre-registered' : 'container not enabled');
  const { value: p } = readVfioArg(structArg(arg, vfioIommuType1DmaUnmap.minsz), vfioIommuType1DmaUnmap);
  if (p.flags !== 0) throw new SysError('EINVAL', 'UNMAP_DMA flags must be 0');
  c.createDefaultWindow(call.task);
  const found = c.findTable(p.iova);
  if (!found) throw new SysError('ENXIO', `no DMA window at 0x${p.iova.toString(16)}`);
  const { table } = found;
  const mask = (1n << BigInt(table.pageShift)) - 1n;
  if ((p.size & mask) !== 0n) throw new SysError('EINVAL', 'size not TCE page aligned');
  if ((p.iova & mask) !== 0n) return PARAM_CHECK_FAILED;
  checkInWindow(table, p.iova, p.size);
  c.clear(table, Number(p.iova >> BigInt(table.pageShift)), Number(p.size >> BigInt(table.pageShift)));
  return 0;
}
