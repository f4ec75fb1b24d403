/**
 * The `iommufd()` host plugin: registers `/dev/iommu` (mode 0666, as the misc device is) whose every open creates
 * an {@link IommufdContext}, declares the `iommufd.allow_unsafe_interrupts` module parameter, and keeps the
 * per-user locked-memory counters all contexts of the host share (Linux user_struct.locked_vm).
 */
import type { HostPlugin, HostPluginApi } from '@vfio-ts/core';
import { parseBoolParam } from '@vfio-ts/core';
import { SysError } from '@vfio-ts/uapi';
import { IommufdContext } from './context.js';
import { IommufdFile } from './file.js';
import { iommufdProvider } from './provider.js';
import type { UserLockedVm } from './pages.js';

/** The iommufd module's name (for /sys/module/iommufd/parameters). */
export const IOMMUFD_MODULE = 'iommufd';

/** Host-wide iommufd state: per-user locked pages and the open contexts. */
export class IommufdSubsystem {
  readonly #userPages = new Map<number, number>();
  readonly #contexts = new Set<IommufdContext>();

  constructor(readonly api: HostPluginApi) {}

  /** Per-user locked_vm as iommufd charges it. */
  readonly userLocked: UserLockedVm = {
    get: (uid) => this.#userPages.get(uid) ?? 0,
    adjust: (uid, delta, limitPages) => {
      const cur = this.#userPages.get(uid) ?? 0;
      const next = cur + delta;
      if (delta > 0 && limitPages !== undefined && next > limitPages) throw new SysError('ENOMEM', 'RLIMIT_MEMLOCK exceeded');
      if (next <= 0) this.#userPages.delete(uid);
      else this.#userPages.set(uid, next);
    },
  };

  /** Pages charged to `uid` by every iommufd of the host (RLIMIT_MODE 0). */
  userLockedPages(uid: number): number {
    return this.userLocked.get(uid);
  }

  /** Opens a new context (what open("/dev/iommu") does). */
  open(): IommufdContext {
    const ctx = new IommufdContext({
      userLocked: this.userLocked,
      iommuKind: this.api.platform.iommu?.kind,
      allowUnsafeInterrupts: () => this.api.param(IOMMUFD_MODULE, 'allow_unsafe_interrupts') === 'Y',
      log: (t) => {
        this.api.log(t);
      },
    });
    this.#contexts.add(ctx);
    return ctx;
  }

  /** The host's iommufd as data: per-user locked pages and every open context. */
  describe(): Record<string, unknown> {
    return {
      userLockedPages: Object.fromEntries(this.#userPages),
      contexts: this.contexts.map((c) => c.describe()),
    };
  }

  /** Contexts currently open. */
  get contexts(): readonly IommufdContext[] {
    return [...this.#contexts];
  }

  /** @internal */
  closed(ctx: IommufdContext): void {
    this.#contexts.delete(ctx);
  }
}

/** The plugin object `iommufd()` returns. */
export interface IommufdPlugin extends HostPlugin {
  /** The subsystem of the host this plugin was last set up on (one plugin object per host). */
  readonly subsystem: IommufdSubsystem | undefined;
}

/**
 * The iommufd plugin: `createHost({ platform, plugins: [iommufd()] })` adds `/dev/iommu`.
 */
export function iommufd(): IommufdPlugin {
  let current: IommufdSubsystem | undefined;
  return {
    name: 'iommufd',
    get subsystem() {
      return current;
    },
    setup(api: HostPluginApi): void {
      const sub = new IommufdSubsystem(api);
      current = sub;
      api.declareParam(IOMMUFD_MODULE, 'allow_unsafe_interrupts', {
        default: 'N',
        mode: 0o644,
        parse: parseBoolParam,
        description: 'Allow IOMMUFD to bind to devices even if the platform cannot isolate their MSI interrupts',
      });
      // The seam VFIO's core reaches iommufd through (VFIO_DEVICE_BIND_IOMMUFD, SET_CONTAINER with an iommufd fd);
      // with it registered the core also creates the /dev/vfio/devices/vfioN nodes.
      api.registerIommufdProvider(iommufdProvider());
      api.registerDevNode('/dev/iommu', {
        mode: 0o666,
        open: () => {
          const ctx = sub.open();
          return new IommufdFile(ctx, () => {
            sub.closed(ctx);
          });
        },
      });
    },
  };
}
