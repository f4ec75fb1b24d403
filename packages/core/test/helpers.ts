/**
 * Test helpers: a config-space builder, a minimal in-test IOMMU backend and a minimal VFIO bus driver, so the
 * core's scenarios run before (and without) the real type1 and vfio-pci packages.
 */
import type { PciBus, PciDeviceHandle, PciFunction } from '@vfio-ts/platform';
import { pciFunctionFromConfig } from '@vfio-ts/sim';
import {
  SysError,
  VFIO_CHECK_EXTENSION,
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  io,
  VFIO_TYPE,
} from '@vfio-ts/uapi';
import { expect } from 'vitest';
import type {
  HostPlugin,
  HostPluginApi,
  IoctlArg,
  VfioDevice,
  VfioDeviceOps,
  VfioDeviceRef,
  VfioGroupRef,
  VfioIommuDriverOps,
} from '../src/index.js';

/** A 256-byte type-0 config space with the given ids. */
export function config(vendor: number, device: number, classCode = 0x020000): Uint8Array {
  const c = new Uint8Array(256);
  const dv = new DataView(c.buffer);
  dv.setUint16(0x00, vendor, true);
  dv.setUint16(0x02, device, true);
  dv.setUint8(0x09, classCode & 0xff);
  dv.setUint8(0x0a, (classCode >> 8) & 0xff);
  dv.setUint8(0x0b, (classCode >> 16) & 0xff);
  return c;
}

/** A passive function with one 4 KiB BAR. */
export function fn(vendor = 0x1234, device = 0x1111): PciFunction {
  return pciFunctionFromConfig({ config: config(vendor, device), bars: '0:mem32:0x1000' });
}

/** Expects `f` to throw a SysError with `errno`. */
export function expectErrno(f: () => unknown, errno: string): void {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(err, `expected ${errno}`).toBeInstanceOf(SysError);
  expect((err as SysError).errno).toBe(errno);
}

/** Expects a promise to reject with a SysError with `errno`. */
export async function expectErrnoAsync(p: Promise<unknown>, errno: string): Promise<void> {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  expect(err, `expected ${errno}`).toBeInstanceOf(SysError);
  expect((err as SysError).errno).toBe(errno);
}

/** A backend-private ioctl of the test backend (an n no VFIO number uses). */
export const TEST_BACKEND_IOCTL = io(VFIO_TYPE, 100 + 60);

/** State of one container of the test backend. */
export interface TestBackendState {
  readonly type: number;
  readonly groups: VfioGroupRef[];
  readonly devices: VfioDeviceRef[];
  readonly pins: Map<bigint, number>;
  readonly memory: Map<bigint, number>;
  released: boolean;
}

/** Events of the test backend, for assertions. */
export interface TestBackendLog {
  readonly events: string[];
  readonly instances: TestBackendState[];
  /** Make attachGroup fail with this errno once. */
  failAttach?: 'ENOSPC' | 'EPERM' | undefined;
}

