/**
 * @vfio-ts/mdev — mediated devices (Linux drivers/vfio/mdev, inventory §6): parents offering types, devices
 * created and removed by UUID through sysfs text, one emulated-IOMMU VFIO group per device, and the driver
 * contract vendor drivers implement (see docs/writing-an-mdev-driver.md).
 * @packageDocumentation
 */
export { mdev, mdevBus, registerMdevParent } from './plugin.js';
export { MdevBus, MdevDevice, MdevParent, MdevType } from './mdev.js';
export type { MdevBusDescription, MdevDeviceState } from './mdev.js';
export type {
  MdevDriver,
  MdevParentDevice,
  MdevParentOptions,
  MdevPciParent,
  MdevShow,
  MdevTypeSpec,
  MdevVirtualParent,
} from './types.js';
export { parseGuid, parseUlong, relativeLink, UUID_STRING_LEN } from './sysfs.js';
export { copyFromUser, copyToUser } from './user.js';
