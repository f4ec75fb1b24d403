/**
 * The container IOMMU backend contract (Linux struct vfio_iommu_driver_ops, inventory §2.5). A backend package
 * (`@vfio-ts/iommu-type1`, `@vfio-ts/iommu-spapr-tce`) implements it and registers it with a host through a plugin.
 */
import type { IommuGroup, Task } from '@vfio-ts/platform';

/** What kind of VFIO group a backend is asked to attach (Linux enum vfio_group_type). */
export type VfioGroupType = 'iommu' | 'emulated-iommu' | 'no-iommu';

/** The argument of an ioctl: a number passed by value, or the struct bytes (read and written in place). */
export type IoctlArg = number | bigint | Uint8Array | undefined;

/** The caller of a system call, as the kernel sees it (current). */
export interface CallContext {
  readonly task: Task;
}

/** A VFIO group as a backend sees it. */
export interface VfioGroupRef {
  /** The group number (the `N` of /dev/vfio/N). */
  readonly id: number;
  readonly type: VfioGroupType;
  /** The IOMMU group behind it; absent for emulated and no-IOMMU groups. */
  readonly iommuGroup: IommuGroup | undefined;
}

/** A device as a backend sees it: enough to call its dma_unmap when pinned pages are about to be unmapped. */
export interface VfioDeviceRef {
  readonly name: string;
  /** The driver's dma_unmap op, when it has one: must unpin every page it pinned in the range before returning. */
  dmaUnmap?(iova: bigint, length: bigint): void;
}

/** Host services a backend may use: module parameters and the kernel log. */
export interface IommuBackendEnv {
  /** Current value of a module parameter of the backend's module (e.g. 'dma_entry_limit'). */
  param(name: string): string;
  log(text: string): void;
}

/**
 * A container IOMMU backend. `D` is the backend's per-container state returned by `open`.
 * All methods throw `SysError` on failure and must leave state as it was.
 */
export interface VfioIommuDriverOps<D = unknown> {
  /** The kernel's name, e.g. 'vfio-iommu-type1'. */
  readonly name: string;
  /** The module whose parameters `env.param` reads (e.g. 'vfio_iommu_type1'). */
  readonly module: string;
  /** Creates the backend state for SET_IOMMU `type` (throw to refuse the type). */
  open(type: number, env: IommuBackendEnv, call: CallContext): D;
  /** The container lost its last group (or the container closed). */
  release(data: D): void;
  /**
   * Container ioctls after selection, and VFIO_CHECK_EXTENSION before selection (then `data` is `null`).
   * `arg` is the user argument; pointers inside structs are addresses in `call.task.mm`.
   */
  ioctl(data: D | null, cmd: number, arg: IoctlArg, call: CallContext): number;
  attachGroup(data: D, group: VfioGroupRef, call: CallContext): void;
  detachGroup(data: D, group: VfioGroupRef): void;
  /** Backing for vfio_pin_pages: returns one pfn per page. */
  pinPages?(data: D, group: VfioGroupRef, iova: bigint, npage: number, prot: number, call: CallContext): bigint[];
  unpinPages?(data: D, iova: bigint, npage: number): void;
  /** Devices opened in this container (both or neither). */
  registerDevice?(data: D, device: VfioDeviceRef): void;
  unregisterDevice?(data: D, device: VfioDeviceRef): void;
  /** Backing for vfio_dma_rw: copies between `buf` and the user memory behind the IOVA. */
  dmaRw?(data: D, iova: bigint, buf: Uint8Array, write: boolean): void;
  /** The container file was closed. */
  notify?(data: D, event: 'container-close'): void;
  /** A description of the backend state for `vfio status` (mappings, locked pages...). */
  describe?(data: D): Record<string, unknown>;
}
