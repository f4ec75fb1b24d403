/**
 * PCI config-space helpers and `pciFunctionFromConfig`: a passive PCI function built from a captured config space
 * (the bytes of a sysfs `config` file) whose registers behave like hardware — BAR sizing, writable bits per wmask,
 * RW1C bits per w1cmask, FLR through the PCIe/AF control registers, PM reset on D3hot→D0 — and whose BARs are
 * sparse RAM.
 */
import type { PciBarInfo, PciFunction } from '@vfio-ts/platform';
import {
  PCI_ACS_CTRL,
  PCI_AF_CTRL,
  PCI_BASE_ADDRESS_0,
  PCI_BRIDGE_CONTROL,
  PCI_CACHE_LINE_SIZE,
  PCI_CAPABILITY_LIST,
  PCI_CAP_ID_AF,
  PCI_CAP_ID_EXP,
  PCI_CAP_ID_MSI,
  PCI_CAP_ID_MSIX,
  PCI_CAP_ID_PM,
  PCI_CLASS_PROG,
  PCI_COMMAND,
  PCI_DEVICE_ID,
  PCI_ERR_CAP,
  PCI_ERR_COR_MASK,
  PCI_ERR_COR_STATUS,
  PCI_ERR_UNCOR_MASK,
  PCI_ERR_UNCOR_SEVER,
  PCI_ERR_UNCOR_STATUS,
  PCI_EXP_DEVCTL,
  PCI_EXP_DEVCTL2,
  PCI_EXP_DEVSTA,
  PCI_EXP_FLAGS,
  PCI_EXP_FLAGS_VERS,
  PCI_EXP_LNKCTL,
  PCI_EXP_LNKSTA,
  PCI_EXP_TYPE_DOWNSTREAM,
  PCI_EXP_TYPE_ENDPOINT,
  PCI_EXP_TYPE_LEG_END,
  PCI_EXP_TYPE_PCIE_BRIDGE,
  PCI_EXP_TYPE_PCI_BRIDGE,
  PCI_EXP_TYPE_RC_EC,
  PCI_EXP_TYPE_RC_END,
  PCI_EXP_TYPE_ROOT_PORT,
  PCI_EXP_TYPE_UPSTREAM,
  PCI_EXT_CAP_ID_ACS,
  PCI_EXT_CAP_ID_ERR,
  PCI_HEADER_TYPE,
  PCI_INTERRUPT_LINE,
  PCI_INTERRUPT_PIN,
  PCI_IO_BASE,
  PCI_IO_BASE_UPPER16,
  PCI_LATENCY_TIMER,
  PCI_MEMORY_BASE,
  PCI_MSIX_FLAGS,
  PCI_MSI_ADDRESS_HI,
  PCI_MSI_ADDRESS_LO,
  PCI_MSI_DATA_32,
  PCI_MSI_DATA_64,
  PCI_MSI_FLAGS,
  PCI_MSI_FLAGS_64BIT,
  PCI_MSI_FLAGS_ENABLE,
  PCI_MSI_FLAGS_MASKBIT,
  PCI_MSI_FLAGS_QSIZE,
  PCI_MSI_MASK_32,
  PCI_MSI_MASK_64,
  PCI_PM_CTRL,
  PCI_PM_CTRL_PME_STATUS,
  PCI_PREF_BASE_UPPER32,
  PCI_PREF_LIMIT_UPPER32,
  PCI_PREF_MEMORY_BASE,
  PCI_PRIMARY_BUS,
  PCI_REVISION_ID,
  PCI_ROM_ADDRESS,
  PCI_ROM_ADDRESS1,
  PCI_SEC_LATENCY_TIMER,
  PCI_STATUS,
  PCI_STATUS_CAP_LIST,
  PCI_STATUS_ERROR_BITS,
  PCI_SUBSYSTEM_ID,
  PCI_SUBSYSTEM_VENDOR_ID,
  PCI_VENDOR_ID,
  pciExtCapId,
  pciExtCapNext,
  sysError,
} from '@vfio-ts/uapi';

