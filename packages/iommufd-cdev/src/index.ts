/**
 * @vfio-ts/iommufd-cdev — iommufd (`/dev/iommu`): IO address spaces with area trees, IOVA allocation, pinned-page
 * sharing across IOAS_COPY, RLIMIT_MEMLOCK accounting per user or per process, paging HWPTs mirrored into IOMMU
 * domains, device binding/attach for VFIO's cdev path, accesses for emulated devices and the VFIO type1
 * compatibility ioctls. Install with `plugins: [iommufd()]`.
 * @packageDocumentation
 */
export { iommufd, IommufdSubsystem, IOMMUFD_MODULE } from './plugin.js';
export { iommufdContextOf, IommufdFile } from './file.js';
export { iommufdProvider } from './provider.js';
export { attachIommufdPt, bindIommufd, detachIommufdPt, openVfioCdev, vfioCdevPath } from './cdev.js';
export type { OpenedVfioCdev, OpenVfioCdevOptions } from './cdev.js';
export type { IommufdPlugin } from './plugin.js';
export { IommufdContext } from './context.js';
export type { BindDeviceOptions, IommufdAccess, IommufdEnv } from './context.js';
export type { AccessOps } from './objects.js';
export { IoPagetable, U64_MAX } from './ioas.js';
export type { Area } from './ioas.js';
export { IoPages } from './pages.js';
export type { AccountMode, UserLockedVm, PageRun } from './pages.js';
export { IntervalTree } from './interval.js';
export type { Interval } from './interval.js';
