/**
 * The legacy container (`/dev/vfio/vfio`, inventory §1.2, §2.5): groups join it with SET_CONTAINER, SET_IOMMU
 * selects a backend, and every other ioctl is forwarded to that backend.
 */
import {
  SysError,
  VFIO_API_VERSION,
  VFIO_CHECK_EXTENSION,
  VFIO_GET_API_VERSION,
  VFIO_SET_IOMMU,
  isSysError,
} from '@vfio-ts/uapi';
import type { FileOps, SyscallContext } from './file.js';
import type { Group } from './group.js';
import type { CallContext, IoctlArg, IommuBackendEnv, VfioIommuDriverOps } from './iommu-driver.js';
import { argValue } from './user.js';

/** What a container needs from its host's VFIO core. */
export interface ContainerHost {
  /** Registered backends, newest first (Linux list_add order). */
  iommuDrivers(): readonly VfioIommuDriverOps[];
  /** The built-in no-IOMMU backend. */
  readonly noiommuDriver: VfioIommuDriverOps;
  backendEnv(driver: VfioIommuDriverOps): IommuBackendEnv;
  /** Viability of a real group: nobody (no DMA-doing host driver, no other owner) claims its DMA. */
  groupViable(group: Group): boolean;
  containerGone(container: Container): void;
}

/** The selected backend of a container and its state. */
export interface ContainerBackend {
  readonly driver: VfioIommuDriverOps;
  readonly data: unknown;
}

/** A VFIO container (Linux struct vfio_container). */
export class Container {
  /** Groups in attach order. */
  readonly groups: Group[] = [];
  /** The backend chosen by SET_IOMMU, if any. */
  backend: ContainerBackend | undefined;
  /** Whether the container holds no-IOMMU groups (decided by the first group). */
  noiommu = false;
  #refs = 1;

  constructor(
    readonly id: number,
    readonly host: ContainerHost,
  ) {}

  get(): void {
    this.#refs++;
  }

  put(): void {
    this.#refs--;
    if (this.#refs === 0) this.host.containerGone(this);
  }

  /** vfio_iommu_driver_allowed: no-IOMMU containers use only the no-IOMMU backend, and vice versa. */
  #allowed(driver: VfioIommuDriverOps): boolean {
    return this.noiommu === (driver === this.host.noiommuDriver);
  }

  /** Container ioctls (§1.2). */
  ioctl(cmd: number, arg: IoctlArg, call: SyscallContext): number {
    switch (cmd) {
      case VFIO_GET_API_VERSION:
        return VFIO_API_VERSION;
      case VFIO_CHECK_EXTENSION:
        return this.#checkExtension(arg, call);
      case VFIO_SET_IOMMU:
        return this.#setIommu(arg, call);
      default:
        if (!this.backend) throw new SysError('EINVAL', 'no IOMMU backend set on the container');
        return this.backend.driver.ioctl(this.backend.data, cmd, arg, call);
    }
  }

  #checkExtension(arg: IoctlArg, call: CallContext): number {
    if (this.backend) return this.backend.driver.ioctl(this.backend.data, VFIO_CHECK_EXTENSION, arg, call);
    // Before selection every registered backend is polled; the first positive answer wins (§1.1).
    let ret: number | SysError = 0;
    for (const driver of this.host.iommuDrivers()) {
      if (this.groups.length > 0 && !this.#allowed(driver)) continue;
      try {
        ret = driver.ioctl(null, VFIO_CHECK_EXTENSION, arg, call);
      } catch (e) {
        if (!isSysError(e)) throw e;
        ret = e;
      }
      if (typeof ret === 'number' && ret > 0) break;
    }
    if (ret instanceof SysError) throw ret;
    return ret;
  }