/**
 * Standard config-space offsets and capability ids (include/uapi/linux/pci_regs.h) under short names; the values
 * come from `@vfio-ts/uapi`, their one home.
 */
export const PCI = {
  VENDOR_ID: PCI_VENDOR_ID,
  DEVICE_ID: PCI_DEVICE_ID,
  COMMAND: PCI_COMMAND,
  STATUS: PCI_STATUS,
  STATUS_CAP_LIST: PCI_STATUS_CAP_LIST,
  REVISION_ID: PCI_REVISION_ID,
  CLASS_PROG: PCI_CLASS_PROG,
  CACHE_LINE_SIZE: PCI_CACHE_LINE_SIZE,
  LATENCY_TIMER: PCI_LATENCY_TIMER,
  HEADER_TYPE: PCI_HEADER_TYPE,
  BASE_ADDRESS_0: PCI_BASE_ADDRESS_0,
  SUBSYSTEM_VENDOR_ID: PCI_SUBSYSTEM_VENDOR_ID,
  SUBSYSTEM_ID: PCI_SUBSYSTEM_ID,
  ROM_ADDRESS: PCI_ROM_ADDRESS,
  ROM_ADDRESS1: PCI_ROM_ADDRESS1,
  CAPABILITY_LIST: PCI_CAPABILITY_LIST,
  INTERRUPT_LINE: PCI_INTERRUPT_LINE,
  INTERRUPT_PIN: PCI_INTERRUPT_PIN,
  CAP_ID_PM: PCI_CAP_ID_PM,
  CAP_ID_MSI: PCI_CAP_ID_MSI,
  CAP_ID_EXP: PCI_CAP_ID_EXP,
  CAP_ID_MSIX: PCI_CAP_ID_MSIX,
  CAP_ID_AF: PCI_CAP_ID_AF,
  EXT_CAP_ID_ERR: PCI_EXT_CAP_ID_ERR,
  EXT_CAP_ID_ACS: PCI_EXT_CAP_ID_ACS,
  /** PCIe capability: port types (flags bits 7:4). */
  EXP_TYPE_ENDPOINT: PCI_EXP_TYPE_ENDPOINT,
  EXP_TYPE_LEG_END: PCI_EXP_TYPE_LEG_END,
  EXP_TYPE_ROOT_PORT: PCI_EXP_TYPE_ROOT_PORT,
  EXP_TYPE_UPSTREAM: PCI_EXP_TYPE_UPSTREAM,
  EXP_TYPE_DOWNSTREAM: PCI_EXP_TYPE_DOWNSTREAM,
  EXP_TYPE_PCI_BRIDGE: PCI_EXP_TYPE_PCI_BRIDGE,
  EXP_TYPE_PCIE_BRIDGE: PCI_EXP_TYPE_PCIE_BRIDGE,
  EXP_TYPE_RC_END: PCI_EXP_TYPE_RC_END,
  EXP_TYPE_RC_EC: PCI_EXP_TYPE_RC_EC,
} as const;

/** Reads config space through a function's accessor. */
export type ConfigReader = (offset: number, size: 1 | 2 | 4) => number;

/** Offset of the first standard capability with `id`, or 0. */
export function findCapability(read: ConfigReader, id: number): number {
  if ((read(PCI.STATUS, 2) & PCI.STATUS_CAP_LIST) === 0) return 0;
  let pos = read(PCI.CAPABILITY_LIST, 1) & 0xfc;
  for (let ttl = 48; pos >= 0x40 && ttl > 0; ttl--) {
    if (read(pos, 1) === id) return pos;
    pos = read(pos + 1, 1) & 0xfc;
  }
  return 0;
}

/** Every standard capability as [id, offset], in chain order. */
export function listCapabilities(read: ConfigReader): [number, number][] {
  const out: [number, number][] = [];
  if ((read(PCI.STATUS, 2) & PCI.STATUS_CAP_LIST) === 0) return out;
  let pos = read(PCI.CAPABILITY_LIST, 1) & 0xfc;
  for (let ttl = 48; pos >= 0x40 && ttl > 0; ttl--) {
    out.push([read(pos, 1), pos]);
    pos = read(pos + 1, 1) & 0xfc;
  }
  return out;
}

