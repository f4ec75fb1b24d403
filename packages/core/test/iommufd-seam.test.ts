/**
 * The core's iommufd seam with an in-test provider (no iommufd package): the cdev node and BIND/ATTACH/DETACH state
 * machine, SET_CONTAINER with an iommufd, the order of bind / open_device / compat attach, and the unwinding of
 * every failure (inventory §1.3, §1.10, §2.2, §2.7).
 */
import { describe, expect, it } from 'vitest';
import type { IommuGroup } from '@vfio-ts/platform';
import { simPlatform } from '@vfio-ts/sim';
import {
  SysError,
  VFIO_DEVICE_ATTACH_IOMMUFD_PT,
  VFIO_DEVICE_BIND_IOMMUFD,
  VFIO_DEVICE_DETACH_IOMMUFD_PT,
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_GROUP_SET_CONTAINER,
  vfioDeviceAttachIommufdPt,
  vfioDeviceBindIommufd,
  vfioDeviceDetachIommufdPt,
} from '@vfio-ts/uapi';
import { createHost } from '../src/index.js';
import type { FileOps, HostPlugin, IommufdDeviceBinding, IommufdProvider, OpenFile } from '../src/index.js';
import { bindTo, cstr, expectErrno, fn, s32, testDriver } from './helpers.js';

const A = '0000:00:03.0';

class FakeCtx {
  compat: number | undefined;
  noIommu = false;
  nextId = 1;
  readonly owned = new Set<IommuGroup>();
}

class FakeFile implements FileOps {
  readonly kind = 'fake-iommufd';
  released = false;
  constructor(readonly ctx: FakeCtx) {}
  release(): void {
    this.released = true;
  }
}

/** An iommufd stand-in at /dev/iommu whose provider logs every call and can be told to fail. */
function fakeIommufd(events: string[], fail: { bind?: string; attach?: string }): HostPlugin {
  const provider: IommufdProvider = {
    name: 'fake',
    contextOfFile: (file: OpenFile) => (file.ops instanceof FakeFile ? file.ops.ctx : undefined),
    bindPhysical(ictx, device) {
      const ctx = ictx as FakeCtx;
      if (fail.bind) throw new SysError(fail.bind as 'EPERM', 'refused');
      const devid = ctx.nextId++;
      ctx.owned.add(device.iommuGroup);
      events.push(`bind ${device.name} ${devid}`);
      let attached: number | undefined;
      const binding: IommufdDeviceBinding = {
        devid,
        attach(pt) {
          if (fail.attach) throw new SysError(fail.attach as 'ENOENT', 'refused');
          events.push(`${attached === undefined ? 'attach' : 'replace'} ${pt}`);
          attached = pt;
          return pt + 1000;
        },
        detach() {
          events.push('detach');
          attached = undefined;
        },
        unbind() {
          events.push(`unbind ${devid}`);
          ctx.owned.delete(device.iommuGroup);
        },
      };
      return binding;
    },
    bindEmulated() {
      throw new SysError('EOPNOTSUPP', 'not in this fake');
    },
    compatIoasCreate(ictx) {
      const ctx = ictx as FakeCtx;
      if (ctx.noIommu) throw new SysError('EINVAL', 'no-iommu mode');
      ctx.compat ??= ctx.nextId++;
      events.push(`compat ${ctx.compat}`);
    },
    compatSetNoIommu(ictx) {
      (ictx as FakeCtx).noIommu = true;
    },
    compatIoasId: (ictx) => (ictx as FakeCtx).compat,
    hasGroup: (ictx, group) => (ictx as FakeCtx).owned.has(group),
  };
  return {
    name: 'fake-iommufd',
    setup(api) {
      api.registerIommufdProvider(provider);
      expectErrno(() => api.registerIommufdProvider(provider), 'EEXIST');
      api.registerDevNode('/dev/iommu', { mode: 0o666, open: () => new FakeFile(new FakeCtx()) });
    },
  };
}

function make(fail: { bind?: string; attach?: string } = {}) {
  const events: string[] = [];
  const drv = testDriver();
  const platform = simPlatform({ iommu: 'vtd', devices: [{ bdf: A, fn: fn() }] });
  const host = createHost({ platform, plugins: [fakeIommufd(events, fail), drv.plugin] });
  bindTo(platform, A);
  const dev = drv.devices.get(A)!;
  dev.data.trace.length = 0;
  const p = host.spawn({ uid: 0 });
  return { host, dev, p, events, trace: drv.trace };
}

const bind = (ifd: number): Uint8Array => vfioDeviceBindIommufd.encode({ argsz: 16, iommufd: ifd });

