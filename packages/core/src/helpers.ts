/**
 * Small helpers for users, examples and tests: argument builders and the usual container/group/device dance
 * (the QEMU flow) done through the system-call surface.
 */
import { VFIO_GROUP_GET_DEVICE_FD, VFIO_GROUP_GET_STATUS, VFIO_GROUP_SET_CONTAINER, VFIO_SET_IOMMU, vfioGroupStatus } from '@vfio-ts/uapi';
import type { Process } from './process.js';

const encoder = new TextEncoder();

/** A NUL-terminated string argument (VFIO_GROUP_GET_DEVICE_FD). */
export function cString(s: string): Uint8Array {
  const b = encoder.encode(s);
  const out = new Uint8Array(b.length + 1);
  out.set(b);
  return out;
}

/** A pointer-to-int argument (VFIO_GROUP_SET_CONTAINER takes the container fd this way). */
export function intArg(v: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setInt32(0, v, true);
  return out;
}

/** VFIO_GROUP_GET_STATUS: the group's flags (VIABLE, CONTAINER_SET). */
export function groupStatus(p: Process, groupFd: number): number {
  const st = vfioGroupStatus.encode({ argsz: vfioGroupStatus.size });
  p.ioctl(groupFd, VFIO_GROUP_GET_STATUS, st);
  return vfioGroupStatus.decode(st).flags;
}

/** Options of {@link openVfioDevice}. */
export interface OpenVfioDeviceOptions {
  /** The group number (the N of /dev/vfio/N) or its node path. */
  readonly group: number | string;
  /** The device name (a PCI BDF). */
  readonly device: string;
  /** The SET_IOMMU type (e.g. VFIO_TYPE1v2_IOMMU). */
  readonly iommuType: number;
  /** An already open container fd to join; by default /dev/vfio/vfio is opened and SET_IOMMU done. */
  readonly container?: number;
}

/** The fds of an opened device. */
export interface OpenedVfioDevice {
  readonly container: number;
  readonly group: number;
  readonly device: number;
}

/**
 * The QEMU flow: open the container (unless given), open the group, SET_CONTAINER, SET_IOMMU (for a new
 * container), GET_DEVICE_FD. Throws the first failing call's SysError, closing what it opened.
 */
export function openVfioDevice(p: Process, options: OpenVfioDeviceOptions): OpenedVfioDevice {
  const opened: number[] = [];
  try {
    const container = options.container ?? p.open('/dev/vfio/vfio');
    if (options.container === undefined) opened.push(container);
    const path = typeof options.group === 'number' ? `/dev/vfio/${options.group}` : options.group;
    const group = p.open(path);
    opened.push(group);
    p.ioctl(group, VFIO_GROUP_SET_CONTAINER, intArg(container));
    if (options.container === undefined) p.ioctl(container, VFIO_SET_IOMMU, options.iommuType);
    const device = p.ioctl(group, VFIO_GROUP_GET_DEVICE_FD, cString(options.device));
    return { container, group, device };
  } catch (e) {
    for (const fd of opened.reverse()) p.close(fd);
    throw e;
  }
}