/** Every extended capability as [id, offset] (config spaces of 4096 bytes only). */
export function listExtCapabilities(read: ConfigReader, cfgSize: number): [number, number][] {
  const out: [number, number][] = [];
  if (cfgSize <= 256) return out;
  let pos = 0x100;
  for (let ttl = (4096 - 256) / 8; ttl > 0; ttl--) {
    const header = read(pos, 4) >>> 0;
    if (header === 0 || header === 0xffffffff) break;
    out.push([pciExtCapId(header), pos]);
    pos = pciExtCapNext(header);
    if (pos < 0x100) break;
  }
  return out;
}

/** Offset of the extended capability `id`, or 0. */
export function findExtCapability(read: ConfigReader, cfgSize: number, id: number): number {
  return listExtCapabilities(read, cfgSize).find(([cid]) => cid === id)?.[1] ?? 0;
}

/** One BAR of a `pciFunctionFromConfig` spec. */
export interface BarSpec {
  readonly index: number;
  readonly type: 'mem32' | 'mem64' | 'mem32-pref' | 'mem64-pref' | 'io';
  readonly size: bigint | number;
  /** Alternative to the `-pref` type suffix. */
  readonly prefetchable?: boolean;
}

/** Options of {@link pciFunctionFromConfig}. */
export interface PciFunctionFromConfigOptions {
  /** Captured config space: 256 bytes (conventional PCI) or 4096 bytes (PCIe), as read from sysfs `config`. */
  readonly config: Uint8Array;
  /** BARs, as objects or as a SPEC string 'index:type:size,...,rom:size' (e.g. '0:mem32:0x100000,rom:0x40000'). */
  readonly bars: readonly BarSpec[] | string;
  /** Expansion ROM: its size, or its contents (size rounded up to a power of two, at least 2 KiB). */
  readonly rom?: bigint | number | Uint8Array;
  /** Writable bits per byte; default: a mask derived from the header and capabilities (see README). */
  readonly wmask?: Uint8Array;
  /** Write-1-to-clear bits per byte; default: the status register's error bits and capability status bits. */
  readonly w1cmask?: Uint8Array;
}

const BAR_TYPES = ['mem32', 'mem64', 'mem32-pref', 'mem64-pref', 'io'] as const;

/**
 * Bytes of the AER capability after its header up to the Root Error Command register: status, mask, severity,
 * control and header log are sticky (RW1CS/RWS/ROS, PCIe r6.0 §7.8.4), so FLR, a hot reset and the D3hot→D0 soft
 * reset leave them alone.
 */
const AER_STICKY = [0x04, 0x2c] as const;

function parseSize(text: string): bigint {
  const m = /^(0x[0-9a-f]+|\d+)([kmgt]?)$/i.exec(text.trim());
  if (!m) throw sysError('EINVAL', `bad size '${text}'`);
  const unit = { '': 0n, k: 10n, m: 20n, g: 30n, t: 40n }[m[2]!.toLowerCase()] ?? 0n;
  return BigInt(m[1]!) << unit;
}

/** Parses a BAR SPEC string ('0:mem32:0x100000,2:io:0x20,rom:0x40000'). */
export function parseBarSpec(spec: string): { bars: BarSpec[]; romSize: bigint } {
  const bars: BarSpec[] = [];
  let romSize = 0n;
  for (const part of spec.split(',').map((s) => s.trim()).filter((s) => s.length > 0)) {
    const fields = part.split(':');
    if (fields[0] === 'rom' && fields.length === 2) {
      romSize = parseSize(fields[1]!);
      continue;
    }
    if (fields.length !== 3 || !/^[0-5]$/.test(fields[0]!)) throw sysError('EINVAL', `bad BAR spec '${part}'`);
    const type = fields[1] as BarSpec['type'];
    if (!BAR_TYPES.includes(type)) throw sysError('EINVAL', `bad BAR type '${fields[1]!}'`);
    bars.push({ index: Number(fields[0]), type, size: parseSize(fields[2]!) });
  }
  return { bars, romSize };
}

