/**
 * mdpy — the mediated virtual PCI display of Linux samples/vfio-mdev/mdpy.c and mdpy-defs.h (inventory §6, §8.6
 * M14) as a vfio-ts mdev driver: a virtual parent `/sys/devices/virtual/mdpy/mdpy` with types `mdpy-vga`
 * (640x480), `mdpy-xga` (1024x768) and `mdpy-hd` (1920x1080), XRGB8888; the framebuffer is BAR0 (a prefetchable
 * memory BAR, mmap-able) and a vendor capability in config space carries format, width and height.
 * VFIO_DEVICE_QUERY_GFX_PLANE answers REGION planes only (region 16 aliases BAR0); there are no interrupts.
 */
import type { HostPlugin, HostPluginApi, IoctlArg, SyscallContext, VfioDevice, VfioDeviceOps } from '@vfio-ts/core';
import { copyFromUser, copyToUser, registerMdevParent } from '@vfio-ts/mdev';
import type { MdevDevice, MdevParent } from '@vfio-ts/mdev';

/** What a device's mmap op returns (the platform's MmioHandler), named through the core's ops contract. */
type MmioHandler = ReturnType<NonNullable<VfioDeviceOps['mmap']>>;
import {
  PCI_BASE_ADDRESS_0,
  PCI_BASE_ADDRESS_MEM_PREFETCH,
  PCI_BASE_ADDRESS_SPACE_MEMORY,
  PCI_CAPABILITY_LIST,
  PCI_CAP_FLAGS,
  PCI_CAP_ID_VNDR,
  PCI_CAP_LIST_ID,
  PCI_CAP_LIST_NEXT,
  PCI_CLASS_DEVICE,
  PCI_COMMAND,
  PCI_COMMAND_IO,
  PCI_COMMAND_MEMORY,
  PCI_DEVICE_ID,
  PCI_REVISION_ID,
  PCI_STATUS,
  PCI_STATUS_CAP_LIST,
  PCI_SUBSYSTEM_ID,
  PCI_SUBSYSTEM_VENDOR_ID,
  PCI_VENDOR_ID,
  SysError,
  VFIO_DEVICE_API_PCI_STRING,
  VFIO_DEVICE_FLAGS_PCI,
  VFIO_DEVICE_GET_INFO,
  VFIO_DEVICE_GET_IRQ_INFO,
  VFIO_DEVICE_GET_REGION_INFO,
  VFIO_DEVICE_QUERY_GFX_PLANE,
  VFIO_DEVICE_RESET,
  VFIO_DEVICE_SET_IRQS,
  VFIO_GFX_PLANE_TYPE_PROBE,
  VFIO_GFX_PLANE_TYPE_REGION,
  VFIO_PCI_BAR0_REGION_INDEX,
  VFIO_PCI_CONFIG_REGION_INDEX,
  VFIO_PCI_NUM_IRQS,
  VFIO_PCI_NUM_REGIONS,
  VFIO_REGION_INFO_FLAG_MMAP,
  VFIO_REGION_INFO_FLAG_READ,
  VFIO_REGION_INFO_FLAG_WRITE,
  vfioDeviceGfxPlaneInfo,
  vfioDeviceInfo,
  vfioIrqInfo,
  vfioRegionInfo,
} from '@vfio-ts/uapi';

