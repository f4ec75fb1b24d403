/**
 * `vfio lspci [-t] [-v]`: the PCI devices of the embedded demo host as lspci would list them on Linux, read
 * through the host's sysfs; `-t` draws the bus tree and the IOMMU groups with their drivers, `-v` adds
 * capabilities and BARs.
 */
import type { VfioCommand } from '../command.js';
import { fields, hex, table, text, tree, type Block, type Report, type TreeNode } from '../output.js';
import { scanGroups, scanPci, type ScannedDevice } from '../pci-scan.js';
import { buildDemoHost, configImageFromOptions } from '../sim-host.js';

const h = (n: number, w: number): string => n.toString(16).padStart(w, '0');
/** `01:00.0`: lspci drops domain 0000. */
const shortBdf = (bdf: string): string => (bdf.startsWith('0000:') ? bdf.slice(5) : bdf);

function sizeText(size: bigint): string {
  const units: [bigint, string][] = [[1n << 30n, 'G'], [1n << 20n, 'M'], [1n << 10n, 'K']];
  for (const [u, s] of units) if (size >= u && size % u === 0n) return `${size / u}${s}`;
  return String(size);
}

function deviceLine(d: ScannedDevice): string {
  const rev = d.revision !== 0 ? ` (rev ${h(d.revision, 2)})` : '';
  return `${shortBdf(d.bdf)} ${d.className} [${h(d.classCode >>> 8, 4)}]: ${d.name} [${h(d.vendor, 4)}:${h(d.device, 4)}]${rev}`;
}

function driverText(d: ScannedDevice): string {
  return d.driver ?? '(none)';
}

/** The JSON form of a device. */
function deviceView(d: ScannedDevice, verbose: boolean): Record<string, unknown> {
  const base: Record<string, unknown> = {
    bdf: d.bdf,
    vendor: hex(d.vendor),
    device: hex(d.device),
    class: hex(d.classCode),
    revision: hex(d.revision),
    name: d.name,
    class_name: d.className,
    driver: d.driver,
    iommu_group: d.iommuGroup,
  };
  if (d.secondaryBus !== undefined) base['secondary_bus'] = d.secondaryBus;
  if (!verbose) return base;
  return {
    ...base,
    subsystem: `${h(d.subsystemVendor, 4)}:${h(d.subsystemDevice, 4)}`,
    interrupt_pin: d.interruptPin === 0 ? null : String.fromCharCode(0x40 + d.interruptPin),
    config_size: d.configSize,
    capabilities: d.capabilities.map((c) => ({ id: hex(c.id), name: c.name, offset: hex(c.offset) })),
    ext_capabilities: d.extCapabilities.map((c) => ({ id: hex(c.id), name: c.name, offset: hex(c.offset) })),
    resources: d.resources.map((r) => ({ name: r.name, kind: r.kind, start: hex(r.start), size: hex(r.size), prefetchable: r.prefetchable })),
  };
}

function verboseBlock(d: ScannedDevice): Block {
  const entries: [string, string][] = [
    ['Subsystem', `${h(d.subsystemVendor, 4)}:${h(d.subsystemDevice, 4)}`],
    ['Interrupt', d.interruptPin === 0 ? 'none' : `pin ${String.fromCharCode(0x40 + d.interruptPin)}`],
    ['IOMMU group', d.iommuGroup === null ? 'none' : String(d.iommuGroup)],
    ['Kernel driver in use', driverText(d)],
  ];
  for (const r of d.resources) {
    const what = r.kind === 'io' ? 'I/O ports' : r.kind === 'rom' ? 'Expansion ROM' : `Memory (${r.kind === 'mem64' ? '64-bit' : '32-bit'}, ${r.prefetchable ? 'prefetchable' : 'non-prefetchable'})`;
    entries.push([r.name === 'rom' ? 'ROM' : `Region ${r.name.slice(3)}`, `${what} at ${h(Number(r.start), 8)} [size=${sizeText(r.size)}]`]);
  }
  for (const c of d.capabilities) entries.push([`Capabilities [${h(c.offset, 2)}]`, c.name]);
  for (const c of d.extCapabilities) entries.push([`Capabilities [${h(c.offset, 3)} v]`, c.name]);
  return fields(entries, deviceLine(d));
}

