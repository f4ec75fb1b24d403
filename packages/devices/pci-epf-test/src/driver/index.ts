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
export type { EpfTestDriverProcess, EpfTestMmapOptions, EpfTestPollFd } from './process.js';
export { deviceInfo, disableIrqIndex, groupStatusFlags, irqInfo, regionInfo, setIrqEventfds, type1Info, unmaskIrq } from './vfio.js';
export type { Type1InfoView, VfioCapView, VfioDeviceInfoView, VfioIrqInfoView, VfioRegionInfoView } from './vfio.js';
