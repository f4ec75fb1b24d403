/**
 * Process semantics: the fd table (lowest free from 3), fork (shared files, own memory and limits), exit,
 * eventfd counters, poll, capabilities and rlimits, file-system queries.
 */
import { EFD_NONBLOCK, EFD_SEMAPHORE } from '@vfio-ts/platform';
import { simPlatform } from '@vfio-ts/sim';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createHost, groupStatus, openVfioDevice, POLLIN, POLLNVAL, POLLOUT } from '../src/index.js';
import { VFIO_TYPE1v2_IOMMU } from '@vfio-ts/uapi';
import type { HostPluginApi } from '../src/index.js';
import { bindTo, expectErrno, fn, testBackend, testDriver } from './helpers.js';

const A = '0000:00:03.0';

function u64(v: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, v, true);
  return b;
}
function readU64(b: Uint8Array): bigint {
  return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
}

function make() {
  const platform = simPlatform({ devices: [{ bdf: A, fn: fn() }] });
  const host = createHost({ platform, plugins: [testBackend().plugin, testDriver().plugin] });
  bindTo(platform, A);
  return { platform, host, gid: platform.pci.device(A)!.iommuGroup!.id };
}

describe('file descriptors', () => {
  it('are the lowest free number from 3', () => {
    const { host } = make();
    const p = host.spawn({ uid: 0 });
    expect([p.open('/dev/null'), p.open('/dev/null'), p.open('/dev/null')]).toEqual([3, 4, 5]);
    p.close(4);
    p.close(3);
    expect(p.open('/dev/null')).toBe(3);
    expect(p.eventfd()).toBe(4);
    expect(p.open('/dev/null')).toBe(6);
    expect(p.fds()).toEqual([3, 4, 5, 6]);
  });
});

describe('fd allocation', () => {
  it('matches the lowest-free model over random open/close/fork sequences', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(2), fc.nat(50)), { maxLength: 80 }), (ops) => {
        const { host } = make();
        let p = host.spawn({ uid: 0 });
        const model = new Set<number>();
        for (const [kind, pick] of ops) {
          if (kind === 0) {
            let fd = 3;
            while (model.has(fd)) fd++;
            expect(p.open('/dev/null')).toBe(fd);
            model.add(fd);
          } else if (kind === 1 && model.size > 0) {
            const fd = [...model][pick % model.size]!;
            p.close(fd);
            model.delete(fd);
          } else if (kind === 2) {
            const child = p.fork();
            p.exit();
            p = child;
          }
          expect(p.fds()).toEqual([...model].sort((a, b) => a - b));
        }
      }),
      { numRuns: 100 },
    );
  });
});

describe('fork and exit', () => {
  it('the child shares open files; the last close releases them', () => {
    const { host, gid } = make();
    const p = host.spawn({ uid: 0 });
    const g = p.open(`/dev/vfio/${gid}`);
    const child = p.fork();
    expect(child.pid).not.toBe(p.pid);
    expect(child.fds()).toEqual([g]);
    p.close(g);
    // Still open through the child: the group stays single-opened.
    expectErrno(() => p.open(`/dev/vfio/${gid}`), 'EBUSY');
    child.exit(0);
    expect(child.exitStatus).toBe(0);
    expectErrno(() => child.open('/dev/null'), 'ESRCH');
    expect(p.open(`/dev/vfio/${gid}`)).toBe(3);
  });

  it('the child has its own memory copy and its own limits and capabilities', () => {
    const { host } = make();
    const p = host.spawn({ uid: 0, capabilities: ['CAP_IPC_LOCK', 'CAP_SYS_RAWIO'], memlockLimit: 1n << 20n });
    const va = p.mmap({ length: 8192 });
    p.memory.write(va, new Uint8Array([1, 2, 3]));
    const child = p.fork();
    p.memory.write(va, new Uint8Array([9]));
    expect([...child.memory.read(va, 3)]).toEqual([1, 2, 3]);
    expect([...p.memory.read(va, 3)]).toEqual([9, 2, 3]);
    child.setrlimit('memlock', 4096n);
    expect(child.memlockLimit).toBe(4096n);
    expect(p.memlockLimit).toBe(1n << 20n);
    child.capset({ effective: ['CAP_IPC_LOCK'] });
    expect(child.capabilities).toEqual(['CAP_IPC_LOCK']);
    expect(p.capable('CAP_SYS_RAWIO')).toBe(true);
    expectErrno(() => {
      child.capset({ effective: ['CAP_SYS_RAWIO'] });
    }, 'EPERM');
    expectErrno(() => {
      child.setrlimit('memlock', 1n << 30n);
    }, 'EPERM');
    p.munmap(va, 8192n);
    expectErrno(() => p.memory.read(va, 1), 'EFAULT');
    expect(host.describe().processes.map((x) => x.pid)).toEqual([p.pid, child.pid]);
  });

  it('CAP_SYS_RESOURCE may raise the memlock limit', () => {
    const { host } = make();
    const p = host.spawn({ uid: 0, capabilities: ['CAP_SYS_RESOURCE'], memlockLimit: 4096 });
    p.setrlimit('memlock', null);
    expect(p.memlockLimit).toBe(null);
  });
});

