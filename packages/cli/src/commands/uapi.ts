/**
 * `vfio uapi [NAME]`: the VFIO/iommufd ioctl table from @vfio-ts/uapi, or one ioctl (or struct) with its
 * struct's fields, offsets and sizes. NAME may be an ioctl name (any case, `VFIO_` optional), a request number
 * (`0x3b71`) or a Linux struct name (`vfio_iommu_type1_dma_map`).
 */
import { IOCTLS, STRUCTS } from '@vfio-ts/uapi';
import type { VfioCommand } from '../command.js';
import { CliError, EXIT_USAGE } from '../errors.js';
import { fields, hex, table, type Block, type Report } from '../output.js';
import { closeMatches } from '../suggest.js';

/** The parts of a uapi ioctl entry the command shows. */
export interface IoctlLike {
  readonly name: string;
  readonly nr: number;
  readonly request: number;
  readonly fd: string;
  readonly struct: string | null;
  readonly arg: string;
  readonly summary: string;
  /** The first Linux release with it, when later than the interface's first. */
  readonly since?: string;
}

/** The parts of a uapi struct codec the command shows. */
export interface StructLike {
  readonly name: string;
  readonly size: number;
  readonly minsz: number;
  readonly fields: readonly { readonly name: string; readonly offset: number; readonly size: number; readonly type: string }[];
}

/** A struct as `--json` prints it. */
export interface StructView {
  readonly name: string;
  readonly size: number;
  readonly minsz: number;
  readonly fields: readonly { readonly name: string; readonly offset: number; readonly size: number; readonly type: string }[];
}

/** An ioctl as `--json` prints it; `struct` is the layout when uapi has one, else its name or null. */
export interface IoctlView {
  readonly name: string;
  /** The request number in hex, e.g. `0x3b71`. */
  readonly number: string;
  readonly request: number;
  readonly nr: number;
  readonly fd: string;
  readonly arg: string;
  readonly summary: string;
  readonly since?: string;
  readonly struct: StructView | string | null;
}

/** The uapi tables the command reads; the real ones by default, small ones in tests. */
export interface UapiTables {
  readonly ioctls: readonly IoctlLike[];
  readonly structs: Readonly<Record<string, StructLike>>;
}

const DEFAULT_TABLES: UapiTables = { ioctls: IOCTLS, structs: STRUCTS };

function structView(s: StructLike): StructView {
  return { name: s.name, size: s.size, minsz: s.minsz, fields: s.fields.map((f) => ({ name: f.name, offset: f.offset, size: f.size, type: f.type })) };
}

/** An ioctl as JSON with its struct by name (the list) — {@link ioctlView} swaps in the layout. */
function ioctlSummary(io: IoctlLike): IoctlView {
  return {
    name: io.name, number: hex(io.request), request: io.request, nr: io.nr, fd: io.fd, arg: io.arg, summary: io.summary,
    ...(io.since === undefined ? {} : { since: io.since }),
    struct: io.struct,
  };
}

function ioctlView(io: IoctlLike, tables: UapiTables): IoctlView {
  const codec = io.struct === null ? undefined : tables.structs[io.struct];
  return { ...ioctlSummary(io), struct: codec ? structView(codec) : io.struct };
}

function structBlocks(s: StructView): Block[] {
  return [
    table(
      ['field', { header: 'offset', align: 'right' }, { header: 'size', align: 'right' }, 'type'],
      s.fields.map((f) => [f.name, String(f.offset), String(f.size), f.type]),
      `struct ${s.name}: size ${s.size}, minsz ${s.minsz}`,
    ),
  ];
}

/** The struct column of an ioctl that takes no named struct: how its argument travels instead. */
function argWithoutStruct(arg: string): string {
  switch (arg) {
    case 'none': return '-';
    case 'value': return '(integer by value)';
    case 'int-pointer': return '(pointer to an int)';
    case 'string': return '(string)';
    case 'struct': return '(struct not in uapi)';
    default: return `(${arg})`;
  }
}

/** The table of every ioctl (`vfio uapi`). */
export function listIoctls(tables: UapiTables = DEFAULT_TABLES): Report {
  return {
    data: { ioctls: tables.ioctls.map(ioctlSummary) },
    blocks: [
      table(
        ['ioctl', { header: 'number', align: 'right' }, 'fd', 'struct'],
        tables.ioctls.map((io) => [io.name, hex(io.request), io.fd, io.struct ?? argWithoutStruct(io.arg)]),
      ),
      fields([['ioctls', String(tables.ioctls.length)]]),
    ],
  };
}

/** One ioctl with its struct's layout (`vfio uapi VFIO_IOMMU_MAP_DMA`). */
export function describeIoctl(io: IoctlLike, tables: UapiTables = DEFAULT_TABLES): Report {
  const view = ioctlView(io, tables);
  const blocks: Block[] = [
    fields([
      ['number', `${view.number} (nr ${view.nr})`],
      ['fd', view.fd],
      ['arg', view.arg],
      ['summary', view.summary],
      ...(view.since === undefined ? [] : [['since', `Linux ${view.since}`] as const]),
    ], view.name),
  ];
  if (view.struct !== null && typeof view.struct === 'object') blocks.push(...structBlocks(view.struct));
  else if (typeof view.struct === 'string') blocks.push(fields([['struct', `${view.struct} (layout not in @vfio-ts/uapi)`]]));
  return { data: view, blocks };
}

