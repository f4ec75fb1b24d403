/**
 * @vfio-ts/device-mdpy — the mdpy sample mdev driver (Linux samples/vfio-mdev/mdpy.c): a virtual PCI display whose
 * framebuffer is BAR0, described through VFIO_DEVICE_QUERY_GFX_PLANE as a REGION plane.
 * @packageDocumentation
 */
export {
  mdpy,
  mdpyOps,
  MdpyState,
  MDPY_TYPES,
  MDPY_PCI_VENDOR_ID,
  MDPY_PCI_DEVICE_ID,
  MDPY_PCI_SUBVENDOR_ID,
  MDPY_PCI_SUBDEVICE_ID,
  MDPY_VENDORCAP_OFFSET,
  MDPY_VENDORCAP_SIZE,
  MDPY_FORMAT_OFFSET,
  MDPY_WIDTH_OFFSET,
  MDPY_HEIGHT_OFFSET,
  MDPY_CONFIG_SPACE_SIZE,
  MDPY_MEMORY_BAR_OFFSET,
  MDPY_DISPLAY_REGION,
  DRM_FORMAT_XRGB8888,
} from './mdpy.js';
export type { MdpyHandle, MdpyOptions, MdpyTypeData } from './mdpy.js';
