import { readFileSync } from 'node:fs';
import { SysError } from '@vfio-ts/uapi';
import { describe, expect, test } from 'vitest';
import { CliError, COMMANDS, text, type VfioCommand } from '../src/index.js';
import { vfio } from './helpers.js';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

describe('the vfio program', () => {
  test('--version prints the version from package.json', async () => {
    for (const flag of ['--version', '-V']) {
      const r = await vfio([flag]);
      expect(r.status).toBe(0);
      expect(r.out.trim()).toBe(pkg.version);
    }
  });

  test('--help lists every command and mentions --json', async () => {
    const r = await vfio(['--help']);
    expect(r.status).toBe(0);
    expect(r.out).toMatch(/^Usage: vfio /);
    for (const c of COMMANDS) expect(r.out).toContain(c.name);
    expect(r.out).toContain('--json');
  });

  test('every command has --json and its own --help', async () => {
    for (const c of COMMANDS) {
      const r = await vfio([c.name, '--help']);
      expect(r.status).toBe(0);
      expect(r.out).toContain(`Usage: vfio ${c.name}`);
      expect(r.out).toContain('--json');
    }
  });

  test('a bare `vfio` prints the help on stderr and fails', async () => {
    const r = await vfio([]);
    expect(r.status).not.toBe(0);
    expect(r.err).toContain('Usage: vfio');
  });

  test('an unknown command is one "vfio: what — what to do" line with a suggestion, exit 2', async () => {
    const r = await vfio(['uapo']);
    expect(r.status).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toBe("vfio: unknown command 'uapo' (did you mean uapi?) — run 'vfio --help' (or 'vfio <command> --help') for usage\n");
  });

  test('an unknown option and too many arguments are usage errors', async () => {
    const opt = await vfio(['uapi', '--jsn']);
    expect(opt.status).toBe(2);
    expect(opt.err).toMatch(/^vfio: unknown option '--jsn' \(did you mean --json\?\) — /);
    const many = await vfio(['uapi', 'a', 'b']);
    expect(many.status).toBe(2);
    expect(many.err).toMatch(/^vfio: too many arguments for 'uapi'.* — run 'vfio --help'/);
    expect(many.err.trim().split('\n')).toHaveLength(1);
  });

  test('errors thrown by a command are printed in the same form with a non-zero status', async () => {
    const failing = (name: string, error: unknown): VfioCommand => ({
      name,
      configure: () => undefined,
      run: () => { throw error; },
    });
    const sysError = new SysError('EINVAL', 'VFIO_IOMMU_MAP_DMA: iova not aligned');
    const commands = [
      failing('expected', new CliError('the thing is missing', 'create it first', 3)),
      failing('sys', sysError),
      failing('bug', new TypeError('x is undefined')),
    ];
    const expected = await vfio(['expected'], commands);
    expect(expected).toEqual({ status: 3, out: '', err: 'vfio: the thing is missing — create it first\n' });
    const sys = await vfio(['sys'], commands);
    expect(sys.status).toBe(1);
    expect(sys.err).toMatch(/^vfio: EINVAL: VFIO_IOMMU_MAP_DMA: iova not aligned — the call was refused/);
    const bug = await vfio(['bug'], commands);
    expect(bug.status).toBe(1);
    expect(bug.err).toMatch(/^vfio: internal error: x is undefined — this is a bug in vfio-ts/);
  });

  test('a command added to the list gets --json and the text rendering for free', async () => {
    const hello: VfioCommand = {
      name: 'hello',
      configure: (cmd) => { cmd.summary('greet').argument('[who]', 'whom to greet', 'world'); },
      run: ({ args }) => ({ data: { greeting: `hello ${String(args[0])}`, big: 1n << 64n }, blocks: [text(`hello ${String(args[0])}`)] }),
    };
    expect(await vfio(['hello', 'vfio'], [hello])).toEqual({ status: 0, out: 'hello vfio\n', err: '' });
    for (const argv of [['hello', '--json'], ['--json', 'hello']]) {
      const json = await vfio(argv, [hello]);
      expect(json.status).toBe(0);
      expect(JSON.parse(json.out)).toEqual({ greeting: 'hello world', big: '18446744073709551616' });
    }
  });
});
