/**
 * Module parameters (Linux module_param): declared by the core and by plugins, given initial values through
 * `createHost({ params })`, mirrored at /sys/module/<module>/parameters/<name>.
 */
import type { VfsDir, VfsFile, VfsNode } from '@vfio-ts/platform';
import { SysError } from '@vfio-ts/uapi';
import type { ModuleParamSpec } from './plugin.js';

/** A value given in `createHost({ params })`. */
export type ParamValue = string | number | bigint | boolean;

interface ParamEntry {
  readonly spec: ModuleParamSpec;
  value: string;
  readonly node: VfsFile;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Parses a bool parameter the way Linux 6.12's kstrtobool does (a leading y/Y/t/T/1 is true, n/N/f/F/0 false,
 * "on"/"off" too) and prints it as sysfs shows a bool ('Y' / 'N').
 */
export function parseBoolParam(text: string): 'Y' | 'N' {
  // Linux kstrtobool(): only the first one or two characters count, nothing is trimmed (" y" is EINVAL).
  const c = text[0];
  if (c === 'y' || c === 'Y' || c === 't' || c === 'T' || c === '1') return 'Y';
  if (c === 'n' || c === 'N' || c === 'f' || c === 'F' || c === '0') return 'N';
  if (c === 'o' || c === 'O') {
    const c2 = text[1];
    if (c2 === 'n' || c2 === 'N') return 'Y';
    if (c2 === 'f' || c2 === 'F') return 'N';
  }
  throw new SysError('EINVAL', `invalid bool parameter value '${text}'`);
}

/** The parameter store of one host. */
export class ParamRegistry {
  readonly #modules = new Map<string, Map<string, ParamEntry>>();
  readonly #pending: Map<string, ParamValue>;
  readonly #moduleDirs = new Map<string, VfsDir>();

  constructor(initial: Readonly<Record<string, ParamValue>> = {}) {
    this.#pending = new Map(Object.entries(initial));
  }

  /** Declares `module.name`; a pending initial value from the host options is applied now (EINVAL if refused). */
  declare(module: string, name: string, spec: ModuleParamSpec): void {
    let params = this.#modules.get(module);
    if (!params) {
      params = new Map();
      this.#modules.set(module, params);
    }
    if (params.has(name)) throw new SysError('EEXIST', `module parameter ${module}.${name} already declared`);
    const entry: ParamEntry = {
      spec,
      value: normalize(spec, spec.default),
      node: {
        kind: 'file',
        mode: spec.mode,
        uid: 0,
        gid: 0,
        read: () => encoder.encode(`${entry.value}\n`),
        // A parameter without write bits has no store method at all, as sysfs creates it (kernfs then refuses
        // to open it for writing, even for root).
        ...((spec.mode & 0o222) !== 0
          ? {
              write: (data: Uint8Array): void => {
                entry.value = normalize(spec, stripNewline(decoder.decode(data)));
              },
            }
          : {}),
      },
    };
    params.set(name, entry);
    const key = `${module}.${name}`;
    const initial = this.#pending.get(key);
    if (initial !== undefined) {
      this.#pending.delete(key);
      entry.value = normalize(spec, valueText(initial));
    }
  }

  /** Current value of `module.name` as sysfs text (no newline); ENOENT when undeclared. */
  get(module: string, name: string): string {
    const e = this.#modules.get(module)?.get(name);
    if (!e) throw new SysError('ENOENT', `no module parameter ${module}.${name}`);
    return e.value;
  }

  /** Sets a value as root would through sysfs (the spec's parser validates). */
  set(module: string, name: string, value: ParamValue): void {
    const e = this.#modules.get(module)?.get(name);
    if (!e) throw new SysError('ENOENT', `no module parameter ${module}.${name}`);
    e.value = normalize(e.spec, valueText(value));
  }

  /** Initial values given for parameters nobody declared. */
  unclaimed(): string[] {
    return [...this.#pending.keys()];
  }

  /** The /sys/module directory. */
  sysfsDir(): VfsDir {
    return {
      kind: 'dir',
      mode: 0o755,
      uid: 0,
      gid: 0,
      entries: (): ReadonlyMap<string, VfsNode> => {
        const out = new Map<string, VfsNode>();
        for (const m of [...this.#modules.keys()].sort()) out.set(m, this.#moduleDir(m));
        return out;
      },
    };
  }

  #moduleDir(module: string): VfsDir {
    let dir = this.#moduleDirs.get(module);
    if (dir) return dir;
    const params = (): ReadonlyMap<string, VfsNode> => {
      const out = new Map<string, VfsNode>();
      const m = this.#modules.get(module);
      if (m) for (const n of [...m.keys()].sort()) out.set(n, m.get(n)!.node);
      return out;
    };
    const paramDir: VfsDir = { kind: 'dir', mode: 0o755, uid: 0, gid: 0, entries: params };
    dir = { kind: 'dir', mode: 0o755, uid: 0, gid: 0, entries: () => new Map([['parameters', paramDir]]) };
    this.#moduleDirs.set(module, dir);
    return dir;
  }
}

function stripNewline(s: string): string {
  return s.endsWith('\n') ? s.slice(0, -1) : s;
}

function valueText(v: ParamValue): string {
  if (typeof v === 'boolean') return v ? 'Y' : 'N';
  return String(v);
}

function normalize(spec: ModuleParamSpec, text: string): string {
  return spec.parse ? spec.parse(text) : text;
}
