/**
 * Small helpers for users, examples and tests: argument builders and the usual container/group/device dance
 * (the QEMU flow) done through the system-call surface. They live in `@vfio-ts/uapi` ("typed system calls for VFIO
 * users", one copy for core, the CLI and the sample drivers) and are re-exported here so `@vfio-ts/core`'s names
 * keep working; a core `Process` is a `VfioUserProcess` as is.
 */
export { cString, intArg, groupStatus, openVfioDevice } from '@vfio-ts/uapi';
export type { OpenVfioDeviceOptions, OpenedVfioDevice } from '@vfio-ts/uapi';
