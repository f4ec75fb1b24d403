/**
 * The generic VFIO_DEVICE_SET_IRQS validation bus drivers share (vfio_set_irqs_validate_and_prepare, §1.4.2).
 */
import {
  SysError,
  VFIO_IRQ_SET_ACTION_TYPE_MASK,
  VFIO_IRQ_SET_DATA_BOOL,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_IRQ_SET_DATA_NONE,
  VFIO_IRQ_SET_DATA_TYPE_MASK,
  vfioIrqSet,
} from '@vfio-ts/uapi';
import type { StructOf } from '@vfio-ts/uapi';

/** The decoded `struct vfio_irq_set` header. */
export type VfioIrqSetHeader = StructOf<typeof vfioIrqSet>;

/** A validated SET_IRQS call. */
export interface ValidatedSetIrqs {
  readonly header: VfioIrqSetHeader;
  /** Bytes of data the call carries: count × (0, 1 or 4). */
  readonly dataSize: number;
  /** A copy of those bytes (u8 per vector for BOOL, s32 per vector for EVENTFD). */
  readonly data: Uint8Array;
}

const U32_MAX = 0xffffffff;

/**
 * Validates a VFIO_DEVICE_SET_IRQS argument as Linux does (EINVAL for each rule of §1.4.2):
 * argsz < 20; index ≥ `maxIrqType`; `count >= 0xffffffff - start` (start + count must not wrap); flags outside the
 * data and action masks; `start >= numIrqs` or `start + count > numIrqs`; a data type that is not exactly one of
 * NONE/BOOL/EVENTFD; fewer than count × element bytes after the header. `numIrqs` is the vector count of the index
 * (or a function of the index). A buffer that ends before the bytes the kernel copies is EFAULT.
 */
export function validateSetIrqs(
  bytes: Uint8Array,
  numIrqs: number | ((index: number) => number),
  maxIrqType: number,
): ValidatedSetIrqs {
  const minsz = vfioIrqSet.offsetOfEnd('count');
  if (bytes.length < minsz) throw new SysError('EFAULT', 'vfio_irq_set header beyond the buffer');
  const header = vfioIrqSet.decode(bytes);
  if (
    header.argsz < minsz ||
    header.index >= maxIrqType ||
    header.count >= U32_MAX - header.start ||
    (header.flags & ~(VFIO_IRQ_SET_DATA_TYPE_MASK | VFIO_IRQ_SET_ACTION_TYPE_MASK)) !== 0
  ) {
    throw new SysError('EINVAL', 'invalid vfio_irq_set header');
  }
  const n = typeof numIrqs === 'function' ? numIrqs(header.index) : numIrqs;
  if (header.start >= n || header.start + header.count > n) {
    throw new SysError('EINVAL', `vectors ${header.start}+${header.count} outside the ${n} of index ${header.index}`);
  }
  let size: number;
  switch (header.flags & VFIO_IRQ_SET_DATA_TYPE_MASK) {
    case VFIO_IRQ_SET_DATA_NONE:
      size = 0;
      break;
    case VFIO_IRQ_SET_DATA_BOOL:
      size = 1;
      break;
    case VFIO_IRQ_SET_DATA_EVENTFD:
      size = 4;
      break;
    default:
      throw new SysError('EINVAL', 'vfio_irq_set data type is not exactly one of NONE/BOOL/EVENTFD');
  }
  const dataSize = header.count * size;
  if (size !== 0 && header.argsz - minsz < dataSize) {
    throw new SysError('EINVAL', `argsz ${header.argsz} too small for ${header.count} vectors`);
  }
  if (bytes.length < minsz + dataSize) throw new SysError('EFAULT', 'vfio_irq_set data beyond the buffer');
  return { header, dataSize, data: bytes.slice(minsz, minsz + dataSize) };
}
