/**
 * The file behind an open `/dev/iommu` and the lookup VFIO uses on the fd user space passes it
 * (iommufd_ctx_from_file).
 */
import type { FileOps, IoctlArg, OpenFile, SyscallContext } from '@vfio-ts/core';
import type { IommufdContext } from './context.js';

/** The file behind an open /dev/iommu. */
export class IommufdFile implements FileOps {
  readonly kind = 'iommufd';
  constructor(
    readonly ctx: IommufdContext,
    /** Told after the context was torn down (the host forgets it). */
    readonly onRelease?: () => void,
  ) {}
  ioctl(request: number, arg: IoctlArg, call: SyscallContext): number {
    return this.ctx.ioctl(request, arg, call);
  }
  /** fops_release: the last reference went (every fd closed, every binding gone). */
  release(): void {
    this.ctx.release();
    this.onRelease?.();
  }
}

/** The context behind an open file, when it is a /dev/iommu file (iommufd_ctx_from_file; undefined otherwise). */
export function iommufdContextOf(file: OpenFile): IommufdContext | undefined {
  return file.ops instanceof IommufdFile ? file.ops.ctx : undefined;
}

