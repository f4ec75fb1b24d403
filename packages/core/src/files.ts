/**
 * File operations of the simple files a process can open besides VFIO's: sysfs attributes, directories,
 * /dev/null and eventfds.
 */
import type { EventFdContext, VfsFile } from '@vfio-ts/platform';
import { SysError } from '@vfio-ts/uapi';
import { POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM } from './file.js';
import type { FileOps, OpenFile } from './file.js';
import { isPromise } from './user.js';

const U64_MAX = (1n << 64n) - 1n;

/** A sysfs attribute: text regenerated when read from offset 0, binary attributes (config) read positionally. */
export class SysfsFileOps implements FileOps {
  readonly kind = 'sysfs';
  readonly seekable = true;
  #snapshot: Uint8Array | undefined;
  constructor(
    readonly node: VfsFile,
    readonly log: (text: string) => void,
  ) {}

  read(length: number, pos: bigint): Uint8Array {
    if (this.node.pread) return this.node.pread(length, Number(pos));
    if (pos === 0n || !this.#snapshot) this.#snapshot = this.node.read();
    const at = Number(pos);
    return this.#snapshot.slice(Math.min(at, this.#snapshot.length), Math.min(at + length, this.#snapshot.length));
  }

  write(data: Uint8Array, pos: bigint): number {
    if (this.node.pwrite && this.node.pread) return this.node.pwrite(data, Number(pos));
    if (!this.node.write) throw new SysError('EACCES', 'read-only attribute');
    const r = this.node.write(data);
    // A write that waits (unbind) goes on in the background; `Process.writeAsync` waits for it instead.
    if (isPromise(r)) r.catch((e: unknown) => { this.log(`sysfs: background write failed: ${String(e)}`); });
    return data.length;
  }

  async writeAsync(data: Uint8Array, pos: bigint): Promise<number> {
    if (this.node.pwrite && this.node.pread) return this.node.pwrite(data, Number(pos));
    if (!this.node.write) throw new SysError('EACCES', 'read-only attribute');
    await this.node.write(data);
    return data.length;
  }
}

/** An open directory: reading it as a file is EISDIR. */
export class DirFileOps implements FileOps {
  readonly kind = 'dir';
  read(): Uint8Array {
    throw new SysError('EISDIR', 'is a directory');
  }
  write(): number {
    throw new SysError('EISDIR', 'is a directory');
  }
}

/** /dev/null. */
export class NullFileOps implements FileOps {
  readonly kind = 'null';
  readonly seekable = true;
  read(): Uint8Array {
    return new Uint8Array(0);
  }
  write(data: Uint8Array): number {
    return data.length;
  }
}

/** The user side of an eventfd (eventfd_fops): 8-byte reads and writes of the counter. */
export class EventFdFileOps implements FileOps {
  readonly kind = 'eventfd';
  constructor(
    readonly ctx: EventFdContext,
    readonly nonBlocking: (file: OpenFile) => boolean,
  ) {}

  read(length: number, _pos: bigint, _call: unknown, file: OpenFile): Uint8Array {
    if (length < 8) throw new SysError('EINVAL', 'eventfd reads are 8 bytes');
    const v = this.ctx.take();
    if (v === undefined) {
      // A blocking read would sleep until a signal; system calls here cannot sleep, so poll first.
      throw new SysError('EAGAIN', this.nonBlocking(file) ? 'eventfd counter is 0' : 'eventfd counter is 0 (poll before a blocking read)');
    }
    const out = new Uint8Array(8);
    new DataView(out.buffer).setBigUint64(0, v, true);
    return out;
  }

  write(data: Uint8Array): number {
    if (data.length < 8) throw new SysError('EINVAL', 'eventfd writes are 8 bytes');
    const v = new DataView(data.buffer, data.byteOffset, 8).getBigUint64(0, true);
    if (v === U64_MAX) throw new SysError('EINVAL', 'eventfd cannot add 0xffffffffffffffff');
    if (U64_MAX - this.ctx.count <= v) throw new SysError('EAGAIN', 'eventfd counter would overflow');
    this.ctx.signal(v);
    return 8;
  }

  poll(): number {
    let m = 0;
    const c = this.ctx.count;
    if (c > 0n) m |= POLLIN | POLLRDNORM;
    if (U64_MAX - 1n > c) m |= POLLOUT | POLLWRNORM;
    return m;
  }

  pollWait(wake: () => void): () => void {
    return this.ctx.addWaiter({ onSignal: wake, onClose: wake });
  }

  release(): void {
    this.ctx.close();
  }
}
