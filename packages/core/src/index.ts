/**
 * @vfio-ts/core — the VFIO core on a host: processes and their file tables, containers, groups, devices and
 * device sets, the ioctl dispatcher, VFIO_DEVICE_FEATURE decoding, IOMMU-backend and feature-handler registries,
 * no-IOMMU mode and the emulated-IOMMU DMA helpers.
 * @packageDocumentation
 */
export { createHost } from './host.js';
export type { Host, HostOptions, HostDescription, LogEntry } from './host.js';
export { Process } from './process.js';
export type { SpawnOptions, MmapOptions, PollFd, PollResult, ProcessHost } from './process.js';
export {
  OpenFile,
  O_RDONLY,
  O_WRONLY,
  O_RDWR,
  O_ACCMODE,
  O_NONBLOCK,
  O_CLOEXEC,
  POLLIN,
  POLLPRI,
  POLLOUT,
  POLLERR,
  POLLHUP,
  POLLNVAL,
  POLLRDNORM,
  POLLWRNORM,
  DEFAULT_POLLMASK,
} from './file.js';
export type { FileMapping, FileOps, MmapRequest, SyscallContext } from './file.js';
export { F_OK, R_OK, W_OK, X_OK } from './vfs.js';
export { DeviceSet, VfioDevice } from './device.js';
export type { VfioDeviceOps, VfioDeviceOptions, VfioDeviceState, VfioDeviceGroupInfo, DeviceCoreHooks } from './device.js';
export { VfioCore, DeviceFile, VFIO_DEV_MAJOR, VFIO_PIN_PAGES_MAX_ENTRIES } from './vfio.js';
export type { RegisterGroupDeviceOptions, DeviceOpenState, VfioCoreEnv } from './vfio.js';
export { Container, ContainerFile } from './container.js';
export type { ContainerBackend, ContainerHost } from './container.js';
export { Group, GroupFile } from './group.js';
export type { GroupHost, GroupIommufd } from './group.js';
export { checkFeature, decodeDeviceFeature } from './feature.js';
export type { DeviceFeatureHandler, DeviceFeatureCall } from './feature.js';
export { validateSetIrqs } from './irqs.js';
export type { ValidatedSetIrqs, VfioIrqSetHeader } from './irqs.js';
export { AsyncLock } from './lock.js';
export { parseBoolParam } from './params.js';
export type { ParamValue } from './params.js';
export type {
  CallContext,
  IoctlArg,
  IommuBackendEnv,
  VfioDeviceRef,
  VfioGroupRef,
  VfioGroupType,
  VfioIommuDriverOps,
} from './iommu-driver.js';
export type {
  IommufdDeviceBinding,
  IommufdDeviceId,
  IommufdEmulatedDevice,
  IommufdHandle,
  IommufdPhysicalDevice,
  IommufdProvider,
  VfioDeviceIommufdInfo,
  VfioIommufdOps,
} from './iommufd.js';
export type { DevNodeSpec, HostPlugin, HostPluginApi, HostPluginApiBase, ModuleParamSpec } from './plugin.js';
export { cString, intArg, groupStatus, openVfioDevice } from './helpers.js';
export type { OpenVfioDeviceOptions, OpenedVfioDevice } from './helpers.js';
