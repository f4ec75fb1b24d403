/**
 * The device cdev beyond the plain flow (inventory §1.10, §2.2, §2.7, §2.9, §2.10): emulated devices bound through
 * an iommufd access (pin/unpin, dma_rw, the unmap callback), no-IOMMU devices and iommufd, an asynchronous
 * open_device under BIND, unregistering a device whose cdev is open, KVM handed over at bind, and the
 * hot-reset ownership queries vfio-pci needs.
 */
import { describe, expect, it } from 'vitest';
import { cString, createHost, intArg } from '@vfio-ts/core';
import type { HostPluginApi, VfioDevice, VfioDeviceOps } from '@vfio-ts/core';
import { pciFunctionFromConfig, simPlatform } from '@vfio-ts/sim';
import {
  IOMMU_IOAS_ALLOC,
  IOMMU_IOAS_MAP,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMU_IOAS_UNMAP,
  IOMMU_VFIO_IOAS,
  IOMMU_VFIO_IOAS_SET,
  VFIO_DEVICE_BIND_IOMMUFD,
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_GROUP_SET_CONTAINER,
  iommuIoasAlloc,
  iommuIoasMap,
  iommuIoasUnmap,
  iommuVfioIoas,
  isSysError,
  vfioDeviceBindIommufd,
} from '@vfio-ts/uapi';
import type { ErrnoName } from '@vfio-ts/uapi';
import { iommufd } from '../src/index.js';
import { attachIommufdPt, bindIommufd, openVfioCdev } from '../src/cdev.js';

const MiB = 1n << 20n;
const RW = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;

function errnoOf(fn: () => unknown): ErrnoName {
  try {
    fn();
  } catch (e) {
    if (isSysError(e)) return e.errno;
    throw e;
  }
  throw new Error('expected a SysError');
}

async function errnoOfAsync(p: Promise<unknown>): Promise<ErrnoName> {
  try {
    await p;
  } catch (e) {
    if (isSysError(e)) return e.errno;
    throw e;
  }
  throw new Error('expected a SysError');
}

function ioasAlloc(p: { ioctl(fd: number, r: number, a: Uint8Array): number }, fd: number): number {
  const a = iommuIoasAlloc.encode({ size: iommuIoasAlloc.size });
  p.ioctl(fd, IOMMU_IOAS_ALLOC, a);
  return iommuIoasAlloc.decode(a).out_ioas_id;
}

function fn(multifunction = false): ReturnType<typeof pciFunctionFromConfig> {
  const config = new Uint8Array(256);
  config.set([0x34, 0x12, 0x78, 0x56]);
  if (multifunction) config[0x0e] = 0x80;
  return pciFunctionFromConfig({ config, bars: '0:mem32:0x1000' });
}

/* ------------------------------------------------------------------ emulated devices */

