/**
 * The iommufd provider VFIO's core calls (core's `IommufdProvider` seam, inventory §1.3, §1.9.4, §1.10, §2.2,
 * §2.9): the context behind an fd, physical binds (iommufd_device), emulated binds (iommufd_access) and the compat
 * IOAS of a group given an iommufd with SET_CONTAINER. The types mirror core's structurally, so this package does
 * not depend on the exact core version that introduces them.
 */
import type { CallContext, OpenFile } from '@vfio-ts/core';
import type { IommuGroup } from '@vfio-ts/platform';
import { SysError } from '@vfio-ts/uapi';
import { IommufdContext } from './context.js';
import { iommufdContextOf } from './file.js';

/** A device bound to a context, as core's `IommufdDeviceBinding`. */
export interface IommufdBinding {
  readonly devid: number;
  attach(ptId: number): number;
  detach(): void;
  unbind(): void;
  pinPages?(iova: bigint, length: bigint, write: boolean): bigint[];
  unpinPages?(iova: bigint, length: bigint): void;
  rw?(iova: bigint, buf: Uint8Array, write: boolean): void;
}

/** core's `IommufdProvider`, structurally. */
export interface IommufdProviderShape {
  readonly name: string;
  contextOfFile(file: OpenFile): object | undefined;
  bindPhysical(ictx: object, device: { readonly name: string; readonly iommuGroup: IommuGroup }): IommufdBinding;
  bindEmulated(ictx: object, device: { readonly name: string; dmaUnmap(iova: bigint, length: bigint): void }): IommufdBinding;
  compatIoasCreate(ictx: object, call: CallContext): void;
  compatSetNoIommu(ictx: object): void;
  compatIoasId(ictx: object): number | undefined;
  hasGroup(ictx: object, group: IommuGroup): boolean;
}

function ctxOf(ictx: object): IommufdContext {
  if (!(ictx instanceof IommufdContext)) throw new SysError('EINVAL', 'not an iommufd context');
  return ictx;
}

/** The provider: handles are the contexts themselves. */
export function iommufdProvider(): IommufdProviderShape {
  return {
    name: 'iommufd',
    contextOfFile: (file) => iommufdContextOf(file),
    bindPhysical(ictx, device) {
      const ctx = ctxOf(ictx);
      const devid = ctx.bindDevice({ name: device.name, iommuGroup: device.iommuGroup });
      return {
        devid,
        attach: (ptId) => ctx.attach(devid, ptId),
        detach: () => {
          if (ctx.attachedHwpt(devid) !== undefined) ctx.detach(devid);
        },
        unbind: () => {
          ctx.unbindDevice(devid);
        },
      };
    },
    bindEmulated(ictx, device) {
      const ctx = ctxOf(ictx);
      const access = ctx.createAccess({
        unmap: (iova, length) => {
          device.dmaUnmap(iova, length);
        },
      });
      return {
        devid: access.id,
        // iommufd_access_attach / _replace: only an IOAS (ENOENT otherwise); returns the IOAS id.
        attach: (ptId) => {
          if (access.ioasId === undefined) access.attach(ptId);
          else access.replace(ptId);
          return ptId;
        },
        detach: () => {
          access.detach();
        },
        unbind: () => {
          access.destroy();
        },
        pinPages: (iova, length, write) => access.pinPages(iova, length, write),
        unpinPages: (iova, length) => {
          access.unpinPages(iova, length);
        },
        rw: (iova, buf, write) => {
          access.rw(iova, buf, write);
        },
      };
    },
    compatIoasCreate(ictx) {
      ctxOf(ictx).compatIoasCreate();
    },
    compatSetNoIommu(ictx) {
      ctxOf(ictx).compatSetNoIommu();
    },
    compatIoasId(ictx) {
      const ctx = ctxOf(ictx);
      try {
        return ctx.compatIoas().id;
      } catch {
        return undefined; // ENODEV: no compat IOAS
      }
    },
    hasGroup: (ictx, group) => ctxOf(ictx).hasGroup(group),
  };
}
