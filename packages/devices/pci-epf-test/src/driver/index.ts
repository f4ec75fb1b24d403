/**
 * `@vfio-ts/device-pci-epf-test/driver` — a user-space port of Linux's pci_endpoint_test driver, written against the
 * system-call surface only (open/ioctl/pread/pwrite/mmap/eventfd/poll). It opens the endpoint through VFIO as QEMU
 * would and runs the `pcitest` checks: BAR patterns, INTx / MSI / MSI-X interrupts delivered to eventfds, and
 * READ / WRITE / COPY DMA transfers verified with crc32_le. Any object with those calls works as the process (a
 * `Process` of `@vfio-ts/core` does).
 * @packageDocumentation
 */
export { EpfTestDriverError, EpfTestVfioDriver, epfStatusText } from './driver.js';
export type {
  EpfBarTestResult,
  EpfInterruptCounts,
  EpfInterruptTestResult,
  EpfIrqType,
  EpfRawCommand,
  EpfTestDriverOptions,
  EpfTestStep,
  EpfTestStepId,
  EpfTransferKind,
  EpfTransferResult,
} from './driver.js';
export { runEpfTestSuite } from './suite.js';
export type { EpfTestSuiteOptions, EpfTestSuiteResult } from './suite.js';
// The process interface and the typed VFIO calls are @vfio-ts/uapi's (one copy for every user-space driver);
// re-exported under this package's names so existing imports keep working.
export type { VfioDriverProcess as EpfTestDriverProcess, VfioMmapOptions as EpfTestMmapOptions, VfioPollFd as EpfTestPollFd } from '@vfio-ts/uapi';
export { deviceInfo, disableIrqIndex, groupStatusFlags, irqInfo, regionInfo, setIrqEventfds, type1Info, unmaskIrq } from '@vfio-ts/uapi';
export type { Type1InfoView, VfioCapView, VfioDeviceInfoView, VfioIrqInfoView, VfioRegionInfoView } from '@vfio-ts/uapi';
