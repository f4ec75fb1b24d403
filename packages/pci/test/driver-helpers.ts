/**
 * Scenario helpers for the vfio-pci driver tests: a simulated host with type1 and vfio-pci, and the QEMU flow
 * through the system-call surface.
 */
import { createHost, openVfioDevice } from '@vfio-ts/core';
import type { Host, OpenedVfioDevice, Process } from '@vfio-ts/core';
import { eduFunction } from '@vfio-ts/device-edu';
import type { EduFunction } from '@vfio-ts/device-edu';
import { type1 } from '@vfio-ts/iommu-type1';
import { pciFunctionFromConfig, simPlatform } from '@vfio-ts/sim';
import type { ConfigSpaceFunction, SimPciDeviceEntry, SimPlatform } from '@vfio-ts/sim';
import { VFIO_TYPE1v2_IOMMU } from '@vfio-ts/uapi';
import type { ParamValue } from '@vfio-ts/core';
import { vfioPci } from '../src/index.js';
import type { VfioPciOptions } from '../src/index.js';
import { fixture } from './helpers.js';

export const EDU_BDF = '0000:00:03.0';
export const E1000E_BDF = '0000:00:04.0';
export const E1000E_BAR_SPEC = '0:mem32:0x20000,1:mem32:0x20000,2:io:0x20,3:mem32:0x4000,rom:0x40000';

/** The captured e1000e as a passive function (optionally with ROM contents). */
export function e1000eFunction(rom?: Uint8Array): ConfigSpaceFunction {
  return pciFunctionFromConfig({ config: fixture('e1000e'), bars: E1000E_BAR_SPEC, ...(rom ? { rom } : {}) });
}

/** The captured edu config as a passive function. */
export function eduPassive(): ConfigSpaceFunction {
  return pciFunctionFromConfig({ config: fixture('edu'), bars: '0:mem32:0x100000' });
}

export interface TestHost {
  readonly platform: SimPlatform;
  readonly host: Host;
  readonly p: Process;
}

/** A host with `devices`, type1 and vfio-pci; one root process. */
export function makeHost(
  devices: readonly SimPciDeviceEntry[],
  options: { vfioPci?: VfioPciOptions; params?: Record<string, ParamValue>; hostDrivers?: { name: string; ids: string[] }[] } = {},
): TestHost {
  const platform = simPlatform({ devices, ...(options.hostDrivers ? { hostDrivers: options.hostDrivers } : {}) });
  const host = createHost({
    platform,
    plugins: [type1(), vfioPci(options.vfioPci ?? {})],
    ...(options.params ? { params: options.params } : {}),
  });
  const p = host.spawn({ uid: 0, capabilities: [], memlockLimit: 64n << 20n });
  return { platform, host, p };
}

/** The edu model bound to vfio-pci at 00:03.0 (root bus). */
export function eduHost(opts: { params?: Record<string, ParamValue> } = {}): TestHost & { edu: EduFunction } {
  const edu = eduFunction();
  return { ...makeHost([{ bdf: EDU_BDF, fn: edu, driver: 'vfio-pci' }], opts), edu };
}

/** The group number of a PCI function. */
export function groupOf(t: TestHost, bdf: string): number {
  return t.platform.pci.device(bdf)!.iommuGroup!.id;
}

/** The QEMU flow for `bdf` (container, group, SET_IOMMU type1v2, GET_DEVICE_FD). */
export function openDev(t: TestHost, bdf: string, p: Process = t.p): OpenedVfioDevice {
  return openVfioDevice(p, { group: groupOf(t, bdf), device: bdf, iommuType: VFIO_TYPE1v2_IOMMU });
}

/** Writes sysfs text through the process (as `echo text > path`). */
export function echo(p: Process, path: string, text: string): void {
  const fd = p.open(path, 1);
  try {
    p.write(fd, new TextEncoder().encode(`${text}\n`));
  } finally {
    p.close(fd);
  }
}

/** `echo text > path` for an attribute whose store may wait (unbind). */
export async function echoAsync(p: Process, path: string, text: string): Promise<void> {
  const fd = p.open(path, 1);
  try {
    await p.writeAsync(fd, new TextEncoder().encode(`${text}\n`));
  } finally {
    p.close(fd);
  }
}

/** Reads a sysfs text file. */
export function cat(p: Process, path: string): string {
  const fd = p.open(path, 0);
  try {
    return new TextDecoder().decode(p.read(fd, 4096));
  } finally {
    p.close(fd);
  }
}

/** Little-endian u32 of `bytes` at `offset`. */
export function u32(bytes: Uint8Array, offset = 0): number {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(offset, true);
}

/** Little-endian u16. */
export function u16(bytes: Uint8Array, offset = 0): number {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint16(offset, true);
}

/** `value` as 4 little-endian bytes. */
export function le32(value: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, value >>> 0, true);
  return b;
}

/** True once the device `bdf` has no open count and its set lock is free (an async close finished). */
export function setIdle(t: TestHost, bdf: string): boolean {
  const d = [...t.host.vfio.devices.values()].find((x) => x.name === bdf);
  if (!d?.set) return true;
  if (!d.set.lock.tryAcquire()) return false;
  d.set.lock.release();
  return d.openCount === 0;
}

/** Lets queued work run (event-loop turns, no timing) until `cond` holds; throws after `turns` turns. */
export async function until(cond: () => boolean, turns = 1000): Promise<void> {
  for (let i = 0; i < turns; i++) {
    if (cond()) return;
    await new Promise<void>((resolve) => {
      setImmediate(resolve);
    });
  }
  throw new Error('condition never held');
}
