/**
 * VFIO groups (inventory §1.3, §2.8): one per IOMMU group that has VFIO devices, a char device
 * `/dev/vfio/<id>` (or `noiommu-<id>`) with a single opener, the bridge between devices and a container.
 */
import type { IommuGroup, VfsCharDev } from '@vfio-ts/platform';
import {
  SysError,
  VFIO_GROUP_FLAGS_CONTAINER_SET,
  VFIO_GROUP_FLAGS_VIABLE,
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_GROUP_GET_STATUS,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_GROUP_UNSET_CONTAINER,
  vfioGroupStatus,
} from '@vfio-ts/uapi';
import type { Container} from './container.js';
import { ContainerFile } from './container.js';
import type { VfioDevice } from './device.js';
import type { FileOps, OpenFile, SyscallContext } from './file.js';
import type { IoctlArg, VfioGroupRef, VfioGroupType } from './iommu-driver.js';
import type { IommufdHandle } from './iommufd.js';
import { readUserS32, userBytes } from './user.js';

/** What a group file needs from the core. */
export interface GroupHost {
  groupViable(group: Group): boolean;
  getDeviceFd(group: Group, arg: IoctlArg, call: SyscallContext): number;
  getDeviceFdAsync(group: Group, arg: IoctlArg, call: SyscallContext): Promise<number>;
  /**
   * SET_CONTAINER's iommufd half: when `file` is an iommufd, sets up the compat IOAS (or no-IOMMU compat mode) and
   * makes it the group's `iommufd`; returns false when `file` is no iommufd.
   */
  setGroupIommufd(group: Group, file: OpenFile, call: SyscallContext): boolean;
}

/** The iommufd a group was given with SET_CONTAINER (Linux group->iommufd); `file` holds the context alive. */
export interface GroupIommufd {
  readonly handle: IommufdHandle;
  readonly file: OpenFile;
}

/** A VFIO group (Linux struct vfio_group). */
export class Group implements VfioGroupRef {
  /** Devices registered in the group that GET_DEVICE_FD can find (removed when unregister starts). */
  readonly devices: VfioDevice[] = [];
  /** Registered devices, unregistering ones included (Linux group->drivers). */
  drivers = 0;
  /** The single open file of the group node. */
  openedFile: OpenFile | undefined;
  container: Container | undefined;
  /** The iommufd set with SET_CONTAINER instead of a container (inventory §1.3). */
  iommufd: GroupIommufd | undefined;
  /**
   * Devices of the group open through their /dev/vfio/devices node (Linux cdev_device_open_cnt): while non-zero
   * the group node cannot be opened (EBUSY), and while the group is open no cdev can bind (EBUSY).
   */
  cdevDeviceOpenCount = 0;
  /** 1 while attached to a container, plus 1 per open device (Linux container_users). */
  containerUsers = 0;
  /** The char device node in /dev/vfio. */
  readonly node: VfsCharDev;
  /** The KVM instance associated by `fileSetKvm` (vfio_file_set_kvm), handed to devices at first open. */
  kvm: unknown;
  /** The IOMMU group; cleared when the group's last device is removed (then the file answers ENODEV). */
  iommuGroup: IommuGroup | undefined;

  constructor(
    readonly id: number,
    readonly type: VfioGroupType,
    iommuGroup: IommuGroup,
  ) {
    this.iommuGroup = iommuGroup;
    this.node = { kind: 'chardev', tag: `vfio-group:${id}`, mode: 0o600, uid: 0, gid: 0 };
  }

  /** The node's name in /dev/vfio: the group number, `noiommu-<n>` for no-IOMMU groups. */
  get nodeName(): string {
    return this.type === 'no-iommu' ? `noiommu-${this.id}` : String(this.id);
  }

  /** Whether a container or an iommufd is set (Linux vfio_group_has_iommu). */
  get hasIommu(): boolean {
    return this.container !== undefined || this.iommufd !== undefined;
  }

  /** Drops the group's iommufd (UNSET_CONTAINER, group close). */
  dropIommufd(): void {
    const i = this.iommufd;
    if (!i) return;
    this.iommufd = undefined;
    i.file.put();
  }

