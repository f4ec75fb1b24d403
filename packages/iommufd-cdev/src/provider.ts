/**
 * The iommufd provider VFIO's core calls (core's `IommufdProvider` seam, inventory §1.3, §1.9.4, §1.10, §2.2,
 * §2.9): the context behind an fd, physical binds (iommufd_device), emulated binds (iommufd_access) and the compat
 * IOAS of a group given an iommufd with SET_CONTAINER.
 */
import type { IommufdProvider } from '@vfio-ts/core';
import { SysError } from '@vfio-ts/uapi';
import { IommufdContext } from './context.js';
import { iommufdContextOf } from './file.js';

function ctxOf(ictx: object): IommufdContext {
  if (!(ictx instanceof IommufdContext)) throw new SysError('EINVAL', 'not an iommufd context');
  return ictx;
}

/** The provider: handles are the contexts themselves. */
export function iommufdProvider(): IommufdProvider {
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
