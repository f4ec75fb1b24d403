/**
 * The platform's sysfs (mounted at /sys): /sys/devices/pci*, /sys/bus/pci/{devices,drivers,drivers_probe} and
 * /sys/kernel/iommu_groups, computed on every read so it never goes stale. Text formats and modes follow Linux
 * (drivers/pci/pci-sysfs.c, drivers/pci/pci-driver.c, drivers/base/bus.c, drivers/iommu/iommu.c).
 */
import type { VfsDir, VfsFile, VfsNode, VfsSymlink } from '@vfio-ts/platform';
import { sysError } from '@vfio-ts/uapi';
import type { SimGroup } from './group.js';
import type { SimPciBus, SimPciDevice } from './pci-bus.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Root-owned attribute file. */
function attr(
  mode: number,
  show: (() => string) | undefined,
  store?: (text: string) => void | Promise<void>,
): VfsFile {
  const file: VfsFile = {
    kind: 'file',
    mode,
    uid: 0,
    gid: 0,
    read: () => {
      if (!show) throw sysError('EACCES', 'attribute is write-only');
      return enc.encode(show());
    },
  };
  if (store) return { ...file, write: (data) => store(dec.decode(data)) };
  return file;
}

const link = (target: string): VfsSymlink => ({ kind: 'symlink', target });

/** sysfs_streq-style argument: the text without one trailing newline. */
const arg = (text: string): string => (text.endsWith('\n') ? text.slice(0, -1) : text);

const hex = (n: number | bigint, w: number): string => `0x${n.toString(16).padStart(w, '0')}`;

/** Resource flags as pci-sysfs prints them (IORESOURCE_*). */
const IORESOURCE_IO = 0x100;
const IORESOURCE_MEM = 0x200;
const IORESOURCE_PREFETCH = 0x2000;
const IORESOURCE_READONLY = 0x4000;
const IORESOURCE_SIZEALIGN = 0x40000;
const IORESOURCE_MEM_64 = 0x100000;

/** What the tree needs from the platform. */
export interface SysfsHost {
  readonly pci: SimPciBus;
  groups(): readonly SimGroup[];
}

/** Builds and serves the platform's /sys tree, with extra nodes added by upper layers. */
export class SimSysfs {
  readonly root: VfsDir;
  /** Canonical directory path → extra entries from {@link addNode}. */
  private readonly extras = new Map<string, Map<string, VfsNode>>();
  private autoprobe = true;
  /** Canonical path of every directory node this tree made (extras can only go there). */
  private readonly dirPaths = new WeakMap<VfsDir, string>();

  constructor(private readonly host: SysfsHost) {
    this.root = this.dir('/sys', () => [
      ['bus', this.dir('/sys/bus', () => [['pci', this.busPciDir()]])],
      ['devices', this.dir('/sys/devices', () => this.rootBusDirs())],
      ['kernel', this.dir('/sys/kernel', () => [['iommu_groups', this.groupsDir()]])],
    ]);
  }

  /** A directory whose entries are computed on each listing, merged with extras at `path`. */
  private dir(path: string, compute: () => [string, VfsNode][], mode = 0o755): VfsDir {
    const d: VfsDir = {
      kind: 'dir',
      mode,
      uid: 0,
      gid: 0,
      entries: () => {
        const m = new Map(compute());
        for (const [k, v] of this.extras.get(path) ?? []) if (!m.has(k)) m.set(k, v);
        return m;
      },
    };
    this.dirPaths.set(d, path);
    return d;
  }

  // ---- /sys/devices ----------------------------------------------------------------------------------------

  /** Canonical sysfs path of a device: /sys/devices/pci0000:00/<bridge...>/<bdf>. */
  devicePath(dev: SimPciDevice): string {
    const chain: SimPciDevice[] = [];
    for (let d: SimPciDevice | undefined = dev; d; d = d.parentDevice) chain.unshift(d);
    const top = chain[0]!;
    const rootName = `pci${top.bdf.slice(0, 4)}:${top.bdf.slice(5, 7)}`;
    return `/sys/devices/${rootName}/${chain.map((d) => d.bdf).join('/')}`;
  }

  /** '../' repeated to climb from directory `path` up to /sys. */
  private up(path: string): string {
    const depth = path.split('/').filter((s) => s.length > 0).length - 1;
    return '../'.repeat(depth);
  }