const isPow2 = (n: bigint): boolean => n > 0n && (n & (n - 1n)) === 0n;

/** A BAR after validation. */
interface Bar extends PciBarInfo {
  readonly is64: boolean;
}

/** Sparse byte store: 4 KiB chunks allocated on first write. */
class SparseRam {
  private readonly chunks = new Map<number, Uint8Array>();
  constructor(readonly size: bigint) {}
  read(offset: bigint, length: number): Uint8Array {
    this.check(offset, length);
    const out = new Uint8Array(length);
    let at = Number(offset);
    let done = 0;
    while (done < length) {
      const c = Math.floor(at / 4096);
      const off = at % 4096;
      const n = Math.min(length - done, 4096 - off);
      const chunk = this.chunks.get(c);
      if (chunk) out.set(chunk.subarray(off, off + n), done);
      done += n;
      at += n;
    }
    return out;
  }
  write(offset: bigint, data: Uint8Array): void {
    this.check(offset, data.length);
    let at = Number(offset);
    let done = 0;
    while (done < data.length) {
      const c = Math.floor(at / 4096);
      const off = at % 4096;
      const n = Math.min(data.length - done, 4096 - off);
      let chunk = this.chunks.get(c);
      if (!chunk) {
        chunk = new Uint8Array(4096);
        this.chunks.set(c, chunk);
      }
      chunk.set(data.subarray(done, done + n), off);
      done += n;
      at += n;
    }
  }
  private check(offset: bigint, length: number): void {
    if (offset < 0n || length < 0 || offset + BigInt(length) > this.size) {
      throw sysError('EINVAL', `access 0x${offset.toString(16)}+${length} outside a ${this.size}-byte region`);
    }
  }
}

function setMask(mask: Uint8Array, offset: number, size: number, value: number): void {
  for (let i = 0; i < size; i++) mask[offset + i] = (value >>> (8 * i)) & 0xff;
}

/**
 * A passive PCI function whose config space behaves like hardware. Built by {@link pciFunctionFromConfig}; extra
 * members (`configBytes`, `onReset`) serve tests and wrappers.
 */
export class ConfigSpaceFunction implements PciFunction {
  readonly bars: readonly PciBarInfo[];
  readonly romSize: bigint;
  /** Size of the config space (256 conventional, 4096 PCIe). */
  readonly configSize: number;
  private readonly cfg: Uint8Array;
  private readonly powerOn: Uint8Array;
  /** [start, end) byte ranges a reset keeps (sticky registers). */
  private readonly sticky: [number, number][] = [];
  private readonly wmask: Uint8Array;
  private readonly w1cmask: Uint8Array;
  private readonly barRam: (SparseRam | undefined)[] = [];
  private readonly romData: Uint8Array;
  private readonly pmCap: number;
  private readonly expCap: number;
  private readonly afCap: number;
  /** Resets performed, by kind, for tests. */
  readonly resets: ('flr' | 'pm' | 'bus')[] = [];
  /** Called after every reset (wrappers reset their own state here). */
  onReset: ((kind: 'flr' | 'pm' | 'bus') => void) | undefined;