/** PCI ids (mdpy-defs.h): Red Hat 1b36:000f, subsystem 1af4:1100. */
export const MDPY_PCI_VENDOR_ID = 0x1b36;
export const MDPY_PCI_DEVICE_ID = 0x000f;
export const MDPY_PCI_SUBVENDOR_ID = 0x1af4;
export const MDPY_PCI_SUBDEVICE_ID = 0x1100;
/** The vendor capability with the framebuffer configuration. */
export const MDPY_VENDORCAP_OFFSET = 0x40;
export const MDPY_VENDORCAP_SIZE = 0x10;
export const MDPY_FORMAT_OFFSET = MDPY_VENDORCAP_OFFSET + 0x04;
export const MDPY_WIDTH_OFFSET = MDPY_VENDORCAP_OFFSET + 0x08;
export const MDPY_HEIGHT_OFFSET = MDPY_VENDORCAP_OFFSET + 0x0c;
/** Size of the CONFIG region. */
export const MDPY_CONFIG_SPACE_SIZE = 0xff;
/** File offset of the framebuffer (BAR0 and the display region): one page in. */
export const MDPY_MEMORY_BAR_OFFSET = 0x1000;
/** The display region index QUERY_GFX_PLANE reports (an alias of BAR0). */
export const MDPY_DISPLAY_REGION = 16;
/** DRM_FORMAT_XRGB8888: fourcc 'XR24'. */
export const DRM_FORMAT_XRGB8888 = 0x34325258;
/** PCI_CLASS_DISPLAY_OTHER. */
const PCI_CLASS_DISPLAY_OTHER = 0x0380;

/** One display type. */
export interface MdpyTypeData {
  readonly format: number;
  readonly bytepp: number;
  readonly width: number;
  readonly height: number;
}

/** The three types of mdpy.c. */
export const MDPY_TYPES: readonly { readonly sysfsName: string; readonly data: MdpyTypeData }[] = [
  { sysfsName: 'vga', data: { format: DRM_FORMAT_XRGB8888, bytepp: 4, width: 640, height: 480 } },
  { sysfsName: 'xga', data: { format: DRM_FORMAT_XRGB8888, bytepp: 4, width: 1024, height: 768 } },
  { sysfsName: 'hd', data: { format: DRM_FORMAT_XRGB8888, bytepp: 4, width: 1920, height: 1080 } },
];