  private rootBusDirs(): [string, VfsNode][] {
    const roots = new Map<string, SimPciDevice[]>();
    for (const d of this.host.pci.devices()) {
      if (d.parentDevice) continue;
      const name = `pci${d.bdf.slice(0, 4)}:${d.bdf.slice(5, 7)}`;
      roots.set(name, [...(roots.get(name) ?? []), d]);
    }
    return [...roots].map(([name, devs]) => [
      name,
      this.dir(`/sys/devices/${name}`, () => devs.map((d) => [d.bdf, this.deviceDir(d)])),
    ]);
  }

  private deviceDir(dev: SimPciDevice): VfsDir {
    const path = this.devicePath(dev);
    return this.dir(path, () => {
      const up = this.up(path);
      const e: [string, VfsNode][] = [
        ['config', this.configFile(dev)],
        ['vendor', attr(0o444, () => `${hex(dev.vendor, 4)}\n`)],
        ['device', attr(0o444, () => `${hex(dev.device, 4)}\n`)],
        ['subsystem_vendor', attr(0o444, () => `${hex(dev.subsystemVendor, 4)}\n`)],
        ['subsystem_device', attr(0o444, () => `${hex(dev.subsystemDevice, 4)}\n`)],
        ['class', attr(0o444, () => `${hex(dev.classCode, 6)}\n`)],
        ['revision', attr(0o444, () => `${hex(dev.revision, 2)}\n`)],
        ['resource', attr(0o444, () => this.resourceText(dev))],
        [
          'driver_override',
          attr(
            0o644,
            () => `${dev.driverOverride === '' ? '(null)' : dev.driverOverride}\n`,
            (text) => {
              // driver_set_override: below PAGE_SIZE, one trailing newline dropped, empty clears.
              if (text.length >= 4096) throw sysError('EINVAL', 'driver_override too long');
              dev.driverOverride = arg(text);
            },
          ),
        ],
        ['subsystem', link(`${up}bus/pci`)],
      ];
      // `reset` and `reset_method` exist only when the function has a reset method (pci_reset_supported).
      if (dev.resetMethods.length > 0) {
        e.push(
          [
            'reset',
            attr(0o200, undefined, (text) => {
              if (parseUlong(text) !== 1n) throw sysError('EINVAL', 'write 1 to reset');
              dev.functionReset();
            }),
          ],
          ['reset_method', attr(0o644, () => `${dev.resetMethods.join(' ')}\n`)],
        );
      }
      if (dev.group) e.push(['iommu_group', link(`${up}kernel/iommu_groups/${dev.group.id}`)]);
      if (dev.driverName !== undefined) e.push(['driver', link(`${up}bus/pci/drivers/${dev.driverName}`)]);
      if (dev.secondaryBus !== undefined) {
        for (const child of this.host.pci.devicesOnBus(dev.addr.domain, dev.secondaryBus)) {
          e.push([child.bdf, this.deviceDir(child)]);
        }
      }
      return e;
    });
  }

  /** The binary `config` attribute: 256 or 4096 bytes, accessed with naturally aligned cycles. */
  private configFile(dev: SimPciDevice): VfsFile {
    const size = dev.cfgSize;
    const pread = (length: number, offset: number): Uint8Array => {
      if (offset < 0 || length < 0) throw sysError('EINVAL', 'bad offset');
      const end = Math.min(size, offset + length);
      const out = new Uint8Array(Math.max(0, end - offset));
      let o = offset;
      while (o < end) {
        const n: 1 | 2 | 4 = o % 4 === 0 && end - o >= 4 ? 4 : o % 2 === 0 && end - o >= 2 ? 2 : 1;
        const v = dev.read(o, n);
        for (let i = 0; i < n; i++) out[o - offset + i] = (v >>> (8 * i)) & 0xff;
        o += n;
      }
      return out;
    };
    const pwrite = (data: Uint8Array, offset: number): number => {
      if (offset < 0) throw sysError('EINVAL', 'bad offset');
      const end = Math.min(size, offset + data.length);
      let o = offset;
      while (o < end) {
        const n: 1 | 2 | 4 = o % 4 === 0 && end - o >= 4 ? 4 : o % 2 === 0 && end - o >= 2 ? 2 : 1;
        let v = 0;
        for (let i = n - 1; i >= 0; i--) v = v * 256 + data[o - offset + i]!;
        dev.fn.configWrite(o, n, v);
        o += n;
      }
      return Math.max(0, end - offset);
    };
    return {
      kind: 'file',
      mode: 0o644,
      uid: 0,
      gid: 0,
      read: () => pread(size, 0),
      write: (data) => {
        pwrite(data, 0);
      },
      pread,
      pwrite,
    };
  }

