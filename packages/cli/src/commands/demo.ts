/**
 * `vfio demo`: on an embedded simulated host, the edu user-space driver (@vfio-ts/device-edu/driver) opens the edu
 * device through VFIO as QEMU would, maps DMA memory, checks liveness, computes a factorial with an MSI delivered
 * through an eventfd, moves data by DMA both ways and resets the device. Prints the story and a closing table.
 */
import { EduDriverError, runEduDemo } from '@vfio-ts/device-edu/driver';
import type { EduDemoResult, EduStep } from '@vfio-ts/device-edu/driver';
import { isSysError } from '@vfio-ts/uapi';
import type { VfioCommand } from '../command.js';
import { CliError, EXIT_USAGE } from '../errors.js';
import { fields, hex, table, text, type Block, type Report } from '../output.js';
import { buildDemoHost } from '../sim-host.js';

/** What `vfio demo --json` prints. */
export interface DemoView {
  readonly ok: boolean;
  readonly host: string;
  readonly device: { readonly bdf: string; readonly group: number; readonly flags: string; readonly num_regions: number; readonly num_irqs: number };
  readonly steps: readonly { readonly id: string; readonly title: string; readonly detail: string; readonly calls: readonly string[] }[];
  readonly results: {
    readonly id: string;
    readonly liveness: { readonly wrote: string; readonly read: string };
    readonly factorial: { readonly n: number; readonly value: number };
    readonly dma: { readonly iova: string; readonly to_device: number; readonly from_device: number; readonly verified: boolean };
    readonly reset: boolean;
  };
  readonly dma_bytes: number;
  readonly interrupts: { readonly msi: number; readonly mode: 'msi' | 'polling' };
  readonly syscalls: number;
  readonly mmio: 'mmap' | 'pread';
  /** Simulated host time the run took. */
  readonly host_ms: number;
  /** Real time the run took on this machine. */
  readonly wall_ms: number;
}

const HOST_LINE = 'a simulated host (vfio-ts): VT-d-like IOMMU, edu at 0000:01:00.0 behind a PCIe root port bound to vfio-pci, an e1000 NIC owned by the host';

function parseCount(value: unknown, name: string, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  const n = typeof value === 'string' && /^(0x[0-9a-f]+|\d+)$/i.test(value.trim()) ? Number(value.trim()) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new CliError(`${name} must be a whole number from ${min} to ${max}`, `e.g. '${name} ${fallback}'`, EXIT_USAGE);
  return n;
}

