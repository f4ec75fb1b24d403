/**
 * Config-space virtualization: what Linux 6.12's vfio-pci shows user space through the CONFIG region
 * (drivers/vfio/pci/vfio_pci_config.c; inventory §3.2, checklist P15–P28 of §8.4).
 *
 * The model keeps a virtual copy of config space (`vconfig`) and a byte map telling which capability owns each
 * byte. Every access is cut into naturally aligned 1/2/4-byte pieces that never leave a dword or a capability;
 * each piece goes through that capability's permission bits and handlers. Unclaimed bytes pass straight to the
 * device; hidden capabilities are unlinked from both chains.
 */
import { sysError } from '@vfio-ts/uapi';
import type { PciBarInfo, PciFunction } from '@vfio-ts/platform';
import { VARIABLE, extendedCapLength, standardCapLength } from './lengths.js';
import * as P from './perms.js';
import type { PermBits } from './perms.js';
import * as R from './regs.js';

/** Map byte of the standard header (Linux's fake PCI_CAP_ID_BASIC). */
const MAP_BASIC = 0;
/** Map byte of bytes no capability claims: raw access (PCI_CAP_ID_INVALID). */
const MAP_UNASSIGNED = 0xff;
/** Map byte of purely virtual bytes (PCI_CAP_ID_INVALID_VIRT). */
const MAP_VIRTUAL = 0xfe;

/** PCI power states D0..D3hot as the PowerState field encodes them. */
export type PciPowerState = 0 | 1 | 2 | 3;

/** Which interrupt type vfio-pci has enabled through SET_IRQS (Linux `irq_type`). */
export type VfioPciIrqType = 'none' | 'intx' | 'msi' | 'msix';

/**
 * Side effects a config write triggers outside config space. vfio-pci supplies them; each is optional and
 * has the default named in its description.
 */
export interface VfioPciConfigHooks {
  /**
   * Memory decoding is about to go away (COMMAND.MEM cleared, FLR, a move to D3hot): zap the user's BAR
   * mappings so they fault again later. Default: nothing.
   */
  zapBarMappings?(): void;
  /** The user's INTx-disable bit changed: mask (`true`) or unmask INTx. Default: nothing. */
  intxMask?(masked: boolean): void;
  /**
   * The user wrote PowerState (PM capability). vfio-pci changes the state itself (saving and restoring state
   * around D3hot for NoSoftRst- devices). Return `false` when the change was refused, so {@link
   * VfioPciConfig.powerState} keeps the old state (the user's write still succeeds, as in Linux). Default: write
   * the PowerState bits of the device, refusing D1/D2 when the PM capability does not claim them (as
   * pci_set_power_state does).
   */
  setPowerState?(state: PciPowerState): boolean | void;
  /** The user requested a function-level reset (PCIe DEVCTL or AF CTRL, on a device able to FLR). Default: nothing. */
  resetFunction?(): void;
  /** Reads one VPD dword at `address`; `undefined` means the read failed (the completion flag is then not toggled). */
  vpdRead?(address: number): number | undefined;
  /** Writes one VPD dword; `false` means the write failed. */
  vpdWrite?(address: number, data: number): boolean;
}

/** How to present a function; every field is optional. */
export interface VfioPciConfigOptions {
  /**
   * Set for an SR-IOV virtual function: its hardware vendor/device IDs read 0xffff, so the real ones are given
   * here; its interrupt pin reads 0; its memory-enable bit is virtual.
   */
  readonly virtfn?: { readonly vendor: number; readonly device: number };
  /** The COMMAND memory-enable bit is not implemented (Linux `no_command_memory`); default: true for VFs. */
  readonly noCommandMemory?: boolean;
  /** INTx can be offered (an IRQ is routed and INTx support is built in); false reports pin 0. Default true. */
  readonly intx?: boolean;
  /** The device is on vfio-pci's broken-INTx list (`nointx`): pin 0 and DisINTx kept set on BAR restore. */
  readonly nointx?: boolean;
  /** Config space size; default 4096 for PCI Express (and PCI-X mode 2) functions, else 256. */
  readonly configSize?: 256 | 4096;
  /** Length of a platform shadow ROM (Linux `pdev->romlen`), used for ROM sizing when the device has no ROM BAR. */
  readonly shadowRomSize?: number;
  /** Side effects of config writes (FLR, power state, INTx masking, BAR zapping, VPD). */
  readonly hooks?: VfioPciConfigHooks;
}

/** One capability found while building the map. */
export interface VfioPciCapabilityInfo {
  /** Capability ID (standard or extended). */
  readonly id: number;
  /** Config-space offset of its header. */
  readonly offset: number;
  /** Bytes it claims in the map (0 when hidden). */
  readonly length: number;
  readonly extended: boolean;
  /** Unlinked from the user's chain (its bytes stay raw); an extended one at 0x100 becomes a placeholder header. */
  readonly hidden: boolean;
}

/** What the user programmed into the virtual MSI capability; vfio-pci reads it when enabling MSI. */
export interface VfioPciMsiState {
  /** Offset of the MSI capability. */
  readonly offset: number;
  /** The virtual Message Control word. */
  readonly flags: number;
  /** ENABLE as the user sees it (only set while MSI is enabled through SET_IRQS). */
  readonly enabled: boolean;
  /** Multiple Message Enable (QSIZE field, log2 of the vector count). */
  readonly multipleMessageEnable: number;
  /** Multiple Message Capable (QMASK field) as reported. */
  readonly multipleMessageCapable: number;
  readonly address: bigint;
  readonly data: number;
  readonly is64Bit: boolean;
  readonly perVectorMasking: boolean;
}

type ReadFn = (perm: Perm, pos: number, count: number, offset: number) => number;
type WriteFn = (perm: Perm, pos: number, count: number, offset: number, value: number) => void;

/** Permission bits plus handlers of one capability kind (Linux struct perm_bits). */
interface Perm {
  readonly bits: PermBits | undefined;
  readonly read: ReadFn;
  readonly write: WriteFn | undefined;
}


/**
 * Module copies of the namespace-imported registers {@link VfioPciConfig.memoryEnabled} reads on every BAR
 * access: an imported binding is a load and check per use, a module constant folds into the compiled code.
 */
const COMMAND = R.PCI_COMMAND;
const COMMAND_MEMORY = R.PCI_COMMAND_MEMORY;

/** {@link VfioPciConfig}'s per-dword read descriptors: take the handler / vconfig only / vconfig and device. */
const DW_SLOW = 0;
const DW_VIRTUAL = 1;
const DW_MIXED = 2;

function widthMask(count: number): number {
  return count === 4 ? 0xffffffff : (1 << (count * 8)) - 1;
}

function getLE(buf: Uint8Array, offset: number, count: number): number {
  // The common dword inside the buffer without the per-byte bounds handling below.
  if (count === 4 && offset >= 0 && offset + 4 <= buf.length) {
    return (buf[offset]! | (buf[offset + 1]! << 8) | (buf[offset + 2]! << 16) | (buf[offset + 3]! << 24)) >>> 0;
  }
  let v = 0;
  for (let i = count - 1; i >= 0; i--) v = v * 256 + (buf[offset + i] ?? 0);
  return v;
}