  constructor(options: PciFunctionFromConfigOptions) {
    const config = options.config;
    if (config.length !== 256 && config.length !== 4096) {
      throw sysError('EINVAL', 'config must hold 256 or 4096 bytes');
    }
    this.cfg = new Uint8Array(4096);
    this.cfg.set(config);
    const read: ConfigReader = (o, s) => this.raw(o, s);
    const headerType = this.cfg[PCI.HEADER_TYPE]! & 0x7f;
    const nbars = headerType === 0 ? 6 : headerType === 1 ? 2 : 0;
    this.expCap = findCapability(read, PCI.CAP_ID_EXP);
    this.pmCap = findCapability(read, PCI.CAP_ID_PM);
    this.afCap = findCapability(read, PCI.CAP_ID_AF);
    this.configSize = config.length === 4096 && this.expCap !== 0 ? 4096 : 256;

    // BARs.
    let specs: readonly BarSpec[];
    let romSize = 0n;
    if (typeof options.bars === 'string') {
      const parsed = parseBarSpec(options.bars);
      specs = parsed.bars;
      romSize = parsed.romSize;
    } else specs = options.bars;
    const bars: Bar[] = [];
    const used = new Set<number>();
    for (const s of specs) {
      const size = BigInt(s.size);
      if (!Number.isInteger(s.index) || s.index < 0 || s.index >= nbars) throw sysError('EINVAL', `bad BAR index ${s.index}`);
      if (!BAR_TYPES.includes(s.type)) throw sysError('EINVAL', `bad BAR type ${s.type}`);
      const is64 = s.type.startsWith('mem64');
      const io = s.type === 'io';
      if (!isPow2(size)) throw sysError('EINVAL', `BAR ${s.index} size must be a power of two`);
      if (io ? size < 4n || size > 256n : size < 16n) throw sysError('EINVAL', `BAR ${s.index} size out of range`);
      if (!is64 && !io && size > 1n << 31n) throw sysError('EINVAL', `32-bit BAR ${s.index} too large`);
      if (used.has(s.index) || (is64 && (s.index + 1 >= nbars || used.has(s.index + 1)))) {
        throw sysError('EINVAL', `BAR ${s.index} overlaps another BAR`);
      }
      used.add(s.index);
      if (is64) used.add(s.index + 1);
      bars.push({
        index: s.index,
        type: io ? 'io' : is64 ? 'mem64' : 'mem32',
        prefetchable: !io && (s.type.endsWith('-pref') || s.prefetchable === true),
        size,
        is64,
      });
    }
    const rom = options.rom;
    let romContents: Uint8Array = new Uint8Array(0);
    if (rom instanceof Uint8Array) {
      romContents = rom;
      let sz = 2048n;
      while (sz < BigInt(rom.length)) sz <<= 1n;
      if (romSize < sz) romSize = sz;
    } else if (rom !== undefined) romSize = BigInt(rom);
    if (romSize !== 0n && (!isPow2(romSize) || romSize < 2048n || romSize > 1n << 31n)) {
      throw sysError('EINVAL', 'ROM size must be a power of two of at least 2 KiB');
    }
    this.romSize = romSize;
    this.romData = romContents;

    // wmask / w1cmask: caller's, or the default; BAR and ROM masks always follow the BAR list.
    this.wmask = options.wmask ? this.copyMask(options.wmask) : this.defaultWmask(read, headerType);
    this.w1cmask = options.w1cmask ? this.copyMask(options.w1cmask) : this.defaultW1cmask(read);
    for (let i = 0; i < nbars; i++) setMask(this.wmask, PCI.BASE_ADDRESS_0 + 4 * i, 4, 0);
    for (let i = 0; i < nbars; i++) {
      const reg = PCI.BASE_ADDRESS_0 + 4 * i;
      const b = bars.find((x) => x.index === i);
      if (!b) {
        if (!bars.some((x) => x.is64 && x.index + 1 === i)) setMask(this.cfg, reg, 4, 0); // unimplemented reads 0
        continue;
      }
      const typeBits = b.type === 'io' ? 0x1 : (b.is64 ? 0x4 : 0) | (b.prefetchable ? 0x8 : 0);
      const addrMask = ~(b.size - 1n);
      const low = Number(addrMask & (b.type === 'io' ? 0xfffffffcn : 0xfffffff0n));
      setMask(this.wmask, reg, 4, low);
      setMask(this.cfg, reg, 4, ((this.raw(reg, 4) & low) | typeBits) >>> 0);
      if (b.is64) {
        const high = Number((addrMask >> 32n) & 0xffffffffn);
        setMask(this.wmask, reg + 4, 4, high);
        setMask(this.cfg, reg + 4, 4, (this.raw(reg + 4, 4) & high) >>> 0);
      }
      this.barRam[i] = new SparseRam(b.size);
    }
    const romReg = headerType === 1 ? PCI.ROM_ADDRESS1 : PCI.ROM_ADDRESS;
    if (headerType <= 1) {
      const romMask = romSize === 0n ? 0 : Number(~(romSize - 1n) & 0xfffff800n) | 1;
      setMask(this.wmask, romReg, 4, romMask);
      setMask(this.cfg, romReg, 4, (this.raw(romReg, 4) & romMask) >>> 0);
    }
    this.bars = Array.from({ length: 6 }, (_, i): PciBarInfo => {
      const b = bars.find((x) => x.index === i);
      return b
        ? { index: i, type: b.type, prefetchable: b.prefetchable, size: b.size }
        : { index: i, type: 'mem32', prefetchable: false, size: 0n };
    });
    // Power-on state: every writable bit clear (BARs unassigned, decoding off), status bits clear; sticky registers
    // are not reset at all.
    this.powerOn = new Uint8Array(4096);
    for (let i = 0; i < 4096; i++) this.powerOn[i] = this.cfg[i]! & ~this.wmask[i]! & ~this.w1cmask[i]!;
    const aer = findExtCapability(read, this.configSize, PCI.EXT_CAP_ID_ERR);
    if (aer) this.sticky.push([aer + AER_STICKY[0], aer + AER_STICKY[1]]);
  }