function roundupPowerOfTwo(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

/** The per-device state (Linux struct mdev_state of mdpy). */
export class MdpyState {
  readonly vconfig = new Uint8Array(0x100);
  /** The framebuffer, `memsize` bytes. */
  readonly memblk: Uint8Array;
  readonly memsize: number;
  readonly barMask: number;
  /** num_irqs as last reported by GET_INFO (0 before). */
  numIrqs = 0;

  constructor(readonly type: MdpyTypeData) {
    this.memsize = roundupPowerOfTwo(type.width * type.height * type.bytepp);
    this.memblk = new Uint8Array(this.memsize);
    this.barMask = (~this.memsize + 1) >>> 0;
    this.#createConfigSpace();
    this.reset();
  }

  #createConfigSpace(): void {
    const dv = new DataView(this.vconfig.buffer);
    dv.setUint16(PCI_VENDOR_ID, MDPY_PCI_VENDOR_ID, true);
    dv.setUint16(PCI_DEVICE_ID, MDPY_PCI_DEVICE_ID, true);
    dv.setUint16(PCI_SUBSYSTEM_VENDOR_ID, MDPY_PCI_SUBVENDOR_ID, true);
    dv.setUint16(PCI_SUBSYSTEM_ID, MDPY_PCI_SUBDEVICE_ID, true);
    dv.setUint16(PCI_COMMAND, PCI_COMMAND_IO | PCI_COMMAND_MEMORY, true);
    dv.setUint16(PCI_STATUS, PCI_STATUS_CAP_LIST, true);
    dv.setUint16(PCI_CLASS_DEVICE, PCI_CLASS_DISPLAY_OTHER, true);
    this.vconfig[PCI_REVISION_ID] = 0x01;
    dv.setUint32(PCI_BASE_ADDRESS_0, PCI_BASE_ADDRESS_SPACE_MEMORY | PCI_BASE_ADDRESS_MEM_PREFETCH, true); // 32-bit
    this.vconfig[PCI_CAPABILITY_LIST] = MDPY_VENDORCAP_OFFSET;
    this.vconfig[MDPY_VENDORCAP_OFFSET + PCI_CAP_LIST_ID] = PCI_CAP_ID_VNDR;
    this.vconfig[MDPY_VENDORCAP_OFFSET + PCI_CAP_LIST_NEXT] = 0x00;
    this.vconfig[MDPY_VENDORCAP_OFFSET + PCI_CAP_FLAGS] = MDPY_VENDORCAP_SIZE;
    dv.setUint32(MDPY_FORMAT_OFFSET, this.type.format, true);
    dv.setUint32(MDPY_WIDTH_OFFSET, this.type.width, true);
    dv.setUint32(MDPY_HEIGHT_OFFSET, this.type.height, true);
  }

  /** mdpy_reset: paints a grey gradient, one shade per line (VFIO_DEVICE_RESET and creation). */
  reset(): void {
    const stride = this.type.width * this.type.bytepp;
    for (let i = 0; i < this.type.height; i++) {
      this.memblk.fill(Math.floor((i * 255) / this.type.height), i * stride, (i + 1) * stride);
    }
  }

  /** handle_pci_cfg_write: only BAR0 is writable (with sizing); its low flag bits stay. */
  configWrite(offset: number, data: Uint8Array): void {
    if (offset !== PCI_BASE_ADDRESS_0) return;
    let addr = 0;
    for (let i = 0; i < 4; i++) addr |= (data[i] ?? 0) << (8 * i);
    addr >>>= 0;
    addr = addr === 0xffffffff ? (addr & this.barMask) >>> 0 : (addr & ~0xf) >>> 0;
    addr = (addr | (this.vconfig[PCI_BASE_ADDRESS_0]! & 0xf)) >>> 0;
    new DataView(this.vconfig.buffer).setUint32(PCI_BASE_ADDRESS_0, addr, true);
  }

  /** mdev_access for one chunk: config below 0xff, the framebuffer at [0x1000, 0x1000 + memsize). */
  access(pos: bigint, buf: Uint8Array, isWrite: boolean): void {
    if (pos < BigInt(MDPY_CONFIG_SPACE_SIZE)) {
      const off = Number(pos);
      if (isWrite) this.configWrite(off, buf);
      else buf.set(this.vconfig.subarray(off, off + buf.length));
      return;
    }
    const base = BigInt(MDPY_MEMORY_BAR_OFFSET);
    if (pos >= base && pos + BigInt(buf.length) <= base + BigInt(this.memsize)) {
      const off = Number(pos - base);
      if (isWrite) this.memblk.set(buf, off);
      else buf.set(this.memblk.subarray(off, off + buf.length));
      return;
    }
    throw new SysError('EFAULT', `no mdpy region at 0x${pos.toString(16)}`);
  }
}

/** mdpy_read / mdpy_write: naturally aligned 4-, 2- and 1-byte chunks. */
function rw(s: MdpyState, pos: bigint, buf: Uint8Array, isWrite: boolean): void {
  let done = 0;
  while (done < buf.length) {
    const left = buf.length - done;
    const at = pos + BigInt(done);
    const n = left >= 4 && at % 4n === 0n ? 4 : left >= 2 && at % 2n === 0n ? 2 : 1;
    s.access(at, buf.subarray(done, done + n), isWrite);
    done += n;
  }
}

/** mdpy_query_gfx_plane: PROBE answers only for REGION; a REGION query describes the framebuffer. */
function queryGfxPlane(s: MdpyState, arg: IoctlArg, call: SyscallContext): number {
  const minsz = vfioDeviceGfxPlaneInfo.offsetOfEnd('region_index');
  const plane = vfioDeviceGfxPlaneInfo.decode(copyFromUser(arg, call, minsz));
  if (plane.argsz < minsz) throw new SysError('EINVAL', 'argsz below minsz');
  if ((plane.flags & VFIO_GFX_PLANE_TYPE_PROBE) !== 0) {
    if (plane.flags === (VFIO_GFX_PLANE_TYPE_PROBE | VFIO_GFX_PLANE_TYPE_REGION)) return 0;
    throw new SysError('EINVAL', 'mdpy offers REGION planes only');
  }
  if (plane.flags !== VFIO_GFX_PLANE_TYPE_REGION) throw new SysError('EINVAL', 'mdpy offers REGION planes only');
  const out = new Uint8Array(minsz);
  vfioDeviceGfxPlaneInfo.write(
    out,
    {
      ...plane,
      drm_format: s.type.format,
      width: s.type.width,
      height: s.type.height,
      stride: s.type.width * s.type.bytepp,
      size: s.memsize,
      region_index: MDPY_DISPLAY_REGION,
      drm_format_mod: 0n,
      x_pos: 0,
      y_pos: 0,
      x_hot: 0,
      y_hot: 0,
    },
    0,
    minsz,
  );
  copyToUser(arg, call, out);
  return 0;
}

