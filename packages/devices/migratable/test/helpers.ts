/**
 * A simulated machine with the sample device, as a VMM sees it: a host (VT-d IOMMU, type1, vfio-migratable,
 * migration), a process that opened container, group and device, guest RAM mapped for DMA at IOVA 0, and an
 * MSI eventfd.
 */
import { createHost, openVfioDevice } from '@vfio-ts/core';
import type { Host, Process } from '@vfio-ts/core';
import { type1 } from '@vfio-ts/iommu-type1';
import { migration } from '@vfio-ts/migration';
import { simPlatform } from '@vfio-ts/sim';
import type { ClockMode, SimPlatform } from '@vfio-ts/sim';
import {
  SysError,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_PCI_MSI_IRQ_INDEX,
  VFIO_TYPE1v2_IOMMU,
  VFIO_DEVICE_SET_IRQS,
  vfioIommuType1DmaMap,
  vfioIrqSet,
} from '@vfio-ts/uapi';
import { MIG_REG, REGION_SHIFT, migratableFunction, migratableVfioPci } from '../src/index.js';
import type { MigratableFunction, MigratableOptions } from '../src/index.js';

export const BDF = '0000:00:05.0';
/** Guest RAM: 1 MiB at IOVA 0. */
export const RAM_SIZE = 1n << 20n;

export interface Machine {
  readonly platform: SimPlatform;
  readonly host: Host;
  readonly fn: MigratableFunction;
  readonly p: Process;
  readonly device: number;
  readonly ram: bigint;
  readonly msi: number;
  readonly driver: ReturnType<typeof migratableVfioPci>;
  reg(offset: number): number;
  setReg(offset: number, value: number): void;
  advance(ms: number): void;
  /** MSI count consumed so far (reads and resets the eventfd). */
  takeMsi(): bigint;
}

export function machine(options: MigratableOptions & { clock?: ClockMode } = {}): Machine {
  const fn = migratableFunction(options);
  const platform = simPlatform({ iommu: 'vtd', clock: options.clock ?? 'manual', devices: [{ bdf: BDF, fn }] });
  const driver = migratableVfioPci();
  const host = createHost({ platform, plugins: [type1(), driver, migration()] });
  platform.pci.device(BDF)!.driverOverride = 'vfio-migratable';
  platform.pci.bind(BDF, 'vfio-migratable');
  const p = host.spawn({ uid: 0, capabilities: ['CAP_IPC_LOCK'], memlockLimit: 1n << 30n });
  const group = platform.pci.device(BDF)!.iommuGroup!.id;
  const { container, device } = openVfioDevice(p, { group, device: BDF, iommuType: VFIO_TYPE1v2_IOMMU });
  const ram = p.mmap({ length: RAM_SIZE });
  p.ioctl(
    container,
    VFIO_IOMMU_MAP_DMA,
    vfioIommuType1DmaMap.encode({
      argsz: 32,
      flags: VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
      vaddr: ram,
      iova: 0n,
      size: RAM_SIZE,
    }),
  );
  // Bus mastering on, as a guest driver does.
  const cmd = p.pread(device, 2, (7n << REGION_SHIFT) + 4n);
  cmd[0]! |= 0x06;
  p.pwrite(device, cmd, (7n << REGION_SHIFT) + 4n);
  const msi = p.eventfd(0, 0x800 /* EFD_NONBLOCK */);
  const set = new Uint8Array(vfioIrqSet.size + 4);
  vfioIrqSet.write(set, {
    argsz: set.length,
    flags: VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
    index: VFIO_PCI_MSI_IRQ_INDEX,
    start: 0,
    count: 1,
  });
  new DataView(set.buffer).setInt32(vfioIrqSet.size, msi, true);
  p.ioctl(device, VFIO_DEVICE_SET_IRQS, set);
  const reg = (offset: number): number => new DataView(p.pread(device, 4, BigInt(offset)).buffer).getUint32(0, true);
  const setReg = (offset: number, value: number): void => {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, value >>> 0, true);
    p.pwrite(device, b, BigInt(offset));
  };
  return {
    platform,
    host,
    fn,
    p,
    device,
    ram,
    msi,
    driver,
    reg,
    setReg,
    advance: (ms) => {
      platform.clock.advance(ms);
    },
    takeMsi: () => {
      try {
        return new DataView(p.read(msi, 8).buffer).getBigUint64(0, true);
      } catch (e) {
        if (e instanceof SysError && e.errno === 'EAGAIN') return 0n;
        throw e;
      }
    },
  };
}

/** Every register a guest can read, by name. */
export function registers(m: Machine): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, off] of Object.entries(MIG_REG)) out[name] = m.reg(off);
  return out;
}

/** BAR2 memory as the guest reads it. */
export function bar2(m: Machine): Uint8Array {
  return m.p.pread(m.device, m.fn.memorySize, 2n << REGION_SHIFT);
}

/** Reads the whole data fd until EOF (STOP_COPY) or ENOMSG (PRE_COPY). */
export function drain(p: Process, fd: number, chunk = 1 << 16): Uint8Array[] {
  const parts: Uint8Array[] = [];
  for (;;) {
    let c: Uint8Array;
    try {
      c = p.read(fd, chunk);
    } catch (e) {
      if (e instanceof SysError && e.errno === 'ENOMSG') break;
      throw e;
    }
    if (c.length === 0) break;
    parts.push(c);
  }
  return parts;
}

/** Byte equality without vitest's element-wise deep diff (slow on large arrays); names the first difference. */
export function firstDifference(a: Uint8Array, b: Uint8Array): number | 'same' {
  if (Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length))) return 'same';
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return n;
}