  /** pci-sysfs resource_show: start, end and flags of every BAR and the ROM (and bridge windows for bridges). */
  private resourceText(dev: SimPciDevice): string {
    const lines: string[] = [];
    const line = (start: bigint, end: bigint, flags: number): void => {
      lines.push(`${hex(start, 16)} ${hex(end, 16)} ${hex(flags, 16)}\n`);
    };
    for (let i = 0; i < 6; i++) {
      const b = dev.fn.bars.find((x) => x.index === i);
      if (!b || b.size === 0n) {
        line(0n, 0n, 0);
        continue;
      }
      const start = dev.resourceStarts[i] ?? 0n;
      let flags = IORESOURCE_SIZEALIGN;
      if (b.type === 'io') flags |= IORESOURCE_IO | 0x1;
      else {
        flags |= IORESOURCE_MEM;
        if (b.type === 'mem64') flags |= IORESOURCE_MEM_64 | 0x4;
        if (b.prefetchable) flags |= IORESOURCE_PREFETCH | 0x8;
      }
      line(start, start + b.size - 1n, flags);
    }
    const rom = dev.fn.romSize ?? 0n;
    if (rom > 0n) line(dev.romStart, dev.romStart + rom - 1n, IORESOURCE_MEM | IORESOURCE_PREFETCH | IORESOURCE_READONLY | IORESOURCE_SIZEALIGN);
    else line(0n, 0n, 0);
    // Bridges print every resource slot (DEVICE_COUNT_RESOURCE = 17 with SR-IOV slots and bridge windows).
    if (dev.secondaryBus !== undefined) for (let i = 7; i < 17; i++) line(0n, 0n, 0);
    return lines.join('');
  }

  // ---- /sys/bus/pci ----------------------------------------------------------------------------------------

  private busPciDir(): VfsDir {
    const pci = this.host.pci;
    return this.dir('/sys/bus/pci', () => [
      [
        'devices',
        this.dir('/sys/bus/pci/devices', () =>
          pci.devices().map((d) => [d.bdf, link(`../../..${this.devicePath(d).slice(4)}`)]),
        ),
      ],
      ['drivers', this.dir('/sys/bus/pci/drivers', () => pci.driverNames().map((n) => [n, this.driverDir(n)]))],
      ['drivers_probe', attr(0o200, undefined, (text) => { pci.probe(arg(text)); })],
      [
        'drivers_autoprobe',
        attr(
          0o644,
          () => (this.autoprobe ? '1\n' : '0\n'),
          (text) => {
            // drivers_autoprobe_store: "0" disables, anything else enables (there is no hotplug to gate here).
            this.autoprobe = arg(text) !== '0';
          },
        ),
      ],
    ]);
  }

  private driverDir(name: string): VfsDir {
    const pci = this.host.pci;
    const path = `/sys/bus/pci/drivers/${name}`;
    return this.dir(path, () => {
      const e: [string, VfsNode][] = [
        ['bind', attr(0o200, undefined, (text) => { pci.bind(arg(text), name); })],
        ['unbind', attr(0o200, undefined, (text) => pci.unbindFrom(arg(text), name))],
        ['new_id', attr(0o200, undefined, (text) => { pci.addDynamicId(name, parseNewId(text)); })],
        ['remove_id', attr(0o200, undefined, (text) => { pci.removeDynamicId(name, parseNewId(text)); })],
      ];
      for (const d of pci.devices()) {
        if (d.driverName === name) e.push([d.bdf, link(`../../../..${this.devicePath(d).slice(4)}`)]);
      }
      return e;
    });
  }

  // ---- /sys/kernel/iommu_groups ----------------------------------------------------------------------------

  private groupsDir(): VfsDir {
    return this.dir('/sys/kernel/iommu_groups', () =>
      this.host.groups().map((g) => [String(g.id), this.groupDir(g)]),
    );
  }