function ioctl(s: MdpyState, cmd: number, arg: IoctlArg, call: SyscallContext): number {
  switch (cmd) {
    case VFIO_DEVICE_GET_INFO: {
      const minsz = vfioDeviceInfo.minsz;
      const info = vfioDeviceInfo.decode(copyFromUser(arg, call, minsz));
      if (info.argsz < minsz) throw new SysError('EINVAL', 'argsz below minsz');
      s.numIrqs = VFIO_PCI_NUM_IRQS;
      const out = new Uint8Array(minsz);
      vfioDeviceInfo.write(out, { argsz: info.argsz, flags: VFIO_DEVICE_FLAGS_PCI, num_regions: VFIO_PCI_NUM_REGIONS, num_irqs: VFIO_PCI_NUM_IRQS }, 0, minsz);
      copyToUser(arg, call, out);
      return 0;
    }
    case VFIO_DEVICE_GET_REGION_INFO: {
      const minsz = vfioRegionInfo.offsetOfEnd('offset');
      const info = vfioRegionInfo.decode(copyFromUser(arg, call, minsz));
      if (info.argsz < minsz) throw new SysError('EINVAL', 'argsz below minsz');
      if (info.index >= VFIO_PCI_NUM_REGIONS && info.index !== MDPY_DISPLAY_REGION) throw new SysError('EINVAL', `no region ${info.index}`);
      let r: { offset: bigint; size: bigint; flags: number };
      if (info.index === VFIO_PCI_CONFIG_REGION_INDEX) {
        r = { offset: 0n, size: BigInt(MDPY_CONFIG_SPACE_SIZE), flags: VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE };
      } else if (info.index === VFIO_PCI_BAR0_REGION_INDEX || info.index === MDPY_DISPLAY_REGION) {
        r = {
          offset: BigInt(MDPY_MEMORY_BAR_OFFSET),
          size: BigInt(s.memsize),
          flags: VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE | VFIO_REGION_INFO_FLAG_MMAP,
        };
      } else {
        r = { offset: 0n, size: 0n, flags: 0 };
      }
      const out = new Uint8Array(minsz);
      vfioRegionInfo.write(out, { ...info, ...r });
      copyToUser(arg, call, out);
      return 0;
    }
    case VFIO_DEVICE_GET_IRQ_INFO: {
      const minsz = vfioIrqInfo.offsetOfEnd('count');
      const info = vfioIrqInfo.decode(copyFromUser(arg, call, minsz));
      if (info.argsz < minsz || info.index >= s.numIrqs) throw new SysError('EINVAL', 'bad vfio_irq_info');
      // No interrupts: count 0, everything else as the caller passed it.
      const out = new Uint8Array(minsz);
      vfioIrqInfo.write(out, { ...info, count: 0 });
      copyToUser(arg, call, out);
      return 0;
    }
    case VFIO_DEVICE_QUERY_GFX_PLANE:
      return queryGfxPlane(s, arg, call);
    case VFIO_DEVICE_SET_IRQS:
      throw new SysError('EINVAL', 'mdpy has no interrupts');
    case VFIO_DEVICE_RESET:
      s.reset();
      return 0;
    default:
      throw new SysError('ENOTTY', `mdpy has no ioctl 0x${cmd.toString(16)}`);
  }
}