describe('an emulated device through its cdev (iommufd access)', () => {
  function make(): { api: HostPluginApi; dev: VfioDevice<{ unmaps: string[]; pinned: [bigint, number][] }>; host: ReturnType<typeof createHost> } {
    const host = createHost({ platform: simPlatform({ iommu: 'vtd' }), plugins: [iommufd()] });
    const api = host.api;
    const data = { unmaps: [] as string[], pinned: [] as [bigint, number][] };
    const ops: VfioDeviceOps<typeof data> = {
      dmaUnmap(d, iova, length) {
        d.data.unmaps.push(`${iova.toString(16)}+${length.toString(16)}`);
        // The driver must unpin everything it pinned in the range before returning.
        for (const [i, n] of [...d.data.pinned]) {
          if (i >= iova && i < iova + length) {
            d.unpinPages(i, n);
            d.data.pinned = d.data.pinned.filter((x) => x[0] !== i);
          }
        }
      },
    };
    const dev = api.allocDevice({ name: 'c0ffee00-0000-0000-0000-000000000001', ops, data });
    api.registerEmulatedDevice(dev);
    return { api, dev, host };
  }

  it('binds an access, attaches it to an IOAS, pins, copies with dma_rw and is told about unmaps', () => {
    const { dev, host, api } = make();
    const p = host.spawn({ uid: 0, capabilities: ['CAP_IPC_LOCK'], memlockLimit: 64n * MiB });
    const { device: fd, iommufd: ifd, devid } = openVfioCdev(p, { device: dev.index });
    expect(devid).toBeGreaterThan(0);
    const ioas = ioasAlloc(p, ifd);
    // An access attaches to the IOAS itself (no HWPT).
    expect(attachIommufdPt(p, fd, ioas)).toBe(ioas);
    // An access attaches only to an IOAS: a device id is no IOAS (ENOENT), and nothing changed.
    expect(errnoOf(() => attachIommufdPt(p, fd, devid))).toBe('ENOENT');
    expect(api.deviceIommufdInfo(dev)).toMatchObject({ cdevOpened: true, attached: true, ictx: undefined });

    const va = p.mmap({ length: 2n * MiB });
    p.memory.write(va + 0x2000n, new Uint8Array([1, 2, 3, 4]));
    const iova = 0x100_0000n;
    p.ioctl(ifd, IOMMU_IOAS_MAP, iommuIoasMap.encode({ size: 40, flags: RW | IOMMU_IOAS_MAP_FIXED_IOVA, ioas_id: ioas, user_va: va, length: 2n * MiB, iova }));

    const buf = new Uint8Array(4);
    dev.dmaRw(iova + 0x2000n, buf, false);
    expect([...buf]).toEqual([1, 2, 3, 4]);
    dev.dmaRw(iova + 0x3000n, new Uint8Array([9, 9]), true);
    expect([...p.memory.read(va + 0x3000n, 2)]).toEqual([9, 9]);

    // vfio_pin_pages ignores the sub-page offset: 2 pages from the start of iova's page.
    const pfns = dev.pinPages(iova + 0x10n, 2, 3);
    expect(pfns).toHaveLength(2);
    dev.data.pinned.push([iova, 2]);
    // Unmapping a pinned range calls dma_unmap; the driver unpins and the unmap goes through.
    const un = iommuIoasUnmap.encode({ size: 24, ioas_id: ioas, iova, length: 2n * MiB });
    p.ioctl(ifd, IOMMU_IOAS_UNMAP, un);
    expect(dev.data.unmaps).toEqual([`${iova.toString(16)}+200000`]);
    expect(dev.data.pinned).toEqual([]);
    expect(errnoOf(() => { dev.dmaRw(iova, new Uint8Array(4), false); })).toBe('ENOENT');

    p.close(fd);
    // Closed: the helpers refuse (the device is not open).
    expect(errnoOf(() => dev.pinPages(iova, 1, 3))).toBe('EINVAL');
    expect(api.deviceIommufdInfo(dev).cdevOpened).toBe(false);
    p.close(ifd);
  });
});

describe('an emulated device through its group on an iommufd', () => {
  it('binds an access at GET_DEVICE_FD and attaches it to the compat IOAS, where dma_rw then reads', () => {
    const host = createHost({ platform: simPlatform({ iommu: 'vtd' }), plugins: [iommufd()] });
    const dev = host.api.allocDevice({ name: 'c0ffee00-0000-0000-0000-000000000002', data: null, ops: { dmaUnmap: () => undefined } });
    host.api.registerEmulatedDevice(dev);
    const p = host.spawn({ uid: 0, capabilities: ['CAP_IPC_LOCK'] });
    const ifd = p.open('/dev/iommu');
    const g = p.open(`/dev/vfio/${dev.group!.id}`);
    p.ioctl(g, VFIO_GROUP_SET_CONTAINER, intArg(ifd));
    const fd = p.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, cString(dev.name));
    expect(host.api.deviceIommufdInfo(dev)).toMatchObject({ cdevOpened: false, attached: true });
    const get = iommuVfioIoas.encode({ size: 12, op: 0 /* GET */ });
    p.ioctl(ifd, IOMMU_VFIO_IOAS, get);
    const compat = iommuVfioIoas.decode(get).ioas_id;
    const va = p.mmap({ length: 4096 });
    p.memory.write(va, new Uint8Array([5, 6, 7]));
    p.ioctl(ifd, IOMMU_IOAS_MAP, iommuIoasMap.encode({ size: 40, flags: RW | IOMMU_IOAS_MAP_FIXED_IOVA, ioas_id: compat, user_va: va, length: 4096n, iova: 0x9000n }));
    const buf = new Uint8Array(3);
    dev.dmaRw(0x9000n, buf, false);
    expect([...buf]).toEqual([5, 6, 7]);
    p.close(fd);
    expect(host.api.deviceIommufdInfo(dev).attached).toBe(false);
    p.close(g);
    p.close(ifd);
  });
});