/** A minimal type1-like backend: types 1 and 3, attach/detach bookkeeping, fake pinning and dma_rw. */
export function testBackend(log: TestBackendLog = { events: [], instances: [] }, name = 'test-iommu'): {
  plugin: HostPlugin;
  log: TestBackendLog;
  ops: VfioIommuDriverOps<TestBackendState>;
} {
  const ops: VfioIommuDriverOps<TestBackendState> = {
    name,
    module: 'test_iommu',
    open(type) {
      if (type !== VFIO_TYPE1_IOMMU && type !== VFIO_TYPE1v2_IOMMU) throw new SysError('EINVAL', 'type');
      const s: TestBackendState = { type, groups: [], devices: [], pins: new Map(), memory: new Map(), released: false };
      log.instances.push(s);
      log.events.push(`open ${type}`);
      return s;
    },
    release(s) {
      s.released = true;
      log.events.push('release');
    },
    ioctl(s, cmd, arg: IoctlArg) {
      if (cmd === VFIO_CHECK_EXTENSION) {
        const v = Number(arg);
        return v === VFIO_TYPE1_IOMMU || v === VFIO_TYPE1v2_IOMMU ? 1 : 0;
      }
      if (cmd === TEST_BACKEND_IOCTL && s) return 42 + s.groups.length;
      throw new SysError('ENOTTY', 'unknown');
    },
    attachGroup(s, g) {
      if (log.failAttach) {
        const e = log.failAttach;
        log.failAttach = undefined;
        throw new SysError(e, 'injected');
      }
      s.groups.push(g);
      log.events.push(`attach ${g.id}`);
    },
    detachGroup(s, g) {
      s.groups.splice(s.groups.indexOf(g), 1);
      log.events.push(`detach ${g.id}`);
    },
    registerDevice(s, d) {
      s.devices.push(d);
      log.events.push(`register ${d.name}`);
    },
    unregisterDevice(s, d) {
      s.devices.splice(s.devices.indexOf(d), 1);
      log.events.push(`unregister ${d.name}`);
    },
    pinPages(s, _g, iova, npage) {
      const out: bigint[] = [];
      for (let i = 0; i < npage; i++) {
        const a = iova + BigInt(i) * 4096n;
        s.pins.set(a, (s.pins.get(a) ?? 0) + 1);
        out.push(0x1000n + (a >> 12n));
      }
      return out;
    },
    unpinPages(s, iova, npage) {
      for (let i = 0; i < npage; i++) {
        const a = iova + BigInt(i) * 4096n;
        const n = (s.pins.get(a) ?? 0) - 1;
        if (n <= 0) s.pins.delete(a);
        else s.pins.set(a, n);
      }
    },
    dmaRw(s, iova, buf, write) {
      for (let i = 0; i < buf.length; i++) {
        const a = iova + BigInt(i);
        if (write) s.memory.set(a, buf[i]!);
        else buf[i] = s.memory.get(a) ?? 0;
      }
    },
    notify(_s, ev) {
      log.events.push(`notify ${ev}`);
    },
    describe(s) {
      return { type: s.type, groups: s.groups.map((g) => g.id), pins: s.pins.size };
    },
  };
  return {
    ops,
    log,
    plugin: {
      name,
      setup(api) {
        api.registerIommuDriver(ops);
      },
    },
  };
}

/** What the test driver records per device. */
export interface TestDeviceData {
  readonly bdf: string;
  readonly regs: Map<bigint, number>;
  opens: number;
  closes: number;
  requests: number[];
  /** Delay (host ms) of an async openDevice; undefined = synchronous. */
  openDelay?: number | undefined;
  /** Faults on zapped mappings fail while set (memory decoding off). */
  memoryOff?: boolean;
  /** Delay (host ms) of the deferred part of an async closeDevice; undefined = synchronous. */
  closeDelay?: number | undefined;
  /** Fail the next openDevice with this errno. */
  failOpen?: 'EIO' | undefined;
  readonly trace: string[];
}

/** A device ioctl the test driver answers (the VFIO_DEVICE_RESET number). */
export const TEST_DEVICE_IOCTL = io(VFIO_TYPE, 100 + 11);

/** Options of the test VFIO driver. */
export interface TestDriverOptions {
  /** Device-set id per BDF (devices sharing one are opened under one lock). */
  readonly setId?: (bdf: string) => unknown;
  /** Register emulated devices instead of IOMMU-backed ones. */
  readonly emulated?: boolean;
  readonly name?: string;
  /** Leave out ops (to test the core's answers for absent ones). */
  readonly without?: readonly (keyof VfioDeviceOps)[];
}

