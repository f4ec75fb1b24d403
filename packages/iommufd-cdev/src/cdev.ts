/**
 * The VFIO device cdev from a user's side (inventory §1.10): typed sugar over the system calls a VMM makes to use a
 * device through `/dev/vfio/devices/vfioN` and an iommufd — open the node, VFIO_DEVICE_BIND_IOMMUFD,
 * VFIO_DEVICE_ATTACH_IOMMUFD_PT, VFIO_DEVICE_DETACH_IOMMUFD_PT. Each helper is exactly one ioctl with the Linux
 * struct, so it fails with the kernel's errno and a real ioctl trace replays the same way.
 *
 * The kernel half lives in `@vfio-ts/core` (the cdev nodes, the bind/attach state machine, group/cdev exclusivity)
 * and reaches this package's contexts through the provider the `iommufd()` plugin registers.
 */
import type { Process } from '@vfio-ts/core';
import {
  VFIO_DEVICE_ATTACH_IOMMUFD_PT,
  VFIO_DEVICE_ATTACH_PASID,
  VFIO_DEVICE_BIND_IOMMUFD,
  VFIO_DEVICE_DETACH_IOMMUFD_PT,
  VFIO_DEVICE_DETACH_PASID,
  vfioDeviceAttachIommufdPt,
  vfioDeviceBindIommufd,
  vfioDeviceDetachIommufdPt,
} from '@vfio-ts/uapi';

/** The path of a device's cdev node: `/dev/vfio/devices/vfio<index>`. */
export function vfioCdevPath(index: number | string): string {
  return typeof index === 'string' && index.startsWith('/') ? index : `/dev/vfio/devices/${typeof index === 'number' ? `vfio${index}` : index}`;
}

/**
 * VFIO_DEVICE_BIND_IOMMUFD on a device fd opened from its cdev node: opens the device for use with the iommufd
 * `iommufd` and returns the device id (`out_devid`) that iommufd ioctls (HWPT_ALLOC, GET_HW_INFO) take.
 */
export function bindIommufd(p: Process, deviceFd: number, iommufd: number): number {
  // argsz = 16: the 6.12 struct (token_uuid_ptr came later).
  const arg = vfioDeviceBindIommufd.encode({ argsz: vfioDeviceBindIommufd.minsz, flags: 0, iommufd });
  p.ioctl(deviceFd, VFIO_DEVICE_BIND_IOMMUFD, arg);
  return vfioDeviceBindIommufd.decode(arg).out_devid;
}

/**
 * VFIO_DEVICE_ATTACH_IOMMUFD_PT: attaches the bound device (or one of its PASIDs) to an IOAS or HWPT; attaching
 * again replaces. Returns the id the kernel reports back (the HWPT, automatic for an IOAS).
 */
export function attachIommufdPt(p: Process, deviceFd: number, ptId: number, pasid?: number): number {
  const arg = vfioDeviceAttachIommufdPt.encode({
    argsz: vfioDeviceAttachIommufdPt.size,
    flags: pasid === undefined ? 0 : VFIO_DEVICE_ATTACH_PASID,
    pt_id: ptId,
    pasid: pasid ?? 0,
  });
  p.ioctl(deviceFd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, arg);
  return vfioDeviceAttachIommufdPt.decode(arg).pt_id;
}

/** VFIO_DEVICE_DETACH_IOMMUFD_PT: the device (or PASID) goes back to blocking DMA. */
export function detachIommufdPt(p: Process, deviceFd: number, pasid?: number): void {
  const arg = vfioDeviceDetachIommufdPt.encode({
    argsz: vfioDeviceDetachIommufdPt.size,
    flags: pasid === undefined ? 0 : VFIO_DEVICE_DETACH_PASID,
    pasid: pasid ?? 0,
  });
  p.ioctl(deviceFd, VFIO_DEVICE_DETACH_IOMMUFD_PT, arg);
}

/** Options of {@link openVfioCdev}. */
export interface OpenVfioCdevOptions {
  /** The device: its index (the N of vfioN), its node name (`vfio3`) or the node path. */
  readonly device: number | string;
  /** An open /dev/iommu fd to bind to; by default a new one is opened. */
  readonly iommufd?: number;
  /** An IOAS or HWPT id to attach to after binding. */
  readonly ptId?: number;
}

/** The fds and ids of a device opened through its cdev. */
export interface OpenedVfioCdev {
  readonly iommufd: number;
  readonly device: number;
  readonly devid: number;
  /** The attached HWPT (when `ptId` was given). */
  readonly hwptId: number | undefined;
}

/**
 * The cdev flow: open /dev/iommu (unless given), open the device node, bind, and attach to `ptId` when given.
 * Throws the first failing call's SysError, closing what it opened.
 */
export function openVfioCdev(p: Process, options: OpenVfioCdevOptions): OpenedVfioCdev {
  const opened: number[] = [];
  try {
    const iommufd = options.iommufd ?? p.open('/dev/iommu');
    if (options.iommufd === undefined) opened.push(iommufd);
    const device = p.open(vfioCdevPath(options.device));
    opened.push(device);
    const devid = bindIommufd(p, device, iommufd);
    const hwptId = options.ptId === undefined ? undefined : attachIommufdPt(p, device, options.ptId);
    return { iommufd, device, devid, hwptId };
  } catch (e) {
    for (const fd of opened.reverse()) p.close(fd);
    throw e;
  }
}
