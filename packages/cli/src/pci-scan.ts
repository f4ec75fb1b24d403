/**
 * Reads the PCI devices of a host the way lspci does on Linux: through sysfs (/sys/bus/pci/devices/<bdf>/{config,
 * resource,driver,iommu_group}) with a process's system calls, so what it shows is what a user would see.
 */
import type { Process } from '@vfio-ts/core';
import { listCapabilities, listExtCapabilities, type ConfigReader } from '@vfio-ts/sim';
import { isSysError } from '@vfio-ts/uapi';
import { capabilityName, className, deviceName, extCapabilityName } from './pci-names.js';

/** One capability found in config space. */
export interface ScannedCapability {
  readonly id: number;
  readonly name: string;
  readonly offset: number;
}

/** One BAR or ROM resource from the sysfs `resource` file. */
export interface ScannedResource {
  /** `bar0`..`bar5` or `rom`. */
  readonly name: string;
  readonly start: bigint;
  readonly size: bigint;
  readonly kind: 'mem32' | 'mem64' | 'io' | 'rom';
  readonly prefetchable: boolean;
}

/** A PCI function as lspci sees it. */
export interface ScannedDevice {
  readonly bdf: string;
  readonly vendor: number;
  readonly device: number;
  readonly classCode: number;
  readonly revision: number;
  readonly subsystemVendor: number;
  readonly subsystemDevice: number;
  readonly headerType: number;
  /** The bus behind a bridge (type 1 header). */
  readonly secondaryBus: number | undefined;
  readonly driver: string | null;
  readonly iommuGroup: number | null;
  readonly interruptPin: number;
  readonly configSize: number;
  readonly capabilities: readonly ScannedCapability[];
  readonly extCapabilities: readonly ScannedCapability[];
  readonly resources: readonly ScannedResource[];
  readonly className: string;
  readonly name: string;
}

/** Reads a whole file (sysfs attributes are small). */
function readFile(p: Process, path: string, max = 65536): Uint8Array {
  const fd = p.open(path, 0);
  try {
    const chunks: Uint8Array[] = [];
    let total = 0;
    for (;;) {
      const b = p.read(fd, 4096);
      if (b.length === 0 || total >= max) break;
      chunks.push(b);
      total += b.length;
    }
    const out = new Uint8Array(total);
    let at = 0;
    for (const c of chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  } finally {
    p.close(fd);
  }
}

function readLinkName(p: Process, path: string): string | null {
  try {
    const target = p.readlink(path);
    return target.slice(target.lastIndexOf('/') + 1);
  } catch (e) {
    if (isSysError(e, 'ENOENT')) return null;
    throw e;
  }
}

/** A config reader over captured bytes; past the end reads all-ones, as a master abort. */
function bytesReader(config: Uint8Array): ConfigReader {
  const view = new DataView(config.buffer, config.byteOffset, config.byteLength);
  return (offset, size) => {
    if (offset < 0 || offset + size > config.length) return size === 4 ? 0xffffffff : size === 2 ? 0xffff : 0xff;
    return size === 4 ? view.getUint32(offset, true) : size === 2 ? view.getUint16(offset, true) : view.getUint8(offset);
  };
}

const IORESOURCE_IO = 0x100n;
const IORESOURCE_PREFETCH = 0x2000n;
const IORESOURCE_MEM_64 = 0x100000n;

function parseResources(text: string): ScannedResource[] {
  const out: ScannedResource[] = [];
  text.split('\n').filter((l) => l.trim() !== '').slice(0, 7).forEach((line, i) => {
    const [s, e, f] = line.trim().split(/\s+/).map((x) => BigInt(x));
    if (s === undefined || e === undefined || f === undefined || f === 0n) return;
    const size = e - s + 1n;
    const kind = i === 6 ? 'rom' : (f & IORESOURCE_IO) !== 0n ? 'io' : (f & IORESOURCE_MEM_64) !== 0n ? 'mem64' : 'mem32';
    out.push({ name: i === 6 ? 'rom' : `bar${i}`, start: s, size, kind, prefetchable: (f & IORESOURCE_PREFETCH) !== 0n });
  });
  return out;
}

/** One device from sysfs. */
function scanDevice(p: Process, bdf: string): ScannedDevice {
  const base = `/sys/bus/pci/devices/${bdf}`;
  const config = readFile(p, `${base}/config`);
  const r = bytesReader(config);
  const headerType = r(0x0e, 1) & 0x7f;
  const vendor = r(0x00, 2);
  const device = r(0x02, 2);
  const classCode = r(0x08, 4) >>> 8;
  let resources: ScannedResource[] = [];
  try {
    resources = parseResources(new TextDecoder().decode(readFile(p, `${base}/resource`)));
  } catch (e) {
    if (!isSysError(e)) throw e;
  }
  return {
    bdf,
    vendor,
    device,
    classCode,
    revision: r(0x08, 1),
    subsystemVendor: headerType === 0 ? r(0x2c, 2) : 0,
    subsystemDevice: headerType === 0 ? r(0x2e, 2) : 0,
    headerType,
    secondaryBus: headerType === 1 ? r(0x19, 1) : undefined,
    driver: readLinkName(p, `${base}/driver`),
    iommuGroup: ((g) => (g === null ? null : Number(g)))(readLinkName(p, `${base}/iommu_group`)),
    interruptPin: r(0x3d, 1),
    configSize: config.length,
    capabilities: listCapabilities(r).map(([id, offset]) => ({ id, offset, name: capabilityName(id) })),
    extCapabilities: listExtCapabilities(r, config.length).map(([id, offset]) => ({ id, offset, name: extCapabilityName(id) })),
    resources,
    className: className(classCode),
    name: deviceName(vendor, device),
  };
}

/** Every PCI device of the host, in address order. */
export function scanPci(p: Process): ScannedDevice[] {
  return p.readdir('/sys/bus/pci/devices').sort().map((bdf) => scanDevice(p, bdf));
}

/** Every IOMMU group with its member devices (from /sys/kernel/iommu_groups). */
export function scanGroups(p: Process): { id: number; devices: string[] }[] {
  let ids: string[];
  try {
    ids = p.readdir('/sys/kernel/iommu_groups');
  } catch (e) {
    if (isSysError(e, 'ENOENT')) return [];
    throw e;
  }
  return ids
    .map((id) => ({ id: Number(id), devices: p.readdir(`/sys/kernel/iommu_groups/${id}/devices`).sort() }))
    .sort((a, b) => a.id - b.id);
}