/** A minimal VFIO bus driver (a tiny vfio-pci): binds to PCI functions, registers a VFIO device for each. */
export function testDriver(options: TestDriverOptions = {}): {
  plugin: HostPlugin;
  api: () => HostPluginApi;
  devices: Map<string, VfioDevice<TestDeviceData>>;
  trace: string[];
} {
  let api: HostPluginApi | undefined;
  const devices = new Map<string, VfioDevice<TestDeviceData>>();
  const trace: string[] = [];
  const full: VfioDeviceOps<TestDeviceData> = {
    name: options.name ?? 'vfio-test',
    openDevice(d) {
      d.data.opens++;
      trace.push(`open ${d.name}`);
      if (d.data.failOpen) {
        const e = d.data.failOpen;
        d.data.failOpen = undefined;
        throw new SysError(e, 'injected');
      }
      const delay = d.data.openDelay;
      if (delay !== undefined) {
        return api!.platform.clock.sleep(delay).then(() => {
          trace.push(`opened ${d.name}`);
        });
      }
      trace.push(`opened ${d.name}`);
      return undefined;
    },
    closeDevice(d) {
      d.data.closes++;
      trace.push(`close ${d.name}`);
      const delay = d.data.closeDelay;
      if (delay === undefined) return undefined;
      return api!.platform.clock.sleep(delay).then(() => {
        trace.push(`closed ${d.name}`);
      });
    },
    read(d, length, offset) {
      const out = new Uint8Array(length);
      for (let i = 0; i < length; i++) out[i] = d.data.regs.get(offset + BigInt(i)) ?? 0;
      return out;
    },
    write(d, data, offset) {
      data.forEach((b, i) => d.data.regs.set(offset + BigInt(i), b));
      return data.length;
    },
    ioctl(d, cmd, arg) {
      if (cmd === TEST_DEVICE_IOCTL) {
        trace.push(`reset ${d.name}`);
        return 0;
      }
      if (arg instanceof Uint8Array && arg.length > 0) arg[0] = 0xaa;
      throw new SysError('ENOTTY', 'unknown device ioctl');
    },
    mmapFault(d, req) {
      trace.push(`fault ${d.name}`);
      if (d.data.memoryOff) throw new SysError('EFAULT', 'memory decoding off');
      return full.mmap!(d, req, undefined as never);
    },
    mmap(d, req) {
      if (!req.shared) throw new SysError('EINVAL', 'private mapping');
      return {
        read: (off, len) => {
          const out = new Uint8Array(len);
          for (let i = 0; i < len; i++) out[i] = d.data.regs.get(req.offset + off + BigInt(i)) ?? 0;
          return out;
        },
        write: (off, data) => {
          data.forEach((b, i) => d.data.regs.set(req.offset + off + BigInt(i), b));
        },
      };
    },
    request(d, count) {
      d.data.requests.push(count);
      trace.push(`request ${d.name} ${count}`);
    },
    dmaUnmap(d, iova, length) {
      trace.push(`dma_unmap ${d.name} ${iova} ${length}`);
    },
  };
  const without = new Set<string>(options.without ?? []);
  const ops = Object.fromEntries(Object.entries(full).filter(([k]) => !without.has(k))) as VfioDeviceOps<TestDeviceData>;
  const probe = (pdev: PciDeviceHandle): void => {
    const a = api!;
    const data: TestDeviceData = { bdf: pdev.bdf, regs: new Map(), opens: 0, closes: 0, requests: [], trace };
    const dev = a.allocDevice({ name: pdev.bdf, ops, data });
    if (options.setId) dev.assignDeviceSet(options.setId(pdev.bdf));
    try {
      if (options.emulated) a.registerEmulatedDevice(dev);
      else a.registerGroupDevice(dev);
    } catch (e) {
      dev.put();
      throw e;
    }
    devices.set(pdev.bdf, dev);
  };
  return {
    api: () => api!,
    devices,
    trace,
    plugin: {
      name: options.name ?? 'vfio-test',
      setup(a) {
        api = a;
        a.registerPciDriver({
          name: options.name ?? 'vfio-test',
          ids: [],
          driverManagedDma: true,
          probe,
          async remove(pdev) {
            const dev = devices.get(pdev.bdf);
            if (!dev) return;
            await dev.unregister();
            devices.delete(pdev.bdf);
            dev.put();
          },
        });
      },
    },
  };
}

/** A NUL-terminated string argument. */
export function cstr(s: string): Uint8Array {
  const b = new TextEncoder().encode(s);
  const out = new Uint8Array(b.length + 1);
  out.set(b);
  return out;
}

/** A pointer-to-int argument (SET_CONTAINER). */
export function s32(v: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setInt32(0, v, true);
  return out;
}

/** Binds `bdf` to a VFIO driver the way an administrator does: driver_override, then bind. */
export function bindTo(platform: { pci: PciBus }, bdf: string, driver = 'vfio-test'): void {
  const dev = platform.pci.device(bdf);
  if (!dev) throw new Error(`no device ${bdf}`);
  dev.driverOverride = driver;
  platform.pci.bind(bdf, driver);
}