  private copyMask(m: Uint8Array): Uint8Array {
    if (m.length !== 256 && m.length !== 4096) throw sysError('EINVAL', 'masks must hold 256 or 4096 bytes');
    const out = new Uint8Array(4096);
    out.set(m);
    return out;
  }

  private defaultWmask(read: ConfigReader, headerType: number): Uint8Array {
    const m = new Uint8Array(4096);
    // Command: I/O, memory, bus master, parity, SERR, INTx disable (QEMU's pci_init_wmask).
    setMask(m, PCI.COMMAND, 2, 0x0547);
    m[PCI.CACHE_LINE_SIZE] = 0xff;
    m[PCI.LATENCY_TIMER] = 0xff;
    m[PCI.INTERRUPT_LINE] = 0xff;
    if (headerType === 1) {
      setMask(m, PCI_PRIMARY_BUS, 3, 0xffffff); // primary, secondary, subordinate bus
      m[PCI_SEC_LATENCY_TIMER] = 0xff;
      setMask(m, PCI_IO_BASE, 2, 0xf0f0); // I/O base/limit
      setMask(m, PCI_MEMORY_BASE, 4, 0xfff0fff0); // memory base/limit
      setMask(m, PCI_PREF_MEMORY_BASE, 4, 0xfff0fff0); // prefetchable base/limit
      setMask(m, PCI_PREF_BASE_UPPER32, 4, 0xffffffff);
      setMask(m, PCI_PREF_LIMIT_UPPER32, 4, 0xffffffff);
      setMask(m, PCI_IO_BASE_UPPER16, 4, 0xffffffff); // I/O base/limit upper 16
      setMask(m, PCI_BRIDGE_CONTROL, 2, 0x0fff);
    }
    for (const [id, pos] of listCapabilities(read)) {
      switch (id) {
        case PCI.CAP_ID_PM:
          setMask(m, pos + PCI_PM_CTRL, 2, 0x0103); // PMCSR: PowerState, PME_En
          break;
        case PCI.CAP_ID_MSI: {
          const ctrl = read(pos + PCI_MSI_FLAGS, 2);
          setMask(m, pos + PCI_MSI_FLAGS, 2, PCI_MSI_FLAGS_ENABLE | PCI_MSI_FLAGS_QSIZE);
          setMask(m, pos + PCI_MSI_ADDRESS_LO, 4, 0xfffffffc);
          const is64 = (ctrl & PCI_MSI_FLAGS_64BIT) !== 0;
          if (is64) setMask(m, pos + PCI_MSI_ADDRESS_HI, 4, 0xffffffff);
          setMask(m, pos + (is64 ? PCI_MSI_DATA_64 : PCI_MSI_DATA_32), 2, 0xffff);
          if (ctrl & PCI_MSI_FLAGS_MASKBIT) setMask(m, pos + (is64 ? PCI_MSI_MASK_64 : PCI_MSI_MASK_32), 4, 0xffffffff);
          break;
        }
        case PCI.CAP_ID_MSIX:
          setMask(m, pos + PCI_MSIX_FLAGS, 2, 0xc000); // enable, function mask
          break;
        case PCI.CAP_ID_EXP:
          setMask(m, pos + PCI_EXP_DEVCTL, 2, 0xffff); // device control (bit 15 initiates FLR)
          setMask(m, pos + PCI_EXP_LNKCTL, 2, 0x0fc3);
          if ((read(pos + PCI_EXP_FLAGS, 2) & PCI_EXP_FLAGS_VERS) >= 2) setMask(m, pos + PCI_EXP_DEVCTL2, 2, 0x043f);
          break;
        case PCI.CAP_ID_AF:
          m[pos + PCI_AF_CTRL] = 0x01; // initiate FLR
          break;
      }
    }
    for (const [id, pos] of listExtCapabilities(read, this.configSize)) {
      if (id === PCI.EXT_CAP_ID_ERR) {
        setMask(m, pos + PCI_ERR_UNCOR_MASK, 4, 0xffffffff);
        setMask(m, pos + PCI_ERR_UNCOR_SEVER, 4, 0xffffffff);
        setMask(m, pos + PCI_ERR_COR_MASK, 4, 0xffffffff);
        setMask(m, pos + PCI_ERR_CAP, 4, 0x00000140); // ECRC generation / check enable
      } else if (id === PCI.EXT_CAP_ID_ACS) {
        setMask(m, pos + PCI_ACS_CTRL, 2, 0x007f);
      }
    }
    return m;
  }

