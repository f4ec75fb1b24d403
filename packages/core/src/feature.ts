/**
 * VFIO_DEVICE_FEATURE (inventory §1.5): the header checks the core makes before dispatching by feature index, and
 * the `vfio_check_feature` helper handlers use.
 */
import {
  SysError,
  VFIO_DEVICE_FEATURE_GET,
  VFIO_DEVICE_FEATURE_MASK,
  VFIO_DEVICE_FEATURE_PROBE,
  VFIO_DEVICE_FEATURE_SET,
  vfioDeviceFeature,
} from '@vfio-ts/uapi';
import type { VfioDevice } from './device.js';
import type { SyscallContext } from './file.js';

/**
 * A handler for one feature index (what Linux hard-codes in vfio_ioctl_device_feature for migration and DMA
 * logging; here packages plug in). Same contract as {@link VfioDeviceOps.deviceFeature}.
 */
export type DeviceFeatureHandler = (
  device: VfioDevice,
  flags: number,
  data: Uint8Array,
  dataSize: number,
  call: SyscallContext,
) => number;

/**
 * `vfio_check_feature`: `supportedOps` is a mask of VFIO_DEVICE_FEATURE_GET/SET, `minsz` the data size the
 * feature needs. Returns `false` for a successful PROBE (the ioctl returns 0 and does nothing) and `true` when
 * the handler should perform the GET or SET; throws EINVAL for an unsupported op, neither GET nor SET, or short data.
 */
export function checkFeature(flags: number, dataSize: number, supportedOps: number, minsz: number): boolean {
  if ((flags & (VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_SET) & ~supportedOps) !== 0) {
    throw new SysError('EINVAL', 'feature does not support the requested GET/SET');
  }
  if ((flags & VFIO_DEVICE_FEATURE_PROBE) !== 0) return false;
  if ((flags & (VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_SET)) === 0) {
    throw new SysError('EINVAL', 'feature call without GET or SET');
  }
  if (dataSize < minsz) throw new SysError('EINVAL', `feature data of ${dataSize} bytes is shorter than ${minsz}`);
  return true;
}

/** The decoded header of a VFIO_DEVICE_FEATURE call, after the core's checks. */
export interface DeviceFeatureCall {
  readonly index: number;
  readonly flags: number;
  /** The user's bytes after the header, in place (at most argsz − 8 of them). */
  readonly data: Uint8Array;
  /** argsz − 8. */
  readonly dataSize: number;
}

/**
 * Decodes and checks the VFIO_DEVICE_FEATURE header (§1.5): argsz < 8, unknown flag bits and GET|SET without
 * PROBE are EINVAL; a buffer shorter than the header is EFAULT.
 */
export function decodeDeviceFeature(buf: Uint8Array): DeviceFeatureCall {
  const minsz = vfioDeviceFeature.minsz;
  if (buf.length < minsz) throw new SysError('EFAULT', 'VFIO_DEVICE_FEATURE header beyond the buffer');
  const { argsz, flags } = vfioDeviceFeature.decode(buf);
  if (argsz < minsz) throw new SysError('EINVAL', `argsz ${argsz} < ${minsz}`);
  const known = VFIO_DEVICE_FEATURE_MASK | VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_PROBE;
  if ((flags & ~known) !== 0) throw new SysError('EINVAL', `unknown feature flags ${(flags & ~known) >>> 0}`);
  if (
    (flags & VFIO_DEVICE_FEATURE_PROBE) === 0 &&
    (flags & VFIO_DEVICE_FEATURE_SET) !== 0 &&
    (flags & VFIO_DEVICE_FEATURE_GET) !== 0
  ) {
    throw new SysError('EINVAL', 'GET and SET together without PROBE');
  }
  return {
    index: flags & VFIO_DEVICE_FEATURE_MASK,
    flags,
    data: buf.subarray(minsz, Math.max(minsz, Math.min(buf.length, argsz))),
    dataSize: argsz - minsz,
  };
}