/** The VFIO device ops of an mdpy display (mdpy_dev_ops). */
export const mdpyOps: VfioDeviceOps<MdpyState> = {
  read(device, length, offset) {
    const buf = new Uint8Array(length);
    rw(device.data, offset, buf, false);
    return buf;
  },
  write(device, data, offset) {
    rw(device.data, offset, data.slice(), true);
    return data.length;
  },
  ioctl(device, cmd, arg, call) {
    return ioctl(device.data, cmd, arg, call);
  },
  mmap(device, req): MmioHandler {
    // mdpy_mmap: exactly the framebuffer's page offset, no longer than it, shared.
    const s = device.data;
    if (req.offset !== BigInt(MDPY_MEMORY_BAR_OFFSET)) throw new SysError('EINVAL', 'mdpy maps only the framebuffer');
    if (req.length > BigInt(s.memsize)) throw new SysError('EINVAL', 'mapping longer than the framebuffer');
    if (!req.shared) throw new SysError('EINVAL', 'the framebuffer mapping must be shared');
    const len = Number(req.length);
    const check = (off: bigint, n: number): number => {
      const o = Number(off);
      if (off < 0n || o + n > len) throw new SysError('EFAULT', 'access beyond the mapping');
      return o;
    };
    return {
      read: (offset, length) => {
        const o = check(offset, length);
        return s.memblk.slice(o, o + length);
      },
      write: (offset, data) => {
        s.memblk.set(data, check(offset, data.length));
      },
    };
  },
};

/** Options of {@link mdpy}. */
export interface MdpyOptions {
  /** Devices the parent may hold in total (the `count` module parameter, default 4). */
  readonly count?: number;
}

/** What the mdpy plugin registered on a host. */
export interface MdpyHandle {
  readonly parent: MdevParent<MdpyTypeData>;
}

/**
 * The mdpy sample driver as a host plugin. The instance budget is the read-only module parameter `mdpy.count`
 * (default 4, or `options.count`; `params: { 'mdpy.count': 2 }` in createHost overrides it).
 */
export function mdpy(options: MdpyOptions = {}): HostPlugin & { handle(api: HostPluginApi): MdpyHandle | undefined } {
  const handles = new WeakMap<HostPluginApi, MdpyHandle>();
  return {
    name: 'mdpy',
    handle: (api) => handles.get(api),
    setup(api) {
      api.declareParam('mdpy', 'count', {
        default: String(options.count ?? 4),
        mode: 0o444,
        description: 'number of mdpy devices',
        parse: (text) => {
          const t = text.trim();
          if (!/^\d+$/.test(t)) throw new SysError('EINVAL', 'count must be a number');
          return t;
        },
      });
      const count = Number(api.param('mdpy', 'count'));
      const parent = registerMdevParent<MdpyTypeData>(api, {
        parent: { virtual: { class: 'mdpy', name: 'mdpy' } },
        types: MDPY_TYPES.map((t) => ({ sysfsName: t.sysfsName, prettyName: `mdpy-${t.sysfsName}`, data: t.data })),
        driver: {
          name: 'mdpy',
          deviceApi: VFIO_DEVICE_API_PCI_STRING,
          maxInstances: count,
          showDescription: (type) => `virtual display, ${type.data.width}x${type.data.height} framebuffer\n`,
          deviceAttrs: { vendor: { resolution: (mdev) => `${mdev.type.data.width}x${mdev.type.data.height}\n` } },
          probe(mdev: MdevDevice<MdpyTypeData>) {
            const vfio: VfioDevice<MdpyState> = mdev.registerEmulatedDevice(mdpyOps, new MdpyState(mdev.type.data));
            mdev.driverData = vfio;
            api.log(`mdpy: ${mdev.uuid}: mdpy-${mdev.type.sysfsName} (${mdev.type.data.width}x${mdev.type.data.height})`);
          },
          remove(mdev) {
            return mdev.unregisterVfioDevice();
          },
        },
      });
      handles.set(api, { parent });
    },
  };
}