  private groupDir(g: SimGroup): VfsDir {
    const path = `/sys/kernel/iommu_groups/${g.id}`;
    return this.dir(path, () => {
      const e: [string, VfsNode][] = [
        [
          'devices',
          this.dir(`${path}/devices`, () =>
            g.members.flatMap((bdf): [string, VfsNode][] => {
              const d = this.host.pci.device(bdf);
              return d ? [[bdf, link(`../../../..${this.devicePath(d).slice(4)}`)]] : [];
            }),
          ),
        ],
        // iommu_group_show_type: the default domain's type ('unknown' without one, or for POWER's platform domain).
        ['type', attr(0o444, () => `${g.defaultDomainType}\n`)],
        [
          'reserved_regions',
          attr(0o444, () =>
            [...g.reservedRegions()]
              .sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0))
              .map((r) => `${hex(r.start, 16)} ${hex(r.end, 16)} ${r.type === 'sw-msi' ? 'msi' : r.type}\n`)
              .join(''),
          ),
        ],
      ];
      if (g.name !== undefined) e.push(['name', attr(0o444, () => `${g.name!}\n`)]);
      return e;
    });
  }

  // ---- paths -----------------------------------------------------------------------------------------------

  /**
   * Resolves an absolute path below /sys, following symlinks (in every component, including the last when
   * `follow`). Returns the node and its canonical path, or throws ENOENT / ENOTDIR / ELOOP.
   */
  resolve(path: string, follow = true): { node: VfsNode; path: string } {
    let parts = splitPath(path);
    if (parts[0] !== 'sys') throw sysError('ENOENT', `${path} is not below /sys`);
    let node: VfsNode = this.root;
    let at: string[] = ['sys'];
    let hops = 0;
    let i = 1;
    while (i < parts.length) {
      if (node.kind !== 'dir') throw sysError('ENOTDIR', `${'/' + at.join('/')} is not a directory`);
      const name = parts[i]!;
      const next = node.entries().get(name);
      if (!next) throw sysError('ENOENT', `${path}: no such file or directory`);
      const last = i === parts.length - 1;
      if (next.kind === 'symlink' && (!last || follow)) {
        if (++hops > 40) throw sysError('ELOOP', path);
        const target = normalize(next.target.startsWith('/') ? splitPath(next.target) : [...at, ...splitPath(next.target)]);
        parts = [...target, ...parts.slice(i + 1)];
        if (parts[0] !== 'sys') throw sysError('ENOENT', `${path} leaves /sys`);
        node = this.root;
        at = ['sys'];
        i = 1;
        continue;
      }
      node = next;
      at = [...at, name];
      i++;
    }
    return { node, path: '/' + at.join('/') };
  }

  /** Adds `node` as `name` in the platform directory `dirPath` (symlinks followed); returns the undo. */
  addNode(dirPath: string, name: string, node: VfsNode): () => void {
    if (name === '' || name.includes('/') || name === '.' || name === '..') throw sysError('EINVAL', `bad name '${name}'`);
    const { node: dir } = this.resolve(dirPath);
    if (dir.kind !== 'dir') throw sysError('ENOTDIR', `${dirPath} is not a directory`);
    // Only directories this tree computes merge extras; another layer's directory is its own business.
    const path = this.dirPaths.get(dir);
    if (path === undefined) throw sysError('EINVAL', `${dirPath} is not a platform directory`);
    if (dir.entries().has(name)) throw sysError('EEXIST', `${dirPath}/${name} exists`);
    let m = this.extras.get(path);
    if (!m) {
      m = new Map();
      this.extras.set(path, m);
    }
    m.set(name, node);
    const map = m;
    return () => {
      if (map.get(name) === node) map.delete(name);
    };
  }
}

function splitPath(p: string): string[] {
  return p.split('/').filter((s) => s.length > 0 && s !== '.');
}

/** Resolves '..' in a path given as components. */
function normalize(parts: string[]): string[] {
  const out: string[] = [];
  for (const p of parts) {
    if (p === '..') out.pop();
    else out.push(p);
  }
  return out;
}

/** kstrtoul(buf, 0): decimal, 0x hex or 0 octal, one trailing newline allowed. */
function parseUlong(text: string): bigint | undefined {
  const t = arg(text);
  if (/^0x[0-9a-f]+$/i.test(t)) return BigInt(t);
  if (/^0[0-7]*$/.test(t)) return BigInt('0o' + (t.slice(1) || '0'));
  if (/^[1-9]\d*$/.test(t)) return BigInt(t);
  return undefined;
}

/** new_id / remove_id text: "vvvv dddd [ssss ssss [cccccc mmmmmm [data]]]" in hex; at least two fields. */
function parseNewId(text: string): string {
  const fields = text.trim().split(/\s+/).filter((s) => s.length > 0);
  const isHex = (s: string): boolean => /^(0x)?[0-9a-f]+$/i.test(s);
  if (fields.length < 2 || !isHex(fields[0]!) || !isHex(fields[1]!)) throw sysError('EINVAL', 'new_id needs "vendor device"');
  const v = parseInt(fields[0]!.replace(/^0x/i, ''), 16);
  const d = parseInt(fields[1]!.replace(/^0x/i, ''), 16);
  if (v > 0xffff || d > 0xffff) throw sysError('EINVAL', 'id out of range');
  return `${v.toString(16).padStart(4, '0')}:${d.toString(16).padStart(4, '0')}`;
}