/* ------------------------------------------------------------------ no-IOMMU */

describe('no-IOMMU devices and iommufd (§2.9)', () => {
  function make(): { host: ReturnType<typeof createHost>; dev: () => VfioDevice } {
    let device: VfioDevice | undefined;
    const platform = simPlatform({ iommu: 'none', devices: [{ bdf: '0000:00:03.0', fn: fn(), driver: 'vfio-noio' }] });
    const host = createHost({
      platform,
      params: { 'vfio.enable_unsafe_noiommu_mode': true },
      plugins: [
        iommufd(),
        {
          name: 'vfio-noio',
          setup(api) {
            api.registerPciDriver({
              name: 'vfio-noio',
              driverManagedDma: true,
              probe(pdev) {
                device = api.allocDevice({ name: pdev.bdf, data: null, ops: { ioctl: () => 7 } });
                api.registerGroupDevice(device);
              },
              remove: async () => {
                await device?.unregister();
              },
            });
          },
        },
      ],
    });
    return { host, dev: () => device! };
  }

  it('gives no-IOMMU devices no cdev node (Linux 6.12: "cdev does not support noiommu device")', () => {
    const { host, dev } = make();
    const d = dev();
    expect(d.group!.type).toBe('no-iommu');
    const raw = host.spawn({ uid: 0, capabilities: ['CAP_SYS_RAWIO'] });
    expect(raw.readdir('/dev/vfio/devices')).toEqual([]);
    expect(errnoOf(() => raw.open(`/dev/vfio/devices/vfio${d.index}`))).toBe('ENOENT');
    // The class device exists, without a char device number.
    expect(raw.readdir(`/sys/bus/pci/devices/${d.name}/vfio-dev/vfio${d.index}`)).toEqual([]);
  });

  it('opens through a group on an iommufd without a binding, only with CAP_SYS_RAWIO and no compat IOAS (EPERM)', () => {
    const { host, dev } = make();
    const d = dev();
    const raw = host.spawn({ uid: 0, capabilities: ['CAP_SYS_RAWIO'] });
    const g = raw.open(`/dev/vfio/noiommu-${d.group!.id}`);
    const ifd = raw.open('/dev/iommu');
    raw.ioctl(g, VFIO_GROUP_SET_CONTAINER, intArg(ifd));
    // A compat IOAS chosen afterwards says the user expects translation: refused at open.
    const ioas = ioasAlloc(raw, ifd);
    raw.ioctl(ifd, IOMMU_VFIO_IOAS, iommuVfioIoas.encode({ size: 12, op: IOMMU_VFIO_IOAS_SET, ioas_id: ioas }));
    expect(errnoOf(() => raw.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, cString(d.name)))).toBe('EPERM');
    raw.ioctl(ifd, IOMMU_VFIO_IOAS, iommuVfioIoas.encode({ size: 12, op: 2 /* CLEAR */ }));
    // Without CAP_SYS_RAWIO (dropped after opening the group) the open is refused too.
    const child = raw.fork();
    child.capset({ effective: [] });
    expect(errnoOf(() => child.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, cString(d.name)))).toBe('EPERM');
    expect(d.openCount).toBe(0);
    const fd = raw.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, cString(d.name));
    expect(raw.ioctl(fd, 0x3b99)).toBe(7);
    expect(host.api.deviceIommufdInfo(d)).toMatchObject({ devid: undefined, attached: false });
    raw.close(fd);
    expect(d.openCount).toBe(0);
  });

  it('puts the iommufd in no-IOMMU compat mode on SET_CONTAINER (EINVAL when it has a compat IOAS)', () => {
    const { host, dev } = make();
    const d = dev();
    const raw = host.spawn({ uid: 0, capabilities: ['CAP_SYS_RAWIO'] });
    const g = raw.open(`/dev/vfio/noiommu-${d.group!.id}`);
    const withIoas = raw.open('/dev/iommu');
    const ioas = ioasAlloc(raw, withIoas);
    raw.ioctl(withIoas, IOMMU_VFIO_IOAS, iommuVfioIoas.encode({ size: 12, op: IOMMU_VFIO_IOAS_SET, ioas_id: ioas }));
    expect(errnoOf(() => raw.ioctl(g, VFIO_GROUP_SET_CONTAINER, intArg(withIoas)))).toBe('EINVAL');
    const ifd = raw.open('/dev/iommu');
    raw.ioctl(g, VFIO_GROUP_SET_CONTAINER, intArg(ifd));
    const fd = raw.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, cString(d.name));
    expect(raw.ioctl(fd, 0x3b99)).toBe(7);
    raw.close(fd);
    raw.close(g);
  });
});

