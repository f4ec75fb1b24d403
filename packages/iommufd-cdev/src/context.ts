/**
 * One open `/dev/iommu` (Linux `iommufd_ctx`, inventory §1.9 and §7): the object table, the ioctl dispatcher
 * and the kernel-side API that VFIO device code uses to bind devices, attach them to IOASes or HWPTs and create
 * accesses for emulated devices.
 */
import type { CallContext, IoctlArg } from '@vfio-ts/core';
import type { IommuGroup, Task } from '@vfio-ts/platform';
import { IOMMU_CACHE, IOMMU_WRITE, PAGE_SIZE_N } from '@vfio-ts/platform';
import {
  IOMMU_DESTROY,
  IOMMU_FAULT_QUEUE_ALLOC,
  IOMMU_GET_HW_INFO,
  IOMMU_HW_INFO_TYPE_INTEL_VTD,
  IOMMU_HW_INFO_TYPE_NONE,
  IOMMU_HWPT_ALLOC,
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_DATA_NONE,
  IOMMU_HWPT_FAULT_ID_VALID,
  IOMMU_HWPT_GET_DIRTY_BITMAP,
  IOMMU_HWPT_INVALIDATE,
  IOMMU_HWPT_SET_DIRTY_TRACKING,
  IOMMU_IOAS_ALLOC,
  IOMMU_IOAS_ALLOW_IOVAS,
  IOMMU_IOAS_COPY,
  IOMMU_IOAS_IOVA_RANGES,
  IOMMU_IOAS_MAP,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMU_IOAS_UNMAP,
  IOMMU_OPTION,
  IOMMU_OPTION_HUGE_PAGES,
  IOMMU_OPTION_OP_GET,
  IOMMU_OPTION_OP_SET,
  IOMMU_OPTION_RLIMIT_MODE,
  IOMMU_VFIO_IOAS,
  IOMMU_VFIO_IOAS_CLEAR,
  IOMMU_VFIO_IOAS_GET,
  IOMMU_VFIO_IOAS_SET,
  SysError,
  iommuDestroy,
  iommuFaultAlloc,
  iommuHwInfo,
  iommuHwInfoVtd,
  iommuHwptAlloc,
  iommuHwptGetDirtyBitmap,
  iommuHwptInvalidate,
  iommuHwptSetDirtyTracking,
  iommuIoasAlloc,
  iommuIoasAllowIovas,
  iommuIoasCopy,
  iommuIoasIovaRanges,
  iommuIoasMap,
  iommuIoasUnmap,
  iommuIovaRange,
  iommuOption,
  iommuVfioIoas,
} from '@vfio-ts/uapi';
import type { StructCodec, StructOf } from '@vfio-ts/uapi';
import { vfioCompatIoctl } from './compat.js';
import { U64_MAX, U64_MAX_LESS_PAGE, areaFirstIndex, protFromFlags } from './ioas.js';
import type { Area, IoPagetable } from './ioas.js';
import { IntervalTree } from './interval.js';
import type { Interval } from './interval.js';
import { DeviceObject, HwptPagingObject, IdTable, IoasObject, IommufdObject } from './objects.js';
import type { AccessOps } from './objects.js';
import { IoPages } from './pages.js';
import type { AccountMode, UserLockedVm } from './pages.js';
import { readCmd, readUser, userSize, writeUser } from './user.js';
import type { UserCmd } from './user.js';

/** `_IOC_NR` of the first iommufd command (IOMMUFD_CMD_BASE). */
const CMD_BASE = 0x80;
/** Commands of Linux 6.12 (DESTROY .. FAULT_QUEUE_ALLOC); anything above goes to the VFIO compat path. */
const CMD_LAST = 0x8e;

/** What a context needs from the host-wide subsystem. */
export interface IommufdEnv {
  readonly userLocked: UserLockedVm;
  /** The IOMMU hardware kind ('vtd', ...), for GET_HW_INFO. */
  readonly iommuKind: string | undefined;
  /** `iommufd.allow_unsafe_interrupts`. */
  allowUnsafeInterrupts(): boolean;
  log(text: string): void;
}

/** Options of {@link IommufdContext.bindDevice}. */
export interface BindDeviceOptions {
  /** The device name (a PCI BDF). */
  readonly name: string;
  /** The IOMMU group the device belongs to. */
  readonly iommuGroup: IommuGroup;
}

/** An emulated device's handle on an IOAS (iommufd_access), from {@link IommufdContext.createAccess}. */
export interface IommufdAccess {
  /** The access's object id. */
  readonly id: number;
  /** The IOAS it is attached to, if any. */
  readonly ioasId: number | undefined;
  /** iommufd_access_attach: EINVAL when already attached. */
  attach(ioasId: number): void;
  /** iommufd_access_replace: moves to another IOAS (EINVAL while pages are pinned). */
  replace(ioasId: number): void;
  /** iommufd_access_detach. */
  detach(): void;
  /**
   * iommufd_access_pin_pages: pins the pages behind `[iova, iova+length)` (contiguous areas, ENOENT otherwise;
   * EPERM writing a read-only area) and returns one pfn per page.
   */
  pinPages(iova: bigint, length: bigint, write: boolean): bigint[];
  /** iommufd_access_unpin_pages: undoes one pinPages of exactly that range. */
  unpinPages(iova: bigint, length: bigint): void;
  /** iommufd_access_rw: copies between `buf` and the memory behind the IOVA range. */
  rw(iova: bigint, buf: Uint8Array, write: boolean): void;
  /** iommufd_access_destroy: unpins what is left and leaves the table. */
  destroy(): void;
}