  private defaultW1cmask(read: ConfigReader): Uint8Array {
    const m = new Uint8Array(4096);
    // Status: master data parity, signalled/received target abort, received master abort, SERR, parity.
    setMask(m, PCI.STATUS, 2, PCI_STATUS_ERROR_BITS);
    for (const [id, pos] of listCapabilities(read)) {
      if (id === PCI.CAP_ID_PM) setMask(m, pos + PCI_PM_CTRL, 2, PCI_PM_CTRL_PME_STATUS);
      if (id === PCI.CAP_ID_EXP) {
        setMask(m, pos + PCI_EXP_DEVSTA, 2, 0x000f); // device status error bits
        setMask(m, pos + PCI_EXP_LNKSTA, 2, 0xc000); // link bandwidth management / autonomous bandwidth status
      }
    }
    for (const [id, pos] of listExtCapabilities(read, this.configSize)) {
      if (id === PCI.EXT_CAP_ID_ERR) {
        setMask(m, pos + PCI_ERR_UNCOR_STATUS, 4, 0xffffffff);
        setMask(m, pos + PCI_ERR_COR_STATUS, 4, 0xffffffff);
      }
    }
    return m;
  }

  private raw(offset: number, size: number): number {
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = v * 256 + this.cfg[offset + i]!;
    return v;
  }

  private checkAccess(offset: number, size: number): void {
    if (size !== 1 && size !== 2 && size !== 4) throw sysError('EINVAL', 'config access size must be 1, 2 or 4');
    if (!Number.isInteger(offset) || offset < 0 || offset + size > 4096 || offset % size !== 0) {
      throw sysError('EINVAL', `bad config access at 0x${offset.toString(16)}`);
    }
  }

  configRead(offset: number, size: 1 | 2 | 4): number {
    this.checkAccess(offset, size);
    return this.raw(offset, size);
  }

  configWrite(offset: number, size: 1 | 2 | 4, value: number): void {
    this.checkAccess(offset, size);
    const pmState = this.pmCap ? this.raw(this.pmCap + 4, 1) & 3 : 0;
    for (let i = 0; i < size; i++) {
      const o = offset + i;
      const b = (value >>> (8 * i)) & 0xff;
      const w = this.wmask[o]!;
      this.cfg[o] = ((this.cfg[o]! & ~w) | (b & w)) & ~(b & this.w1cmask[o]!);
    }
    this.afterWrite(offset, size, value, pmState);
  }

