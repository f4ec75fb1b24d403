/**
 * `vfio status`: what the VFIO core of the embedded demo host holds — IOMMU groups, devices and their open counts,
 * containers with their DMA mappings and locked memory, processes, interrupt counts — drawn from `host.describe()`.
 * So there is something to show, the edu driver first runs part of the demo and keeps the device open.
 */
import { EduVfioDriver } from '@vfio-ts/device-edu/driver';
import { EDU_DMA_BUFFER_SIZE } from '@vfio-ts/device-edu';
import type { HostDescription } from '@vfio-ts/core';
import type { VfioCommand } from '../command.js';
import { fields, hex, table, text, type Block, type Report } from '../output.js';
import { buildDemoHost, configImageFromOptions, type DemoHost } from '../sim-host.js';

/** A group as `host.describe()` lists it. */
interface GroupInfo {
  id: number;
  node: string;
  type: string;
  viable: boolean;
  open: boolean;
  container: number | null;
  devices: string[];
}

/** A device as `host.describe()` lists it. */
interface DeviceInfo {
  name: string;
  driver: string | null;
  state: string;
  group: number | null;
  openCount: number;
  mappings: number;
  setOpenCount: number;
  setSize: number;
}

/** A container as `host.describe()` lists it; `iommu` is the backend's own description (type1: counts). */
interface ContainerInfo {
  id: number;
  groups: number[];
  noiommu: boolean;
  backend: string | null;
  iommu: {
    version?: string;
    mappings?: number;
    lockedPages?: number;
    domains?: number;
    dmaAvail?: number;
    pgsizeBitmap?: bigint;
    iovaRanges?: readonly { start: bigint; end: bigint }[];
  } | null;
}

const asGroups = (d: HostDescription): GroupInfo[] => d.groups as GroupInfo[];
const asDevices = (d: HostDescription): DeviceInfo[] => d.devices as DeviceInfo[];
const asContainers = (d: HostDescription): ContainerInfo[] => d.containers as ContainerInfo[];

/** What the edu driver did before the snapshot. */
interface Activity {
  readonly ran: boolean;
  readonly note: string;
}

/** Opens edu, maps DMA, binds MSI, computes a factorial and DMAs into the device — and leaves it all open. */
async function partialDemo(demo: DemoHost): Promise<Activity> {
  const clock = demo.host.platform.clock;
  const edu = await EduVfioDriver.open(demo.root, { bdf: demo.eduBdf, now: () => clock.now() });
  const buf = await edu.mapDma(2n * 4096n, 0x100000n);
  await edu.identify();
  await edu.liveness();
  let msi = true;
  try {
    await edu.enableMsi();
  } catch {
    msi = false;
  }
  await edu.factorial(10);
  await edu.dmaToDevice(buf, new Uint8Array(EDU_DMA_BUFFER_SIZE).fill(0xa5));
  return {
    ran: true,
    note: `pid ${demo.root.pid} opened ${demo.eduBdf} through VFIO, mapped 8 KiB for DMA at IOVA 0x100000, ${msi ? 'bound MSI to an eventfd, ' : ''}computed 10! and moved 4096 bytes into the device; it is still running`,
  };
}