describe('eventfd and poll', () => {
  it('reads the 8-byte counter, EAGAIN when empty and non-blocking', () => {
    const { host } = make();
    const p = host.spawn({ uid: 0 });
    const e = p.eventfd(2, EFD_NONBLOCK);
    expect(readU64(p.read(e, 8))).toBe(2n);
    expectErrno(() => p.read(e, 8), 'EAGAIN');
    expectErrno(() => p.read(e, 4), 'EINVAL');
    expect(p.write(e, u64(5n))).toBe(8);
    expect(p.write(e, u64(1n))).toBe(8);
    expect(readU64(p.read(e, 8))).toBe(6n);
    expectErrno(() => p.write(e, u64(0xffffffffffffffffn)), 'EINVAL');
    expectErrno(() => p.write(e, new Uint8Array(4)), 'EINVAL');
    expectErrno(() => p.eventfd(0, 0x40), 'EINVAL');
    // Semaphore mode hands out one at a time.
    const s = p.eventfd(2, EFD_SEMAPHORE | EFD_NONBLOCK);
    expect(readU64(p.read(s, 8))).toBe(1n);
    expect(readU64(p.read(s, 8))).toBe(1n);
    expectErrno(() => p.read(s, 8), 'EAGAIN');
  });

  it('poll reports readiness, waits for a signal, times out, and flags bad fds', async () => {
    const { host, platform } = make();
    const p = host.spawn({ uid: 0 });
    const e = p.eventfd(0, EFD_NONBLOCK);
    expect(await p.poll([{ fd: e, events: POLLIN }], 0)).toEqual([{ fd: e, revents: 0 }]);
    expect(await p.poll([{ fd: e, events: POLLOUT }], 0)).toEqual([{ fd: e, revents: POLLOUT }]);
    // Nothing comes: the timeout passes in host time.
    const t0 = platform.clock.now();
    expect(await p.poll([{ fd: e, events: POLLIN }], 500)).toEqual([{ fd: e, revents: 0 }]);
    expect(platform.clock.now() - t0).toBe(500);
    // A signal from the kernel side (another process writing) wakes the poller.
    const other = p.fork();
    platform.clock.setTimeout(() => other.write(e, u64(1n)), 100);
    const t1 = platform.clock.now();
    expect(await p.poll([{ fd: e, events: POLLIN }], -1)).toEqual([{ fd: e, revents: POLLIN }]);
    expect(platform.clock.now() - t1).toBe(100);
    expect(await p.poll([{ fd: 99, events: POLLIN }, { fd: -1, events: POLLIN }], 0)).toEqual([
      { fd: 99, revents: POLLNVAL },
      { fd: -1, revents: 0 },
    ]);
    // Files without poll are always ready for reading and writing.
    const n = p.open('/dev/null');
    expect(await p.poll([{ fd: n, events: POLLIN | POLLOUT }], 0)).toEqual([{ fd: n, revents: POLLIN | POLLOUT }]);
  });

  it('the kernel side of an eventfd is reachable from a driver call and is closed with the last fd', () => {
    const { host } = make();
    const p = host.spawn({ uid: 0 });
    const e = p.eventfd(0, EFD_NONBLOCK);
    const ctx = p.callContext.eventfd(e);
    ctx.signal(3n);
    expect(readU64(p.read(e, 8))).toBe(3n);
    expectErrno(() => p.callContext.eventfd(p.open('/dev/null')), 'EINVAL');
    expectErrno(() => p.callContext.eventfd(50), 'EBADF');
    const child = p.fork();
    p.close(e);
    expect(ctx.closed).toBe(false);
    child.exit();
    expect(ctx.closed).toBe(true);
  });
});