interface AccessPin {
  readonly iova: bigint;
  readonly length: bigint;
  readonly pieces: { area: Area; first: number; last: number }[];
}

/** The access object behind {@link IommufdAccess}. */
class AccessObject extends IommufdObject implements IommufdAccess {
  readonly type = 'access' as const;
  ioas: IoasObject | undefined;
  readonly pins: AccessPin[] = [];
  /** iommufd_access_create: PAGE_SIZE when the access pins pages, else 1. */
  readonly iovaAlignment: bigint;
  constructor(
    id: number,
    readonly ctx: IommufdContext,
    readonly ops: AccessOps,
  ) {
    super(id);
    this.iovaAlignment = ops.needsPinPages === false ? 1n : PAGE_SIZE_N;
  }
  get ioasId(): number | undefined {
    return this.ioas?.id;
  }
  notifyUnmap(iova: bigint, length: bigint): void {
    this.ops.unmap(iova, length);
  }
  attach(ioasId: number): void {
    this.ctx.accessAttach(this, ioasId, false);
  }
  replace(ioasId: number): void {
    this.ctx.accessAttach(this, ioasId, true);
  }
  detach(): void {
    this.ctx.accessDetach(this);
  }
  pinPages(iova: bigint, length: bigint, write: boolean): bigint[] {
    return this.ctx.accessPin(this, iova, length, write);
  }
  unpinPages(iova: bigint, length: bigint): void {
    this.ctx.accessUnpin(this, iova, length);
  }
  rw(iova: bigint, buf: Uint8Array, write: boolean): void {
    this.ctx.accessRw(this, iova, buf, write);
  }
  destroy(): void {
    this.ctx.accessDestroy(this);
  }
}

type AnyObject = IoasObject | HwptPagingObject | DeviceObject | AccessObject;

/** The state of one /dev/iommu file. */
export class IommufdContext {
  readonly #objects = new IdTable<AnyObject>();
  /** IOMMU_OPTION_RLIMIT_MODE: per-user (default) or per-process accounting. */
  #accountMm = false;
  /** The IOAS used by the VFIO compat ioctls (IOMMU_VFIO_IOAS). */
  #vfioIoas: IoasObject | undefined;
  /** iommufd_vfio_compat_set_no_iommu was called (a no-IOMMU group was given this context). */
  #noIommu = false;
  #closed = false;

  constructor(readonly env: IommufdEnv) {}

  /* ================================================================== object table */

  #install<T extends AnyObject>(make: (id: number) => T): T {
    const obj = make(this.#objects.alloc());
    this.#objects.set(obj);
    return obj;
  }