/** The human view of a finished run: the narrative, then the closing table. */
export function demoReport(result: EduDemoResult, wallMs: number, trace: boolean): Report {
  const steps = result.steps;
  const syscalls = steps.reduce((n, s) => n + s.calls.length, 0);
  const dmaBytes = result.dma.toDevice + result.dma.fromDevice;
  const view: DemoView = {
    ok: result.ok,
    host: HOST_LINE,
    device: { bdf: result.bdf, group: result.group, flags: hex(result.device.flags), num_regions: result.device.numRegions, num_irqs: result.device.numIrqs },
    steps: steps.map((s) => ({ id: s.id, title: s.title, detail: s.detail, calls: s.calls })),
    results: {
      id: hex(result.id),
      liveness: { wrote: hex(result.liveness.wrote), read: hex(result.liveness.read) },
      factorial: { n: result.factorial.n, value: result.factorial.value },
      dma: { iova: hex(result.dma.iova), to_device: result.dma.toDevice, from_device: result.dma.fromDevice, verified: result.dma.verified },
      reset: result.reset.done,
    },
    dma_bytes: dmaBytes,
    interrupts: result.interrupts,
    syscalls,
    mmio: result.mmio,
    host_ms: result.hostMs ?? 0,
    wall_ms: Math.round(wallMs * 10) / 10,
  };
  const narrative = steps.map((s: EduStep, i) => {
    const head = `${String(i + 1).padStart(2)}. ${s.title}\n    ${s.detail}`;
    return trace && s.calls.length > 0 ? `${head}\n${s.calls.map((c) => `      ${c}`).join('\n')}` : head;
  });
  const check = (ok: boolean): string => (ok ? 'ok' : 'FAILED');
  const blocks: Block[] = [
    text(`vfio demo — the edu device driven from user space through VFIO\non ${HOST_LINE}`),
    text(narrative.join('\n')),
    table(
      ['step', 'result', 'status'],
      [
        ['open through VFIO', `group ${result.group}, ${result.bdf}, ${result.device.numRegions} regions, ${result.device.numIrqs} IRQ indexes`, 'ok'],
        ['identify', `ID 0x${result.id.toString(16).padStart(8, '0')} (edu ${result.id >>> 24}.${(result.id >>> 16) & 0xff})`, 'ok'],
        ['liveness', `${hex(result.liveness.wrote)} → ${hex(result.liveness.read)}`, check(result.liveness.ok)],
        ['factorial', `${result.factorial.n}! = ${result.factorial.value}`, check(result.factorial.ok)],
        ['DMA to device', `${result.dma.toDevice} bytes from IOVA ${hex(result.dma.iova)}`, 'ok'],
        ['DMA from device', `${result.dma.fromDevice} bytes, ${result.dma.verified ? 'identical to what was sent' : 'DIFFERENT from what was sent'}`, check(result.dma.verified)],
        ['reset', result.reset.done ? 'VFIO_DEVICE_RESET, registers at power-on' : 'no reset offered', check(result.reset.ok)],
      ],
    ),
    fields([
      ['DMA bytes', String(dmaBytes)],
      ['interrupts', result.interrupts.mode === 'msi' ? `${result.interrupts.msi} MSI through an eventfd` : 'none (MSI unavailable, completion polled)'],
      ['system calls', String(syscalls)],
      ['BAR0 access', result.mmio === 'mmap' ? 'mmap of the device fd' : 'pread/pwrite on the device fd'],
      ['time', `${view.host_ms} ms simulated, ${view.wall_ms} ms real`],
      ['result', result.ok ? 'every check passed' : 'a check FAILED'],
    ]),
  ];
  return { data: view, blocks };
}

/** `vfio demo`. */
export const demoCommand: VfioCommand = {
  name: 'demo',
  configure: (cmd) => {
    cmd
      .summary('drive the edu device from user space through VFIO on a simulated host')
      .description('Builds a simulated host (a VT-d-like IOMMU, QEMU\'s edu device bound to vfio-pci behind a PCIe '
        + 'root port, an e1000 NIC owned by a host driver) and runs a user-space driver written against the '
        + 'system-call surface: it opens edu through VFIO as QEMU would (container, group, SET_IOMMU type1v2, '
        + 'device fd, region and IRQ infos), maps DMA memory, enables bus mastering, checks liveness, computes a '
        + 'factorial with an MSI received through an eventfd, moves data by DMA both ways and resets the device. '
        + 'Nothing touches this machine\'s devices.')
      .option('--factorial <n>', 'the number whose factorial edu computes', '10')
      .option('--dma-bytes <n>', 'bytes moved by DMA each way (1..4096)', '4096')
      .option('--trace', 'list the system calls under each step');
  },
  run: async ({ options }) => {
    const n = parseCount(options['factorial'], '--factorial', 0, 0xffffffff, 10);
    const dmaBytes = parseCount(options['dmaBytes'], '--dma-bytes', 1, 4096, 4096);
    const { host, root, eduBdf } = buildDemoHost();
    const clock = host.platform.clock;
    const t0 = performance.now();
    let result: EduDemoResult;
    try {
      result = await runEduDemo(root, { bdf: eduBdf, factorialOf: n, dmaBytes, now: () => clock.now() });
    } catch (e) {
      if (e instanceof EduDriverError) {
        const errno = isSysError(e.cause) ? ` (${e.cause.errno})` : '';
        throw new CliError(`the edu driver failed at step '${e.step}'${errno}: ${e.cause instanceof Error ? e.cause.message : String(e.cause)}`,
          'this is a bug in vfio-ts or an incomplete build (is vfio-pci in @vfio-ts/pci?); run with --trace to see the calls');
      }
      throw e;
    }
    const report = demoReport(result, performance.now() - t0, options['trace'] === true);
    if (!result.ok) throw new CliError('the demo ran but a check failed', 'see the table above; this is a bug in vfio-ts');
    return report;
  },
};
