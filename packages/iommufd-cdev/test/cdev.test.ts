/**
 * The VFIO device cdev over iommufd through the system-call surface (issue "iommufd and the VFIO device cdev",
 * acceptance 1 and 3; inventory §1.3, §1.9.4, §1.10, §2.2): open /dev/vfio/devices/vfioN, BIND_IOMMUFD, IOAS_ALLOC,
 * ATTACH_IOMMUFD_PT, IOAS_MAP, device DMA through the IOAS, DETACH, IOAS_UNMAP, close; group/cdev exclusivity both
 * ways; the group path with an iommufd as its container; bad input for every new entry point.
 */
import { describe, expect, it } from 'vitest';
import { cString, createHost, intArg, groupStatus, O_RDONLY, O_RDWR } from '@vfio-ts/core';
import type { Host, HostPlugin, Process, VfioDevice } from '@vfio-ts/core';
import type { PciBarInfo, PciFunction, PciFunctionContext } from '@vfio-ts/platform';
import { pciFunctionFromConfig, simPlatform } from '@vfio-ts/sim';
import {
  IOMMU_DESTROY,
  IOMMU_GET_HW_INFO,
  IOMMU_HW_INFO_TYPE_INTEL_VTD,
  IOMMU_HWPT_ALLOC,
  IOMMU_IOAS_ALLOC,
  IOMMU_IOAS_MAP,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMU_IOAS_UNMAP,
  IOMMU_VFIO_IOAS,
  IOMMU_VFIO_IOAS_GET,
  IOMMU_VFIO_IOAS_SET,
  SysError,
  VFIO_DEVICE_ATTACH_IOMMUFD_PT,
  VFIO_DEVICE_ATTACH_PASID,
  VFIO_DEVICE_BIND_IOMMUFD,
  VFIO_DEVICE_DETACH_IOMMUFD_PT,
  VFIO_DEVICE_DETACH_PASID,
  VFIO_DEVICE_GET_INFO,
  VFIO_GROUP_FLAGS_CONTAINER_SET,
  VFIO_GROUP_FLAGS_VIABLE,
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_GROUP_UNSET_CONTAINER,
  iommuDestroy,
  iommuHwInfo,
  iommuHwptAlloc,
  iommuIoasAlloc,
  iommuIoasMap,
  iommuIoasUnmap,
  iommuVfioIoas,
  isSysError,
  vfioDeviceAttachIommufdPt,
  vfioDeviceBindIommufd,
  vfioDeviceDetachIommufdPt,
} from '@vfio-ts/uapi';
import type { ErrnoName } from '@vfio-ts/uapi';
import { iommufd } from '../src/index.js';
import { attachIommufdPt, bindIommufd, detachIommufdPt, openVfioCdev } from '../src/cdev.js';

/* ------------------------------------------------------------------ in-test device model and VFIO driver */

const BDF = '0000:00:03.0';
const BDF2 = '0000:00:04.0';
const MiB = 1n << 20n;
const RW = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;

/** BAR0 registers of the DMA function: ADDR (u64), WRITE (u64: DMA-writes it to ADDR), READ (DMA-reads into DATA). */
const REG = { ADDR: 0x00, WRITE: 0x08, READ: 0x10, DATA: 0x18, STATUS: 0x20 } as const;

/** A PCI function that DMAs on command through whatever the IOMMU translates for it. */
function dmaFunction(): PciFunction {
  const config = new Uint8Array(256);
  const cv = new DataView(config.buffer);
  cv.setUint16(0, 0x1234, true);
  cv.setUint16(2, 0x5678, true);
  const base = pciFunctionFromConfig({ config, bars: '0:mem32:0x1000' });
  const regs = new DataView(new ArrayBuffer(0x1000));
  let ctx: PciFunctionContext | undefined;
  const dma = (op: () => void): void => {
    try {
      op();
      regs.setUint32(REG.STATUS, 0, true);
    } catch (e) {
      if (!(e instanceof SysError)) throw e;
      regs.setUint32(REG.STATUS, 1, true);
    }
  };
  return {
    configRead: (offset, size) => base.configRead(offset, size),
    configWrite: (offset, size, value) => {
      base.configWrite(offset, size, value);
    },
    get bars(): readonly PciBarInfo[] {
      return base.bars;
    },
    attach(c) {
      ctx = c;
    },
    barRead: (_bar, offset, length) => new Uint8Array(regs.buffer.slice(Number(offset), Number(offset) + length)),
    barWrite(_bar, offset, data) {
      new Uint8Array(regs.buffer).set(data, Number(offset));
      const addr = regs.getBigUint64(REG.ADDR, true);
      if (Number(offset) === REG.WRITE) {
        const bytes = new Uint8Array(regs.buffer.slice(REG.WRITE, REG.WRITE + 8));
        dma(() => {
          ctx!.dma.write(addr, bytes);
        });
      } else if (Number(offset) === REG.READ) {
        dma(() => {
          new Uint8Array(regs.buffer).set(ctx!.dma.read(addr, 8), REG.DATA);
        });
      }
    },
  };
}

