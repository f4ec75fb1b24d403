/**
 * The shared output layer. A command returns a {@link Report}: the data (printed as JSON with `--json`) and the
 * blocks that draw it for a person (tables, trees, key/value lists, text). Commands never write to the terminal
 * themselves, so every command gets `--json` for free and tests can run them in-process.
 */
import Table from 'cli-table3';

/** A column of a table block. Numbers read best right-aligned. */
export interface Column {
  readonly header: string;
  readonly align?: 'left' | 'right';
}

/** A node of a tree block: a label and its children. */
export interface TreeNode {
  readonly label: string;
  readonly children?: readonly TreeNode[];
}

/** One piece of human-readable output. */
export type Block =
  | { readonly kind: 'table'; readonly title?: string; readonly columns: readonly Column[]; readonly rows: readonly (readonly string[])[] }
  | { readonly kind: 'fields'; readonly title?: string; readonly entries: readonly (readonly [label: string, value: string])[] }
  | { readonly kind: 'tree'; readonly root: TreeNode }
  | { readonly kind: 'text'; readonly text: string };

/** What a command produces: `data` for `--json`, `blocks` for people. */
export interface Report {
  readonly data: unknown;
  readonly blocks: readonly Block[];
}

/** Where output goes. The binary writes to the process streams; tests collect strings. */
export interface CliIO {
  stdout(text: string): void;
  stderr(text: string): void;
}

/** A table block. */
export function table(columns: readonly (string | Column)[], rows: readonly (readonly string[])[], title?: string): Block {
  const cols = columns.map((c) => (typeof c === 'string' ? { header: c } : c));
  return title === undefined ? { kind: 'table', columns: cols, rows } : { kind: 'table', title, columns: cols, rows };
}

/** A key/value list block. */
export function fields(entries: readonly (readonly [string, string])[], title?: string): Block {
  return title === undefined ? { kind: 'fields', entries } : { kind: 'fields', title, entries };
}

/** A tree block. */
export function tree(root: TreeNode): Block {
  return { kind: 'tree', root };
}

/** A paragraph of text. */
export function text(body: string): Block {
  return { kind: 'text', text: body };
}

/** Draws a table with plain characters and no colours, so output is the same in a terminal, a pipe or a test. */
export function renderTable(block: Extract<Block, { kind: 'table' }>): string {
  const t = new Table({
    head: block.columns.map((c) => c.header),
    colAligns: block.columns.map((c) => c.align ?? 'left'),
    style: { head: [], border: [], compact: true, 'padding-left': 1, 'padding-right': 1 },
  });
  for (const row of block.rows) t.push([...row]);
  const body = t.toString();
  return block.title === undefined ? body : `${block.title}\n${body}`;
}

/** Draws a key/value list with the values lined up. */
export function renderFields(block: Extract<Block, { kind: 'fields' }>): string {
  const width = Math.max(0, ...block.entries.map(([k]) => k.length));
  const lines = block.entries.map(([k, v]) => `${`${k}:`.padEnd(width + 2)}${v}`);
  return block.title === undefined ? lines.join('\n') : [block.title, ...lines.map((l) => `  ${l}`)].join('\n');
}

/** Draws a tree with box-drawing branches (`├─`, `└─`). */
export function renderTree(root: TreeNode): string {
  const lines = [root.label];
  const walk = (node: TreeNode, prefix: string): void => {
    const children = node.children ?? [];
    children.forEach((child, i) => {
      const last = i === children.length - 1;
      lines.push(`${prefix}${last ? '└─ ' : '├─ '}${child.label}`);
      walk(child, `${prefix}${last ? '   ' : '│  '}`);
    });
  };
  walk(root, '');
  return lines.join('\n');
}

/** Draws every block, separated by blank lines, ending with a newline. */
export function renderBlocks(blocks: readonly Block[]): string {
  const parts = blocks.map((b) => {
    switch (b.kind) {
      case 'table': return renderTable(b);
      case 'fields': return renderFields(b);
      case 'tree': return renderTree(b.root);
      case 'text': return b.text;
    }
  });
  return parts.length === 0 ? '' : `${parts.join('\n\n')}\n`;
}

/** JSON with two spaces, bigints as decimal strings (JSON has no 64-bit integers), ending with a newline. */
export function renderJson(data: unknown): string {
  return `${JSON.stringify(data, (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value), 2)}\n`;
}

/** Prints a report as JSON or as blocks. */
export function printReport(io: CliIO, report: Report, json: boolean): void {
  io.stdout(json ? renderJson(report.data) : renderBlocks(report.blocks));
}

/** `0x3b71`: lower-case hexadecimal with a `0x` prefix. */
export function hex(n: number | bigint): string {
  return `0x${n.toString(16)}`;
}