/** A 1/2/4-byte little-endian value from a view the piece is known to lie inside (one inlined load). */
function viewLE(view: DataView, offset: number, count: number): number {
  return count === 4 ? view.getUint32(offset, true) : count === 2 ? view.getUint16(offset, true) : view.getUint8(offset);
}

function setLE(buf: Uint8Array, offset: number, count: number, value: number): void {
  for (let i = 0; i < count; i++) {
    if (offset + i < buf.length) buf[offset + i] = (value >>> (8 * i)) & 0xff;
  }
}

function bit(word: number, b: number): boolean {
  return (word & b) !== 0;
}

function isBarOffset(offset: number): boolean {
  return (offset >= R.PCI_BASE_ADDRESS_0 && offset < R.PCI_BASE_ADDRESS_5 + 4) ||
    (offset >= R.PCI_ROM_ADDRESS && offset < R.PCI_ROM_ADDRESS + 4);
}

function roundUpPow2(n: bigint): bigint {
  let p = 1n;
  while (p < n) p <<= 1n;
  return p;
}

/**
 * The config space a vfio-pci user sees for one PCI function (Linux 6.12 semantics, inventory §3.2).
 *
 * Built once per open from the function's current config space: the capability map, the virtual copy and the
 * saved BARs are captured at construction. {@link readBytes}/{@link writeBytes} are the CONFIG region's
 * pread/pwrite; {@link read}/{@link write} are sugar for one 1/2/4-byte access.
 */
export class VfioPciConfig {
  /** Config-space size in bytes (256 or 4096). */
  readonly size: number;
  /** The interrupt type vfio-pci has enabled; MSI writes keep ENABLE only while this is `'msi'`. */
  irqType: VfioPciIrqType = 'none';
  /** Current power state, kept by PowerState writes (and by vfio-pci when it changes state itself). */
  powerState: PciPowerState = 0;

  readonly #fn: PciFunction;
  readonly #hooks: VfioPciConfigHooks;
  readonly #isVirtfn: boolean;
  readonly #noCommandMemory: boolean;
  readonly #nointx: boolean;
  readonly #shadowRomSize: bigint;
  readonly #vconfig: Uint8Array;
  readonly #map: Uint8Array;
  /** BAR0–5 and ROM as the host programmed them, for restore after a backdoor reset. */
  readonly #rbar: number[] = [];
  readonly #caps: VfioPciCapabilityInfo[] = [];
  readonly #capPerms = new Map<number, Perm>();
  readonly #ecapPerms = new Map<number, Perm>();
  readonly #directPerm: Perm;
  readonly #rawPerm: Perm;
  readonly #virtPerm: Perm;
  #msiPerm: Perm | undefined;
  /**
   * Per config byte, worked out once after the map is built (neither the map nor the permission tables change
   * afterwards): the handler set owning the byte, the start of its capability (the piece's offset base), and how
   * many bytes from it up to the end of its dword keep the same map byte (the longest piece starting there).
   */
  #permAt: Perm[] = [];
  #startAt: Uint16Array = new Uint16Array(0);
  #runAt: Uint8Array = new Uint8Array(0);
  /**
   * Per aligned dword, worked out with the tables above: how a 4-byte read of it is answered when its handler is
   * a plain mask-combine ({@link DW_VIRTUAL}: all bits from vconfig; {@link DW_MIXED}: the bits of `#dwVirt` from
   * vconfig, the rest from the device — 0 for raw dwords) or {@link DW_SLOW} when it needs its handler (BARs,
   * capability headers of pass-through capabilities, dwords split between capabilities, ...).
   */
  #dwKind: Uint8Array = new Uint8Array(0);
  #dwVirt: Uint32Array = new Uint32Array(0);
  /**
   * The owning capability's permission bits laid out at absolute config offsets (0 where a table is shorter than
   * its capability), so a piece's masks are one aligned load; and a view of vconfig for the same reason.
   */
  #virtView: DataView = new DataView(new ArrayBuffer(0));
  #writeView: DataView = new DataView(new ArrayBuffer(0));
  readonly #vconfigView: DataView;
  #bardirty = true;
  #extendedCaps = false;
  #msiQmax = 0;
  #virqDisabled = false;

  constructor(fn: PciFunction, options: VfioPciConfigOptions = {}) {
    this.#fn = fn;
    this.#hooks = options.hooks ?? {};
    this.#isVirtfn = options.virtfn !== undefined;
    this.#noCommandMemory = options.noCommandMemory ?? this.#isVirtfn;
    this.#nointx = options.nointx ?? false;
    this.#shadowRomSize = BigInt(options.shadowRomSize ?? 0);
    this.size = options.configSize ?? this.#probeConfigSize();
    this.#vconfig = new Uint8Array(this.size);
    this.#vconfigView = new DataView(this.#vconfig.buffer);
    this.#map = new Uint8Array(this.size);

    this.#directPerm = { bits: undefined, read: this.#directRead, write: undefined };
    this.#rawPerm = { bits: undefined, read: this.#rawRead, write: this.#rawWrite };
    this.#virtPerm = { bits: undefined, read: this.#virtRead, write: this.#virtWrite };
    this.#buildPermTables();
    this.#init(options);
    this.#buildAccessTables();
  }

  // ---------------------------------------------------------------- public access (the CONFIG region)

  /**
   * Reads `length` bytes at `offset`, as a pread of the CONFIG region. EFAULT when the range leaves config
   * space; a zero-length read returns nothing without checking the offset (as Linux does).
   */
  readBytes(offset: number, length: number): Uint8Array {
    this.#checkRange(offset, length);
    const out = new Uint8Array(length);
    this.#readRange(offset, length, out);
    return out;
  }

  /**
   * {@link readBytes} into the first `length` bytes of `out` (default: all of it) without allocating: the CONFIG
   * region's pread into a caller's buffer. Same EFAULT rule; `out` shorter than `length` is EFAULT too.
   */
  readInto(offset: number, out: Uint8Array, length: number = out.length): void {
    // An aligned dword the descriptor table covers (nearly every register read): one device read at most, one
    // mask-combine, no per-byte loop and no handler dispatch. The offset is a non-negative integer below `size`
    // (a multiple of 4), so the whole dword is in range.
    if (length === 4 && offset >>> 0 === offset && (offset & 3) === 0 && offset < this.size && out.length >= 4) {
      const kind = this.#dwKind[offset >>> 2]!;
      if (kind !== DW_SLOW) {
        let v = this.#vconfigView.getUint32(offset, true);
        if (kind === DW_MIXED) {
          // Same as #defaultRead / #rawRead for a dword: virtual bits from vconfig, the rest from the device.
          const virt = this.#dwVirt[offset >>> 2]!;
          v = (this.#fn.configRead(offset, 4) & ~virt) | (v & virt);
        }
        out[0] = v;
        out[1] = v >>> 8;
        out[2] = v >>> 16;
        out[3] = v >>> 24;
        return;
      }
    }
    this.#readIntoChecked(offset, out, length);
  }

  /** {@link readInto} with every check (kept out of the small inlinable body above). */
  #readIntoChecked(offset: number, out: Uint8Array, length: number): void {
    this.#checkRange(offset, length);
    if (length > out.length) throw sysError('EFAULT', `${length} bytes do not fit a ${out.length}-byte buffer`);
    this.#readRange(offset, length, out);
  }

