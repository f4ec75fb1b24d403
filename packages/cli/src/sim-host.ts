/**
 * The embedded simulated host `vfio demo`, `vfio lspci` and `vfio status` run on: a VT-d-like IOMMU, an edu device
 * behind a PCIe root port bound to vfio-pci, and a network card on the root bus owned by a host driver. Nothing here
 * touches the machine the CLI runs on; every command says so in its help.
 */
import { readFileSync } from 'node:fs';
import { createHost } from '@vfio-ts/core';
import type { Host, Process } from '@vfio-ts/core';
import { eduFunction } from '@vfio-ts/device-edu';
import { iommuType1, vfioPciPlugin } from './plugins.js';
import { parseBarSpec, pciFunctionFromConfig, simPlatform } from '@vfio-ts/sim';
import type { SimPciDeviceEntry, SimPlatform } from '@vfio-ts/sim';
import { isSysError } from '@vfio-ts/uapi';
import { CliError, EXIT_USAGE } from './errors.js';

/** Where the demo host puts things. */
export const DEMO_TOPOLOGY = {
  /** The edu device, alone behind a root port so a bus reset can serve as its function reset. */
  edu: '0000:01:00.0',
  rootPort: '0000:00:1c.0',
  /** A host-owned sibling: an Intel 82540EM (e1000) bound to the host's e1000 driver. */
  nic: '0000:00:02.0',
  /** Where `--config-image` puts an extra device. */
  extra: '0000:00:05.0',
} as const;

/** A device captured as a config image (`--config-image FILE --bars SPEC`). */
export interface ConfigImageDevice {
  readonly config: Uint8Array;
  readonly bars: string;
  /** The file it came from, for messages. */
  readonly file?: string;
}

/** The demo host and a root process on it. */
export interface DemoHost {
  readonly host: Host;
  readonly platform: SimPlatform;
  /** uid 0 with CAP_IPC_LOCK and CAP_SYS_ADMIN, 64 MiB of locked memory. */
  readonly root: Process;
  readonly eduBdf: string;
  /** The `--config-image` device, when one was added. */
  readonly extraBdf?: string;
}

/** The config space of an Intel 82540EM as QEMU presents it (8086:100e, class 020000, BAR0 128 KiB, BAR1 I/O 64). */
function nicConfig(): Uint8Array {
  const c = new Uint8Array(256);
  const v = new DataView(c.buffer);
  v.setUint16(0x00, 0x8086, true);
  v.setUint16(0x02, 0x100e, true);
  v.setUint16(0x04, 0x0007, true); // the host driver enabled I/O, memory and bus mastering
  v.setUint32(0x08, 0x02000003, true); // class 020000, revision 3
  v.setUint32(0x10, 0xfebc0000, true); // BAR0 mem32
  v.setUint32(0x14, 0x0000c001, true); // BAR1 io
  v.setUint16(0x2c, 0x1af4, true);
  v.setUint16(0x2e, 0x1100, true);
  c[0x3c] = 11;
  c[0x3d] = 1; // INTA
  return c;
}

/** Reads `--config-image FILE` / `--bars SPEC` into a device, with usage errors for what is missing. */
export function configImageFromOptions(options: Readonly<Record<string, unknown>>, required: boolean): ConfigImageDevice | undefined {
  const file = options['configImage'];
  const bars = options['bars'];
  if (file === undefined && bars === undefined) {
    if (required) throw new CliError('--config-image FILE and --bars SPEC are required', "e.g. 'vfio inspect --config-image edu.config.bin --bars 0:mem32:0x100000'", EXIT_USAGE);
    return undefined;
  }
  if (typeof file !== 'string') throw new CliError('--bars needs --config-image FILE too', 'give the config space file the BARs belong to', EXIT_USAGE);
  if (typeof bars !== 'string') throw new CliError('--config-image needs --bars SPEC too', "list the BARs, e.g. '0:mem32:0x20000,2:io:0x20,rom:0x40000'", EXIT_USAGE);
  let config: Uint8Array;
  try {
    config = new Uint8Array(readFileSync(file));
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    throw new CliError(`cannot read '${file}'${typeof code === 'string' ? ` (${code})` : ''}`, 'give the path of a config space image (the bytes of a sysfs config file)');
  }
  return { config, bars, file };
}