/* ------------------------------------------------------------------ life cycle */

describe('cdev life cycle', () => {
  function make(openDelay?: number): {
    host: ReturnType<typeof createHost>;
    dev: () => VfioDevice;
    trace: string[];
    unbind: () => Promise<void>;
  } {
    const trace: string[] = [];
    let device: VfioDevice | undefined;
    let unbind: (() => Promise<void>) | undefined;
    const platform = simPlatform({ iommu: 'vtd', devices: [{ bdf: '0000:00:03.0', fn: fn(), driver: 'vfio-life' }] });
    const host = createHost({
      platform,
      plugins: [
        iommufd(),
        {
          name: 'vfio-life',
          setup(api) {
            const undo = api.registerPciDriver({
              name: 'vfio-life',
              driverManagedDma: true,
              probe(pdev) {
                device = api.allocDevice({
                  name: pdev.bdf,
                  data: null,
                  ops: {
                    openDevice: (d) => {
                      trace.push(`open kvm=${String(d.kvm)}`);
                      if (openDelay !== undefined) return api.platform.clock.sleep(openDelay);
                      return undefined;
                    },
                    closeDevice: () => {
                      trace.push('close');
                    },
                    request: (_d, count) => {
                      trace.push(`request ${count}`);
                    },
                  },
                });
                api.registerGroupDevice(device);
              },
              async remove() {
                await device!.unregister();
                device!.put();
              },
            });
            unbind = undo;
          },
        },
      ],
    });
    return { host, dev: () => device!, trace, unbind: () => unbind!() };
  }

  it('hands the KVM instance set on the cdev file to the device at bind', () => {
    const { host, dev, trace } = make();
    const p = host.spawn({ uid: 0 });
    const fd = p.open(`/dev/vfio/devices/vfio${dev().index}`);
    host.api.fileSetKvm(p.file(fd), 'kvm#1');
    bindIommufd(p, fd, p.open('/dev/iommu'));
    expect(trace).toEqual(['open kvm=kvm#1']);
    expect(dev().kvm).toBe('kvm#1');
    p.close(fd);
    expect(dev().kvm).toBeUndefined();
  });

  it('waits for an asynchronous open_device with ioctlAsync; a synchronous BIND meanwhile is EBUSY', async () => {
    const { host, dev, trace } = make(5);
    const p = host.spawn({ uid: 0 });
    const ifd = p.open('/dev/iommu');
    const a = p.open(`/dev/vfio/devices/vfio${dev().index}`);
    const b = p.open(`/dev/vfio/devices/vfio${dev().index}`);
    const arg = vfioDeviceBindIommufd.encode({ argsz: 16, iommufd: ifd });
    const pending = p.ioctlAsync(a, VFIO_DEVICE_BIND_IOMMUFD, arg);
    // The device set is busy with the open: a synchronous bind cannot wait.
    expect(errnoOf(() => bindIommufd(p, b, ifd))).toBe('EBUSY');
    expect(await pending).toBe(0);
    expect(vfioDeviceBindIommufd.decode(arg).out_devid).toBeGreaterThan(0);
    expect(trace).toEqual(['open kvm=undefined']);
    // Once bound, a second waiting bind on the other fd fails as Linux does (the device is open).
    expect(await errnoOfAsync(p.ioctlAsync(b, VFIO_DEVICE_BIND_IOMMUFD, vfioDeviceBindIommufd.encode({ argsz: 16, iommufd: ifd })))).toBe('EINVAL');
    p.close(a);
    p.close(b);
    expect(trace).toEqual(['open kvm=undefined', 'close']);
  });

  it('removes the node when unregistering starts and finishes once the bound fd closes', async () => {
    const { host, dev, trace, unbind } = make();
    const p = host.spawn({ uid: 0 });
    const d = dev();
    const path = `/dev/vfio/devices/vfio${d.index}`;
    const fd = p.open(path);
    bindIommufd(p, fd, p.open('/dev/iommu'));
    const removing = unbind();
    await Promise.resolve();
    expect(p.readdir('/dev/vfio/devices')).toEqual([]);
    expect(errnoOf(() => p.open(path))).toBe('ENOENT');
    expect(trace).toContain('request 0');
    p.close(fd);
    await removing;
    expect(d.state).toBe('released');
    expect(trace).toEqual(['open kvm=undefined', 'request 0', 'close']);
  });
});