/** `vfio status`. */
export const statusCommand: VfioCommand = {
  name: 'status',
  configure: (cmd) => {
    cmd
      .summary('show groups, devices, DMA mappings, locked memory and interrupts of the simulated demo host')
      .description('Describes the VFIO state of the embedded simulated host that \'vfio demo\' uses (not this '
        + 'machine): IOMMU groups and their viability, devices with driver and open counts, containers with their '
        + 'IOMMU backend, DMA mappings and locked pages, processes, and interrupt counts. Unless --idle is given, '
        + 'the edu driver first runs part of the demo (open, map DMA, MSI, factorial, DMA) and keeps the device '
        + 'open, so there is something to see. --config-image/--bars add a device at 0000:00:05.0.')
      .option('--idle', 'describe the host before any process opened anything')
      .option('--config-image <file>', 'add a device from a captured config space')
      .option('--bars <spec>', "its BARs, e.g. '0:mem32:0x20000,2:io:0x20,rom:0x40000'");
  },
  run: async ({ options }) => {
    const extra = configImageFromOptions(options, false);
    const demo = buildDemoHost(extra ? { extra } : {});
    const activity: Activity = options['idle'] === true ? { ran: false, note: 'idle: no process has opened anything' } : await partialDemo(demo);
    const d = demo.host.describe();
    const groups = asGroups(d);
    const devices = asDevices(d);
    const containers = asContainers(d);
    const interrupts = demo.platform.pci.devices()
      .filter((dev) => dev.secondaryBus === undefined)
      .map((dev) => ({ device: dev.bdf, intx: dev.interruptCounts.intx, msi: dev.interruptCounts.msi }));
    const lockedPages = d.processes.reduce((n, p) => n + p.lockedPages, 0);
    const mappings = containers.reduce((n, c) => n + (c.iommu?.mappings ?? 0), 0);
    // core's `viable` is GET_STATUS's VIABLE flag (also set while a container holds the group's DMA ownership); for
    // people a group with a container is shown as in use.
    const data = {
      host: 'simulated (vfio-ts demo host)',
      activity: activity.note,
      iommu_drivers: d.iommuDrivers,
      groups: groups.map((g) => ({ id: g.id, node: g.node, type: g.type, viable: g.viable || g.container !== null, open: g.open, container: g.container, devices: g.devices })),
      devices: devices.map((v) => ({ name: v.name, driver: v.driver, state: v.state, group: v.group, open_count: v.openCount, mmaps: v.mappings, dev_set_open: v.setOpenCount, dev_set_size: v.setSize })),
      containers: containers.map((c) => ({
        id: c.id,
        groups: c.groups,
        backend: c.backend,
        noiommu: c.noiommu,
        mappings: c.iommu?.mappings ?? 0,
        locked_pages: c.iommu?.lockedPages ?? 0,
        ...(c.iommu?.version === undefined ? {} : { version: c.iommu.version }),
        ...(c.iommu?.domains === undefined ? {} : { domains: c.iommu.domains }),
        ...(c.iommu?.dmaAvail === undefined ? {} : { dma_avail: c.iommu.dmaAvail }),
        ...(c.iommu?.pgsizeBitmap === undefined ? {} : { pgsizes: hex(c.iommu.pgsizeBitmap) }),
        ...(c.iommu?.iovaRanges === undefined ? {} : { iova_ranges: c.iommu.iovaRanges.map((r) => ({ start: hex(r.start), end: hex(r.end) })) }),
      })),
      processes: d.processes.map((p) => ({ pid: p.pid, uid: p.uid, fds: p.fds, locked_pages: p.lockedPages, locked_bytes: p.lockedPages * 4096 })),
      interrupts,
      totals: { dma_mappings: mappings, locked_pages: lockedPages, locked_bytes: lockedPages * 4096 },
    };
    const blocks: Block[] = [
      text(`VFIO status of the simulated demo host (not this machine)\n${activity.note}`),
      table(
        [{ header: 'group', align: 'right' }, 'node', 'type', 'viable', 'open', 'container', 'devices'],
        groups.map((g) => [String(g.id), g.node, g.type, g.container !== null ? 'in use' : g.viable ? 'yes' : 'no', g.open ? 'yes' : 'no', g.container === null ? '-' : String(g.container), g.devices.join(' ')]),
        'IOMMU groups',
      ),
      table(
        ['device', 'driver', 'state', { header: 'group', align: 'right' }, { header: 'opened', align: 'right' }, { header: 'mmaps', align: 'right' }, 'device set'],
        devices.map((v) => [v.name, v.driver ?? '-', v.state, v.group === null ? '-' : String(v.group), String(v.openCount), String(v.mappings), `${v.setOpenCount} open of ${v.setSize}`]),
        'VFIO devices',
      ),
      containers.length === 0
        ? text('Containers: none open')
        : table(
          [{ header: 'container', align: 'right' }, 'backend', 'groups', { header: 'DMA mappings', align: 'right' }, { header: 'locked pages', align: 'right' }],
          containers.map((c) => [String(c.id), c.backend ?? '(no IOMMU set)', c.groups.join(' ') || '-', String(c.iommu?.mappings ?? 0), String(c.iommu?.lockedPages ?? 0)]),
          'Containers',
        ),
      table(
        [{ header: 'pid', align: 'right' }, { header: 'uid', align: 'right' }, { header: 'open fds', align: 'right' }, { header: 'locked memory', align: 'right' }],
        d.processes.map((p) => [String(p.pid), String(p.uid), String(p.fds), `${p.lockedPages} pages (${p.lockedPages * 4} KiB)`]),
        'Processes',
      ),
      table(
        ['device', { header: 'INTx', align: 'right' }, { header: 'MSI', align: 'right' }],
        interrupts.map((i) => [i.device, String(i.intx), String(i.msi)]),
        'Interrupts raised',
      ),
      fields([
        ['IOMMU backends', d.iommuDrivers.join(', ') || '(none)'],
        ['DMA mappings', String(mappings)],
        ['locked memory', `${lockedPages} pages (${lockedPages * 4} KiB)`],
      ]),
    ];
    const report: Report = { data, blocks };
    return report;
  },
};