/** One struct and the ioctls that take it (`vfio uapi vfio_iommu_type1_dma_map`). */
export function describeStruct(s: StructLike, tables: UapiTables = DEFAULT_TABLES): Report {
  const users = tables.ioctls.filter((io) => io.struct === s.name).map((io) => io.name);
  return {
    data: { struct: structView(s), ioctls: users },
    blocks: [...structBlocks(structView(s)), fields([['used by', users.length ? users.join(', ') : '(no ioctl)']])],
  };
}

/** What a NAME given to `vfio uapi` turned out to be. */
export type UapiMatch =
  | { readonly kind: 'ioctl'; readonly ioctl: IoctlLike }
  | { readonly kind: 'ioctls'; readonly ioctls: readonly IoctlLike[] }
  | { readonly kind: 'struct'; readonly struct: StructLike };

/**
 * Finds what NAME means: an ioctl (exact, any case, or without its `VFIO_` prefix), a request number, or a
 * struct. A number several ioctls share gives them all. Anything else is a usage error listing the closest names.
 */
export function resolveUapiName(query: string, tables: UapiTables = DEFAULT_TABLES): UapiMatch {
  const upper = query.trim().toUpperCase();
  const ioctl = tables.ioctls.find((io) => io.name === query)
    ?? tables.ioctls.find((io) => io.name.toUpperCase() === upper || io.name.toUpperCase() === `VFIO_${upper}`);
  if (ioctl) return { kind: 'ioctl', ioctl };
  if (/^(0x[0-9a-f]+|\d+)$/i.test(query.trim())) {
    // Several ioctls can share a number (VFIO n=12..21 mean one thing on a device fd and another on a
    // container fd; inventory §1.4/§1.7), so a number can name a list.
    const n = Number(query.trim());
    const byNumber = tables.ioctls.filter((io) => io.request === n);
    if (byNumber.length === 1) return { kind: 'ioctl', ioctl: byNumber[0]! };
    if (byNumber.length > 1) return { kind: 'ioctls', ioctls: byNumber };
    throw new CliError(`no ioctl has request number ${hex(n)}`, "run 'vfio uapi' to list every ioctl with its number", EXIT_USAGE);
  }
  const struct = tables.structs[query] ?? Object.values(tables.structs).find((s) => s.name.toUpperCase() === upper);
  if (struct) return { kind: 'struct', struct };
  const names = [...tables.ioctls.map((io) => io.name), ...Object.keys(tables.structs)];
  const near = closeMatches(query, names);
  throw new CliError(
    `no ioctl or struct named '${query}'`,
    near.length ? `did you mean ${near.join(', ')}? ('vfio uapi' lists them all)` : "run 'vfio uapi' to list every ioctl",
    EXIT_USAGE,
  );
}

/** The fd types the ioctls are issued on, in table order. */
function fdTypes(tables: UapiTables): string[] {
  return [...new Set(tables.ioctls.map((io) => io.fd))];
}

/** Builds the command over the given tables (tests pass small ones). */
export function makeUapiCommand(tables: UapiTables = DEFAULT_TABLES): VfioCommand {
  return {
    name: 'uapi',
    configure: (cmd) => {
      cmd
        .summary('list the VFIO/iommufd ioctls, or show one with its struct layout')
        .description('Without NAME: every ioctl with its request number, the fd it is issued on and its argument struct. '
          + 'With NAME (an ioctl, a request number such as 0x3b71, or a struct name): its details and the struct\'s '
          + 'fields with their byte offsets and sizes (LP64), plus the struct size and minsz.')
        .argument('[name]', 'an ioctl (VFIO_IOMMU_MAP_DMA; case and the VFIO_ prefix optional), a request number or a struct name')
        .option('--fd <type>', `list only the ioctls of one fd type (${fdTypes(tables).join(', ')})`);
    },
    run: ({ args, options }) => {
      const name = args[0];
      const fd = options['fd'];
      if (typeof fd === 'string') {
        if (typeof name === 'string') throw new CliError('--fd filters the list, so it takes no NAME', `run 'vfio uapi --fd ${fd}' or 'vfio uapi ${name}'`, EXIT_USAGE);
        if (!fdTypes(tables).includes(fd)) {
          throw new CliError(`no ioctl is issued on a '${fd}' fd`, `the fd types are ${fdTypes(tables).join(', ')}`, EXIT_USAGE);
        }
        return listIoctls({ ioctls: tables.ioctls.filter((io) => io.fd === fd), structs: tables.structs });
      }
      if (typeof name !== 'string') return listIoctls(tables);
      const found = resolveUapiName(name, tables);
      switch (found.kind) {
        case 'ioctl': return describeIoctl(found.ioctl, tables);
        case 'ioctls': return listIoctls({ ioctls: found.ioctls, structs: tables.structs });
        case 'struct': return describeStruct(found.struct, tables);
      }
    },
  };
}

/** `vfio uapi [NAME]` over @vfio-ts/uapi's tables. */
export const uapiCommand: VfioCommand = makeUapiCommand();