/* ------------------------------------------------------------------ hot reset ownership (§1.6) */

describe('iommufd ownership queries for hot reset', () => {
  it('reports the devid for the binding context, owned for a context owning the group, not-owned otherwise', () => {
    const platform = simPlatform({
      iommu: 'vtd',
      devices: [
        // A multi-function device without ACS: both functions share one IOMMU group.
        { bdf: '0000:00:05.0', fn: fn(true), driver: 'vfio-own', acs: false },
        { bdf: '0000:00:05.1', fn: fn(true), driver: 'vfio-own', acs: false },
      ],
    });
    const devices = new Map<string, VfioDevice>();
    const host = createHost({
      platform,
      plugins: [
        iommufd(),
        {
          name: 'vfio-own',
          setup(api) {
            api.registerPciDriver({
              name: 'vfio-own',
              driverManagedDma: true,
              probe(pdev) {
                const d = api.allocDevice({ name: pdev.bdf, data: null, ops: {} });
                api.registerGroupDevice(d);
                devices.set(pdev.bdf, d);
              },
              remove: async () => undefined,
            });
          },
        },
      ],
    });
    const f0 = devices.get('0000:00:05.0')!;
    const f1 = devices.get('0000:00:05.1')!;
    const p = host.spawn({ uid: 0 });
    const ifd = p.open('/dev/iommu');
    const other = p.open('/dev/iommu');
    const ictx = host.api.iommufdOfFile(p.file(ifd))!;
    const otherCtx = host.api.iommufdOfFile(p.file(other))!;
    expect(host.api.iommufdOfFile(p.file(p.open('/dev/null')))).toBeUndefined();
    const fd = p.open(`/dev/vfio/devices/vfio${f0.index}`);
    const devid = bindIommufd(p, fd, ifd);
    expect(host.api.iommufdDeviceId(f0, ictx)).toBe(devid);
    expect(f1.group!.id).toBe(f0.group!.id);
    expect(host.api.iommufdDeviceId(f1, ictx)).toBe('owned');
    expect(host.api.iommufdDeviceId(f0, otherCtx)).toBe('not-owned');
    expect(host.api.deviceIommufdInfo(f0)).toEqual({ cdevOpened: true, ictx, devid, attached: false });
    p.close(fd);
    expect(host.api.iommufdDeviceId(f0, ictx)).toBe('not-owned');
  });
});