  /** Register side effects: FLR initiate bits, the D3hot→D0 transition. */
  private afterWrite(offset: number, size: number, value: number, oldPmState: number): void {
    const touches = (reg: number, len: number): boolean => offset < reg + len && reg < offset + size;
    const byteAt = (reg: number): number => (value >>> (8 * (reg - offset))) & 0xff;
    if (this.expCap && touches(this.expCap + 9, 1)) {
      const devctlHigh = this.expCap + 9;
      if (byteAt(devctlHigh) & 0x80) {
        this.cfg[devctlHigh] = this.cfg[devctlHigh]! & 0x7f; // BCR_FLR always reads 0
        if (this.raw(this.expCap + 4, 4) & (1 << 28)) this.reset('flr');
        return;
      }
    }
    if (this.afCap && touches(this.afCap + 4, 1) && byteAt(this.afCap + 4) & 1) {
      this.cfg[this.afCap + 4] = this.cfg[this.afCap + 4]! & ~1;
      if ((this.raw(this.afCap + 3, 1) & 3) === 3) this.reset('flr');
      return;
    }
    if (this.pmCap && touches(this.pmCap + 4, 1)) {
      const state = this.raw(this.pmCap + 4, 1) & 3;
      const noSoftReset = (this.raw(this.pmCap + 4, 1) & 0x08) !== 0;
      if (oldPmState === 3 && state === 0 && !noSoftReset) this.reset('pm');
    }
  }

  reset(kind: 'flr' | 'pm' | 'bus'): void {
    const kept = this.sticky.map(([start, end]) => this.cfg.slice(start, end));
    this.cfg.set(this.powerOn);
    this.sticky.forEach(([start], i) => {
      this.cfg.set(kept[i]!, start);
    });
    this.resets.push(kind);
    this.onReset?.(kind);
  }

  barRead(bar: number, offset: bigint, length: number): Uint8Array {
    const ram = this.barRam[bar];
    if (!ram) throw sysError('EINVAL', `BAR ${bar} is not implemented`);
    return ram.read(offset, length);
  }

  barWrite(bar: number, offset: bigint, data: Uint8Array): void {
    const ram = this.barRam[bar];
    if (!ram) throw sysError('EINVAL', `BAR ${bar} is not implemented`);
    ram.write(offset, data);
  }

  romRead(offset: bigint, length: number): Uint8Array {
    if (offset < 0n || length < 0 || offset + BigInt(length) > this.romSize) {
      throw sysError('EINVAL', 'access outside the ROM');
    }
    const out = new Uint8Array(length);
    const start = Number(offset);
    if (start < this.romData.length) out.set(this.romData.subarray(start, Math.min(this.romData.length, start + length)));
    return out;
  }

  /**
   * Sets or clears Status bit 3 (Interrupt Status), which the hardware owns (config writes cannot change it). A
   * model built on this function calls it with the INTx level it raises, so PCI 2.3 INTx masking sees it.
   */
  setInterruptStatus(pending: boolean): void {
    this.cfg[PCI.STATUS] = pending ? this.cfg[PCI.STATUS]! | 0x08 : this.cfg[PCI.STATUS]! & ~0x08;
  }

  /** A copy of the whole config space (`configSize` bytes). */
  configBytes(): Uint8Array {
    return this.cfg.slice(0, this.configSize);
  }
}

/**
 * Makes a passive PCI function from a captured config space. BAR registers implement sizing (writing all ones
 * reads back the size mask with the type bits; 64-bit BARs span two registers; the ROM BAR has its enable bit),
 * bits outside `wmask` are read-only, bits in `w1cmask` clear when written with 1, and BAR memory is sparse RAM
 * (reads return what was written, zeros at first).
 */
export function pciFunctionFromConfig(options: PciFunctionFromConfigOptions): ConfigSpaceFunction {
  return new ConfigSpaceFunction(options);
}