interface DriverLog {
  opens: string[];
  closes: string[];
  devices: Map<string, VfioDevice>;
}

/** A minimal VFIO bus driver: IOMMU-backed devices whose read/write reach BAR0; no iommufd ops (the stock ones). */
function testDriver(log: DriverLog, extraOps: Record<string, unknown> = {}): HostPlugin {
  return {
    name: 'vfio-test',
    setup(api) {
      api.registerPciDriver({
        name: 'vfio-test',
        driverManagedDma: true,
        probe(pdev) {
          const dev = api.allocDevice({
            name: pdev.bdf,
            data: undefined,
            ops: {
              name: 'vfio-test',
              openDevice: (d) => {
                log.opens.push(d.name);
              },
              closeDevice: (d) => {
                log.closes.push(d.name);
              },
              read: (_d, length, offset) => pdev.fn.barRead!(0, offset, length),
              write: (_d, data, offset) => {
                pdev.fn.barWrite!(0, offset, data);
                return data.length;
              },
              ioctl: () => 0x1234,
              ...extraOps,
            },
          });
          api.registerGroupDevice(dev);
          log.devices.set(pdev.bdf, dev);
        },
        async remove(pdev) {
          const dev = log.devices.get(pdev.bdf);
          if (!dev) return;
          await dev.unregister();
          dev.put();
        },
      });
    },
  };
}

interface Env {
  host: Host;
  log: DriverLog;
  p: Process;
}

/** Two DMA functions behind a VT-d-like IOMMU (separate groups), bound to the test driver, plus iommufd. */
function env(extraOps: Record<string, unknown> = {}): Env {
  const log: DriverLog = { opens: [], closes: [], devices: new Map() };
  const platform = simPlatform({
    iommu: 'vtd',
    devices: [
      { bdf: BDF, fn: dmaFunction(), driver: 'vfio-test' },
      { bdf: BDF2, fn: dmaFunction(), driver: 'vfio-test' },
    ],
  });
  const host = createHost({ platform, plugins: [iommufd(), testDriver(log, extraOps)] });
  const p = host.spawn({ uid: 0, capabilities: ['CAP_IPC_LOCK'], memlockLimit: 64n * MiB });
  return { host, log, p };
}

function errnoOf(fn: () => unknown): ErrnoName {
  try {
    fn();
  } catch (e) {
    if (isSysError(e)) return e.errno;
    throw e;
  }
  throw new Error('expected a SysError');
}

function u64(v: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, v, true);
  return b;
}

/** The device DMA-writes `value` at `iova`; returns the STATUS register (0 ok, 1 faulted). */
function dmaWrite(p: Process, dev: number, iova: bigint, value: bigint): number {
  p.pwrite(dev, u64(iova), BigInt(REG.ADDR));
  p.pwrite(dev, u64(value), BigInt(REG.WRITE));
  return new DataView(p.pread(dev, 4, BigInt(REG.STATUS)).buffer).getUint32(0, true);
}

/** The device DMA-reads 8 bytes at `iova`; returns [status, value]. */
function dmaRead(p: Process, dev: number, iova: bigint): [number, bigint] {
  p.pwrite(dev, u64(iova), BigInt(REG.ADDR));
  p.pwrite(dev, u64(1n), BigInt(REG.READ));
  const status = new DataView(p.pread(dev, 4, BigInt(REG.STATUS)).buffer).getUint32(0, true);
  return [status, new DataView(p.pread(dev, 8, BigInt(REG.DATA)).buffer).getBigUint64(0, true)];
}

function ioasAlloc(p: Process, fd: number): number {
  const a = iommuIoasAlloc.encode({ size: iommuIoasAlloc.size });
  p.ioctl(fd, IOMMU_IOAS_ALLOC, a);
  return iommuIoasAlloc.decode(a).out_ioas_id;
}

function ioasMap(p: Process, fd: number, ioas: number, va: bigint, length: bigint, iova: bigint): void {
  p.ioctl(
    fd,
    IOMMU_IOAS_MAP,
    iommuIoasMap.encode({ size: iommuIoasMap.size, flags: RW | IOMMU_IOAS_MAP_FIXED_IOVA, ioas_id: ioas, user_va: va, length, iova }),
  );
}