describe('the iommufd seam', () => {
  it('binds before open_device, copies out the devid, and unbinds after close_device', () => {
    const { p, dev, events, trace } = make();
    const ifd = p.open('/dev/iommu');
    const fd = p.open(`/dev/vfio/devices/${dev.devName}`);
    const arg = bind(ifd);
    p.ioctl(fd, VFIO_DEVICE_BIND_IOMMUFD, arg);
    expect(vfioDeviceBindIommufd.decode(arg).out_devid).toBe(1);
    expect(events).toEqual([`bind ${A} 1`]);
    expect(trace).toEqual([`open ${A}`, `opened ${A}`]);
    const at = vfioDeviceAttachIommufdPt.encode({ argsz: 12, pt_id: 7 });
    p.ioctl(fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, at);
    expect(vfioDeviceAttachIommufdPt.decode(at).pt_id).toBe(1007);
    p.ioctl(fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, vfioDeviceAttachIommufdPt.encode({ argsz: 12, pt_id: 8 }));
    p.ioctl(fd, VFIO_DEVICE_DETACH_IOMMUFD_PT, vfioDeviceDetachIommufdPt.encode({ argsz: 8 }));
    // Detaching again does not reach the binding.
    p.ioctl(fd, VFIO_DEVICE_DETACH_IOMMUFD_PT, vfioDeviceDetachIommufdPt.encode({ argsz: 8 }));
    p.close(ifd); // the device holds the context
    const file = p.file(fd);
    p.close(fd);
    expect(file.released).toBe(true);
    expect(events).toEqual([`bind ${A} 1`, 'attach 7', 'replace 8', 'detach', 'unbind 1']);
    expect(trace).toEqual([`open ${A}`, `opened ${A}`, `close ${A}`]);
    expect(dev.openCount).toBe(0);
  });

  it('unwinds a refused bind: no open, the group is not blocked, the fd can bind later', () => {
    const fail: { bind?: string } = { bind: 'EPERM' };
    const { p, dev, trace } = make(fail);
    const ifd = p.open('/dev/iommu');
    const fd = p.open(`/dev/vfio/devices/${dev.devName}`);
    expectErrno(() => p.ioctl(fd, VFIO_DEVICE_BIND_IOMMUFD, bind(ifd)), 'EPERM');
    expect(trace).toEqual([]);
    expect(dev.openCount).toBe(0);
    p.close(p.open(`/dev/vfio/${dev.group!.id}`));
    delete fail.bind;
    p.ioctl(fd, VFIO_DEVICE_BIND_IOMMUFD, bind(ifd));
    expect(trace).toEqual([`open ${A}`, `opened ${A}`]);
    p.close(fd);
  });

  it('unwinds a failed open_device: unbind, no access, group unblocked', () => {
    const { p, dev, events } = make();
    dev.data.failOpen = 'EIO';
    const ifd = p.open('/dev/iommu');
    const fd = p.open(`/dev/vfio/devices/${dev.devName}`);
    expectErrno(() => p.ioctl(fd, VFIO_DEVICE_BIND_IOMMUFD, bind(ifd)), 'EIO');
    expect(events).toEqual([`bind ${A} 1`, 'unbind 1']);
    expect(dev.openCount).toBe(0);
    expectErrno(() => p.ioctl(fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, vfioDeviceAttachIommufdPt.encode({ argsz: 12 })), 'EINVAL');
    p.close(p.open(`/dev/vfio/${dev.group!.id}`));
    p.close(fd);
    expect(events).toEqual([`bind ${A} 1`, 'unbind 1']);
  });

  it('group path: SET_CONTAINER makes the compat IOAS; GET_DEVICE_FD binds, opens, then attaches to it', () => {
    const { p, dev, events, trace } = make();
    const ifd = p.open('/dev/iommu');
    const g = p.open(`/dev/vfio/${dev.group!.id}`);
    p.ioctl(g, VFIO_GROUP_SET_CONTAINER, s32(ifd));
    const fd = p.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, cstr(A));
    expect(events).toEqual(['compat 1', `bind ${A} 2`, 'attach 1']);
    expect(trace).toEqual([`open ${A}`, `opened ${A}`]);
    p.close(fd);
    expect(events.at(-1)).toBe('unbind 2');
    p.close(g);
  });

  it('group path: a failed compat attach closes the device again and unbinds', () => {
    const { p, dev, events, trace } = make({ attach: 'ENOSPC' });
    const ifd = p.open('/dev/iommu');
    const g = p.open(`/dev/vfio/${dev.group!.id}`);
    p.ioctl(g, VFIO_GROUP_SET_CONTAINER, s32(ifd));
    expectErrno(() => p.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, cstr(A)), 'ENOSPC');
    expect(trace).toEqual([`open ${A}`, `opened ${A}`, `close ${A}`]);
    expect(events).toEqual(['compat 1', `bind ${A} 2`, 'unbind 2']);
    expect(dev.openCount).toBe(0);
    p.close(g);
  });

  it('has no cdev nodes without a provider, and refuses ATTACH on a never-bound fd after close (EBADF)', () => {
    const drv = testDriver();
    const platform = simPlatform({ iommu: 'vtd', devices: [{ bdf: A, fn: fn() }] });
    const host = createHost({ platform, plugins: [drv.plugin] });
    bindTo(platform, A);
    expect(host.spawn({ uid: 0 }).readdir('/dev/vfio/devices')).toEqual([]);
    const { p, dev } = make();
    const fd = p.open(`/dev/vfio/devices/${dev.devName}`);
    p.close(fd);
    expectErrno(() => p.ioctl(fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, vfioDeviceAttachIommufdPt.encode({ argsz: 12 })), 'EBADF');
    expect(dev.registrationRefs).toBe(1);
  });
});