  /** Reads the checked range [offset, offset + length) into `out[0 .. length)`. */
  #readRange(offset: number, length: number, out: Uint8Array): void {
    // One naturally aligned piece inside one capability (the usual register read): no splitting loop.
    if ((length === 4 ? (offset & 3) === 0 : length === 2 ? (offset & 1) === 0 : length === 1) && this.#runAt[offset]! >= length) {
      let value = this.#access(offset, length, undefined);
      for (let i = 0; i < length; i++) {
        out[i] = value & 0xff;
        value >>>= 8;
      }
      return;
    }
    const end = offset + length;
    let pos = offset;
    while (pos < end) {
      const count = this.#chunk(pos, end - pos);
      let value = this.#access(pos, count, undefined);
      // `out` holds at least the range, so every byte index is in bounds.
      for (let i = pos - offset, last = i + count; i < last; i++) {
        out[i] = value & 0xff;
        value >>>= 8;
      }
      pos += count;
    }
  }

  /** Writes `data` at `offset`, as a pwrite of the CONFIG region; returns the byte count. EFAULT out of range. */
  writeBytes(offset: number, data: Uint8Array): number {
    this.#checkRange(offset, data.length);
    const end = offset + data.length;
    let pos = offset;
    while (pos < end) {
      const count = this.#chunk(pos, end - pos);
      this.#access(pos, count, getLE(data, pos - offset, count));
      pos += count;
    }
    return data.length;
  }

  /** Reads a little-endian value of `size` (1, 2 or 4) bytes, going through the same path as {@link readBytes}. */
  read(offset: number, size: 1 | 2 | 4): number {
    VfioPciConfig.#checkSize(size);
    return getLE(this.readBytes(offset, size), 0, size);
  }

  /** Writes a little-endian value of `size` (1, 2 or 4) bytes (`value` is truncated to the size). */
  write(offset: number, size: 1 | 2 | 4, value: number): void {
    VfioPciConfig.#checkSize(size);
    if (!Number.isInteger(value)) throw sysError('EINVAL', `config value ${value} is not an integer`);
    const bytes = new Uint8Array(size);
    setLE(bytes, 0, size, value >>> 0);
    this.writeBytes(offset, bytes);
  }

  // ---------------------------------------------------------------- state for vfio-pci

  /** Capabilities found at construction, standard chain first, in chain order (hidden ones included). */
  capabilities(): readonly VfioPciCapabilityInfo[] {
    return this.#caps;
  }

  /** Offset of the first visible capability `id` (standard, or extended with `extended`), or undefined. */
  findCapability(id: number, extended = false): number | undefined {
    return this.#caps.find((c) => c.id === id && c.extended === extended && !c.hidden)?.offset;
  }

  /**
   * Records that vfio-pci enabled MSI with `vectors` vectors: user writes of Multiple Message Enable are clipped
   * to this (Linux `msi_qmax` = ceil(log2(vectors))). Also sets {@link irqType} to `'msi'`.
   */
  msiEnabled(vectors: number): void {
    if (!Number.isInteger(vectors) || vectors < 1 || vectors > 32) throw sysError('EINVAL', `bad MSI vector count ${vectors}`);
    let qmax = 0;
    while (1 << qmax < vectors) qmax++;
    this.#msiQmax = qmax;
    this.irqType = 'msi';
  }

  /** The virtual MSI capability as the user programmed it, or undefined when the function has no visible MSI. */
  msiState(): VfioPciMsiState | undefined {
    const offset = this.findCapability(R.PCI_CAP_ID.MSI);
    if (offset === undefined) return undefined;
    const v = this.#vconfig;
    const flags = getLE(v, offset + R.PCI_MSI_FLAGS, 2);
    const is64Bit = (flags & R.PCI_MSI_FLAGS_64BIT) !== 0;
    const lo = BigInt(getLE(v, offset + R.PCI_MSI_ADDRESS_LO, 4));
    const hi = is64Bit ? BigInt(getLE(v, offset + R.PCI_MSI_ADDRESS_HI, 4)) : 0n;
    return {
      offset,
      flags,
      enabled: (flags & R.PCI_MSI_FLAGS_ENABLE) !== 0,
      multipleMessageEnable: (flags & R.PCI_MSI_FLAGS_QSIZE) >> 4,
      multipleMessageCapable: (flags & R.PCI_MSI_FLAGS_QMASK) >> 1,
      address: (hi << 32n) | lo,
      data: getLE(v, offset + (is64Bit ? R.PCI_MSI_DATA_64 : R.PCI_MSI_DATA_32), 2),
      is64Bit,
      perVectorMasking: (flags & R.PCI_MSI_FLAGS_MASKBIT) !== 0,
    };
  }

  /** True while the user's INTx-disable bit masks INTx (Linux `virq_disabled`). */
  get intxMasked(): boolean {
    return this.#virqDisabled;
  }

  /** The interrupt pin the user sees (0 = no INTx); vfio-pci reports 1 INTx IRQ when it is non-zero. */
  get interruptPin(): number {
    return this.#vconfig[R.PCI_INTERRUPT_PIN] ?? 0;
  }

  /**
   * Whether BAR accesses may proceed (Linux __vfio_pci_memory_enabled): the function is in D0–D2 and
   * memory decoding is on in the virtual COMMAND (always, for functions without the bit).
   */
  get memoryEnabled(): boolean {
    const cmd = this.#vconfigView.getUint16(COMMAND, true);
    return this.powerState < 3 && (this.#noCommandMemory || (cmd & COMMAND_MEMORY) !== 0);
  }

  /** A copy of the virtual config space (the `vconfig` bytes; not what a read returns for pass-through bits). */
  virtualConfig(): Uint8Array {
    return this.#vconfig.slice();
  }

  // ---------------------------------------------------------------- construction

  static #checkSize(size: number): void {
    if (size !== 1 && size !== 2 && size !== 4) throw sysError('EINVAL', `config access size ${size} is not 1, 2 or 4`);
  }

  #checkRange(offset: number, length: number): void {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || length < 0) {
      throw sysError('EINVAL', `bad config range ${offset}+${length}`);
    }
    if (length === 0) return;
    if (offset < 0 || offset >= this.size || offset + length > this.size) {
      throw sysError('EFAULT', `config range ${offset}+${length} outside ${this.size} bytes`);
    }
  }

  /** PCIe functions (and PCI-X 266/533 ones) have extended config space, like Linux pci_cfg_space_size. */
  #probeConfigSize(): 256 | 4096 {
    if ((this.#hw(R.PCI_STATUS, 2) & R.PCI_STATUS_CAP_LIST) === 0) return 256;
    let pos = this.#hw(R.PCI_CAPABILITY_LIST, 1) & ~3;
    for (let loops = 48; pos >= R.PCI_STD_HEADER_SIZEOF && loops > 0; loops--) {
      const id = this.#hw(pos, 1);
      if (id === R.PCI_CAP_ID.EXP) return 4096;
      if (id === R.PCI_CAP_ID.PCIX && (this.#hw(pos + 4, 4) & 0xc0000000) !== 0) return 4096;
      pos = this.#hw(pos + 1, 1) & ~3;
    }
    return 256;
  }

  #buildPermTables(): void {
    const C = R.PCI_CAP_ID;
    const E = R.PCI_EXT_CAP_ID;
    const withBits = (bits: PermBits, write: WriteFn = this.#defaultWrite, read: ReadFn = this.#defaultRead): Perm => ({
      bits,
      read,
      write,
    });
    this.#capPerms.set(MAP_BASIC, withBits(P.basicPerms(), this.#basicWrite, this.#basicRead));
    this.#capPerms.set(C.PM, withBits(P.pmPerms(), this.#pmWrite));
    this.#capPerms.set(C.VPD, withBits(P.vpdPerms(), this.#vpdWrite));
    this.#capPerms.set(C.PCIX, withBits(P.pcixPerms()));
    this.#capPerms.set(C.VNDR, { bits: undefined, read: this.#directRead, write: this.#rawWrite });
    this.#capPerms.set(C.EXP, withBits(P.expPerms(), this.#expWrite));
    this.#capPerms.set(C.AF, withBits(P.afPerms(), this.#afWrite));
    this.#ecapPerms.set(E.ERR, withBits(P.aerPerms()));
    this.#ecapPerms.set(E.PWR, withBits(P.pwrPerms()));
    this.#ecapPerms.set(E.VNDR, { bits: undefined, read: this.#directRead, write: this.#rawWrite });
    this.#ecapPerms.set(E.DVSEC, { bits: undefined, read: this.#directRead, write: this.#rawWrite });
  }

  /** Linux vfio_config_init. */
  #init(options: VfioPciConfigOptions): void {
    const v = this.#vconfig;
    this.#map.fill(MAP_BASIC, 0, R.PCI_STD_HEADER_SIZEOF);
    this.#map.fill(MAP_UNASSIGNED, R.PCI_STD_HEADER_SIZEOF);
    this.#fill(0, R.PCI_STD_HEADER_SIZEOF);

    for (let i = 0; i < R.PCI_STD_NUM_BARS; i++) this.#rbar.push(getLE(v, R.PCI_BASE_ADDRESS_0 + 4 * i, 4));
    this.#rbar.push(getLE(v, R.PCI_ROM_ADDRESS, 4));

    if (options.virtfn) {
      setLE(v, R.PCI_VENDOR_ID, 2, options.virtfn.vendor);
      setLE(v, R.PCI_DEVICE_ID, 2, options.virtfn.device);
      // SR-IOV 3.4.1.18: a VF's pin register is read-only zero; replace whatever the hardware claims.
      v[R.PCI_INTERRUPT_PIN] = 0;
    }
    // Functions without COMMAND.MEM would never show it set; present it enabled, like a PF.
    if (this.#noCommandMemory) setLE(v, R.PCI_COMMAND, 2, getLE(v, R.PCI_COMMAND, 2) | R.PCI_COMMAND_MEMORY);
    if (options.intx === false || this.#nointx) v[R.PCI_INTERRUPT_PIN] = 0;

    this.#capInit();
    this.#ecapInit();
  }

  /** Copies hardware bytes into vconfig in the largest aligned pieces (Linux vfio_fill_vconfig_bytes). */
  #fill(offset: number, length: number): void {
    let pos = offset;
    const end = Math.min(offset + length, this.size);
    while (pos < end) {
      const left = end - pos;
      const n = left >= 4 && pos % 4 === 0 ? 4 : left >= 2 && pos % 2 === 0 ? 2 : 1;
      setLE(this.#vconfig, pos, n, this.#hw(pos, n));
      pos += n;
    }
  }

  /** Walks the standard chain from 0x34, mapping what Linux exposes and unlinking what it hides. */
  #capInit(): void {
    const v = this.#vconfig;
    if ((this.#hw(R.PCI_STATUS, 2) & R.PCI_STATUS_CAP_LIST) === 0) return;
    let pos = this.#hw(R.PCI_CAPABILITY_LIST, 1);
    // Where the pointer to the current capability lives, so a hidden one can be skipped.
    let prev = R.PCI_CAPABILITY_LIST;
    let caps = 0;
    let loops = (R.PCI_CFG_SPACE_SIZE - R.PCI_STD_HEADER_SIZEOF) / R.PCI_CAP_SIZEOF;
    while (pos !== 0 && loops-- > 0) {
      const id = this.#hw(pos, 1);
      const next = this.#hw(pos + R.PCI_CAP_LIST_NEXT, 1);
      // ID 0 is a null capability (and clashes with the header's map byte): hidden.
      let len = 0;
      if (id !== 0 && id <= R.PCI_CAP_ID_MAX) {
        len = standardCapLength(id);
        if (len === VARIABLE) len = this.#capLength(id, pos);
      }
      if (len === 0) {
        this.#caps.push({ id, offset: pos, length: 0, extended: false, hidden: true });
        v[prev] = next;
        pos = next;
        continue;
      }
      len = Math.min(len, this.size - pos);
      this.#map.fill(id, pos, pos + len);
      this.#fill(pos, len);
      if (id === R.PCI_CAP_ID.PM) {
        // PME cannot reach the user: PME_Support, PME_En and PME_Status read as zero.
        setLE(v, pos + R.PCI_PM_PMC, 2, getLE(v, pos + R.PCI_PM_PMC, 2) & ~R.PCI_PM_CAP_PME_MASK);
        const ctrl = getLE(v, pos + R.PCI_PM_CTRL, 2) & ~(R.PCI_PM_CTRL_PME_ENABLE | R.PCI_PM_CTRL_PME_STATUS);
        setLE(v, pos + R.PCI_PM_CTRL, 2, ctrl);
      }
      this.#caps.push({ id, offset: pos, length: len, extended: false, hidden: false });
      prev = pos + R.PCI_CAP_LIST_NEXT;
      pos = next;
      caps++;
    }
    if (caps === 0) setLE(v, R.PCI_STATUS, 2, getLE(v, R.PCI_STATUS, 2) & ~R.PCI_STATUS_CAP_LIST);
  }

  /** Linux vfio_cap_len: sizes a variable-length standard capability from its own registers. */
  #capLength(id: number, pos: number): number {
    const C = R.PCI_CAP_ID;
    switch (id) {
      case C.MSI: {
        const flags = this.#hw(pos + R.PCI_MSI_FLAGS, 2);
        let len = 10;
        if (flags & R.PCI_MSI_FLAGS_64BIT) len += 4;
        if (flags & R.PCI_MSI_FLAGS_MASKBIT) len += 10;
        // One MSI table per device, shaped by the first MSI capability.
        this.#msiPerm ??= { bits: P.msiPerms(len, flags), read: this.#msiRead, write: this.#msiWrite };
        return len;
      }
      case C.PCIX: {
        const cmd = this.#hw(pos + R.PCI_X_CMD, 2);
        if (((cmd >> 12) & 3) !== 0) {
          this.#probeExtendedCaps();
          return R.PCI_CAP_PCIX_SIZEOF_V2;
        }
        return R.PCI_CAP_PCIX_SIZEOF_V0;
      }
      case C.VNDR:
        return this.#hw(pos + R.PCI_CAP_FLAGS, 1);
      case C.EXP: {
        this.#probeExtendedCaps();
        const flags = this.#hw(pos + R.PCI_EXP_FLAGS, 2);
        const rcEnd = (flags & R.PCI_EXP_FLAGS_TYPE) >> 4 === R.PCI_EXP_TYPE_RC_END;
        if ((flags & R.PCI_EXP_FLAGS_VERS) === 1) return rcEnd ? 0xc : R.PCI_CAP_EXP_ENDPOINT_SIZEOF_V1;
        return rcEnd ? 0x2c : R.PCI_CAP_EXP_ENDPOINT_SIZEOF_V2;
      }
      case C.HT:
        return this.#hw(pos + 3, 1) & R.HT_3BIT_CAP_MASK ? R.HT_CAP_SIZEOF_SHORT : R.HT_CAP_SIZEOF_LONG;
      case C.SATA:
        return (this.#hw(pos + R.PCI_SATA_REGS, 1) & R.PCI_SATA_REGS_MASK) === R.PCI_SATA_REGS_INLINE
          ? R.PCI_SATA_SIZEOF_LONG
          : R.PCI_SATA_SIZEOF_SHORT;
      default:
        return 0;
    }
  }

  /** Extended capabilities are walked only for PCIe / PCI-X 2 functions whose dword at 0x100 is non-zero. */
  #probeExtendedCaps(): void {
    if (this.size > R.PCI_CFG_SPACE_SIZE) this.#extendedCaps = this.#hw(R.PCI_CFG_SPACE_SIZE, 4) !== 0;
  }

  /** Walks the extended chain from 0x100 (Linux vfio_ecap_init). */
  #ecapInit(): void {
    if (!this.#extendedCaps) return;
    const v = this.#vconfig;
    let epos = R.PCI_CFG_SPACE_SIZE;
    let prev: number | undefined;
    let ecaps = 0;
    let loops = (this.size - R.PCI_CFG_SPACE_SIZE) / R.PCI_CAP_SIZEOF;
    while (loops-- > 0 && epos >= R.PCI_CFG_SPACE_SIZE) {
      const header = this.#hw(epos, 4);
      const id = R.extCapId(header);
      let len = 0;
      let hidden = false;
      if (id <= R.PCI_EXT_CAP_ID_MAX) {
        len = extendedCapLength(id);
        if (len === VARIABLE) len = this.#extCapLength(id, epos);
      }
      if (len === 0) {
        if (prev !== undefined) {
          // Skip it: point the previous header's next field past it.
          this.#caps.push({ id, offset: epos, length: 0, extended: true, hidden: true });
          epos = R.extCapNext(header);
          setLE(v, prev, 4, ((getLE(v, prev, 4) & 0x003fffff) | (epos << 20)) >>> 0);
          continue;
        }
        // The chain must start at 0x100: keep a placeholder header (ID 0, version 0, next preserved).
        len = R.PCI_CAP_SIZEOF;
        hidden = true;
      }
      len = Math.min(len, this.size - epos);
      // The map holds one byte per capability ID, as Linux's does.
      this.#map.fill(id & 0xff, epos, epos + len);
      this.#fill(epos, len);
      if (hidden) setLE(v, epos, 4, (getLE(v, epos, 4) & 0xfff00000) >>> 0);
      else ecaps++;
      this.#caps.push({ id, offset: epos, length: hidden ? 0 : len, extended: true, hidden });
      prev = epos;
      epos = R.extCapNext(header);
    }
    // Nothing visible: present "no extended capabilities".
    if (ecaps === 0) setLE(v, R.PCI_CFG_SPACE_SIZE, 4, 0);
  }

  /** Linux vfio_ext_cap_len. */
  #extCapLength(id: number, epos: number): number {
    const E = R.PCI_EXT_CAP_ID;
    switch (id) {
      case E.VNDR:
        return (this.#hw(epos + R.PCI_VNDR_HEADER, 4) >>> 20) & 0xfff;
      case E.DVSEC:
        return (this.#hw(epos + R.PCI_DVSEC_HEADER1, 4) >>> 20) & 0xfff;
      case E.VC:
      case E.VC9:
      case E.MFVC:
        return this.#vcLength(epos);
      case E.ACS: {
        if (this.#hw(epos + R.PCI_ACS_CAP, 1) & R.PCI_ACS_EC) {
          const byte = this.#hw(epos + R.PCI_ACS_EGRESS_BITS, 1);
          const bits = byte ? Math.ceil(byte / 32) * 32 : 256;
          return 8 + bits / 8;
        }
        return 8;
      }
      case E.REBAR: {
        const n = (this.#hw(epos + R.PCI_REBAR_CTRL, 1) & R.PCI_REBAR_CTRL_NBAR_MASK) >> R.PCI_REBAR_CTRL_NBAR_SHIFT;
        return 4 + n * 8;
      }
      case E.DPA:
        return R.PCI_DPA_BASE_SIZEOF + (this.#hw(epos + R.PCI_DPA_CAP, 1) & R.PCI_DPA_CAP_SUBSTATE_MASK) + 1;
      case E.TPH: {
        const dword = this.#hw(epos + R.PCI_TPH_CAP, 4);
        if ((dword & R.PCI_TPH_CAP_LOC_MASK) === R.PCI_TPH_LOC_CAP) {
          const sts = (dword & R.PCI_TPH_CAP_ST_MASK) >>> R.PCI_TPH_CAP_ST_SHIFT;
          return R.PCI_TPH_BASE_SIZEOF + sts * 2 + 2;
        }
        return R.PCI_TPH_BASE_SIZEOF;
      }
      default:
        return 0;
    }
  }

  /** Linux vfio_vc_cap_len: arbitration tables are never writable, so only their presence matters. */
  #vcLength(epos: number): number {
    const evcc = this.#hw(epos + R.PCI_VC_PORT_CAP1, 4) & R.PCI_VC_CAP1_EVCC;
    const cap2 = this.#hw(epos + R.PCI_VC_PORT_CAP2, 4);
    const phases = cap2 & R.PCI_VC_CAP2_128_PHASE ? 128 : cap2 & R.PCI_VC_CAP2_64_PHASE ? 64 : cap2 & R.PCI_VC_CAP2_32_PHASE ? 32 : 0;
    let len = R.PCI_CAP_VC_BASE_SIZEOF + (1 + evcc) * R.PCI_CAP_VC_PER_VC_SIZEOF;
    if (phases) len = Math.ceil(len / 16) * 16 + (phases * 4) / 8;
    return len;
  }

  // ---------------------------------------------------------------- access path

  #hw(pos: number, count: number): number {
    // A chain pointing past the end reads as all-ones rather than reaching outside the function.
    if (pos + count > R.PCI_CFG_SPACE_EXP_SIZE) return widthMask(count);
    return (this.#fn.configRead(pos, count as 1 | 2 | 4) & widthMask(count)) >>> 0;
  }

  #hwWrite(pos: number, count: number, value: number): void {
    this.#fn.configWrite(pos, count as 1 | 2 | 4, (value & widthMask(count)) >>> 0);
  }

  /**
   * Size of the next piece at `pos` (Linux vfio_config_do_rw): no further than the end of the dword or the run
   * of bytes with the same map byte, then the largest naturally aligned 4/2/1.
   */
  #chunk(pos: number, want: number): number {
    const run = this.#runAt[pos]!;
    const count = want < run ? want : run;
    // pos < 4096: the bit tests are exact.
    if (count >= 4 && (pos & 3) === 0) return 4;
    if (count >= 2 && (pos & 1) === 0) return 2;
    return 1;
  }

  /** The per-byte tables of {@link #chunk} and {@link #access}, from the map and the permission tables. */
  #buildAccessTables(): void {
    const size = this.size;
    const map = this.#map;
    const permAt: Perm[] = new Array<Perm>(size);
    const startAt = new Uint16Array(size);
    const runAt = new Uint8Array(size);
    const virtAt = new Uint8Array(size);
    const writeAt = new Uint8Array(size);
    for (let pos = 0; pos < size; pos++) {
      const cap = map[pos];
      let run = 1;
      while ((pos + run) % 4 !== 0 && map[pos + run] === cap) run++;
      runAt[pos] = run;
      const id = cap ?? MAP_UNASSIGNED;
      let perm: Perm;
      let start = pos;
      if (id === MAP_UNASSIGNED) perm = this.#rawPerm;
      else if (id === MAP_VIRTUAL) perm = this.#virtPerm;
      else if (pos >= R.PCI_CFG_SPACE_SIZE) {
        // An ID above the known range can only be the placeholder of a hidden first capability.
        perm = id > R.PCI_EXT_CAP_ID_MAX ? this.#directPerm : (this.#ecapPerms.get(id) ?? this.#directPerm);
        start = this.#capStart(pos);
      } else {
        perm = id === R.PCI_CAP_ID.MSI && this.#msiPerm ? this.#msiPerm : (this.#capPerms.get(id) ?? this.#directPerm);
        start = id === MAP_BASIC ? 0 : this.#capStart(pos);
      }
      permAt[pos] = perm;
      startAt[pos] = start;
      virtAt[pos] = perm.bits?.virt[pos - start] ?? 0;
      writeAt[pos] = perm.bits?.write[pos - start] ?? 0;
    }
    this.#virtView = new DataView(virtAt.buffer);
    this.#writeView = new DataView(writeAt.buffer);
    this.#permAt = permAt;
    this.#startAt = startAt;
    this.#runAt = runAt;
    const dwords = size >>> 2;
    const dwKind = new Uint8Array(dwords);
    const dwVirt = new Uint32Array(dwords);
    for (let d = 0; d < dwords; d++) {
      const pos = d * 4;
      // The whole dword must be one piece of one handler, which is what #readRange does for it.
      if (runAt[pos]! < 4) continue;
      const perm = permAt[pos]!;
      const read = perm.read;
      let virt: number;
      if (perm === this.#rawPerm) virt = 0;
      else if (perm === this.#virtPerm) virt = 0xffffffff;
      else if (
        read === this.#defaultRead ||
        read === this.#msiRead ||
        // The header's basic read is the default one except at BARs/ROM (sizing fixup) and, for functions
        // without COMMAND.MEM, at COMMAND (offset = pos: the header starts at 0).
        (read === this.#basicRead && !isBarOffset(pos) && !(pos === R.PCI_COMMAND && this.#noCommandMemory))
      ) {
        virt = this.#virtView.getUint32(pos, true);
      } else continue;
      dwKind[d] = virt === 0xffffffff ? DW_VIRTUAL : DW_MIXED;
      dwVirt[d] = virt;
    }
    this.#dwKind = dwKind;
    this.#dwVirt = dwVirt;
  }

  /** Start of the capability owning `pos`: walk back over bytes with the same map byte (header → 0). */
  #capStart(pos: number): number {
    const cap = this.#map[pos];
    if (cap === MAP_BASIC) return 0;
    const base = pos >= R.PCI_CFG_SPACE_SIZE ? R.PCI_CFG_SPACE_SIZE : R.PCI_STD_HEADER_SIZEOF;
    let p = pos;
    while (p - 1 >= base && this.#map[p - 1] === cap) p--;
    return p;
  }

  /** One aligned piece: a read when `value` is undefined (returns it), else a write. */
  #access(pos: number, count: number, value: number | undefined): number {
    const perm = this.#permAt[pos]!;
    const offset = pos - this.#startAt[pos]!;
    if (value === undefined) return perm.read(perm, pos, count, offset);
    perm.write?.(perm, pos, count, offset, (value & widthMask(count)) >>> 0);
    return 0;
  }

  // ---------------------------------------------------------------- generic handlers

  /**
   * Virtual bits from vconfig, the rest from the device. The bits are those of `perm` at `offset`, read from the
   * absolute-offset copy (every caller passes the piece's own perm, whose capability starts at `pos - offset`).
   */
  readonly #defaultRead: ReadFn = (_perm, pos, count) => {
    const full = widthMask(count);
    const virt = viewLE(this.#virtView, pos, count);
    let val = viewLE(this.#vconfigView, pos, count);
    if (virt !== full) {
      const phys = this.#hw(pos, count);
      val = ((phys & ~virt) | (val & virt)) >>> 0;
    }
    return val & full;
  };

  /** Writable virtual bits to vconfig, writable physical bits read-modify-written to the device, others dropped. */
  readonly #defaultWrite: WriteFn = (_perm, pos, count, _offset, value) => {
    const write = viewLE(this.#writeView, pos, count);
    if (write === 0) return;
    const virt = viewLE(this.#virtView, pos, count);
    const wv = (write & virt) >>> 0;
    if (wv) {
      const cur = viewLE(this.#vconfigView, pos, count);
      setLE(this.#vconfig, pos, count, ((cur & ~wv) | (value & wv)) >>> 0);
    }
    const wp = (write & ~virt & widthMask(count)) >>> 0;
    if (wp) {
      const phys = this.#hw(pos, count);
      this.#hwWrite(pos, count, ((phys & ~wp) | (value & wp)) >>> 0);
    }
  };

  /** Device bytes, except capability ID/next (standard) or the header dword (extended), which come from vconfig. */
  readonly #directRead: ReadFn = (_perm, pos, count, offset) => {
    let val = this.#hw(pos, count);
    const v = this.#vconfig;
    if (pos >= R.PCI_CFG_SPACE_SIZE) {
      if (offset < 4) val = getLE(v, pos, count);
    } else if (pos >= R.PCI_STD_HEADER_SIZEOF) {
      if (offset === R.PCI_CAP_LIST_ID && count > 1) {
        const n = Math.min(R.PCI_CAP_FLAGS, count);
        const mask = widthMask(n);
        val = ((val & ~mask) | (getLE(v, pos, n) & mask)) >>> 0;
      } else if (offset === R.PCI_CAP_LIST_NEXT) {
        val = ((val & ~0xff) | (v[pos] ?? 0)) >>> 0;
      }
    }
    return val;
  };

  readonly #rawRead: ReadFn = (_perm, pos, count) => this.#hw(pos, count);
  readonly #rawWrite: WriteFn = (_perm, pos, count, _offset, value) => {
    this.#hwWrite(pos, count, value);
  };
  readonly #virtRead: ReadFn = (_perm, pos, count) => getLE(this.#vconfig, pos, count);
  readonly #virtWrite: WriteFn = (_perm, pos, count, _offset, value) => {
    setLE(this.#vconfig, pos, count, value);
  };

  // ---------------------------------------------------------------- standard header

  /** Virtual BAR values that answer sizing like hardware (Linux vfio_bar_fixup), recomputed after BAR writes. */
  #barFixup(): void {
    if (!this.#bardirty) return;
    const v = this.#vconfig;
    for (let i = 0; i < R.PCI_STD_NUM_BARS; i++) {
      const off = R.PCI_BASE_ADDRESS_0 + 4 * i;
      const bar = this.#barInfo(i);
      if (!bar) {
        setLE(v, off, 4, 0); // not decoded by the host = unimplemented for the user
        continue;
      }
      const mask = ~(bar.size - 1n) & 0xffffffffffffffffn;
      let flags = R.PCI_BASE_ADDRESS_SPACE_IO;
      if (bar.type !== 'io') {
        flags = R.PCI_BASE_ADDRESS_SPACE_MEMORY;
        if (bar.prefetchable) flags |= R.PCI_BASE_ADDRESS_MEM_PREFETCH;
        if (bar.type === 'mem64') flags |= R.PCI_BASE_ADDRESS_MEM_TYPE_64;
      }
      setLE(v, off, 4, ((getLE(v, off, 4) & Number(mask & 0xffffffffn)) | flags) >>> 0);
      if (bar.type === 'mem64' && i + 1 < R.PCI_STD_NUM_BARS) {
        i++;
        setLE(v, off + 4, 4, (getLE(v, off + 4, 4) & Number(mask >> 32n)) >>> 0);
      }
    }
    const romSize = this.#fn.romSize ?? 0n;
    const rom = getLE(v, R.PCI_ROM_ADDRESS, 4);
    if (romSize > 0n) {
      const mask = Number(~(romSize - 1n) & 0xffffffffn) | R.PCI_ROM_ADDRESS_ENABLE;
      setLE(v, R.PCI_ROM_ADDRESS, 4, (rom & mask) >>> 0);
    } else if (this.#shadowRomSize > 0n) {
      const mask = Number(~(roundUpPow2(this.#shadowRomSize) - 1n) & 0xffffffffn) | R.PCI_ROM_ADDRESS_ENABLE;
      setLE(v, R.PCI_ROM_ADDRESS, 4, (rom & mask) >>> 0);
    } else {
      setLE(v, R.PCI_ROM_ADDRESS, 4, 0);
    }
    this.#bardirty = false;
  }

  #barInfo(index: number): PciBarInfo | undefined {
    const bar = this.#fn.bars.find((b) => b.index === index);
    return bar && bar.size > 0n ? bar : undefined;
  }

  readonly #basicRead: ReadFn = (perm, pos, count, offset) => {
    if (isBarOffset(offset)) this.#barFixup();
    let val = this.#defaultRead(perm, pos, count, offset);
    // The memory-enable bit these functions lack reads as the user last wrote it.
    if (offset === R.PCI_COMMAND && this.#noCommandMemory) {
      val = (val | (getLE(this.#vconfig, R.PCI_COMMAND, 2) & R.PCI_COMMAND_MEMORY)) >>> 0;
    }
    return val;
  };

  /** BARs differ from what the host programmed: the device went through a reset we did not see. */
  #needBarRestore(): boolean {
    for (let i = 0; i < R.PCI_STD_NUM_BARS; i++) {
      const saved = this.#rbar[i] ?? 0;
      if (saved !== 0 && this.#hw(R.PCI_BASE_ADDRESS_0 + 4 * i, 4) !== saved) return true;
    }
    return false;
  }

  /** Puts the host's BAR values back after a backdoor reset (Linux vfio_bar_restore). */
  #barRestore(): void {
    if (this.#isVirtfn) return;
    for (let i = 0; i < R.PCI_STD_NUM_BARS; i++) this.#hwWrite(R.PCI_BASE_ADDRESS_0 + 4 * i, 4, this.#rbar[i] ?? 0);
    this.#hwWrite(R.PCI_ROM_ADDRESS, 4, this.#rbar[R.PCI_STD_NUM_BARS] ?? 0);
    if (this.#nointx) this.#hwWrite(R.PCI_COMMAND, 2, this.#hw(R.PCI_COMMAND, 2) | R.PCI_COMMAND_INTX_DISABLE);
  }

  readonly #basicWrite: WriteFn = (perm, pos, count, offset, value) => {
    const v = this.#vconfig;
    let newCmd = 0;
    if (offset === R.PCI_COMMAND) {
      const physCmd = this.#hw(R.PCI_COMMAND, 2);
      const virtCmd = getLE(v, R.PCI_COMMAND, 2);
      newCmd = value & 0xffff;
      const newMem = bit(newCmd, R.PCI_COMMAND_MEMORY);
      const newIo = bit(newCmd, R.PCI_COMMAND_IO);
      if (!newMem) this.#hooks.zapBarMappings?.();
      // Enabling decode the device lost behind our back: restore the host's BARs first (§3.2 backdoor reset).
      if (
        (newMem && bit(virtCmd, R.PCI_COMMAND_MEMORY) && !bit(physCmd, R.PCI_COMMAND_MEMORY) && !this.#noCommandMemory) ||
        (newIo && bit(virtCmd, R.PCI_COMMAND_IO) && !bit(physCmd, R.PCI_COMMAND_IO)) ||
        this.#needBarRestore()
      ) {
        this.#barRestore();
      }
    }
    this.#defaultWrite(perm, pos, count, offset, value);
    if (offset === R.PCI_COMMAND) {
      // Remember the user's MEM/IO enables for the check above.
      const mask = R.PCI_COMMAND_MEMORY | R.PCI_COMMAND_IO;
      setLE(v, R.PCI_COMMAND, 2, (getLE(v, R.PCI_COMMAND, 2) & ~mask) | (newCmd & mask));
    }
    if (offset === R.PCI_COMMAND || offset === R.PCI_COMMAND + 1) {
      const disable = (getLE(v, R.PCI_COMMAND, 2) & R.PCI_COMMAND_INTX_DISABLE) !== 0;
      if (disable !== this.#virqDisabled) {
        this.#virqDisabled = disable;
        this.#hooks.intxMask?.(disable);
      }
    }
    if (isBarOffset(offset)) this.#bardirty = true;
  };

  // ---------------------------------------------------------------- capability handlers

  readonly #pmWrite: WriteFn = (perm, pos, count, offset, value) => {
    this.#defaultWrite(perm, pos, count, offset, value);
    if (offset !== R.PCI_PM_CTRL) return;
    const state = (value & R.PCI_PM_CTRL_STATE_MASK) as PciPowerState;
    if (state >= 3) this.#hooks.zapBarMappings?.();
    const done = this.#hooks.setPowerState
      ? this.#hooks.setPowerState(state) !== false
      : this.#setPowerStateDefault(pos - offset, state);
    if (done) this.powerState = state;
  };

  /** What pci_set_power_state does to the register when nobody else handles it. */
  #setPowerStateDefault(capStart: number, state: PciPowerState): boolean {
    const pmc = this.#hw(capStart + R.PCI_PM_PMC, 2);
    if ((state === 1 && !(pmc & R.PCI_PM_CAP_D1)) || (state === 2 && !(pmc & R.PCI_PM_CAP_D2))) return false;
    const ctrlPos = capStart + R.PCI_PM_CTRL;
    const ctrl = this.#hw(ctrlPos, 2);
    // Keep PME_Status from being cleared by the write (it is write-one-to-clear).
    this.#hwWrite(ctrlPos, 2, (ctrl & ~(R.PCI_PM_CTRL_STATE_MASK | R.PCI_PM_CTRL_PME_STATUS)) | state);
    return true;
  }

  readonly #vpdWrite: WriteFn = (perm, pos, count, offset, value) => {
    this.#defaultWrite(perm, pos, count, offset, value);
    // Only a write reaching the upper byte of the address register (the F flag) starts a transfer.
    if (offset > R.PCI_VPD_ADDR + 1 || offset + count <= R.PCI_VPD_ADDR + 1) return;
    const start = pos - offset;
    const v = this.#vconfig;
    let addr = getLE(v, start + R.PCI_VPD_ADDR, 2);
    if (addr & R.PCI_VPD_ADDR_F) {
      const data = getLE(v, start + R.PCI_VPD_DATA, 4);
      if (this.#hooks.vpdWrite?.(addr & ~R.PCI_VPD_ADDR_F, data) !== true) return;
    } else {
      const data = this.#hooks.vpdRead?.(addr);
      if (data === undefined) return;
      setLE(v, start + R.PCI_VPD_DATA, 4, data >>> 0);
    }
    // Toggling F signals completion; on failure it stays, and the user's driver times out.
    addr ^= R.PCI_VPD_ADDR_F;
    setLE(v, start + R.PCI_VPD_ADDR, 2, addr);
  };

  readonly #expWrite: WriteFn = (perm, pos, count, offset, value) => {
    const start = pos - offset;
    const v = this.#vconfig;
    const ctrlPos = start + R.PCI_EXP_DEVCTL;
    const readrq = getLE(v, ctrlPos, 2) & R.PCI_EXP_DEVCTL_READRQ;
    this.#defaultWrite(perm, pos, count, offset, value);
    let ctrl = getLE(v, ctrlPos, 2);
    // FLR reads as zero always; it resets the function only if the device advertises FLR.
    if (ctrl & R.PCI_EXP_DEVCTL_BCR_FLR) {
      ctrl &= ~R.PCI_EXP_DEVCTL_BCR_FLR;
      setLE(v, ctrlPos, 2, ctrl);
      if (this.#hw(start + R.PCI_EXP_DEVCAP, 4) & R.PCI_EXP_DEVCAP_FLR) this.#functionReset();
    }
    // MPS stays virtual; MRRS goes to the device, but never below the device's real MPS.
    if (readrq !== (ctrl & R.PCI_EXP_DEVCTL_READRQ)) {
      const mps = 128 << ((this.#hw(ctrlPos, 2) & R.PCI_EXP_DEVCTL_PAYLOAD) >> 5);
      const rq = Math.max(128 << ((ctrl & R.PCI_EXP_DEVCTL_READRQ) >> 12), mps);
      this.#setReadRequestSize(ctrlPos, rq);
    }
  };

  /** pcie_set_readrq: 128..4096, a power of two, else nothing changes. */
  #setReadRequestSize(ctrlPos: number, rq: number): void {
    if (rq < 128 || rq > 4096 || (rq & (rq - 1)) !== 0) return;
    const field = (Math.log2(rq) - 7) << 12;
    const phys = this.#hw(ctrlPos, 2);
    this.#hwWrite(ctrlPos, 2, (phys & ~R.PCI_EXP_DEVCTL_READRQ) | field);
  }

  readonly #afWrite: WriteFn = (perm, pos, count, offset, value) => {
    const start = pos - offset;
    const ctrlPos = start + R.PCI_AF_CTRL;
    this.#defaultWrite(perm, pos, count, offset, value);
    const ctrl = this.#vconfig[ctrlPos] ?? 0;
    if (ctrl & R.PCI_AF_CTRL_FLR) {
      this.#vconfig[ctrlPos] = ctrl & ~R.PCI_AF_CTRL_FLR;
      const cap = this.#hw(start + R.PCI_AF_CAP, 1);
      if (cap & R.PCI_AF_CAP_FLR && cap & R.PCI_AF_CAP_TP) this.#functionReset();
    }
  };

  #functionReset(): void {
    this.#hooks.zapBarMappings?.();
    this.#hooks.resetFunction?.();
  }

  /**
   * Linux 6.12 means to refresh QMASK from `msi_qmax` here but updates the word at the capability start (ID and
   * next) instead of the flags; only the ID byte changes and that byte is read from the device, so the user keeps
   * seeing the QMASK captured at open. We reproduce what the user sees, and leave the read to the default path.
   */
  readonly #msiRead: ReadFn = (perm, pos, count, offset) => this.#defaultRead(perm, pos, count, offset);

  readonly #msiWrite: WriteFn = (perm, pos, count, offset, value) => {
    this.#defaultWrite(perm, pos, count, offset, value);
    if (!(offset <= R.PCI_MSI_FLAGS && offset + count >= R.PCI_MSI_FLAGS)) return;
    const flagsPos = this.#capStart(pos) + R.PCI_MSI_FLAGS;
    let flags = getLE(this.#vconfig, flagsPos, 2);
    // ENABLE belongs to SET_IRQS; QSIZE may not exceed what vfio-pci enabled.
    if (this.irqType !== 'msi') flags &= ~R.PCI_MSI_FLAGS_ENABLE;
    if ((flags & R.PCI_MSI_FLAGS_QSIZE) >> 4 > this.#msiQmax) {
      flags = (flags & ~R.PCI_MSI_FLAGS_QSIZE) | (this.#msiQmax << 4);
    }
    setLE(this.#vconfig, flagsPos, 2, flags);
    this.#hwWrite(flagsPos, 2, flags);
  };
}