function ioasUnmap(p: Process, fd: number, ioas: number, iova: bigint, length: bigint): bigint {
  const u = iommuIoasUnmap.encode({ size: iommuIoasUnmap.size, ioas_id: ioas, iova, length });
  p.ioctl(fd, IOMMU_IOAS_UNMAP, u);
  return iommuIoasUnmap.decode(u).length;
}

function groupOf(p: Process, bdf: string): number {
  return Number(p.readlink(`/sys/bus/pci/devices/${bdf}/iommu_group`).split('/').pop());
}

function cdevIndex(e: Env, bdf: string): number {
  return e.log.devices.get(bdf)!.index;
}

function bindArg(iommufdFd: number, over: Partial<{ argsz: number; flags: number }> = {}): Uint8Array {
  return vfioDeviceBindIommufd.encode({ argsz: over.argsz ?? 16, flags: over.flags ?? 0, iommufd: iommufdFd });
}

/* ------------------------------------------------------------------ the cdev flow */

describe('the VFIO device cdev over iommufd', () => {
  it('opens, binds, attaches, maps, does DMA through the IOAS, detaches, unmaps and closes', () => {
    const e = env();
    const { p, host, log } = e;
    const index = cdevIndex(e, BDF);
    const name = `vfio${index}`;
    expect(p.readdir('/dev/vfio/devices')).toContain(name);
    expect(p.readdir(`/sys/bus/pci/devices/${BDF}/vfio-dev`)).toEqual([name]);
    const devAttr = p.open(`/sys/bus/pci/devices/${BDF}/vfio-dev/${name}/dev`, O_RDONLY);
    expect(new TextDecoder().decode(p.read(devAttr, 64))).toBe(`511:${index}\n`);
    p.close(devAttr);

    const dev = p.open(`/dev/vfio/devices/${name}`);
    // Unbound: every ioctl but BIND_IOMMUFD, read, write and mmap fail with EINVAL; the driver is not reached.
    expect(errnoOf(() => p.ioctl(dev, VFIO_DEVICE_GET_INFO, new Uint8Array(16)))).toBe('EINVAL');
    expect(errnoOf(() => p.ioctl(dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, vfioDeviceAttachIommufdPt.encode({ argsz: 16 })))).toBe('EINVAL');
    expect(errnoOf(() => p.pread(dev, 4, 0n))).toBe('EINVAL');
    expect(errnoOf(() => p.pwrite(dev, new Uint8Array(4), 0n))).toBe('EINVAL');
    expect(errnoOf(() => p.mmap({ fd: dev, length: 4096 }))).toBe('EINVAL');
    expect(log.opens).toEqual([]);

    const ifd = p.open('/dev/iommu');
    const devid = bindIommufd(p, dev, ifd);
    expect(devid).toBeGreaterThan(0);
    expect(log.opens).toEqual([BDF]);
    // The device now answers its driver's ioctls and DMA ownership of the group belongs to the iommufd.
    expect(p.ioctl(dev, VFIO_DEVICE_GET_INFO, new Uint8Array(16))).toBe(0x1234);
    const info = host.api.deviceIommufdInfo(log.devices.get(BDF)!);
    expect(info.cdevOpened).toBe(true);
    expect(info.devid).toBe(devid);
    expect(info.attached).toBe(false);

    const ioas = ioasAlloc(p, ifd);
    const hwpt = attachIommufdPt(p, dev, ioas);
    expect(hwpt).not.toBe(ioas); // an automatic HWPT was made for the IOAS
    expect(host.api.deviceIommufdInfo(log.devices.get(BDF)!).attached).toBe(true);

    const va = p.mmap({ length: 2n * MiB });
    p.memory.write(va + 0x100n, u64(0xfeedn));
    const iova = 0x4000_0000n;
    ioasMap(p, ifd, ioas, va, 2n * MiB, iova);

    // Device DMA goes through the IOAS: writes land in the process's memory, reads see it.
    expect(dmaWrite(p, dev, iova + 0x10n, 0xdead_beefn)).toBe(0);
    expect(new DataView(p.memory.read(va + 0x10n, 8).buffer).getBigUint64(0, true)).toBe(0xdead_beefn);
    expect(dmaRead(p, dev, iova + 0x100n)).toEqual([0, 0xfeedn]);
    // Outside the mapping the IOMMU faults.
    expect(dmaWrite(p, dev, iova + 4n * MiB, 1n)).toBe(1);

    // Detached, the device blocks DMA; the memory stays as it was.
    detachIommufdPt(p, dev);
    expect(dmaWrite(p, dev, iova + 0x10n, 0x1111n)).toBe(1);
    expect(new DataView(p.memory.read(va + 0x10n, 8).buffer).getBigUint64(0, true)).toBe(0xdead_beefn);
    // Detach when not attached is a no-op (vfio_iommufd_physical_detach_ioas).
    detachIommufdPt(p, dev);

    expect(ioasUnmap(p, ifd, ioas, iova, 2n * MiB)).toBe(2n * MiB);
    p.close(dev);
    expect(log.closes).toEqual([BDF]);
    expect(host.api.deviceIommufdInfo(log.devices.get(BDF)!).cdevOpened).toBe(false);
    // Unbound on close: DMA ownership released, so the group is usable through its node again.
    const g = p.open(`/dev/vfio/${groupOf(p, BDF)}`);
    expect(groupStatus(p, g) & VFIO_GROUP_FLAGS_VIABLE).toBe(VFIO_GROUP_FLAGS_VIABLE);
    p.close(g);
    p.close(ifd);
  });

  it('replaces the attachment on a second ATTACH and keeps DMA working through the new IOAS', () => {
    const e = env();
    const { p } = e;
    const { device: dev, iommufd: ifd } = openVfioCdev(p, { device: cdevIndex(e, BDF) });
    const ioas1 = ioasAlloc(p, ifd);
    const ioas2 = ioasAlloc(p, ifd);
    const va1 = p.mmap({ length: 4096 });
    const va2 = p.mmap({ length: 4096 });
    ioasMap(p, ifd, ioas1, va1, 4096n, 0x10000n);
    ioasMap(p, ifd, ioas2, va2, 4096n, 0x10000n);
    const h1 = attachIommufdPt(p, dev, ioas1);
    const h2 = attachIommufdPt(p, dev, ioas2);
    expect(h2).not.toBe(h1);
    expect(dmaWrite(p, dev, 0x10000n, 7n)).toBe(0);
    expect(p.memory.read(va2, 1)[0]).toBe(7);
    expect(p.memory.read(va1, 1)[0]).toBe(0);
    // The first automatic HWPT went away with its last device: the IOAS can be destroyed... after the map is gone.
    p.close(dev);
    p.close(ifd);
  });

  it('follows QEMU: GET_HW_INFO and HWPT_ALLOC by devid, then ATTACH to the explicit HWPT (which then is busy)', () => {
    const e = env();
    const { p } = e;
    const { device: dev, iommufd: ifd, devid } = openVfioCdev(p, { device: cdevIndex(e, BDF) });
    const info = iommuHwInfo.encode({ size: 40, dev_id: devid });
    p.ioctl(ifd, IOMMU_GET_HW_INFO, info);
    expect(iommuHwInfo.decode(info).out_data_type).toBe(IOMMU_HW_INFO_TYPE_INTEL_VTD);
    const ioas = ioasAlloc(p, ifd);
    const alloc = iommuHwptAlloc.encode({ size: 48, dev_id: devid, pt_id: ioas });
    p.ioctl(ifd, IOMMU_HWPT_ALLOC, alloc);
    const hwpt = iommuHwptAlloc.decode(alloc).out_hwpt_id;
    expect(attachIommufdPt(p, dev, hwpt)).toBe(hwpt);
    const va = p.mmap({ length: 4096 });
    ioasMap(p, ifd, ioas, va, 4096n, 0x30000n);
    expect(dmaWrite(p, dev, 0x30000n, 3n)).toBe(0);
    expect(p.memory.read(va, 1)[0]).toBe(3);
    // An attached HWPT (and the device object) cannot be destroyed while in use.
    expect(errnoOf(() => p.ioctl(ifd, IOMMU_DESTROY, iommuDestroy.encode({ size: 8, id: hwpt })))).toBe('EBUSY');
    expect(errnoOf(() => p.ioctl(ifd, IOMMU_DESTROY, iommuDestroy.encode({ size: 8, id: devid })))).toBe('EBUSY');
    detachIommufdPt(p, dev);
    p.ioctl(ifd, IOMMU_DESTROY, iommuDestroy.encode({ size: 8, id: hwpt }));
    p.close(dev);
    // Unbound: the devid is gone from the context.
    expect(errnoOf(() => p.ioctl(ifd, IOMMU_GET_HW_INFO, iommuHwInfo.encode({ size: 40, dev_id: devid })))).toBe('ENOENT');
    p.close(ifd);
  });

  it('lets the /dev/iommu fd close while the device is bound (the binding keeps the context)', () => {
    const e = env();
    const { p } = e;
    const { device: dev, iommufd: ifd } = openVfioCdev(p, { device: cdevIndex(e, BDF) });
    const ioas = ioasAlloc(p, ifd);
    const va = p.mmap({ length: 4096 });
    ioasMap(p, ifd, ioas, va, 4096n, 0x20000n);
    attachIommufdPt(p, dev, ioas);
    p.close(ifd);
    expect(dmaWrite(p, dev, 0x20000n, 9n)).toBe(0);
    expect(p.memory.read(va, 1)[0]).toBe(9);
    p.close(dev);
    expect(e.log.closes).toEqual([BDF]);
  });

  it('has root-only nodes, and none without an iommufd provider', () => {
    const e = env();
    const user = e.host.spawn({ uid: 1000 });
    expect(errnoOf(() => user.open(`/dev/vfio/devices/vfio${cdevIndex(e, BDF)}`))).toBe('EACCES');
    const bare = createHost({
      platform: simPlatform({ iommu: 'vtd', devices: [{ bdf: BDF, fn: dmaFunction(), driver: 'vfio-test' }] }),
      plugins: [testDriver({ opens: [], closes: [], devices: new Map() })],
    });
    expect(bare.spawn({ uid: 0 }).readdir('/dev/vfio/devices')).toEqual([]);
  });
});