  /**
   * VFIO_GROUP_GET_STATUS flags. With an iommufd both flags are set although DMA ownership is only claimed at
   * GET_DEVICE_FD, so VIABLE may be set and GET_DEVICE_FD still fail (inventory §1.3).
   */
  statusFlags(host: GroupHost): number {
    if (this.hasIommu) return VFIO_GROUP_FLAGS_CONTAINER_SET | VFIO_GROUP_FLAGS_VIABLE;
    return host.groupViable(this) ? VFIO_GROUP_FLAGS_VIABLE : 0;
  }
}

/** The file operations of an open group node. */
export class GroupFile implements FileOps {
  readonly kind = 'vfio-group';
  /**
   * An ordinary character-device file (FMODE_PREAD/PWRITE), but one without read or write operations: pread and
   * pwrite answer EINVAL, not ESPIPE, as on Linux 6.12.
   */
  readonly seekable = true;
  constructor(
    readonly group: Group,
    readonly host: GroupHost,
  ) {}

  ioctl(request: number, arg: IoctlArg, call: SyscallContext): number {
    const group = this.group;
    switch (request) {
      case VFIO_GROUP_GET_DEVICE_FD:
        return this.host.getDeviceFd(group, arg, call);
      case VFIO_GROUP_GET_STATUS: {
        const minsz = vfioGroupStatus.offsetOfEnd('flags');
        const buf = userBytes(arg, call, minsz);
        const { argsz } = vfioGroupStatus.decode(buf);
        if (argsz < minsz) throw new SysError('EINVAL', `argsz ${argsz} < ${minsz}`);
        if (!group.iommuGroup) throw new SysError('ENODEV', `group ${group.id} has no devices left`);
        const flags = group.statusFlags(this.host);
        if (arg instanceof Uint8Array) vfioGroupStatus.write(arg, { flags }, 0, minsz);
        else {
          const out = vfioGroupStatus.encode({ argsz, flags });
          call.task.mm.write(BigInt(arg as number | bigint), out.subarray(0, minsz));
        }
        return 0;
      }
      case VFIO_GROUP_SET_CONTAINER: {
        const fd = readUserS32(arg, call);
        const file = call.file(fd);
        if (group.hasIommu) throw new SysError('EINVAL', `group ${group.id} already has a container or iommufd`);
        if (!group.iommuGroup) throw new SysError('ENODEV', `group ${group.id} has no devices left`);
        if (file.ops instanceof ContainerFile) {
          file.ops.container.attachGroup(group, call);
          return 0;
        }
        if (this.host.setGroupIommufd(group, file, call)) return 0;
        throw new SysError('EBADFD', `fd ${fd} is neither a VFIO container nor an iommufd`);
      }
      case VFIO_GROUP_UNSET_CONTAINER: {
        const c = group.container;
        if (!group.hasIommu) throw new SysError('EINVAL', `group ${group.id} has no container`);
        if (c) {
          if (group.containerUsers !== 1) throw new SysError('EBUSY', `group ${group.id} has open devices`);
          c.detachGroup(group);
        }
        // With an iommufd, open devices keep their own binding (and context reference): no EBUSY (group.c).
        group.dropIommufd();
        return 0;
      }
      default:
        throw new SysError('ENOTTY', `unknown group ioctl 0x${(request >>> 0).toString(16)}`);
    }
  }

  /** GET_DEVICE_FD waits for a busy device set (and an async open_device); other ioctls are synchronous. */
  async ioctlAsync(request: number, arg: IoctlArg, call: SyscallContext): Promise<number> {
    if (request === VFIO_GROUP_GET_DEVICE_FD) return this.host.getDeviceFdAsync(this.group, arg, call);
    return this.ioctl(request, arg, call);
  }

  release(): void {
    const group = this.group;
    // Device files pin the group file, so by now no device is open: detach from the container.
    if (group.container) group.container.detachGroup(group);
    group.dropIommufd();
    group.openedFile = undefined;
  }
}