  #setIommu(arg: IoctlArg, call: CallContext): number {
    // Only a container holding a group may enable an IOMMU; there is no unset (§1.2).
    if (this.groups.length === 0 || this.backend) {
      throw new SysError('EINVAL', this.backend ? 'IOMMU already set' : 'container has no group');
    }
    const type = argValue(arg);
    let err = new SysError('ENODEV', `no IOMMU backend accepts type ${type}`);
    for (const driver of this.host.iommuDrivers()) {
      if (!this.#allowed(driver)) continue;
      let supported: number;
      try {
        supported = driver.ioctl(null, VFIO_CHECK_EXTENSION, arg, call);
      } catch (e) {
        if (!isSysError(e)) throw e;
        continue;
      }
      if (supported <= 0) continue;
      let data: unknown;
      try {
        data = driver.open(type, this.host.backendEnv(driver), call);
      } catch (e) {
        if (!isSysError(e)) throw e;
        err = e;
        continue;
      }
      const attached: Group[] = [];
      try {
        for (const g of this.groups) {
          driver.attachGroup(data, g, call);
          attached.push(g);
        }
      } catch (e) {
        if (!isSysError(e)) throw e;
        for (const g of attached.reverse()) driver.detachGroup(data, g);
        driver.release(data);
        err = e;
        continue;
      }
      this.backend = { driver, data };
      return 0;
    }
    throw err;
  }

  /** SET_CONTAINER's container half (vfio_container_attach_group). */
  attachGroup(group: Group, call: CallContext): void {
    if (group.type === 'no-iommu' && !call.task.capable('CAP_SYS_RAWIO')) {
      throw new SysError('EPERM', 'no-IOMMU group needs CAP_SYS_RAWIO');
    }
    // Real and no-IOMMU groups never share a container (§2.9).
    if (this.groups.length > 0 && this.noiommu !== (group.type === 'no-iommu')) {
      throw new SysError('EPERM', 'cannot mix no-IOMMU and IOMMU groups in a container');
    }
    const iommuGroup = group.iommuGroup;
    const claims = group.type === 'iommu' && iommuGroup !== undefined;
    if (claims) {
      // iommu_group_claim_dma_owner fails with EPERM while anyone (a DMA-doing host driver) owns the group (§2.8).
      if (!this.host.groupViable(group)) throw new SysError('EPERM', `group ${group.id} is not viable`);
      iommuGroup.claimDmaOwner(group);
    }
    if (this.backend) {
      try {
        this.backend.driver.attachGroup(this.backend.data, group, call);
      } catch (e) {
        if (claims) iommuGroup.releaseDmaOwner(group);
        throw e;
      }
    }
    group.container = this;
    group.containerUsers = 1;
    this.noiommu = group.type === 'no-iommu';
    this.groups.push(group);
    this.get();
  }

  /** UNSET_CONTAINER / group close / group removal (vfio_group_detach_container). */
  detachGroup(group: Group): void {
    const backend = this.backend;
    if (backend) backend.driver.detachGroup(backend.data, group);
    if (group.type === 'iommu' && group.iommuGroup) group.iommuGroup.releaseDmaOwner(group);
    group.container = undefined;
    group.containerUsers = 0;
    const i = this.groups.indexOf(group);
    if (i >= 0) this.groups.splice(i, 1);
    // Detaching the last group deprivileges the container: the backend goes (§1.2).
    if (backend && this.groups.length === 0) {
      this.backend = undefined;
      backend.driver.release(backend.data);
    }
    this.put();
  }

  /** A description for `vfio status`. */
  describe(): Record<string, unknown> {
    const b = this.backend;
    return {
      id: this.id,
      groups: this.groups.map((g) => g.id),
      noiommu: this.noiommu,
      backend: b ? b.driver.name : null,
      iommu: b?.driver.describe ? b.driver.describe(b.data) : null,
    };
  }
}

/** The file operations of an open /dev/vfio/vfio. */
export class ContainerFile implements FileOps {
  readonly kind = 'vfio-container';
  /**
   * An ordinary character-device file (FMODE_PREAD/PWRITE), but one without read or write operations: pread and
   * pwrite answer EINVAL, not ESPIPE, as on Linux 6.12.
   */
  readonly seekable = true;
  constructor(readonly container: Container) {}

  ioctl(request: number, arg: IoctlArg, call: SyscallContext): number {
    return this.container.ioctl(request, arg, call);
  }

  release(): void {
    const b = this.container.backend;
    if (b?.driver.notify) b.driver.notify(b.data, 'container-close');
    this.container.put();
  }
}