  /** iommufd_get_object: ENOENT for an unknown id or one of another type. */
  #get<K extends AnyObject['type']>(id: number, type: K): Extract<AnyObject, { type: K }> {
    const obj = this.#objects.get(id);
    if (!obj || obj.type !== type) throw new SysError('ENOENT', `no ${type} object ${id}`);
    return obj as Extract<AnyObject, { type: K }>;
  }

  #getIoas(id: number): IoasObject {
    return this.#get(id, 'ioas');
  }

  /** Destroys an object the table alone holds (iommufd_object_remove): ENOENT / EBUSY. */
  #destroy(id: number): void {
    const obj = this.#objects.get(id);
    if (!obj) throw new SysError('ENOENT', `no object ${id}`);
    if (obj.users !== 1) throw new SysError('EBUSY', `object ${id} is in use`);
    this.#free(obj);
  }

  #free(obj: AnyObject): void {
    this.#objects.delete(obj.id);
    obj.users = 0;
    switch (obj.type) {
      case 'ioas':
        obj.iopt.unmapAll();
        if (this.#vfioIoas === obj) this.#vfioIoas = undefined;
        break;
      case 'hwpt-paging':
        obj.ioas.iopt.removeDomain(obj.domain);
        obj.ioas.hwpts.delete(obj);
        obj.ioas.users--;
        obj.domain.free();
        break;
      case 'device':
      case 'access':
        break;
    }
  }

  /** Number of objects in the table. */
  get objectCount(): number {
    return this.#objects.size;
  }

  /** The IOAS behind `id` as a page table, for tests and `describe` (ENOENT). */
  ioasTable(id: number): IoPagetable {
    return this.#getIoas(id).iopt;
  }

  /** Object ids and kinds, ascending. */
  objects(): { id: number; type: string; users: number }[] {
    return this.#objects.values().map((o) => ({ id: o.id, type: o.type, users: o.users }));
  }

  /** The context as data: IOASes with their mappings and pinned pages. */
  describe(): Record<string, unknown> {
    return {
      accounting: this.#accountMm ? 'process' : 'user',
      vfioIoas: this.#vfioIoas?.id ?? null,
      objects: this.#objects.values().map((o) => {
        if (o.type === 'ioas') {
          return {
            id: o.id,
            type: o.type,
            areas: o.iopt.areas.size,
            mappedBytes: o.iopt.mappedBytes().toString(),
            domains: o.iopt.domains.length,
            iovaAlignment: o.iopt.iovaAlignment.toString(),
          };
        }
        return { id: o.id, type: o.type, users: o.users };
      }),
    };
  }

  /**
   * fops_release: destroys every object, repeatedly taking those only the table holds (devices and accesses a
   * driver still holds are torn down last, as their drivers would on close).
   */
  release(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#sweep();
    for (const o of this.#objects.values()) {
      if (o.type === 'device') this.unbindDevice(o.id);
      else if (o.type === 'access') this.accessDestroy(o);
    }
    this.#sweep();
  }

  /** Frees objects only the table holds until none is left (each round may release what they held). */
  #sweep(): void {
    for (;;) {
      const free = this.#objects.values().filter((o) => o.users === 1);
      if (free.length === 0) return;
      for (const o of free) if (o.users === 1) this.#free(o);
    }
  }

  /* ================================================================== ioctl dispatch */

  /** The file's ioctl (iommufd_fops_ioctl). */
  ioctl(request: number, arg: IoctlArg, call: CallContext): number {
    const nr = request & 0xff;
    if (nr < CMD_BASE || nr > CMD_LAST) return vfioCompatIoctl(this, request, arg, call);
    // get_user(size) comes before anything else: a NULL argument is EFAULT even for an unknown command.
    userSize(arg, call);
    const cmd = (0x3b << 8) | nr;
    if (request !== cmd) throw new SysError('ENOTTY', `unknown iommufd ioctl 0x${request.toString(16)}`);
    switch (request) {
      case IOMMU_DESTROY: {
        const c = readCmd(arg, call, iommuDestroy);
        this.#destroy(c.value.id);
        return 0;
      }
      case IOMMU_IOAS_ALLOC:
        return this.#ioasAlloc(readCmd(arg, call, iommuIoasAlloc));
      case IOMMU_IOAS_ALLOW_IOVAS:
        return this.#allowIovas(readCmd(arg, call, iommuIoasAllowIovas), call);
      case IOMMU_IOAS_COPY:
        return this.#copy(readCmd(arg, call, iommuIoasCopy));
      case IOMMU_IOAS_IOVA_RANGES:
        return this.#iovaRanges(readCmd(arg, call, iommuIoasIovaRanges), call);
      case IOMMU_IOAS_MAP:
        return this.#map(readCmd(arg, call, iommuIoasMap), call);
      case IOMMU_IOAS_UNMAP:
        return this.#unmap(readCmd(arg, call, iommuIoasUnmap));
      case IOMMU_OPTION:
        return this.#option(readCmd(arg, call, iommuOption), call);
      case IOMMU_VFIO_IOAS:
        return this.#vfioIoasCmd(readCmd(arg, call, iommuVfioIoas));
      case IOMMU_HWPT_ALLOC:
        return this.#hwptAlloc(readCmd(arg, call, iommuHwptAlloc));
      case IOMMU_GET_HW_INFO:
        return this.#hwInfo(readCmd(arg, call, iommuHwInfo), call);
      case IOMMU_HWPT_SET_DIRTY_TRACKING: {
        const c = readCmd(arg, call, iommuHwptSetDirtyTracking);
        if (c.value.__reserved !== 0 || (c.value.flags & ~1) !== 0) throw new SysError('EOPNOTSUPP', 'unknown flags');
        this.#get(c.value.hwpt_id, 'hwpt-paging');
        // No HWPT here is ever allocated with DIRTY_TRACKING (the simulated IOMMU has none).
        throw new SysError('EOPNOTSUPP', 'dirty tracking not supported by the HWPT');
      }
      case IOMMU_HWPT_GET_DIRTY_BITMAP: {
        const c = readCmd(arg, call, iommuHwptGetDirtyBitmap);
        if (c.value.__reserved !== 0 || (c.value.flags & ~1) !== 0) throw new SysError('EOPNOTSUPP', 'unknown flags');
        this.#get(c.value.hwpt_id, 'hwpt-paging');
        throw new SysError('EOPNOTSUPP', 'dirty tracking not supported by the HWPT');
      }
      case IOMMU_HWPT_INVALIDATE: {
        const c = readCmd(arg, call, iommuHwptInvalidate);
        if (c.value.__reserved !== 0) throw new SysError('EOPNOTSUPP', 'reserved field set');
        // iommufd_get_hwpt_nested: only nested HWPTs take invalidations, and this IOMMU makes none.
        throw new SysError('ENOENT', `no nested HWPT ${c.value.hwpt_id}`);
      }
      case IOMMU_FAULT_QUEUE_ALLOC: {
        readCmd(arg, call, iommuFaultAlloc as StructCodec<unknown>);
        throw new SysError('EOPNOTSUPP', 'IO page fault queues are not supported');
      }
      default:
        throw new SysError('ENOTTY', `unknown iommufd ioctl 0x${request.toString(16)}`);
    }
  }

  /* ================================================================== IOAS commands */

  #ioasAlloc(c: UserCmd<StructOf<typeof iommuIoasAlloc>>): number {
    if (c.value.flags !== 0) throw new SysError('EOPNOTSUPP', 'IOAS_ALLOC takes no flags');
    const id = this.#objects.peek();
    // iommufd_ucmd_respond happens before the object is finalized: a failed copy-out leaves no object.
    c.respond({ out_ioas_id: id });
    this.#install((i) => new IoasObject(i));
    return 0;
  }

  /** Creates an empty IOAS (kernel-side, for VFIO's compat path and tests); returns its id. */
  allocIoas(): number {
    return this.#install((i) => new IoasObject(i)).id;
  }

  #allowIovas(c: UserCmd<StructOf<typeof iommuIoasAllowIovas>>, call: CallContext): number {
    const v = c.value;
    if (v.__reserved !== 0) throw new SysError('EOPNOTSUPP', 'reserved field set');
    const ioas = this.#getIoas(v.ioas_id);
    // iommufd_ioas_load_iovas: in order, each range valid (start < last) and clear of the ones before (an
    // interval tree, so a long list costs n log n).
    const tree = new IntervalTree<Interval>();
    for (let i = 0; i < v.num_iovas; i++) {
      const r = iommuIovaRange.decode(readUser(call, v.allowed_iovas + BigInt(i) * 16n, 16));
      if (r.start >= r.last) throw new SysError('EINVAL', 'allowed range must have start < last');
      if (tree.first(r.start, r.last)) throw new SysError('EINVAL', 'allowed ranges overlap');
      tree.insert({ start: r.start, last: r.last });
    }
    ioas.iopt.setAllowed(tree.toArray());
    return 0;
  }

  #iovaRanges(c: UserCmd<StructOf<typeof iommuIoasIovaRanges>>, call: CallContext): number {
    const v = c.value;
    if (v.__reserved !== 0) throw new SysError('EOPNOTSUPP', 'reserved field set');
    const ioas = this.#getIoas(v.ioas_id);
    const max = v.num_iovas;
    const ranges = ioas.iopt.usableRanges();
    ranges.forEach((r, i) => {
      if (i < max) writeUser(call, v.allowed_iovas + BigInt(i * 16), iommuIovaRange.encode({ start: r.start, last: r.last }));
    });
    c.respond({ num_iovas: ranges.length, out_iova_alignment: ioas.iopt.iovaAlignment });
    if (ranges.length > max) throw new SysError('EMSGSIZE', `${ranges.length} ranges, room for ${max}`);
    return 0;
  }

  #accountModeFor(task: Task): AccountMode {
    if (task.capable('CAP_IPC_LOCK')) return 'none';
    return this.#accountMm ? 'mm' : 'user';
  }

  #map(c: UserCmd<StructOf<typeof iommuIoasMap>>, call: CallContext): number {
    const v = c.value;
    const known = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE;
    if ((v.flags & ~known) !== 0 || v.__reserved !== 0) throw new SysError('EOPNOTSUPP', 'unknown map flags');
    if (v.iova >= U64_MAX || v.length >= U64_MAX) throw new SysError('EOVERFLOW', 'iova or length too large');
    if ((v.flags & (IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE)) === 0) throw new SysError('EINVAL', 'map needs READABLE or WRITEABLE');
    const ioas = this.#getIoas(v.ioas_id);
    const fixed = (v.flags & IOMMU_IOAS_MAP_FIXED_IOVA) !== 0;
    const iova = this.mapUser(ioas.iopt, call.task, v.user_va, v.length, fixed ? v.iova : undefined, this.#prot(v.flags));
    c.respond({ iova });
    return 0;
  }

  #prot(flags: number): number {
    return protFromFlags((flags & IOMMU_IOAS_MAP_WRITEABLE) !== 0, (flags & IOMMU_IOAS_MAP_READABLE) !== 0, IOMMU_CACHE);
  }

  /** iopt_map_user_pages: a new pages object over the user range, mapped as one area. */
  mapUser(iopt: IoPagetable, task: Task, uptr: bigint, length: bigint, iova: bigint | undefined, prot: number): bigint {
    if (length === 0n || length > U64_MAX_LESS_PAGE) throw new SysError('EINVAL', 'bad length');
    if (uptr + length > U64_MAX) throw new SysError('EOVERFLOW', 'user range overflows');
    const pages = new IoPages(task.mm, task, uptr, length, (prot & IOMMU_WRITE) !== 0, this.#accountModeFor(task), this.env.userLocked);
    return iopt.mapPages([{ pages, startByte: uptr - pages.base, length }], length, iova, prot);
  }

  #copy(c: UserCmd<StructOf<typeof iommuIoasCopy>>): number {
    const v = c.value;
    const known = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE;
    if ((v.flags & ~known) !== 0) throw new SysError('EOPNOTSUPP', 'unknown copy flags');
    if (v.length >= U64_MAX || v.src_iova >= U64_MAX || v.dst_iova >= U64_MAX) throw new SysError('EOVERFLOW', 'value too large');
    if ((v.flags & (IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE)) === 0) throw new SysError('EINVAL', 'copy needs READABLE or WRITEABLE');
    const src = this.#getIoas(v.src_ioas_id);
    const slices = src.iopt.getPages(v.src_iova, v.length);
    const dst = this.#getIoas(v.dst_ioas_id);
    const fixed = (v.flags & IOMMU_IOAS_MAP_FIXED_IOVA) !== 0;
    const iova = dst.iopt.mapPages(slices, v.length, fixed ? v.dst_iova : undefined, this.#prot(v.flags));
    c.respond({ dst_iova: iova });
    return 0;
  }

  #unmap(c: UserCmd<StructOf<typeof iommuIoasUnmap>>): number {
    const v = c.value;
    const ioas = this.#getIoas(v.ioas_id);
    let unmapped: bigint;
    if (v.iova === 0n && v.length === U64_MAX) unmapped = ioas.iopt.unmapAll();
    else {
      if (v.iova >= U64_MAX || v.length >= U64_MAX) throw new SysError('EOVERFLOW', 'iova or length too large');
      if (v.length === 0n) throw new SysError('EINVAL', 'zero length');
      const last = v.iova + v.length - 1n;
      if (last > U64_MAX) throw new SysError('EOVERFLOW', 'iova + length overflows');
      unmapped = ioas.iopt.unmapRange(v.iova, last);
    }
    c.respond({ length: unmapped });
    return 0;
  }

  #option(c: UserCmd<StructOf<typeof iommuOption>>, call: CallContext): number {
    const v = c.value;
    if (v.__reserved !== 0) throw new SysError('EOPNOTSUPP', 'reserved field set');
    let val = v.val64;
    switch (v.option_id) {
      case IOMMU_OPTION_RLIMIT_MODE: {
        if (v.object_id !== 0) throw new SysError('EOPNOTSUPP', 'RLIMIT_MODE is global');
        if (v.op === IOMMU_OPTION_OP_GET) val = this.#accountMm ? 1n : 0n;
        else if (v.op === IOMMU_OPTION_OP_SET) {
          if (!call.task.capable('CAP_SYS_RESOURCE')) throw new SysError('EPERM', 'RLIMIT_MODE needs CAP_SYS_RESOURCE');
          if (this.#objects.size > 0) throw new SysError('EBUSY', 'objects exist');
          if (v.val64 === 0n) this.#accountMm = false;
          else if (v.val64 === 1n) this.#accountMm = true;
          else throw new SysError('EINVAL', 'RLIMIT_MODE is 0 or 1');
        } else throw new SysError('EOPNOTSUPP', 'unknown option op');
        break;
      }
      case IOMMU_OPTION_HUGE_PAGES: {
        const ioas = this.#getIoas(v.object_id);
        if (v.op === IOMMU_OPTION_OP_GET) val = ioas.iopt.largePagesDisabled ? 0n : 1n;
        else if (v.op === IOMMU_OPTION_OP_SET) {
          if (v.val64 === 0n) ioas.iopt.disableLargePages();
          else if (v.val64 === 1n) ioas.iopt.enableLargePages();
          else throw new SysError('EINVAL', 'HUGE_PAGES is 0 or 1');
        } else throw new SysError('EOPNOTSUPP', 'unknown option op');
        break;
      }
      default:
        throw new SysError('EOPNOTSUPP', `unknown option ${v.option_id}`);
    }
    // Only val64 is copied back, and only on success.
    c.respond({ val64: val });
    return 0;
  }

  #vfioIoasCmd(c: UserCmd<StructOf<typeof iommuVfioIoas>>): number {
    const v = c.value;
    if (v.__reserved !== 0) throw new SysError('EOPNOTSUPP', 'reserved field set');
    switch (v.op) {
      case IOMMU_VFIO_IOAS_GET: {
        const ioas = this.compatIoas();
        c.respond({ ioas_id: ioas.id });
        return 0;
      }
      case IOMMU_VFIO_IOAS_SET:
        this.#vfioIoas = this.#getIoas(v.ioas_id);
        return 0;
      case IOMMU_VFIO_IOAS_CLEAR:
        this.#vfioIoas = undefined;
        return 0;
      default:
        throw new SysError('EOPNOTSUPP', 'unknown VFIO_IOAS op');
    }
  }

  /** get_compat_ioas: the IOAS the VFIO compat ioctls use (ENODEV when none is set). */
  compatIoas(): IoasObject {
    if (!this.#vfioIoas) throw new SysError('ENODEV', 'no compat IOAS');
    return this.#vfioIoas;
  }

  /** Whether the context is in VFIO no-IOMMU compat mode. */
  get noIommuMode(): boolean {
    return this.#noIommu;
  }

  /**
   * iommufd_vfio_compat_ioas_create (a group's SET_CONTAINER with this iommufd): creates the compat IOAS unless
   * one is set; EINVAL in no-IOMMU compat mode. Returns its id.
   */
  compatIoasCreate(): number {
    if (this.#noIommu) throw new SysError('EINVAL', 'context is in no-IOMMU compat mode');
    if (this.#vfioIoas) return this.#vfioIoas.id;
    const ioas = this.#install((i) => new IoasObject(i));
    this.#vfioIoas = ioas;
    return ioas.id;
  }

  /** iommufd_vfio_compat_set_no_iommu: EINVAL once a compat IOAS exists. */
  compatSetNoIommu(): void {
    if (this.#vfioIoas) throw new SysError('EINVAL', 'a compat IOAS exists');
    this.#noIommu = true;
  }

  /** iommufd_ctx_has_group: a device of `group` is bound to this context. */
  hasGroup(group: IommuGroup): boolean {
    return this.#objects.values().some((o) => o.type === 'device' && o.group === group);
  }

  /** Whether the RLIMIT_MODE is per-process. */
  get accountPerProcess(): boolean {
    return this.#accountMm;
  }

  /* ================================================================== HWPT / devices */

  #hwptAlloc(c: UserCmd<StructOf<typeof iommuHwptAlloc>>): number {
    const v = c.value;
    if (v.__reserved !== 0) throw new SysError('EOPNOTSUPP', 'reserved field set');
    if ((v.data_type === IOMMU_HWPT_DATA_NONE && v.data_len !== 0) || (v.data_type !== IOMMU_HWPT_DATA_NONE && v.data_len === 0)) {
      throw new SysError('EINVAL', 'data_type and data_len disagree');
    }
    const dev = this.#get(v.dev_id, 'device');
    const pt = this.#objects.get(v.pt_id);
    if (!pt) throw new SysError('EINVAL', `no object ${v.pt_id}`);
    if (pt.type === 'hwpt-paging') {
      // iommufd_hwpt_nested_alloc: user data is mandatory, the parent must be an explicit NEST_PARENT HWPT; the
      // simulated VT-d then has no stage-1 support to offer.
      if ((v.flags & ~IOMMU_HWPT_FAULT_ID_VALID) !== 0 || v.data_len === 0) throw new SysError('EOPNOTSUPP', 'bad nested HWPT flags or data');
      if (pt.autoDomain || !pt.nestParent) throw new SysError('EINVAL', 'parent HWPT is not a nesting parent');
      throw new SysError('EOPNOTSUPP', 'nested HWPTs are not supported by this IOMMU');
    }
    if (pt.type !== 'ioas') throw new SysError('EINVAL', 'pt_id is neither an IOAS nor an HWPT');
    const valid = IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_ALLOC_DIRTY_TRACKING | IOMMU_HWPT_FAULT_ID_VALID;
    if ((v.flags & ~valid) !== 0 || v.data_type !== IOMMU_HWPT_DATA_NONE) throw new SysError('EOPNOTSUPP', 'unsupported HWPT flags or data');
    if ((v.flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING) !== 0) throw new SysError('EOPNOTSUPP', 'device has no dirty tracking');
    // FAULT_ID_VALID names a fault queue object; none can exist here (FAULT_QUEUE_ALLOC is not supported).
    if ((v.flags & IOMMU_HWPT_FAULT_ID_VALID) !== 0) throw new SysError('ENOENT', `no fault object ${v.fault_id}`);
    const hwpt = this.#hwptPagingAlloc(pt, dev.group, false, (v.flags & IOMMU_HWPT_ALLOC_NEST_PARENT) !== 0);
    try {
      c.respond({ out_hwpt_id: hwpt.id });
    } catch (e) {
      this.#free(hwpt);
      throw e;
    }
    return 0;
  }

  /** iommufd_hwpt_paging_alloc: a fresh domain from the group's IOMMU, filled from the IOAS. */
  #hwptPagingAlloc(ioas: IoasObject, group: IommuGroup, auto: boolean, nestParent: boolean): HwptPagingObject {
    const domain = group.allocDomain();
    try {
      ioas.iopt.addDomain(domain);
    } catch (e) {
      domain.free();
      throw e;
    }
    const hwpt = this.#install((id) => new HwptPagingObject(id, ioas, domain, auto, nestParent));
    ioas.users++;
    ioas.hwpts.add(hwpt);
    return hwpt;
  }

  #hwInfo(c: UserCmd<StructOf<typeof iommuHwInfo>>, call: CallContext): number {
    const v = c.value;
    if (v.flags !== 0 || v.__reserved !== 0) throw new SysError('EOPNOTSUPP', 'reserved field set');
    this.#get(v.dev_id, 'device');
    const vtd = this.env.iommuKind === 'vtd';
    // The simulated VT-d reports no capability/extended-capability registers: zeros, as a VM's emulated IOMMU may.
    const data = vtd ? iommuHwInfoVtd.encode({}) : new Uint8Array(0);
    const copy = Math.min(v.data_len, data.length);
    if (v.data_len > 0) {
      const out = new Uint8Array(v.data_len);
      out.set(data.subarray(0, copy));
      writeUser(call, v.data_uptr, out);
    }
    c.respond({
      data_len: data.length,
      out_data_type: vtd ? IOMMU_HW_INFO_TYPE_INTEL_VTD : IOMMU_HW_INFO_TYPE_NONE,
      out_capabilities: 0n,
    });
    return 0;
  }

  /**
   * iommufd_device_bind: claims user DMA ownership of the device's group for this context (EPERM while a host
   * driver or another owner uses it; EPERM without interrupt isolation unless allow_unsafe_interrupts; EINVAL
   * without cache coherency) and returns the new device id. The caller holds the device until
   * {@link unbindDevice}.
   */
  bindDevice(opts: BindDeviceOptions): number {
    if (this.#closed) throw new SysError('EBADF', 'iommufd closed');
    const g = opts.iommuGroup;
    if (!g.cacheCoherent) throw new SysError('EINVAL', 'IOMMU does not enforce cache coherency');
    if (g.isolatedMsi === false && !this.env.allowUnsafeInterrupts()) {
      this.env.log(`iommufd: No interrupt remapping support for ${opts.name}. Use the module param "allow_unsafe_interrupts" to workaround`);
      throw new SysError('EPERM', 'no interrupt isolation');
    }
    g.claimDmaOwner(this);
    const dev = this.#install((id) => new DeviceObject(id, opts.name, g));
    dev.users++; // the binding driver's reference
    return dev.id;
  }

  /** iommufd_device_unbind: detaches if attached, releases DMA ownership, removes the object. */
  unbindDevice(devId: number): void {
    const dev = this.#get(devId, 'device');
    if (dev.hwpt) this.detach(devId);
    dev.group.releaseDmaOwner(this);
    this.#free(dev);
  }

  /**
   * iommufd_device_attach / replace: `ptId` is an IOAS (an automatic HWPT is reused or created) or a paging HWPT.
   * Attaching while attached replaces. Returns the HWPT id. ENOENT for an unknown id, EINVAL for another object.
   */
  attach(devId: number, ptId: number): number {
    const dev = this.#get(devId, 'device');
    const pt = this.#objects.get(ptId);
    if (!pt) throw new SysError('ENOENT', `no object ${ptId}`);
    let target: HwptPagingObject;
    let created = false;
    if (pt.type === 'hwpt-paging') target = pt;
    else if (pt.type === 'ioas') {
      const reuse = [...pt.hwpts].find((h) => h.autoDomain);
      if (reuse) target = reuse;
      else {
        // Linux enforces the group's reserved regions before it fills a new automatic domain: a conflict is
        // EADDRINUSE even when filling would also fail.
        for (const r of dev.group.reservedRegions()) if (r.type !== 'direct-relaxable') pt.iopt.checkReservable(r.start, r.end);
        target = this.#hwptPagingAlloc(pt, dev.group, true, false);
        created = true;
      }
    } else throw new SysError('EINVAL', `object ${ptId} cannot be attached to`);
    try {
      this.#attachTo(dev, target);
    } catch (e) {
      if (created) this.#free(target);
      throw e;
    }
    return target.id;
  }

  /** Devices of this context sharing `dev`'s group. */
  #groupMates(dev: DeviceObject): DeviceObject[] {
    return this.#objects.values().filter((o): o is DeviceObject => o.type === 'device' && o.group === dev.group);
  }

  #attachTo(dev: DeviceObject, hwpt: HwptPagingObject): void {
    const old = dev.hwpt;
    if (old === hwpt) return;
    const mates = this.#groupMates(dev).filter((d) => d.hwpt !== undefined && d !== dev);
    if (!old && mates.some((d) => d.hwpt !== hwpt)) throw new SysError('EINVAL', 'the group is attached to another HWPT');
    // Replacement moves the whole group; a first attach by a mate of an attached group just joins it.
    const moving = old ? this.#groupMates(dev).filter((d) => d.hwpt === old) : [dev];
    const iopt = hwpt.ioas.iopt;
    const reserved = dev.group.reservedRegions().filter((r) => r.type !== 'direct-relaxable');
    const owners = moving;
    const added: DeviceObject[] = [];
    try {
      if (!old || old.ioas !== hwpt.ioas) {
        for (const d of owners) {
          added.push(d); // before reserving, so a partial set is removed too
          for (const r of reserved) iopt.reserve(r.start, r.end, d);
        }
      }
      const groupAttached = mates.length > 0 && !old;
      if (!groupAttached) {
        if (old) dev.group.detachDomain(old.domain);
        try {
          dev.group.attachDomain(hwpt.domain);
        } catch (e) {
          if (old) dev.group.attachDomain(old.domain);
          throw e;
        }
      }
    } catch (e) {
      for (const d of added) iopt.removeReserved(d);
      throw e;
    }
    for (const d of moving) {
      if (old) {
        old.devices.delete(d);
        old.users--;
        if (old.ioas !== hwpt.ioas) old.ioas.iopt.removeReserved(d);
      }
      d.hwpt = hwpt;
      hwpt.devices.add(d);
      hwpt.users++;
    }
    if (old && old.autoDomain && old.devices.size === 0) this.#free(old);
  }

  /** iommufd_device_detach: the device's group blocks DMA once its last attached device leaves. */
  detach(devId: number): void {
    const dev = this.#get(devId, 'device');
    const hwpt = dev.hwpt;
    if (!hwpt) throw new SysError('EINVAL', 'device is not attached');
    dev.hwpt = undefined;
    hwpt.devices.delete(dev);
    hwpt.users--;
    hwpt.ioas.iopt.removeReserved(dev);
    if (!this.#groupMates(dev).some((d) => d.hwpt === hwpt)) dev.group.detachDomain(hwpt.domain);
    if (hwpt.autoDomain && hwpt.devices.size === 0) this.#free(hwpt);
  }

  /** The HWPT id a device is attached to, if any. */
  attachedHwpt(devId: number): number | undefined {
    return this.#get(devId, 'device').hwpt?.id;
  }

  /* ================================================================== accesses (emulated devices) */

  /**
   * iommufd_access_create: an access for an emulated device; attach it to an IOAS before pinning. While attached,
   * an access that pins pages keeps the IOAS at PAGE_SIZE alignment (attach is EADDRINUSE over misaligned areas).
   */
  createAccess(ops: AccessOps): IommufdAccess {
    const acc = this.#install((id) => new AccessObject(id, this, ops));
    acc.users++; // the driver's reference
    return acc;
  }

  /** @internal */
  accessAttach(acc: AccessObject, ioasId: number, replace: boolean): void {
    if (!replace && acc.ioas) throw new SysError('EINVAL', 'access already attached');
    if (replace && !acc.ioas) throw new SysError('EINVAL', 'access not attached');
    const ioas = this.#getIoas(ioasId);
    if (acc.ioas === ioas) return;
    if (acc.pins.length > 0) throw new SysError('EINVAL', 'access holds pinned pages');
    ioas.iopt.addAccess(acc);
    ioas.users++;
    if (acc.ioas) this.accessDetach(acc);
    acc.ioas = ioas;
  }

  /** @internal */
  accessDetach(acc: AccessObject): void {
    const ioas = acc.ioas;
    if (!ioas) return;
    for (const p of [...acc.pins]) this.accessUnpin(acc, p.iova, p.length);
    ioas.iopt.removeAccess(acc);
    ioas.users--;
    acc.ioas = undefined;
  }

  /** @internal */
  accessPin(acc: AccessObject, iova: bigint, length: bigint, write: boolean): bigint[] {
    const ioas = acc.ioas;
    if (!ioas) throw new SysError('EINVAL', 'access not attached');
    if (length === 0n) throw new SysError('EINVAL', 'zero length');
    const last = iova + length - 1n;
    if (last > U64_MAX) throw new SysError('EOVERFLOW', 'range overflows');
    const pieces: AccessPin['pieces'] = [];
    let cur = iova;
    while (cur <= last) {
      const a = ioas.iopt.areas.first(cur, cur);
      if (!a) throw new SysError('ENOENT', 'IOVA not mapped');
      if (write && (a.prot & IOMMU_WRITE) === 0) throw new SysError('EPERM', 'area is read-only');
      const end = a.last < last ? a.last : last;
      const base = areaFirstIndex(a);
      const first = Number((a.startByte + (cur - a.start)) / PAGE_SIZE_N);
      const lastIdx = Number((a.startByte + (end - a.start)) / PAGE_SIZE_N);
      pieces.push({ area: a, first: Math.max(first, base), last: lastIdx });
      if (end === last) break;
      cur = end + 1n;
    }
    const done: AccessPin['pieces'] = [];
    try {
      for (const p of pieces) {
        p.area.pages.pin(p.first, p.last);
        done.push(p);
      }
    } catch (e) {
      for (const p of done) p.area.pages.unpin(p.first, p.last);
      throw e;
    }
    const pfns: bigint[] = [];
    for (const p of pieces) {
      p.area.accessPins++;
      // One lookup per physically contiguous run, not one binary search per page.
      for (const r of p.area.pages.runs(p.first, p.last)) for (let k = 0; k < r.npages; k++) pfns.push(r.pfn + BigInt(k));
    }
    acc.pins.push({ iova, length, pieces });
    return pfns;
  }

  /** @internal */
  accessUnpin(acc: AccessObject, iova: bigint, length: bigint): void {
    const i = acc.pins.findIndex((p) => p.iova === iova && p.length === length);
    if (i < 0) throw new SysError('EINVAL', 'range was not pinned by this access');
    const [pin] = acc.pins.splice(i, 1);
    for (const p of pin!.pieces) {
      p.area.pages.unpin(p.first, p.last);
      p.area.accessPins--;
    }
  }

  /** @internal */
  accessRw(acc: AccessObject, iova: bigint, buf: Uint8Array, write: boolean): void {
    const ioas = acc.ioas;
    if (!ioas) throw new SysError('EINVAL', 'access not attached');
    if (buf.length === 0) throw new SysError('EINVAL', 'zero length');
    const slices = ioas.iopt.getPages(iova, BigInt(buf.length));
    let off = 0;
    for (const s of slices) {
      const va = s.pages.base + s.startByte;
      const n = Number(s.length);
      if (write) {
        if (!s.pages.writable) throw new SysError('EPERM', 'pages are read-only');
        s.pages.mm.write(va, buf.subarray(off, off + n));
      } else buf.set(s.pages.mm.read(va, n), off);
      off += n;
    }
  }

  /** @internal */
  accessDestroy(acc: AccessObject): void {
    if (acc.users === 0) return;
    this.accessDetach(acc);
    this.#free(acc);
  }
}