/** The bus tree: each bridge holds the devices of its secondary bus. */
function busTree(devices: readonly ScannedDevice[]): TreeNode {
  const busOf = (bdf: string): string => bdf.slice(0, 7);
  const label = (d: ScannedDevice): string =>
    `${shortBdf(d.bdf)} ${d.name} [${h(d.vendor, 4)}:${h(d.device, 4)}] — driver ${driverText(d)}, IOMMU group ${d.iommuGroup ?? 'none'}`;
  const node = (d: ScannedDevice): TreeNode => {
    if (d.secondaryBus === undefined) return { label: label(d) };
    const bus = `${d.bdf.slice(0, 4)}:${h(d.secondaryBus, 2)}`;
    return { label: `${label(d)} → bus ${h(d.secondaryBus, 2)}`, children: devices.filter((c) => busOf(c.bdf) === bus).map(node) };
  };
  const children = new Set(devices.filter((d) => d.secondaryBus !== undefined).map((d) => `${d.bdf.slice(0, 4)}:${h(d.secondaryBus!, 2)}`));
  const rootBuses = [...new Set(devices.map((d) => busOf(d.bdf)))].filter((b) => !children.has(b)).sort();
  return {
    label: 'PCI buses',
    children: rootBuses.map((b) => ({ label: `[${b}]`, children: devices.filter((d) => busOf(d.bdf) === b).map(node) })),
  };
}

function groupTree(groups: readonly { id: number; devices: string[] }[], devices: readonly ScannedDevice[]): TreeNode {
  return {
    label: 'IOMMU groups',
    children: groups.map((g) => {
      const members = g.devices.map((bdf) => devices.find((d) => d.bdf === bdf));
      const vfio = members.every((d) => d === undefined || d.driver === 'vfio-pci' || d.driver === null || d.driver === 'pcieport');
      return {
        label: `group ${g.id} (/dev/vfio/${g.id}) — ${vfio ? 'usable through VFIO' : 'not viable: a device is owned by a host driver'}`,
        children: members.map((d, i) => ({ label: d ? `${shortBdf(d.bdf)} ${d.name} — driver ${driverText(d)}` : g.devices[i]! })),
      };
    }),
  };
}

/** `vfio lspci`. */
export const lspciCommand: VfioCommand = {
  name: 'lspci',
  configure: (cmd) => {
    cmd
      .summary('list the PCI devices of the simulated demo host, with IOMMU groups and drivers')
      .description('Lists the PCI devices of the embedded simulated host that \'vfio demo\' uses (not this '
        + 'machine\'s devices), read through its sysfs as lspci does on Linux. --config-image/--bars add a device '
        + 'at 0000:00:05.0 bound to vfio-pci.')
      .option('-t, --tree', 'draw the bus tree and the IOMMU groups with their drivers')
      .option('-v, --verbose', 'show subsystem, interrupt pin, BARs and capabilities')
      .option('--config-image <file>', 'add a device from a captured config space (the bytes of a sysfs config file)')
      .option('--bars <spec>', "its BARs, e.g. '0:mem32:0x20000,2:io:0x20,rom:0x40000'");
  },
  run: ({ options }) => {
    const extra = configImageFromOptions(options, false);
    const { root } = buildDemoHost(extra ? { extra } : {});
    const devices = scanPci(root);
    const groups = scanGroups(root);
    const verbose = options['verbose'] === true;
    const data = { host: 'simulated (vfio-ts demo host)', devices: devices.map((d) => deviceView(d, verbose)), iommu_groups: groups };
    const blocks: Block[] = [];
    if (options['tree'] === true) {
      blocks.push(tree(busTree(devices)), tree(groupTree(groups, devices)));
    } else if (verbose) {
      blocks.push(...devices.map(verboseBlock));
    } else {
      blocks.push(table(
        ['device', 'class', 'vendor:device', 'name', 'driver', { header: 'group', align: 'right' }],
        devices.map((d) => [d.bdf, d.className, `${h(d.vendor, 4)}:${h(d.device, 4)}`, d.name, driverText(d), d.iommuGroup === null ? '-' : String(d.iommuGroup)]),
      ));
    }
    blocks.push(text('(the simulated demo host of vfio-ts, not this machine)'));
    const report: Report = { data, blocks };
    return report;
  },
};