/* ------------------------------------------------------------------ group / cdev exclusivity */

describe('group and cdev exclusivity (Linux 6.12 errno)', () => {
  it('refuses BIND while the group node is open, and the group node while a cdev is bound (EBUSY)', () => {
    const e = env();
    const { p, log } = e;
    const groupPath = `/dev/vfio/${groupOf(p, BDF)}`;
    const ifd = p.open('/dev/iommu');
    const dev = p.open(`/dev/vfio/devices/vfio${cdevIndex(e, BDF)}`);
    const g = p.open(groupPath);
    expect(errnoOf(() => bindIommufd(p, dev, ifd))).toBe('EBUSY');
    expect(log.opens).toEqual([]);
    p.close(g);
    bindIommufd(p, dev, ifd);
    expect(errnoOf(() => p.open(groupPath))).toBe('EBUSY');
    p.close(dev);
    // Unbinding unblocks the group.
    p.close(p.open(groupPath));
    p.close(ifd);
  });

  it('refuses BIND on a device opened through its group (group open → EBUSY; the group fd itself → EINVAL)', () => {
    const e = env();
    const { p } = e;
    const ifd = p.open('/dev/iommu');
    const g = p.open(`/dev/vfio/${groupOf(p, BDF)}`);
    p.ioctl(g, VFIO_GROUP_SET_CONTAINER, intArg(ifd));
    const gdev = p.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, cString(BDF));
    const cdev = p.open(`/dev/vfio/devices/vfio${cdevIndex(e, BDF)}`);
    expect(errnoOf(() => bindIommufd(p, cdev, ifd))).toBe('EBUSY');
    // BIND_IOMMUFD is for cdev fds only.
    expect(errnoOf(() => bindIommufd(p, gdev, ifd))).toBe('EINVAL');
    p.close(gdev);
    p.close(g);
    p.close(cdev);
    p.close(ifd);
  });

  it('binds a device once: a second BIND on the fd and a BIND on another cdev fd of the device are EINVAL', () => {
    const e = env();
    const { p, log } = e;
    const ifd = p.open('/dev/iommu');
    const path = `/dev/vfio/devices/vfio${cdevIndex(e, BDF)}`;
    const a = p.open(path);
    const b = p.open(path);
    bindIommufd(p, a, ifd);
    expect(errnoOf(() => bindIommufd(p, a, ifd))).toBe('EINVAL');
    expect(errnoOf(() => bindIommufd(p, b, ifd))).toBe('EINVAL');
    expect(log.opens).toEqual([BDF]);
    p.close(b); // an unbound fd closes without touching the device
    expect(log.closes).toEqual([]);
    p.close(a);
    expect(log.closes).toEqual([BDF]);
    // After the close the device can be bound again, through any of its cdev fds.
    const c = p.open(path);
    bindIommufd(p, c, ifd);
    p.close(c);
    p.close(ifd);
  });

  it('keeps another device usable: exclusivity is per IOMMU group', () => {
    const e = env();
    const { p } = e;
    const ifd = p.open('/dev/iommu');
    const dev = p.open(`/dev/vfio/devices/vfio${cdevIndex(e, BDF)}`);
    bindIommufd(p, dev, ifd);
    const g2 = p.open(`/dev/vfio/${groupOf(p, BDF2)}`);
    p.close(g2);
    p.close(dev);
    p.close(ifd);
  });
});

