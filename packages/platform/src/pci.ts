/**
 * PCI contracts: functions (config space, BARs, interrupts, resets), the bus with its host drivers and binding,
 * as the Linux PCI core presents them to VFIO. `@vfio-ts/sim` implements the bus; device models implement
 * {@link PciFunction}.
 */
import type { IommuGroup } from './iommu.js';

/** A BAR as the hardware decodes it. */
export interface PciBarInfo {
  readonly index: number;
  readonly type: 'mem32' | 'mem64' | 'io';
  readonly prefetchable: boolean;
  /** Size in bytes (a power of two); 0 = not implemented. */
  readonly size: bigint;
}

/** DMA through the IOMMU, as seen from a device model. Faults throw and leave memory untouched. */
export interface PciDma {
  read(iova: bigint, length: number): Uint8Array;
  write(iova: bigint, data: Uint8Array): void;
}

/** What a device model may do to the outside world. */
export interface PciFunctionContext {
  readonly bdf: string;
  readonly dma: PciDma;
  /** Drives the INTx line (level-triggered). */
  setIntx(level: boolean): void;
  /** Sends MSI / MSI-X `vector` (the host routes it to whatever the function's MSI state says). */
  msiNotify(vector: number): void;
  /** Simulated time. */
  readonly clock: Clock;
}

/**
 * A PCI function model: what a vendor writes. Config space is raw hardware here (no virtualization: that is
 * vfio-pci's job). Only `config*` and `bars` are required; models that do work implement the rest.
 */
export interface PciFunction {
  /** Reads `size` (1, 2, 4) bytes of config space at `offset` (0..4095). */
  configRead(offset: number, size: 1 | 2 | 4): number;
  configWrite(offset: number, size: 1 | 2 | 4, value: number): void;
  /** BARs 0..5 as decoded by the hardware (sizing is emulated by the config-space model). */
  readonly bars: readonly PciBarInfo[];
  /** ROM size in bytes, 0 when there is none. */
  readonly romSize?: bigint;
  /** Reads `length` bytes of BAR `bar` at `offset` (MMIO or I/O). */
  barRead?(bar: number, offset: bigint, length: number): Uint8Array;
  barWrite?(bar: number, offset: bigint, data: Uint8Array): void;
  /** ROM contents. */
  romRead?(offset: bigint, length: number): Uint8Array;
  /** Called once when the function is plugged into a host. */
  attach?(ctx: PciFunctionContext): void;
  /** Function-level reset (FLR) or any reset that returns the function to power-on state. */
  reset?(kind: 'flr' | 'pm' | 'bus'): void;
}

/** A PCI function as the host's PCI core sees it (Linux struct pci_dev). */
export interface PciDeviceHandle {
  /** Domain:bus:device.function, e.g. '0000:00:03.0'. */
  readonly bdf: string;
  readonly vendor: number;
  readonly device: number;
  readonly subsystemVendor: number;
  readonly subsystemDevice: number;
  /** 24-bit class code. */
  readonly classCode: number;
  /** Header type (0 normal, 1 bridge), without the multifunction bit. */
  readonly headerType: number;
  /** The model. */
  readonly fn: PciFunction;
  /** The IOMMU group (undefined when there is no IOMMU). */
  readonly iommuGroup: IommuGroup | undefined;
  /** Name of the bound driver, if any. */
  readonly driver: string | undefined;
  /** sysfs driver_override ('' when unset). */
  driverOverride: string;
  /** Bus number of the function's bus, and its parent bridge BDF (undefined on a root bus). */
  readonly bus: number;
  readonly parent: string | undefined;
  /** Resets the function: FLR if it has the capability, else PM reset if no-soft-reset is clear, else EINVAL. */
  functionReset(kind?: 'flr' | 'pm'): void;
  /** Which function resets are available. */
  readonly resetMethods: readonly ('flr' | 'pm' | 'bus')[];
  /** Every function a secondary bus reset of this function's bus would hit (including this one). */
  busResetScope(): readonly PciDeviceHandle[];
  /** Performs the secondary bus reset of this function's bus (ENOTTY when impossible, e.g. root bus). */
  busReset(): void;
  /** Interrupt delivery from the model, routed to whoever listens (vfio-pci installs handlers). */
  onIntx(handler: ((level: boolean) => void) | undefined): void;
  onMsi(handler: ((vector: number) => void) | undefined): void;
}

/** A host driver (Linux struct pci_driver). */
export interface PciDriver {
  readonly name: string;
  /** vendor:device ids it binds to automatically ('8086:100e'); dynamic ids come from sysfs `new_id`. */
  readonly ids?: readonly string[];
  /**
   * True for drivers that do no DMA on their own (vfio-pci, pci-stub, pcieport): they may be bound while user
   * space owns the group (Linux driver_managed_dma).
   */
  readonly driverManagedDma: boolean;
  /** Called when binding; throw a SysError to refuse. */
  probe(dev: PciDeviceHandle): void;
  /** Called when unbinding; may block (return a promise) until users let go, as vfio-pci's remove does. */
  remove(dev: PciDeviceHandle): void | Promise<void>;
}

/** The PCI bus of a host. */
export interface PciBus {
  devices(): readonly PciDeviceHandle[];
  device(bdf: string): PciDeviceHandle | undefined;
  /** Registers a driver and probes unbound matching devices; returns the undo. */
  registerDriver(driver: PciDriver): () => Promise<void>;
  driver(name: string): PciDriver | undefined;
  /**
   * Binds `bdf` to driver `name` (sysfs bind): ENODEV unknown device or driver, EBUSY already bound, and EBUSY
   * when the driver does DMA and the device's IOMMU group is owned by user space.
   */
  bind(bdf: string, name: string): void;
  /** Unbinds (sysfs unbind); resolves when the driver's remove returned. */
  unbind(bdf: string): Promise<void>;
  /** drivers_probe: binds to driver_override, else a driver whose ids match. */
  probe(bdf: string): void;
  /** Adds a dynamic id to a driver (sysfs new_id) and probes matching unbound devices. */
  addDynamicId(driver: string, id: string): void;
}

/** Simulated time: monotonic milliseconds, timers that tests can advance. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): { cancel(): void };
  sleep(ms: number): Promise<void>;
}
