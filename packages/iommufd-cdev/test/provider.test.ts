/**
 * The provider VFIO's core calls (core's IommufdProvider seam): physical and emulated binds, the compat IOAS a
 * group's SET_CONTAINER creates, no-IOMMU compat mode, hasGroup.
 */
import { describe, expect, it } from 'vitest';
import { SimIommuGroup } from '@vfio-ts/sim';
import { VFIO_NOIOMMU_IOMMU, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU, VFIO_IOMMU_MAP_DMA, vfioIommuType1DmaMap } from '@vfio-ts/uapi';
import { iommufdProvider } from '../src/index.js';
import { MiB, PAGE, errnoOf, setup } from './helpers.js';

describe('iommufd provider', () => {
  it('contextOfFile finds the context behind an iommufd fd and nothing else', () => {
    const f = setup();
    const prov = iommufdProvider();
    expect(prov.contextOfFile(f.p.file(f.fd))).toBe(f.ctx);
    const other = f.p.open('/dev/null');
    expect(prov.contextOfFile(f.p.file(other))).toBeUndefined();
    expect(errnoOf(() => prov.compatIoasId({}))).toBe('EINVAL');
  });

  it('the group path: compat IOAS creation, physical bind + attach, VFIO type1 ioctls on it', () => {
    const f = setup();
    const prov = iommufdProvider();
    expect(prov.compatIoasId(f.ctx)).toBeUndefined();
    prov.compatIoasCreate(f.ctx, f.p.callContext);
    const id = prov.compatIoasId(f.ctx)!;
    prov.compatIoasCreate(f.ctx, f.p.callContext); // kept
    expect(prov.compatIoasId(f.ctx)).toBe(id);
    expect(errnoOf(() => { prov.compatSetNoIommu(f.ctx); })).toBe('EINVAL');
    const group = new SimIommuGroup(9, f.platform.iommu, undefined);
    expect(prov.hasGroup(f.ctx, group)).toBe(false);
    const b = prov.bindPhysical(f.ctx, { name: '0000:00:09.0', iommuGroup: group });
    expect(prov.hasGroup(f.ctx, group)).toBe(true);
    expect(group.dmaOwner).toBe(f.ctx);
    const hwpt = b.attach(id);
    expect(f.ctx.attachedHwpt(b.devid)).toBe(hwpt);
    f.p.ioctl(f.fd, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU);
    const buf = f.buffer(4n * PAGE);
    f.p.ioctl(f.fd, VFIO_IOMMU_MAP_DMA, vfioIommuType1DmaMap.encode({ argsz: 32, flags: 3, vaddr: buf, iova: MiB, size: 4n * PAGE }));
    expect(group.domain!.translate(MiB)).toBeDefined();
    b.detach();
    b.detach(); // a no-op when not attached
    expect(group.domain).toBeUndefined();
    b.unbind();
    expect(group.dmaOwner).toBeUndefined();
    expect(prov.hasGroup(f.ctx, group)).toBe(false);
  });

  it('a second context cannot bind a device of an owned group (EPERM)', () => {
    const f = setup();
    const prov = iommufdProvider();
    const group = new SimIommuGroup(9, f.platform.iommu, undefined);
    prov.bindPhysical(f.ctx, { name: '0000:00:09.0', iommuGroup: group });
    const fd2 = f.p.open('/dev/iommu');
    const ctx2 = prov.contextOfFile(f.p.file(fd2))!;
    expect(errnoOf(() => prov.bindPhysical(ctx2, { name: '0000:00:09.1', iommuGroup: group }))).toBe('EPERM');
    // A sibling of the same group binds to the owning context.
    prov.bindPhysical(f.ctx, { name: '0000:00:09.1', iommuGroup: group });
  });

  it('emulated binds are accesses: attach an IOAS (ENOENT otherwise), pin, rw, unmap callback, unbind', () => {
    const f = setup();
    const prov = iommufdProvider();
    const ioas = f.ioasAlloc();
    const buf = f.buffer(4n * PAGE);
    f.map(ioas, buf, 4n * PAGE, { iova: MiB });
    const unmapped: [bigint, bigint][] = [];
    const b = prov.bindEmulated(f.ctx, {
      name: 'mdev0',
      dmaUnmap: (iova, length) => {
        unmapped.push([iova, length]);
        b.unpinPages!(MiB, PAGE);
      },
    });
    expect(errnoOf(() => b.attach(999))).toBe('ENOENT');
    expect(b.attach(ioas)).toBe(ioas);
    expect(b.pinPages!(MiB, PAGE, true)).toHaveLength(1);
    b.rw!(MiB + 8n, new Uint8Array([7]), true);
    expect(f.p.memory.read(buf + 8n, 1)[0]).toBe(7);
    f.unmap(ioas, MiB, 4n * PAGE);
    expect(unmapped).toEqual([[MiB, 4n * PAGE]]);
    b.unbind();
    expect(f.ctx.objects().map((o) => o.type)).toEqual(['ioas']);
  });

  it('no-IOMMU compat mode: compat IOAS creation refused; SET_IOMMU(NOIOMMU) needs CAP_SYS_RAWIO', () => {
    const f = setup();
    const prov = iommufdProvider();
    prov.compatSetNoIommu(f.ctx);
    expect(errnoOf(() => { prov.compatIoasCreate(f.ctx, f.p.callContext); })).toBe('EINVAL');
    expect(errnoOf(() => f.p.ioctl(f.fd, VFIO_SET_IOMMU, VFIO_NOIOMMU_IOMMU))).toBe('EPERM');
    expect(errnoOf(() => f.p.ioctl(f.fd, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU))).toBe('EINVAL');
    const root = setup({ uid: 0, caps: ['CAP_SYS_RAWIO'] });
    prov.compatSetNoIommu(root.ctx);
    expect(root.p.ioctl(root.fd, VFIO_SET_IOMMU, VFIO_NOIOMMU_IOMMU)).toBe(0);
  });
});
