/**
 * `@vfio-ts/device-edu/driver` — a user-space driver for the edu device, written against the system-call surface
 * only (open/ioctl/pread/pwrite/mmap/eventfd/poll). It opens edu through VFIO as QEMU would, maps DMA memory,
 * enables bus mastering, runs the liveness check, a factorial with an MSI, DMA both ways and a reset, and reports
 * each step. Any object with those calls works as the process (a `Process` of `@vfio-ts/core` does).
 * @packageDocumentation
 */
export { EduVfioDriver, EduDriverError, eduFactorial, runEduDemo } from './driver.js';
export type { EduDemoOptions, EduDemoResult, EduDriverOptions, EduStep, EduStepId } from './driver.js';
// The process interface and the typed VFIO calls are @vfio-ts/uapi's (one copy for every user-space driver);
// re-exported under this package's names so existing imports keep working.
export type { VfioDriverProcess as EduDriverProcess, VfioMmapOptions as EduMmapOptions, VfioPollFd as EduPollFd } from '@vfio-ts/uapi';
export { deviceInfo, disableIrqIndex, groupStatusFlags, irqInfo, regionInfo, setIrqEventfds, type1Info } from '@vfio-ts/uapi';
export type { Type1InfoView, VfioCapView, VfioDeviceInfoView, VfioIrqInfoView, VfioRegionInfoView } from '@vfio-ts/uapi';