describe('file-system queries', () => {
  it('readdir, readlink, access, sysfs text and /dev/null', () => {
    const { host, gid } = make();
    const p = host.spawn({ uid: 0 });
    expect(p.readdir('/dev')).toEqual(['null', 'vfio']);
    expect(p.readdir('/dev/vfio')).toEqual([String(gid), 'devices', 'vfio']);
    expect(p.readdir('/sys')).toContain('module');
    expect(p.readdir('/sys')).toContain('bus');
    expect(p.readlink(`/sys/bus/pci/devices/${A}/iommu_group`)).toContain(`iommu_groups/${gid}`);
    // Following the symlink lands in the group's directory.
    expect(p.readdir(`/sys/bus/pci/devices/${A}/iommu_group/devices`)).toContain(A);
    expectErrno(() => p.readlink('/dev/null'), 'EINVAL');
    expect(p.access('/dev/vfio/vfio')).toBe(0);
    expectErrno(() => p.access('/dev/vfio/none'), 'ENOENT');
    const n = p.open('/dev/null');
    expect(p.write(n, new Uint8Array(10))).toBe(10);
    expect(p.read(n, 10).length).toBe(0);
    const v = p.open(`/sys/bus/pci/devices/${A}/vendor`, 0);
    expect(new TextDecoder().decode(p.read(v, 100))).toBe('0x1234\n');
    expect(p.read(v, 100).length).toBe(0);
  });

  it('the kernel log carries what the core writes', () => {
    const { host } = make();
    const p = host.spawn({ uid: 0 });
    p.log('hello from pid');
    expect(host.log().at(-1)?.text).toBe('hello from pid');
  });
});

describe('sysfs writes that wait, and plugin device nodes', () => {
  it('unbind through sysfs waits (writeAsync) until the last device fd closes', async () => {
    const { host, gid } = make();
    const p = host.spawn({ uid: 0 });
    const fds = openVfioDevice(p, { group: gid, device: A, iommuType: VFIO_TYPE1v2_IOMMU });
    const unbind = p.open('/sys/bus/pci/drivers/vfio-test/unbind', 1);
    let done = false;
    const pending = p.writeAsync(unbind, new TextEncoder().encode(A)).then((n) => {
      done = true;
      return n;
    });
    await p.sleep(15_000);
    expect(done).toBe(false);
    p.close(fds.device);
    expect(await pending).toBe(A.length);
    expect(p.readdir('/dev/vfio')).toEqual(['devices', 'vfio']);
    // The group file stays open but answers ENODEV.
    expectErrno(() => groupStatus(p, fds.group), 'ENODEV');
  });

  it('a plugin adds a node under /dev and opens it through its spec', () => {
    let api!: HostPluginApi;
    const host = createHost({
      platform: simPlatform({}),
      plugins: [
        {
          name: 'nodes',
          setup(a) {
            api = a;
          },
        },
      ],
    });
    const undo = api.registerDevNode('/dev/iommu', { mode: 0o666, open: () => ({ kind: 'iommufd', ioctl: () => 7 }) });
    expectErrno(() => api.registerDevNode('/dev/iommu', { open: () => ({ kind: 'x' }) }), 'EEXIST');
    expectErrno(() => api.registerDevNode('/sys/x', { open: () => ({ kind: 'x' }) }), 'EINVAL');
    const p = host.spawn({ uid: 1000 });
    const fd = p.open('/dev/iommu');
    expect(p.ioctl(fd, 1)).toBe(7);
    undo();
    expectErrno(() => p.open('/dev/iommu'), 'ENOENT');
    const v = api.registerDevNode('/dev/vfio/devices/vfio0', { open: () => ({ kind: 'cdev' }) });
    expect(p.readdir('/dev/vfio/devices')).toEqual(['vfio0']);
    expectErrno(() => p.open('/dev/vfio/devices/vfio0'), 'EACCES');
    v();
  });
});