/* ------------------------------------------------------------------ SET_CONTAINER with an iommufd */

describe('the group path with an iommufd as its container', () => {
  it('creates the compat IOAS, claims and binds at GET_DEVICE_FD and attaches the device to the compat IOAS', () => {
    const e = env();
    const { p, log, host } = e;
    const ifd = p.open('/dev/iommu');
    const g = p.open(`/dev/vfio/${groupOf(p, BDF)}`);
    expect(groupStatus(p, g)).toBe(VFIO_GROUP_FLAGS_VIABLE);
    p.ioctl(g, VFIO_GROUP_SET_CONTAINER, intArg(ifd));
    expect(groupStatus(p, g)).toBe(VFIO_GROUP_FLAGS_VIABLE | VFIO_GROUP_FLAGS_CONTAINER_SET);
    // A second SET_CONTAINER (container or iommufd) is EINVAL.
    expect(errnoOf(() => p.ioctl(g, VFIO_GROUP_SET_CONTAINER, intArg(ifd)))).toBe('EINVAL');
    const get = iommuVfioIoas.encode({ size: 12, op: IOMMU_VFIO_IOAS_GET });
    p.ioctl(ifd, IOMMU_VFIO_IOAS, get);
    const compat = iommuVfioIoas.decode(get).ioas_id;
    expect(compat).toBeGreaterThan(0);

    const dev = p.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, cString(BDF));
    expect(log.opens).toEqual([BDF]);
    const device = log.devices.get(BDF)!;
    const info = host.api.deviceIommufdInfo(device);
    expect(info.cdevOpened).toBe(false);
    expect(info.attached).toBe(true);
    expect(host.api.iommufdDeviceId(device, host.api.iommufdOfFile(p.file(ifd))!)).toBe(info.devid);

    const va = p.mmap({ length: 4096 });
    ioasMap(p, ifd, compat, va, 4096n, 0x8000_0000n);
    expect(dmaWrite(p, dev, 0x8000_0000n + 8n, 0x42n)).toBe(0);
    expect(p.memory.read(va + 8n, 1)[0]).toBe(0x42);
    // A second GET_DEVICE_FD shares the open device.
    const dev2 = p.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, cString(BDF));
    expect(log.opens).toEqual([BDF]);
    p.close(dev2);

    // UNSET_CONTAINER with an iommufd does not wait for open devices (group.c): the device keeps its binding.
    p.ioctl(g, VFIO_GROUP_UNSET_CONTAINER);
    expect(groupStatus(p, g) & VFIO_GROUP_FLAGS_CONTAINER_SET).toBe(0);
    expect(dmaWrite(p, dev, 0x8000_0000n + 8n, 0x43n)).toBe(0);
    expect(errnoOf(() => p.ioctl(g, VFIO_GROUP_UNSET_CONTAINER))).toBe('EINVAL');
    // Without a container or iommufd a new GET_DEVICE_FD is EINVAL.
    expect(errnoOf(() => p.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, cString(BDF)))).toBe('EINVAL');
    p.close(dev);
    expect(log.closes).toEqual([BDF]);
    expect(host.api.deviceIommufdInfo(device).attached).toBe(false);
    p.close(g);
    p.close(ifd);
  });

  it('fails GET_DEVICE_FD without a compat IOAS and unwinds the open (ENODEV)', () => {
    const e = env();
    const { p, log } = e;
    const ifd = p.open('/dev/iommu');
    const g = p.open(`/dev/vfio/${groupOf(p, BDF)}`);
    p.ioctl(g, VFIO_GROUP_SET_CONTAINER, intArg(ifd));
    // The user clears the compat IOAS choice before opening the device.
    p.ioctl(ifd, IOMMU_VFIO_IOAS, iommuVfioIoas.encode({ size: 12, op: 2 /* CLEAR */ }));
    expect(errnoOf(() => p.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, cString(BDF)))).toBe('ENODEV');
    expect(log.opens).toEqual([BDF]);
    expect(log.closes).toEqual([BDF]);
    // Nothing stayed bound: choosing an IOAS again lets the open succeed.
    const ioas = ioasAlloc(p, ifd);
    p.ioctl(ifd, IOMMU_VFIO_IOAS, iommuVfioIoas.encode({ size: 12, op: IOMMU_VFIO_IOAS_SET, ioas_id: ioas }));
    const dev = p.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, cString(BDF));
    p.close(dev);
    p.close(g);
    p.close(ifd);
  });

  it('reports VIABLE after SET_CONTAINER yet fails GET_DEVICE_FD when a host driver does DMA in the group (EPERM)', () => {
    // Function 1 of a multi-function device without ACS shares the group and is bound to a DMA-doing host driver.
    const config = (id: number): Uint8Array => {
      const c = new Uint8Array(256);
      new DataView(c.buffer).setUint32(0, id, true);
      c[0x0e] = 0x80;
      return c;
    };
    const log: DriverLog = { opens: [], closes: [], devices: new Map() };
    const platform = simPlatform({
      iommu: 'vtd',
      devices: [
        { bdf: '0000:00:06.0', fn: pciFunctionFromConfig({ config: config(0x56781234), bars: '0:mem32:0x1000' }), driver: 'vfio-test', acs: false },
        { bdf: '0000:00:06.1', fn: pciFunctionFromConfig({ config: config(0x100e8086), bars: '0:mem32:0x1000' }), driver: 'e1000', acs: false },
      ],
      hostDrivers: [{ name: 'e1000', ids: ['8086:100e'] }],
    });
    const host = createHost({ platform, plugins: [iommufd(), testDriver(log)] });
    const p = host.spawn({ uid: 0 });
    const dev = log.devices.get('0000:00:06.0')!;
    const ifd = p.open('/dev/iommu');
    const g = p.open(`/dev/vfio/${dev.group!.id}`);
    expect(groupStatus(p, g)).toBe(0);
    p.ioctl(g, VFIO_GROUP_SET_CONTAINER, intArg(ifd));
    // With an iommufd the ownership claim waits for GET_DEVICE_FD (§1.3).
    expect(groupStatus(p, g)).toBe(VFIO_GROUP_FLAGS_VIABLE | VFIO_GROUP_FLAGS_CONTAINER_SET);
    expect(errnoOf(() => p.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, cString('0000:00:06.0')))).toBe('EPERM');
    expect(log.opens).toEqual([]);
    expect(dev.openCount).toBe(0);
    p.close(g);
    // The cdev path claims at BIND, with the same answer.
    const fd = p.open(`/dev/vfio/devices/${dev.devName}`);
    expect(errnoOf(() => bindIommufd(p, fd, ifd))).toBe('EPERM');
    expect(log.opens).toEqual([]);
  });

  it('refuses SET_CONTAINER with a file that is neither (EBADFD) and a bad fd (EBADF)', () => {
    const e = env();
    const { p } = e;
    const g = p.open(`/dev/vfio/${groupOf(p, BDF)}`);
    const nul = p.open('/dev/null', O_RDWR);
    expect(errnoOf(() => p.ioctl(g, VFIO_GROUP_SET_CONTAINER, intArg(nul)))).toBe('EBADFD');
    expect(errnoOf(() => p.ioctl(g, VFIO_GROUP_SET_CONTAINER, intArg(77)))).toBe('EBADF');
    expect(groupStatus(p, g)).toBe(VFIO_GROUP_FLAGS_VIABLE);
  });
});

