/**
 * Shared pieces of the scenario tests: a DMA-capable PCI function model, a minimal VFIO bus driver standing in for
 * vfio-pci (so these tests need only core, type1 and sim), and a host assembled like DESIGN.md's example.
 */
import { createHost } from '@vfio-ts/core';
import type { Host, HostPlugin, Process, VfioDevice } from '@vfio-ts/core';
import type { PciBarInfo, PciFunction, PciFunctionContext } from '@vfio-ts/platform';
import { pciFunctionFromConfig, simPlatform } from '@vfio-ts/sim';
import type { SimPlatformOptions } from '@vfio-ts/sim';
import { type1 } from '@vfio-ts/iommu-type1';
import { SysError } from '@vfio-ts/uapi';

/** Register map of the DMA test device's BAR0. */
export const REG = {
  /** u64: IOVA the next DMA goes to or comes from. */
  ADDR: 0x00,
  /** u64: writing a value DMA-writes it (8 bytes, little-endian) to ADDR. */
  WRITE: 0x08,
  /** u64: writing anything DMA-reads 8 bytes from ADDR into DATA. */
  READ: 0x10,
  /** u64: last value read by DMA. */
  DATA: 0x18,
  /** u32: 0 ok, 1 the last DMA faulted. */
  STATUS: 0x20,
} as const;

/**
 * A PCI function that does DMA on command: the kind of device a scenario needs to prove DMA goes through the
 * IOMMU (and faults when it should).
 */
export function dmaTestFunction(vendor = 0x1234, device = 0x5678): PciFunction {
  const config = new Uint8Array(256);
  const dv = new DataView(config.buffer);
  dv.setUint16(0, vendor, true);
  dv.setUint16(2, device, true);
  dv.setUint8(0x0b, 0xff); // class: unassigned
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
    configWrite: (offset, size, value) => { base.configWrite(offset, size, value); },
    get bars(): readonly PciBarInfo[] { return base.bars; },
    attach(c) { ctx = c; },
    barRead(_bar, offset, length) {
      return new Uint8Array(regs.buffer.slice(Number(offset), Number(offset) + length));
    },
    barWrite(_bar, offset, data) {
      new Uint8Array(regs.buffer).set(data, Number(offset));
      const addr = regs.getBigUint64(REG.ADDR, true);
      if (Number(offset) === REG.WRITE) {
        const bytes = new Uint8Array(regs.buffer.slice(REG.WRITE, REG.WRITE + 8));
        dma(() => { ctx!.dma.write(addr, bytes); });
      } else if (Number(offset) === REG.READ) {
        dma(() => { new Uint8Array(regs.buffer).set(ctx!.dma.read(addr, 8), REG.DATA); });
      }
    },
  };
}

/** What the in-test VFIO driver records, so tests can see the ops were reached. */
export interface DriverLog {
  opens: string[];
  closes: string[];
  ioctls: number[];
  devices: Map<string, VfioDevice>;
}

/**
 * A minimal VFIO bus driver: every function bound to it becomes an IOMMU-backed VFIO device whose read/write go
 * to BAR0 of the model and whose ioctl answers 0x1234 + cmd.
 */
export function testVfioDriver(log: DriverLog, name = 'vfio-test'): HostPlugin {
  return {
    name,
    setup(api) {
      api.registerPciDriver({
        name,
        driverManagedDma: true,
        probe(pdev) {
          const dev = api.allocDevice({
            name: pdev.bdf,
            data: undefined,
            ops: {
              name,
              openDevice: (d) => { log.opens.push(d.name); },
              closeDevice: (d) => { log.closes.push(d.name); },
              read: (_d, length, offset) => pdev.fn.barRead!(0, offset, length),
              write: (_d, data, offset) => { pdev.fn.barWrite!(0, offset, data); return data.length; },
              ioctl: (_d, cmd) => { log.ioctls.push(cmd); return 0x1234; },
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
          log.devices.delete(pdev.bdf);
        },
      });
    },
  };
}

export function newDriverLog(): DriverLog {
  return { opens: [], closes: [], ioctls: [], devices: new Map() };
}

/** A host with a VT-d-like IOMMU, type1 and the test driver; devices given are bound to the test driver. */
export function testHost(
  devices: NonNullable<SimPlatformOptions['devices']>,
  extra: Partial<Pick<SimPlatformOptions, 'hostDrivers'>> & { params?: Record<string, string | number | boolean> } = {},
): { host: Host; log: DriverLog } {
  const log = newDriverLog();
  const platform = simPlatform({ iommu: 'vtd', devices, ...(extra.hostDrivers ? { hostDrivers: extra.hostDrivers } : {}) });
  const host = createHost({ platform, plugins: [type1(), testVfioDriver(log)], ...(extra.params ? { params: extra.params } : {}) });
  return { host, log };
}

/** The group number of a device, read the way a user does: the iommu_group symlink in sysfs. */
export function groupOf(p: Process, bdf: string): number {
  const link = p.readlink(`/sys/bus/pci/devices/${bdf}/iommu_group`);
  return Number(link.split('/').pop());
}
