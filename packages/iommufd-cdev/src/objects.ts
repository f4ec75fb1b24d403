/**
 * iommufd objects (inventory §7): every object lives in the context's table under a u32 id allocated from 1
 * (lowest free, as xa_alloc with XA_FLAGS_ALLOC1 does) and carries a `users` count; IOMMU_DESTROY succeeds only
 * when the table is the sole user (EBUSY otherwise).
 */
import type { IommuDomain, IommuGroup } from '@vfio-ts/platform';
import { IoPagetable } from './ioas.js';

/** Object kinds (Linux enum iommufd_object_type). */
export type IommufdObjectType = 'ioas' | 'hwpt-paging' | 'device' | 'access';

/** Common part of every object. */
export abstract class IommufdObject {
  abstract readonly type: IommufdObjectType;
  /** References: 1 for the table once finalized, plus one per holder (an HWPT on its IOAS, a binder...). */
  users = 1;
  constructor(readonly id: number) {}
}

/** An IO address space. */
export class IoasObject extends IommufdObject {
  readonly type = 'ioas' as const;
  readonly iopt = new IoPagetable();
  /** Paging HWPTs built on this IOAS (ioas->hwpt_list). */
  readonly hwpts = new Set<HwptPagingObject>();
}

/** A kernel-managed paging hardware page table: an IOMMU domain kept in sync with an IOAS. */
export class HwptPagingObject extends IommufdObject {
  readonly type = 'hwpt-paging' as const;
  /** Devices attached to it. */
  readonly devices = new Set<DeviceObject>();
  constructor(
    id: number,
    readonly ioas: IoasObject,
    readonly domain: IommuDomain,
    /** Created implicitly by attaching to an IOAS; destroyed with its last device. */
    readonly autoDomain: boolean,
    readonly nestParent: boolean,
  ) {
    super(id);
  }
}

/** A device bound to the context (iommufd_device): holds DMA ownership of its group. */
export class DeviceObject extends IommufdObject {
  readonly type = 'device' as const;
  hwpt: HwptPagingObject | undefined;
  constructor(
    id: number,
    readonly name: string,
    readonly group: IommuGroup,
  ) {
    super(id);
  }
}

/** Callbacks of an emulated device's access (iommufd_access_ops). */
export interface AccessOps {
  /** Userspace unmapped `[iova, iova+length)`: unpin every page pinned there before returning. */
  unmap(iova: bigint, length: bigint): void;
  /**
   * The access pins pages (iommufd_access_ops.needs_pin_pages; VFIO's emulated devices do): the IOAS must then keep
   * PAGE_SIZE alignment while it is attached. Default true.
   */
  readonly needsPinPages?: boolean;
}

/** Lowest-free id allocator starting at 1. */
export class IdTable<T extends { readonly id: number }> {
  readonly #items = new Map<number, T>();
  readonly #free: number[] = [];
  #next = 1;

  /** The next id that `add` will use. */
  peek(): number {
    return this.#free.length > 0 ? Math.min(...this.#free) : this.#next;
  }

  /** Reserves the lowest free id. */
  alloc(): number {
    if (this.#free.length > 0) {
      let best = 0;
      for (let i = 1; i < this.#free.length; i++) if (this.#free[i]! < this.#free[best]!) best = i;
      const [id] = this.#free.splice(best, 1);
      return id!;
    }
    return this.#next++;
  }

  /** Returns an id that was allocated but never filled (an aborted object). */
  release(id: number): void {
    if (!this.#items.has(id)) this.#free.push(id);
  }

  set(item: T): void {
    this.#items.set(item.id, item);
  }

  get(id: number): T | undefined {
    return this.#items.get(id);
  }

  delete(id: number): void {
    if (this.#items.delete(id)) this.#free.push(id);
  }

  get size(): number {
    return this.#items.size;
  }

  values(): T[] {
    return [...this.#items.values()].sort((a, b) => a.id - b.id);
  }
}
