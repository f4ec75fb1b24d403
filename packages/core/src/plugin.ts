/**
 * Host plugins: how backend and driver packages attach themselves to a host (`createHost({ plugins })`).
 * A plugin is data plus a `setup` that registers what it brings; each registration returns its undo.
 */
import type { VfioIommuDriverOps } from './iommu-driver.js';

/** A module parameter (mirrored at /sys/module/<module>/parameters/<name>). */
export interface ModuleParamSpec {
  /** Default value as sysfs text ('65535', 'N'). */
  readonly default: string;
  /** sysfs mode, e.g. 0o644 (writable by root at run time) or 0o444. */
  readonly mode: number;
  /** Validates and normalizes a new value (throw SysError EINVAL to refuse). */
  parse?(text: string): string;
  readonly description?: string;
}

/**
 * What a plugin's `setup` receives. The core helper extends this interface with more registration points
 * (PCI drivers, VFIO devices, feature handlers...); members listed here are stable.
 */
export interface HostPluginApiBase {
  /** Registers a container IOMMU backend (vfio_register_iommu_driver); EINVAL if the name is taken. */
  registerIommuDriver<D>(ops: VfioIommuDriverOps<D>): () => void;
  /** Declares a module parameter; its value is read with `param(module, name)`. */
  declareParam(module: string, name: string, spec: ModuleParamSpec): void;
  param(module: string, name: string): string;
  log(text: string): void;
}
