/**
 * The whole `pcitest` run (tools/pci/pcitest.sh): the BAR test on every BAR, then for each interrupt type the
 * interrupt test (INTx once, every MSI and MSI-X vector) and READ / WRITE / COPY at several sizes and buffer
 * placements, the completions delivered through eventfds.
 */
import { SysError } from '@vfio-ts/uapi';
import type {
  Type1InfoView,
  VfioDeviceInfoView,
  VfioDriverProcess,
  VfioIrqInfoView,
  VfioRegionInfoView,
} from '@vfio-ts/uapi';
import { EpfTestDriverError, EpfTestVfioDriver } from './driver.js';
import type {
  EpfBarTestResult,
  EpfInterruptCounts,
  EpfInterruptTestResult,
  EpfIrqType,
  EpfTestDriverOptions,
  EpfTestStep,
  EpfTransferKind,
  EpfTransferResult,
} from './driver.js';

/** Options of {@link runEpfTestSuite}. */
export interface EpfTestSuiteOptions extends EpfTestDriverOptions {
  /** Interrupt types to run, in order (default intx, msi, msix). */
  readonly irqTypes?: readonly EpfIrqType[];
  /** Vectors to enable (and raise) for MSI and MSI-X (default every vector the IRQ info reports). */
  readonly vectors?: number;
  /** Transfer sizes (default 1, 1024, 1025, 4097, 65537 — page-aligned and not). */
  readonly sizes?: readonly number[];
  /**
   * Where in its page each allocation starts, used round-robin over the sizes (default 0, 0x10, 0x7f3, 0xff8, so
   * buffers start mid-page and cross page boundaries). The `alignment` option rounds the start up.
   */
  readonly allocOffsets?: readonly number[];
  /** Transfers to run (default read, write, copy). */
  readonly transfers?: readonly EpfTransferKind[];
}

/** What {@link runEpfTestSuite} found. */
export interface EpfTestSuiteResult {
  readonly bdf: string;
  readonly group: number;
  readonly device: VfioDeviceInfoView;
  readonly regions: readonly (VfioRegionInfoView | { readonly index: number; readonly errno: string })[];
  readonly irqs: readonly (VfioIrqInfoView | { readonly index: number; readonly errno: string })[];
  readonly iommu: Type1InfoView;
  readonly bars: readonly EpfBarTestResult[];
  readonly interrupts: readonly EpfInterruptTestResult[];
  readonly transfers: readonly EpfTransferResult[];
  /** Completion interrupts received per type, and spurious signals. */
  readonly interruptCounts: EpfInterruptCounts;
  readonly steps: readonly EpfTestStep[];
  /** Host time the run took (ms), when a clock was given. */
  readonly hostMs?: number;
  /** Every check passed. */
  readonly ok: boolean;
}

const DEFAULT_SIZES: readonly number[] = [1, 1024, 1025, 4097, 65537];
const DEFAULT_OFFSETS: readonly number[] = [0, 0x10, 0x7f3, 0xff8];

/**
 * Runs the pcitest suite against a pci-epf-test endpoint through VFIO and closes everything. Resolves with every
 * result (a failed check is reported, not thrown); rejects with an {@link EpfTestDriverError} only when a system
 * call fails or a completion never arrives (everything opened is closed again).
 *
 * @example
 * const r = await runEpfTestSuite(p, { bdf: '0000:01:00.0', onStep: (s) => console.log(`${s.title}: ${s.detail}`) });
 * console.log(r.ok, r.interruptCounts); // true { intx: 16, msi: 47, msix: 47, spurious: 0 }
 */
export async function runEpfTestSuite(p: VfioDriverProcess, options: EpfTestSuiteOptions): Promise<EpfTestSuiteResult> {
  const sizes = options.sizes ?? DEFAULT_SIZES;
  const offsets = options.allocOffsets ?? DEFAULT_OFFSETS;
  if (offsets.length === 0) throw new EpfTestDriverError('container', new SysError('EINVAL', 'allocOffsets is empty'));
  const start = options.now?.();
  const epf = await EpfTestVfioDriver.open(p, options);
  try {
    const bars: EpfBarTestResult[] = [];
    for (const bar of epf.implementedBars) bars.push(await epf.barTest(bar));
    const interrupts: EpfInterruptTestResult[] = [];
    const transfers: EpfTransferResult[] = [];
    for (const type of options.irqTypes ?? (['intx', 'msi', 'msix'] as const)) {
      const n = await epf.setIrqType(type, type === 'intx' ? undefined : options.vectors);
      if (type === 'intx') interrupts.push(await epf.interruptTest());
      else for (let v = 1; v <= n; v++) interrupts.push(await epf.interruptTest(v));
      for (const kind of options.transfers ?? (['read', 'write', 'copy'] as const)) {
        for (const [i, size] of sizes.entries()) transfers.push(await epf.transfer(kind, size, offsets[i % offsets.length]));
      }
    }
    const base = {
      bdf: options.bdf,
      group: epf.group,
      device: epf.deviceInfo,
      regions: epf.regions,
      irqs: epf.irqs,
      iommu: epf.iommu,
      bars,
      interrupts,
      transfers,
      interruptCounts: epf.interruptCounts,
      ok: bars.every((b) => b.ok) && interrupts.every((t) => t.ok) && transfers.every((t) => t.ok),
    };
    await epf.close();
    const end = options.now?.();
    return start === undefined || end === undefined ? { ...base, steps: epf.steps } : { ...base, steps: epf.steps, hostMs: end - start };
  } catch (e) {
    await epf.close().catch(() => undefined);
    throw e;
  }
}