/* ------------------------------------------------------------------ bad input */

describe('bad input to the cdev ioctls', () => {
  it('BIND_IOMMUFD: short argsz, unknown flags, negative fd (EINVAL); short buffer (EFAULT); bad fd (EBADF); wrong type (EBADFD)', () => {
    const e = env();
    const { p, log } = e;
    const ifd = p.open('/dev/iommu');
    const nul = p.open('/dev/null');
    const dev = p.open(`/dev/vfio/devices/vfio${cdevIndex(e, BDF)}`);
    expect(errnoOf(() => p.ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, bindArg(ifd, { argsz: 15 })))).toBe('EINVAL');
    expect(errnoOf(() => p.ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, bindArg(ifd, { flags: 1 })))).toBe('EINVAL');
    expect(errnoOf(() => p.ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, bindArg(-1)))).toBe('EINVAL');
    expect(errnoOf(() => p.ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, bindArg(ifd).subarray(0, 12)))).toBe('EFAULT');
    expect(errnoOf(() => p.ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, bindArg(99)))).toBe('EBADF');
    expect(errnoOf(() => p.ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, bindArg(nul)))).toBe('EBADFD');
    // A device fd is no iommufd either.
    const other = p.open(`/dev/vfio/devices/vfio${cdevIndex(e, BDF2)}`);
    expect(errnoOf(() => p.ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, bindArg(other)))).toBe('EBADFD');
    // A closed iommufd fd is a bad fd.
    const gone = p.open('/dev/iommu');
    p.close(gone);
    expect(errnoOf(() => p.ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, bindArg(gone)))).toBe('EBADF');
    expect(log.opens).toEqual([]);
    // Nothing stayed half-done: the group is not blocked and a good bind works, through a user pointer too.
    p.close(p.open(`/dev/vfio/${groupOf(p, BDF)}`));
    const ptr = p.mmap({ length: 4096 });
    p.memory.write(ptr, bindArg(ifd));
    expect(p.ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, ptr)).toBe(0);
    expect(new DataView(p.memory.read(ptr + 12n, 4).buffer).getUint32(0, true)).toBeGreaterThan(0);
    p.close(dev);
    p.close(other);
  });

  it('ATTACH/DETACH_IOMMUFD_PT: argsz, flags, PASID without driver support, unknown ids', () => {
    const e = env();
    const { p } = e;
    const { device: dev, iommufd: ifd } = openVfioCdev(p, { device: cdevIndex(e, BDF) });
    const ioas = ioasAlloc(p, ifd);
    const attach = (o: { argsz?: number; flags?: number; pt_id?: number }): number =>
      p.ioctl(dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, vfioDeviceAttachIommufdPt.encode({ argsz: 16, flags: 0, pt_id: ioas, ...o }));
    const detach = (o: { argsz?: number; flags?: number }): number =>
      p.ioctl(dev, VFIO_DEVICE_DETACH_IOMMUFD_PT, vfioDeviceDetachIommufdPt.encode({ argsz: 12, flags: 0, ...o }));
    expect(errnoOf(() => attach({ argsz: 11 }))).toBe('EINVAL');
    expect(errnoOf(() => attach({ flags: 2 }))).toBe('EINVAL');
    expect(errnoOf(() => attach({ flags: VFIO_DEVICE_ATTACH_PASID }))).toBe('EOPNOTSUPP');
    expect(errnoOf(() => p.ioctl(dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, new Uint8Array(8)))).toBe('EFAULT');
    expect(errnoOf(() => attach({ pt_id: 999 }))).toBe('ENOENT');
    expect(e.host.api.deviceIommufdInfo(e.log.devices.get(BDF)!).attached).toBe(false);
    expect(errnoOf(() => detach({ argsz: 7 }))).toBe('EINVAL');
    expect(errnoOf(() => detach({ flags: 2 }))).toBe('EINVAL');
    expect(errnoOf(() => detach({ flags: VFIO_DEVICE_DETACH_PASID }))).toBe('EOPNOTSUPP');
    expect(errnoOf(() => p.ioctl(dev, VFIO_DEVICE_DETACH_IOMMUFD_PT, new Uint8Array(4)))).toBe('EFAULT');
    expect(errnoOf(() => p.ioctl(dev, VFIO_DEVICE_DETACH_IOMMUFD_PT))).toBe('EFAULT');
    // Valid calls still work afterwards.
    expect(attach({})).toBe(0);
    expect(detach({})).toBe(0);
    p.close(dev);
    // Use after close.
    expect(errnoOf(() => attach({}))).toBe('EBADF');
    expect(errnoOf(() => bindIommufd(p, dev, ifd))).toBe('EBADF');
    p.close(ifd);
  });

  it('passes PASID attach/detach to a driver that has the ops, with the argsz rules', () => {
    const calls: string[] = [];
    const e = env({
      pasidAttachIoas: (_d: unknown, pasid: number, pt: number) => {
        calls.push(`attach ${pasid} ${pt}`);
        return pt + 100;
      },
      pasidDetachIoas: (_d: unknown, pasid: number) => {
        calls.push(`detach ${pasid}`);
      },
    });
    const { p } = e;
    const { device: dev, iommufd: ifd } = openVfioCdev(p, { device: cdevIndex(e, BDF) });
    const pasidAttach = (argsz: number): number =>
      p.ioctl(dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, vfioDeviceAttachIommufdPt.encode({ argsz, flags: VFIO_DEVICE_ATTACH_PASID, pt_id: 5, pasid: 7 }));
    // With the PASID flag the struct must reach `pasid` (argsz ≥ 16).
    expect(errnoOf(() => pasidAttach(12))).toBe('EINVAL');
    expect(attachIommufdPt(p, dev, 5, 7)).toBe(105);
    expect(errnoOf(() => p.ioctl(dev, VFIO_DEVICE_DETACH_IOMMUFD_PT, vfioDeviceDetachIommufdPt.encode({ argsz: 8, flags: VFIO_DEVICE_DETACH_PASID, pasid: 7 })))).toBe(
      'EINVAL',
    );
    detachIommufdPt(p, dev, 7);
    expect(calls).toEqual(['attach 7 5', 'detach 7']);
    p.close(dev);
    p.close(ifd);
  });

  it('refuses registration of a driver with bindIommufd but without its companion ops (EINVAL)', () => {
    // The bus probe fails (the sim logs it) and no device appears.
    const e = env({ bindIommufd: () => 1 });
    expect(e.log.devices.size).toBe(0);
    expect(e.p.readdir('/dev/vfio/devices')).toEqual([]);
  });

  it('never reaches the driver from an unbound fd and survives fuzzed BIND arguments', () => {
    const e = env();
    const { p, log } = e;
    const dev = p.open(`/dev/vfio/devices/vfio${cdevIndex(e, BDF)}`);
    for (let i = 0; i < 64; i++) {
      const buf = new Uint8Array(i % 24);
      for (let j = 0; j < buf.length; j++) buf[j] = (i * 37 + j * 11) & 0xff;
      try {
        p.ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, buf);
      } catch (err) {
        expect(isSysError(err)).toBe(true);
      }
    }
    expect(log.opens).toEqual([]);
    p.close(dev);
  });
});
