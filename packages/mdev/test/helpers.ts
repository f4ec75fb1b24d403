/**
 * Test helpers: sysfs text through the system-call surface, errno expectations and a tiny mdev driver ("mtest")
 * that records what the bus asked of it and can pin guest pages.
 */
import type { Host, Process, VfioDevice, VfioDeviceOps } from '@vfio-ts/core';
import { O_RDONLY, O_WRONLY } from '@vfio-ts/core';
import { SysError, VFIO_DEVICE_API_PCI_STRING } from '@vfio-ts/uapi';
import { expect } from 'vitest';
import type { MdevDevice, MdevDriver, MdevTypeSpec } from '../src/index.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Reads a sysfs attribute as text. */
export function cat(p: Process, path: string): string {
  const fd = p.open(path, O_RDONLY);
  try {
    return dec.decode(p.read(fd, 4096));
  } finally {
    p.close(fd);
  }
}

/** Writes text to a sysfs attribute (the synchronous part of the store). */
export function echo(p: Process, path: string, text: string): number {
  const fd = p.open(path, O_WRONLY);
  try {
    return p.write(fd, enc.encode(text));
  } finally {
    p.close(fd);
  }
}

/** Writes text and waits as long as Linux would block the writer (remove of an open device). */
export async function echoAsync(p: Process, path: string, text: string): Promise<number> {
  const fd = p.open(path, O_WRONLY);
  try {
    return await p.writeAsync(fd, enc.encode(text));
  } finally {
    p.close(fd);
  }
}

/** The errno of what `f` throws (fails the test when it does not throw a SysError). */
export function errnoOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(SysError);
    return (e as SysError).errno;
  }
  throw new Error('expected a SysError');
}

/** Lets pending promise callbacks run (no timers involved). */
export async function settle(rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i++) await Promise.resolve();
}

/** What the mtest driver saw. */
export interface MtestLog {
  probes: string[];
  removes: string[];
  requests: { uuid: string; count: number }[];
  unmaps: { iova: bigint; length: bigint }[];
  /** VFIO devices by UUID. */
  devices: Map<string, VfioDevice<MtestState>>;
  /** Make the next probe fail with this errno. */
  failProbe?: 'ENOMEM' | 'ENOSPC' | undefined;
}

/** Per-device state: pinned pages by IOVA. */
export interface MtestState {
  readonly pins: Map<bigint, number>;
}

/** The type specs of mtest. */
export const MTEST_TYPES: readonly MdevTypeSpec<{ weight: number }>[] = [
  { sysfsName: 'a', prettyName: 'Type A', data: { weight: 1 } },
  { sysfsName: 'b', data: { weight: 2 } },
];

/** A small mdev driver in the shape vendors write: emulated-IOMMU device, pins pages, unpins on dma_unmap. */
export function mtestDriver(log: MtestLog, maxInstances = 3): MdevDriver<{ weight: number }> {
  const ops: VfioDeviceOps<MtestState> = {
    name: 'vfio-mtest',
    request(device, count) {
      log.requests.push({ uuid: device.name, count });
    },
    dmaUnmap(device, iova, length) {
      log.unmaps.push({ iova, length });
      // The obligation of §2.10: every pin inside the range goes before returning.
      for (const [pinned, n] of [...device.data.pins]) {
        if (pinned >= iova && pinned < iova + length) {
          for (let i = 0; i < n; i++) device.unpinPages(pinned, 1);
          device.data.pins.delete(pinned);
        }
      }
    },
    closeDevice(device) {
      for (const [iova, n] of [...device.data.pins]) for (let i = 0; i < n; i++) device.unpinPages(iova, 1);
      device.data.pins.clear();
    },
  };
  return {
    name: 'mtest',
    deviceApi: VFIO_DEVICE_API_PCI_STRING,
    maxInstances,
    showDescription: (type) => `test type of weight ${type.data.weight}\n`,
    typeAttrs: { weight: (type) => `${type.data.weight}\n` },
    deviceAttrs: { vendor: { hello: (mdev) => `hello ${mdev.uuid}\n` } },
    probe(mdev: MdevDevice<{ weight: number }>) {
      if (log.failProbe) {
        const errno = log.failProbe;
        log.failProbe = undefined;
        throw new SysError(errno, 'probe refused');
      }
      const dev = mdev.registerEmulatedDevice(ops, { pins: new Map<bigint, number>() });
      log.devices.set(mdev.uuid, dev);
      log.probes.push(mdev.uuid);
    },
    remove(mdev) {
      log.removes.push(mdev.uuid);
      return mdev.unregisterVfioDevice();
    },
  };
}

/** A fresh log. */
export function mtestLog(): MtestLog {
  return { probes: [], removes: [], requests: [], unmaps: [], devices: new Map() };
}

/** The group number of an mdev, from its iommu_group link. */
export function groupOf(p: Process, uuid: string): number {
  const target = p.readlink(`/sys/bus/mdev/devices/${uuid}/iommu_group`);
  return Number(target.split('/').at(-1));
}

/** Kernel log lines containing `text`. */
export function logLines(host: Host, text: string): string[] {
  return host.log().map((l) => l.text).filter((t) => t.includes(text));
}