/** Options of {@link buildDemoHost}. */
export interface DemoHostOptions {
  /** An extra device (bound to vfio-pci) at {@link DEMO_TOPOLOGY.extra}. */
  readonly extra?: ConfigImageDevice;
}

/** Builds the demo host. A bad `extra` device becomes a CliError saying what was wrong with it. */
export function buildDemoHost(options: DemoHostOptions = {}): DemoHost {
  const devices: SimPciDeviceEntry[] = [
    { bdf: DEMO_TOPOLOGY.nic, fn: pciFunctionFromConfig({ config: nicConfig(), bars: '0:mem32:0x20000,1:io:0x40' }), driver: 'e1000' },
    { bdf: DEMO_TOPOLOGY.rootPort, bridge: 'pcie-root-port', secondaryBus: 1, acs: true },
    { bdf: DEMO_TOPOLOGY.edu, fn: eduFunction(), driver: 'vfio-pci' },
  ];
  if (options.extra) devices.push({ bdf: DEMO_TOPOLOGY.extra, fn: deviceFromImage(options.extra), driver: 'vfio-pci' });
  const platform = withImage(options.extra, () => simPlatform({ iommu: 'vtd', devices, hostDrivers: [{ name: 'e1000', ids: ['8086:100e'] }] }));
  const host = createHost({ platform, plugins: [iommuType1(), vfioPciPlugin()] });
  const root = host.spawn({ uid: 0, capabilities: ['CAP_IPC_LOCK', 'CAP_SYS_ADMIN', 'CAP_SYS_RAWIO'], memlockLimit: 64n << 20n });
  return options.extra
    ? { host, platform, root, eduBdf: DEMO_TOPOLOGY.edu, extraBdf: DEMO_TOPOLOGY.extra }
    : { host, platform, root, eduBdf: DEMO_TOPOLOGY.edu };
}

const IMAGE_HINT = "check the file (256 or 4096 bytes of config space) and the --bars SPEC ('index:type:size', types mem32, mem64, mem32-pref, mem64-pref, io; 'rom:size')";

/**
 * Runs `fn` (building a host around a config-image device); a refusal (SysError) becomes a usage error naming
 * the image, since the image is what was wrong.
 */
export function withImage<T>(image: ConfigImageDevice | undefined, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (image && isSysError(e)) throw new CliError(`${image.file ?? 'the config image'} cannot be used: ${e.message}`, IMAGE_HINT, EXIT_USAGE);
    throw e;
  }
}

/**
 * A passive function from a config image, or a CliError naming the problem. `romContents` fills the ROM the SPEC
 * names (by default the ROM reads as zeros).
 */
export function deviceFromImage(
  image: ConfigImageDevice,
  romContents?: (size: bigint, vendor: number, device: number) => Uint8Array,
): ReturnType<typeof pciFunctionFromConfig> {
  try {
    const { romSize } = parseBarSpec(image.bars);
    if (romContents && romSize > 0n && image.config.length >= 4) {
      const ids = new DataView(image.config.buffer, image.config.byteOffset, 4);
      const rom = romContents(romSize, ids.getUint16(0, true), ids.getUint16(2, true));
      return pciFunctionFromConfig({ config: image.config, bars: image.bars, rom });
    }
    return pciFunctionFromConfig({ config: image.config, bars: image.bars });
  } catch (e) {
    if (isSysError(e)) {
      throw new CliError(`${image.file ?? 'the config image'} cannot be used: ${e.message}`, IMAGE_HINT, EXIT_USAGE);
    }
    throw e;
  }
}
