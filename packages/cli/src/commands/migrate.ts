/**
 * `vfio migrate`: live-migrates a running device from one embedded simulated host to another, the way a VMM
 * does with VFIO migration v2 (inventory §5): guest RAM copied while the device runs (device DMA logging says
 * which pages it dirtied), PRE_COPY rounds of device data, STOP_COPY, RESUMING at the destination, then RUNNING
 * there — with a progress bar and a closing report of downtime and total time.
 *
 * Both ends are in this process by default. `vfio migrate --listen PORT` runs the destination and waits for one
 * source on 127.0.0.1; `vfio migrate --to 127.0.0.1:PORT` runs the source against it. Loopback only, one
 * migration per run, every wait bounded by `--timeout`.
 */
import { createHash } from 'node:crypto';
import { createServer, connect } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { createHost } from '@vfio-ts/core';
import type { Process } from '@vfio-ts/core';
import { MIG_DMA_CMD, MIG_REG, REGION_SHIFT, migratableFunction, migratableVfioPci } from '@vfio-ts/device-migratable';
import type { MigratableFunction } from '@vfio-ts/device-migratable';
import { type1 } from '@vfio-ts/iommu-type1';
import {
  getMigrationDataSize,
  getPrecopyInfo,
  migration,
  reportDmaLogging,
  setDeviceState,
  startDmaLogging,
  stopDmaLogging,
} from '@vfio-ts/migration';
import { simPlatform } from '@vfio-ts/sim';
import type { SimPlatform } from '@vfio-ts/sim';
import {
  SysError,
  VFIO_DEVICE_STATE_PRE_COPY,
  VFIO_DEVICE_STATE_RESUMING,
  VFIO_DEVICE_STATE_RUNNING,
  VFIO_DEVICE_STATE_STOP,
  VFIO_DEVICE_STATE_STOP_COPY,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_PCI_MSI_IRQ_INDEX,
  VFIO_TYPE1v2_IOMMU,
  isSysError,
  mapDma,
  openVfioDevice,
  setIrqEventfds,
} from '@vfio-ts/uapi';
import type { VfioCommand } from '../command.js';
import { CliError, EXIT_USAGE } from '../errors.js';
import { fields, table, type Block, type Report } from '../output.js';

const BDF = '0000:00:05.0';
const KiB = 1024;
const MiB = 1024 * KiB;
const PAGE = 4096;
/** Bytes per read of the data fd and per RAM frame. */
const IO_CHUNK = MiB;
/** Pre-copy stops early once less than this much dirty device data is left. */
const CONVERGED = 16 * KiB;
/** Bytes the device's DMA engine moves per millisecond of device time. */
const DMA_CHUNK = 16 * KiB;

/* ------------------------------------------------------------------------------------------------------------ */
/* The two machines                                                                                             */
/* ------------------------------------------------------------------------------------------------------------ */

/** One simulated host with the sample device opened by a VMM-like process. */
interface Vm {
  readonly platform: SimPlatform;
  readonly fn: MigratableFunction;
  readonly p: Process;
  readonly device: number;
  readonly ram: bigint;
  readonly ramSize: number;
  reg(offset: number): number;
  setReg(offset: number, value: number): void;
}

/** Sizes both ends agree on. */
interface VmShape {
  readonly stateBytes: number;
  readonly ramBytes: number;
}

function buildVm(shape: VmShape): Vm {
  const fn = migratableFunction({ memorySize: shape.stateBytes, dmaChunkBytes: DMA_CHUNK, dmaTickMs: 1 });
  const platform = simPlatform({ iommu: 'vtd', clock: 'manual', devices: [{ bdf: BDF, fn }] });
  const host = createHost({ platform, plugins: [type1(), migratableVfioPci(), migration()] });
  platform.pci.device(BDF)!.driverOverride = 'vfio-migratable';
  platform.pci.bind(BDF, 'vfio-migratable');
  const p = host.spawn({ uid: 0, capabilities: ['CAP_IPC_LOCK'], memlockLimit: BigInt(shape.ramBytes) * 2n });
  const group = platform.pci.device(BDF)!.iommuGroup!.id;
  const { container, device } = openVfioDevice(p, { group, device: BDF, iommuType: VFIO_TYPE1v2_IOMMU });
  const ram = p.mmap({ length: BigInt(shape.ramBytes) });
  mapDma(p, container, { vaddr: ram, iova: 0n, size: BigInt(shape.ramBytes), flags: VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE });
  // Memory decoding and bus mastering on, and an MSI trigger, as the guest driver and the VMM set them up.
  const cfg = (7n << REGION_SHIFT) + 4n;
  const cmd = p.pread(device, 2, cfg);
  cmd[0] = (cmd[0] ?? 0) | 0x06;
  p.pwrite(device, cmd, cfg);
  const msi = p.eventfd(0, 0x800);
  setIrqEventfds(p, device, VFIO_PCI_MSI_IRQ_INDEX, 0, [msi]);
  return {
    platform,
    fn,
    p,
    device,
    ram,
    ramSize: shape.ramBytes,
    reg: (offset) => new DataView(p.pread(device, 4, BigInt(offset)).buffer).getUint32(0, true),
    setReg: (offset, value) => {
      const b = new Uint8Array(4);
      new DataView(b.buffer).setUint32(0, value >>> 0, true);
      p.pwrite(device, b, BigInt(offset));
    },
  };
}

/** The guest's work on the source: device memory and RAM filled, registers set, a long DMA into RAM running. */
function startWorkload(vm: Vm): void {
  // Setup, not migration: the device memory the guest left is written straight into the model.
  const block = new Uint8Array(MiB);
  for (let at = 0; at < vm.fn.memorySize; at += MiB) {
    const n = Math.min(MiB, vm.fn.memorySize - at);
    for (let i = 0; i < n; i += PAGE) block.fill((at + i) / PAGE, i, i + PAGE);
    vm.fn.barWrite(2, BigInt(at), block.subarray(0, n));
  }
  for (let at = 0; at < vm.ramSize; at += MiB) {
    const n = Math.min(MiB, vm.ramSize - at);
    vm.p.memory.write(vm.ram + BigInt(at), block.subarray(0, n).fill(0x5a ^ (at / MiB)));
  }
  vm.setReg(MIG_REG.SCRATCH, 0xc0ffee);
  vm.setReg(MIG_REG.IRQ_ENABLE, 0x3);
  // BAR2 → RAM over the smaller of the two, 16 KiB per millisecond of device time: still under way at stop-copy.
  const length = Math.min(vm.ramSize, vm.fn.memorySize);
  vm.setReg(MIG_REG.DMA_BAR_OFFSET, 0);
  vm.setReg(MIG_REG.DMA_IOVA_LO, 0);
  vm.setReg(MIG_REG.DMA_LENGTH, length);
  vm.setReg(MIG_REG.DMA_CMD, MIG_DMA_CMD.START | MIG_DMA_CMD.TO_RAM | MIG_DMA_CMD.IRQ);
  vm.platform.clock.advance(2);
}

/** The guest runs on for a moment between pre-copy rounds: device time moves, the guest touches device memory. */
function runGuest(vm: Vm, round: number): void {
  vm.platform.clock.advance(2);
  const at = ((round * 37) % (vm.fn.memorySize / (32 * KiB))) * 32 * KiB;
  vm.p.pwrite(vm.device, new Uint8Array(32 * KiB).fill(round), (2n << REGION_SHIFT) + BigInt(at));
}

/** What identifies the device's state for the verification at the destination. */
interface Fingerprint {
  readonly registers: Record<string, number>;
  readonly bar2: string;
}

function fingerprint(vm: Vm): Fingerprint {
  const registers: Record<string, number> = {};
  for (const [name, off] of Object.entries(MIG_REG)) registers[name] = vm.reg(off);
  // Device memory straight from the model, page by page (a region read of it all would take a while).
  const h = createHash('sha256');
  const zero = new Uint8Array(PAGE);
  for (let i = 0; i < vm.fn.memorySize / PAGE; i++) h.update(vm.fn.page(i) ?? zero);
  return { registers, bar2: h.digest('hex').slice(0, 16) };
}

/** What the destination reports once it runs. */
interface DestinationResult {
  readonly verified: boolean;
  /** Real milliseconds of RESUMING → RUNNING (the stream's load). */
  readonly resumeMs: number;
  readonly receivedBytes: number;
  /** Completed DMA transfers after the destination ran on for a while (the device carried on). */
  readonly counterAfter: number;
  /** Real milliseconds the destination spent after RUNNING (verification), not part of the downtime. */
  readonly afterRunningMs: number;
  readonly mismatch?: string;
}

/** The destination: a fresh machine of the same shape, taking the stream into RESUMING. */
class Destination {
  private readonly vm: Vm;
  private readonly dataFd: number;
  private received = 0;

  constructor(shape: VmShape) {
    this.vm = buildVm(shape);
    this.dataFd = setDeviceState(this.vm.p, this.vm.device, VFIO_DEVICE_STATE_RESUMING);
  }

  data(bytes: Uint8Array): void {
    this.received += bytes.length;
    for (let at = 0; at < bytes.length; ) at += this.vm.p.write(this.dataFd, bytes.subarray(at));
  }

  ram(offset: number, bytes: Uint8Array): void {
    if (offset < 0 || offset + bytes.length > this.vm.ramSize) throw new SysError('EINVAL', `RAM frame at ${offset} outside guest RAM`);
    this.received += bytes.length;
    this.vm.p.memory.write(this.vm.ram + BigInt(offset), bytes);
  }

  finish(expected: Fingerprint): DestinationResult {
    const t0 = performance.now();
    setDeviceState(this.vm.p, this.vm.device, VFIO_DEVICE_STATE_RUNNING);
    const running = performance.now();
    const resumeMs = running - t0;
    this.vm.p.close(this.dataFd);
    const got = fingerprint(this.vm);
    let mismatch: string | undefined;
    if (got.bar2 !== expected.bar2) mismatch = 'BAR2 memory differs';
    for (const [name, value] of Object.entries(expected.registers)) {
      if (got.registers[name] !== value) mismatch ??= `register ${name} is ${got.registers[name]} instead of ${value}`;
    }
    // The device carries on: the transfer that was under way completes here.
    this.vm.platform.clock.advance(Math.ceil(Math.min(this.vm.ramSize, this.vm.fn.memorySize) / DMA_CHUNK) + 10);
    const counterAfter = this.vm.reg(MIG_REG.COUNTER);
    const result = { verified: mismatch === undefined, resumeMs, receivedBytes: this.received, counterAfter, afterRunningMs: performance.now() - running };
    return mismatch === undefined ? result : { ...result, mismatch };
  }
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Transport                                                                                                    */
/* ------------------------------------------------------------------------------------------------------------ */

/** The destination as the source drives it, local or across a socket. */
interface DestinationLink {
  hello(shape: VmShape): Promise<void>;
  data(bytes: Uint8Array): Promise<void>;
  ram(offset: number, bytes: Uint8Array): Promise<void>;
  finish(expected: Fingerprint): Promise<DestinationResult>;
  close(): void;
}

function localLink(): DestinationLink {
  let dest: Destination | undefined;
  const need = (): Destination => {
    if (!dest) throw new Error('destination not set up');
    return dest;
  };
  return {
    hello: (shape) => {
      dest = new Destination(shape);
      return Promise.resolve();
    },
    data: (bytes) => {
      need().data(bytes);
      return Promise.resolve();
    },
    ram: (offset, bytes) => {
      need().ram(offset, bytes);
      return Promise.resolve();
    },
    finish: (expected) => Promise.resolve(need().finish(expected)),
    close: () => undefined,
  };
}

/** Frame types of the loopback protocol: [type u8][length u32 LE][payload]. */
const Frame = { HELLO: 1, READY: 2, DATA: 3, RAM: 4, DONE: 5, RESULT: 6, ERROR: 7 } as const;
type Frame = (typeof Frame)[keyof typeof Frame];
const FRAME_HEADER = 5;
/** Largest frame either side accepts (a RAM frame is 8 + 1 MiB). */
const MAX_FRAME = 4 * MiB;

function frame(type: Frame, payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  const out = new Uint8Array(FRAME_HEADER + payload.length);
  out[0] = type;
  new DataView(out.buffer).setUint32(1, payload.length, true);
  out.set(payload, FRAME_HEADER);
  return out;
}

const json = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value));
const unjson = (bytes: Uint8Array): unknown => JSON.parse(new TextDecoder().decode(bytes)) as unknown;

/** Splits a byte stream into frames; calls `onFrame` for each (synchronously, in order). */
function frameReader(onFrame: (type: number, payload: Uint8Array) => void): (chunk: Uint8Array) => void {
  let buffered = new Uint8Array(0);
  return (chunk) => {
    const all = new Uint8Array(buffered.length + chunk.length);
    all.set(buffered);
    all.set(chunk, buffered.length);
    let at = 0;
    while (all.length - at >= FRAME_HEADER) {
      const length = new DataView(all.buffer, all.byteOffset + at + 1, 4).getUint32(0, true);
      if (length > MAX_FRAME) throw new CliError(`the peer sent a frame of ${length} bytes`, 'both ends must run the same vfio-ts version');
      if (all.length - at < FRAME_HEADER + length) break;
      onFrame(all[at]!, all.subarray(at + FRAME_HEADER, at + FRAME_HEADER + length));
      at += FRAME_HEADER + length;
    }
    buffered = all.slice(at);
  };
}

function write(socket: Socket, bytes: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.write(bytes, (err) => {
      if (err) reject(err);
      else resolve();
    });
  });
}

/** A timer that rejects `promise` after `ms` and is always cleared. */
function bounded<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new CliError(`${what} did not happen within ${ms} ms`, 'check the other end is running, or raise --timeout'));
    }, ms);
  });
  return Promise.race([promise, timeout]).finally(() => {
    clearTimeout(timer);
  });
}

async function tcpLink(port: number, timeoutMs: number): Promise<DestinationLink> {
  const socket = connect({ host: '127.0.0.1', port });
  socket.setNoDelay(true);
  await bounded(
    new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    }),
    timeoutMs,
    `connecting to 127.0.0.1:${port}`,
  ).catch((e: unknown) => {
    socket.destroy();
    if (e instanceof CliError) throw e;
    throw new CliError(`cannot connect to 127.0.0.1:${port} (${e instanceof Error ? e.message : String(e)})`, "start the destination first: 'vfio migrate --listen PORT'");
  });
  const waiters: { type: Frame; resolve: (payload: Uint8Array) => void; reject: (e: unknown) => void }[] = [];
  let failure: Error | undefined;
  const fail = (e: Error): void => {
    failure ??= e;
    for (const w of waiters.splice(0)) w.reject(failure);
  };
  const reader = frameReader((type, payload) => {
    if (type === Frame.ERROR) {
      const { message } = unjson(payload) as { message: string };
      fail(new CliError(`the destination failed: ${message}`, 'the device did not run at the destination'));
      return;
    }
    const w = waiters.shift();
    if (!w || w.type !== type) fail(new CliError(`unexpected frame ${type} from the destination`, 'both ends must run the same vfio-ts version'));
    else w.resolve(payload.slice());
  });
  socket.on('data', (chunk: Buffer) => {
    try {
      reader(chunk);
    } catch (e) {
      fail(e instanceof Error ? e : new Error(String(e)));
      socket.destroy();
    }
  });
  socket.on('error', fail);
  socket.on('close', () => {
    fail(new CliError('the destination closed the connection', 'see the destination for its error'));
  });
  const expect = (type: Frame): Promise<Uint8Array> =>
    failure !== undefined
      ? Promise.reject(failure)
      : bounded(new Promise<Uint8Array>((resolve, reject) => waiters.push({ type, resolve, reject })), timeoutMs, 'an answer from the destination');
  const send = async (bytes: Uint8Array): Promise<void> => {
    if (failure !== undefined) throw failure;
    await write(socket, bytes);
  };
  return {
    hello: async (shape) => {
      const ready = expect(Frame.READY);
      await send(frame(Frame.HELLO, json(shape)));
      await ready;
    },
    data: (bytes) => send(frame(Frame.DATA, bytes)),
    ram: (offset, bytes) => {
      const payload = new Uint8Array(8 + bytes.length);
      new DataView(payload.buffer).setBigUint64(0, BigInt(offset), true);
      payload.set(bytes, 8);
      return send(frame(Frame.RAM, payload));
    },
    finish: async (expected) => {
      const result = expect(Frame.RESULT);
      await send(frame(Frame.DONE, json(expected)));
      return unjson(await result) as DestinationResult;
    },
    close: () => {
      socket.removeAllListeners('close');
      socket.end();
    },
  };
}

/** What the destination end (`--listen`) reports. */
export interface ListenView {
  readonly mode: 'listen';
  readonly port: number;
  readonly peer: string;
  readonly state_bytes: number;
  readonly ram_bytes: number;
  readonly received_bytes: number;
  readonly resume_ms: number;
  readonly total_ms: number;
  readonly verified: boolean;
  readonly transfers_after_resume: number;
}

async function listen(port: number, timeoutMs: number, maxStateBytes: number, onListening: ((port: number) => void) | undefined, progress: Progress): Promise<ListenView> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) => {
      reject(new CliError(`cannot listen on 127.0.0.1:${port} (${e.message})`, 'pick another port'));
    });
    server.listen({ host: '127.0.0.1', port, exclusive: true }, resolve);
  });
  const bound = (server.address() as AddressInfo).port;
  onListening?.(bound);
  progress.note(`listening on 127.0.0.1:${bound} (one migration, ${timeoutMs} ms timeout)`);
  try {
    const socket = await bounded(
      new Promise<Socket>((resolve) => {
        server.once('connection', resolve);
      }),
      timeoutMs,
      'a source connecting',
    );
    server.close();
    socket.setNoDelay(true);
    const started = performance.now();
    const peer = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`;
    let dest: Destination | undefined;
    let shape: VmShape | undefined;
    const finished = new Promise<ListenView>((resolve, reject) => {
      let failed = false;
      const failWith = (e: unknown): void => {
        if (failed) return;
        failed = true;
        const message = e instanceof Error ? e.message : String(e);
        const error = e instanceof CliError ? e : new CliError(`migration failed at the destination: ${message}`, 'the device did not run here; retry the migration');
        // Settle once the error frame is on its way, so the source learns why.
        socket.end(frame(Frame.ERROR, json({ message })), () => {
          reject(error);
        });
      };
      const reader = frameReader((type, payload) => {
        try {
          if (type === Frame.HELLO) {
            const s = unjson(payload) as VmShape;
            if (!Number.isSafeInteger(s.stateBytes) || !Number.isSafeInteger(s.ramBytes) || s.stateBytes > maxStateBytes || s.ramBytes > maxStateBytes) {
              throw new SysError('EINVAL', `a ${s.stateBytes}-byte device with ${s.ramBytes} bytes of RAM is more than this end accepts`);
            }
            shape = s;
            dest = new Destination(s);
            progress.start(s.stateBytes + s.ramBytes, 'receiving');
            socket.write(frame(Frame.READY));
          } else if (type === Frame.DATA && dest) {
            dest.data(payload);
            progress.add(payload.length);
          } else if (type === Frame.RAM && dest) {
            const offset = Number(new DataView(payload.buffer, payload.byteOffset, 8).getBigUint64(0, true));
            dest.ram(offset, payload.subarray(8));
            progress.add(payload.length - 8);
          } else if (type === Frame.DONE && dest && shape) {
            progress.phase('resume');
            const result = dest.finish(unjson(payload) as Fingerprint);
            progress.end();
            const view: ListenView = {
              mode: 'listen',
              port: bound,
              peer,
              state_bytes: shape.stateBytes,
              ram_bytes: shape.ramBytes,
              received_bytes: result.receivedBytes,
              resume_ms: round(result.resumeMs),
              total_ms: round(performance.now() - started),
              verified: result.verified,
              transfers_after_resume: result.counterAfter,
            };
            socket.end(frame(Frame.RESULT, json(result)), () => {
              resolve(view);
            });
          } else {
            throw new SysError('EPROTO', `unexpected frame ${type}`);
          }
        } catch (e) {
          failWith(e);
        }
      });
      socket.on('data', (chunk: Buffer) => {
        try {
          reader(chunk);
        } catch (e) {
          failWith(e);
        }
      });
      socket.on('error', (e) => {
        reject(new CliError(`the connection failed (${e.message})`, 'retry the migration'));
      });
      socket.on('close', () => {
        reject(new CliError('the source went away before the device ran here', 'retry the migration'));
      });
    });
    try {
      return await bounded(finished, timeoutMs, 'the migration');
    } finally {
      socket.destroy();
    }
  } finally {
    server.close();
  }
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Progress                                                                                                     */
/* ------------------------------------------------------------------------------------------------------------ */

/** Where the progress bar is drawn: a terminal-like stream (carriage returns redraw the line). */
export type ProgressSink = (text: string) => void;

const BAR = 28;

/** A one-line progress bar: phase, bar, bytes, rate. Draws at most every 80 ms, and always on phase changes. */
class Progress {
  private total = 1;
  private done = 0;
  private label = '';
  private readonly t0 = performance.now();
  private last = 0;
  private drawn = false;

  constructor(
    private readonly sink: ProgressSink | undefined,
    /** Where one-off notes go (the listening address), even when no bar is drawn. */
    private readonly noteSink: ProgressSink | undefined = sink,
  ) {}

  start(total: number, label: string): void {
    this.total = Math.max(1, total);
    this.label = label;
    this.draw(true);
  }

  phase(label: string): void {
    this.label = label;
    this.draw(true);
  }

  grow(total: number): void {
    this.total = Math.max(this.total, total, 1);
  }

  add(bytes: number): void {
    this.done += bytes;
    if (this.done > this.total) this.total = this.done;
    this.draw(false);
  }

  doneBytes(): number {
    return this.done;
  }

  note(text: string): void {
    if (!this.noteSink) return;
    this.noteSink(`${this.drawn ? '\n' : ''}${text}\n`);
    this.drawn = false;
  }

  end(): void {
    this.draw(true);
    if (this.sink && this.drawn) this.sink('\n');
    this.drawn = false;
  }

  private draw(force: boolean): void {
    if (!this.sink) return;
    const now = performance.now();
    if (!force && now - this.last < 80) return;
    this.last = now;
    const frac = Math.min(1, this.done / this.total);
    const filled = Math.round(frac * BAR);
    const secs = Math.max(1e-3, (now - this.t0) / 1000);
    const line = `${this.label.padEnd(20)} [${'#'.repeat(filled)}${'-'.repeat(BAR - filled)}] ${formatBytes(this.done)} / ${formatBytes(this.total)}  ${formatBytes(this.done / secs)}/s`;
    this.sink(`\r${line}`);
    this.drawn = true;
  }
}

/* ------------------------------------------------------------------------------------------------------------ */
/* The source: the migration itself                                                                             */
/* ------------------------------------------------------------------------------------------------------------ */

/** One pre-copy round in the report. */
export interface RoundView {
  readonly round: number;
  readonly device_bytes: number;
  readonly ram_bytes: number;
  readonly ms: number;
}

/** What `vfio migrate --json` prints (source side and in-process). */
export interface MigrateView {
  readonly mode: 'in-process' | 'tcp';
  readonly destination: string;
  readonly device: string;
  readonly state_bytes: number;
  readonly ram_bytes: number;
  readonly estimated_stop_copy_bytes: number;
  readonly pre_copy: readonly RoundView[];
  readonly stop_copy: { readonly device_bytes: number; readonly ram_bytes: number; readonly ms: number };
  readonly resume_ms: number;
  readonly total_bytes: number;
  /** Real milliseconds the device was stopped: STOP_COPY at the source until RUNNING at the destination. */
  readonly downtime_ms: number;
  readonly total_ms: number;
  readonly rate_bytes_per_s: number;
  readonly verified: boolean;
  readonly transfers_after_resume: number;
}

async function sendRam(link: DestinationLink, vm: Vm, offset: number, length: number, progress: Progress): Promise<void> {
  for (let at = offset; at < offset + length; at += IO_CHUNK) {
    const n = Math.min(IO_CHUNK, offset + length - at);
    await link.ram(at, vm.p.memory.read(vm.ram + BigInt(at), n));
    progress.add(n);
  }
}

/** Reads the data fd until ENOMSG (pre-copy) or EOF (stop-copy), forwarding every chunk. */
async function pump(link: DestinationLink, vm: Vm, fd: number, progress: Progress): Promise<number> {
  let bytes = 0;
  for (;;) {
    let chunk: Uint8Array;
    try {
      chunk = vm.p.read(fd, IO_CHUNK);
    } catch (e) {
      if (isSysError(e, 'ENOMSG')) return bytes;
      throw e;
    }
    if (chunk.length === 0) return bytes;
    await link.data(chunk);
    bytes += chunk.length;
    progress.add(chunk.length);
  }
}

/** Guest RAM pages the device wrote since the last report, as [offset, length] runs. */
function dirtyRamRuns(vm: Vm): [number, number][] {
  const bitmap = reportDmaLogging(vm.p, vm.device, 0n, BigInt(vm.ramSize), BigInt(PAGE));
  const runs: [number, number][] = [];
  for (let i = 0; i < bitmap.length * 8; i++) {
    if (((bitmap[i >> 3]! >> (i & 7)) & 1) === 0) continue;
    const last = runs.at(-1);
    if (last && last[0] + last[1] === i * PAGE) last[1] += PAGE;
    else runs.push([i * PAGE, PAGE]);
  }
  return runs;
}

const round = (ms: number): number => Math.round(ms * 100) / 100;

async function migrate(link: DestinationLink, shape: VmShape, maxRounds: number, progress: Progress, mode: MigrateView['mode'], destination: string): Promise<MigrateView> {
  const vm = buildVm(shape);
  startWorkload(vm);
  try {
    return await runMigration(vm, link, shape, maxRounds, progress, mode, destination);
  } catch (e) {
    // What a VMM does when a migration fails: the device runs on at the source.
    let resumed = false;
    try {
      setDeviceState(vm.p, vm.device, VFIO_DEVICE_STATE_RUNNING);
      resumed = true;
    } catch {
      /* the device is in ERROR: only a reset would bring it back */
    }
    progress.end();
    if (!(e instanceof CliError)) throw e;
    throw new CliError(e.what, resumed ? `${e.hint}; the device runs on at the source` : `${e.hint}; the source device is in ERROR`, e.exitCode);
  }
}

async function runMigration(
  vm: Vm,
  link: DestinationLink,
  shape: VmShape,
  maxRounds: number,
  progress: Progress,
  mode: MigrateView['mode'],
  destination: string,
): Promise<MigrateView> {
  const started = performance.now();
  const estimate = Number(getMigrationDataSize(vm.p, vm.device));
  progress.start(estimate + shape.ramBytes, 'setup');
  await link.hello(shape);
  // The device's own dirty tracking covers guest RAM while it is copied.
  startDmaLogging(vm.p, vm.device, [{ iova: 0n, length: BigInt(shape.ramBytes) }], BigInt(PAGE));
  const rounds: RoundView[] = [];
  let dataFd = -1;
  if (maxRounds > 0) {
    dataFd = setDeviceState(vm.p, vm.device, VFIO_DEVICE_STATE_PRE_COPY);
    for (let r = 1; r <= maxRounds; r++) {
      const t0 = performance.now();
      progress.phase(`pre-copy round ${r}`);
      let ramBytes = 0;
      if (r === 1) {
        await sendRam(link, vm, 0, shape.ramBytes, progress);
        ramBytes = shape.ramBytes;
      } else {
        for (const [off, len] of dirtyRamRuns(vm)) {
          await sendRam(link, vm, off, len, progress);
          ramBytes += len;
        }
      }
      const deviceBytes = await pump(link, vm, dataFd, progress);
      rounds.push({ round: r, device_bytes: deviceBytes, ram_bytes: ramBytes, ms: round(performance.now() - t0) });
      runGuest(vm, r);
      const info = getPrecopyInfo(vm.p, dataFd);
      progress.grow(progress.doneBytes() + info.initialBytes + info.dirtyBytes);
      if (info.initialBytes + info.dirtyBytes < CONVERGED) break;
    }
  }
  // Stop-and-copy: the device stops here and runs again only at the destination.
  const stopAt = performance.now();
  progress.phase('stop-copy');
  if (dataFd < 0) {
    setDeviceState(vm.p, vm.device, VFIO_DEVICE_STATE_STOP);
    dataFd = setDeviceState(vm.p, vm.device, VFIO_DEVICE_STATE_STOP_COPY);
  } else {
    setDeviceState(vm.p, vm.device, VFIO_DEVICE_STATE_STOP_COPY);
  }
  // The check of the destination is not part of a migration: its time is left out of the figures.
  const checkAt = performance.now();
  const expected = fingerprint(vm);
  const checkMs = performance.now() - checkAt;
  const stopDevice = await pump(link, vm, dataFd, progress);
  let stopRam = 0;
  for (const [off, len] of dirtyRamRuns(vm)) {
    await sendRam(link, vm, off, len, progress);
    stopRam += len;
  }
  stopDmaLogging(vm.p, vm.device);
  const stopMs = performance.now() - stopAt - checkMs;
  progress.phase('resume');
  const result = await link.finish(expected);
  const downtime = performance.now() - stopAt - checkMs - result.afterRunningMs;
  progress.end();
  if (!result.verified) {
    throw new CliError(`the destination runs, but ${result.mismatch ?? 'its state differs'}`, 'this is a bug in the device model or the stream; please report it');
  }
  setDeviceState(vm.p, vm.device, VFIO_DEVICE_STATE_STOP);
  vm.p.close(dataFd);
  link.close();
  // Checking the destination is not part of the migration.
  const total = performance.now() - started - checkMs - result.afterRunningMs;
  const totalBytes = rounds.reduce((n, r) => n + r.device_bytes + r.ram_bytes, 0) + stopDevice + stopRam;
  return {
    mode,
    destination,
    device: BDF,
    state_bytes: shape.stateBytes,
    ram_bytes: shape.ramBytes,
    estimated_stop_copy_bytes: estimate,
    pre_copy: rounds,
    stop_copy: { device_bytes: stopDevice, ram_bytes: stopRam, ms: round(stopMs) },
    resume_ms: round(result.resumeMs),
    total_bytes: totalBytes,
    downtime_ms: round(downtime),
    total_ms: round(total),
    rate_bytes_per_s: Math.round(totalBytes / Math.max(total / 1000, 1e-6)),
    verified: result.verified,
    transfers_after_resume: result.counterAfter,
  };
}

/* ------------------------------------------------------------------------------------------------------------ */
/* The command                                                                                                  */
/* ------------------------------------------------------------------------------------------------------------ */

/** `1536`, `64K`, `16M`, `1G` → bytes. */
export function parseSize(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const m = typeof value === 'string' ? /^(\d+)\s*([kmg]?)i?b?$/i.exec(value.trim()) : null;
  const unit = { '': 1, k: KiB, m: MiB, g: 1024 * MiB }[(m?.[2] ?? '').toLowerCase()] ?? NaN;
  const n = m ? Number(m[1]) * unit : NaN;
  if (!Number.isSafeInteger(n)) throw new CliError(`${name} must be a size such as 64K, 16M or 1G`, `e.g. '${name} 16M'`, EXIT_USAGE);
  return n;
}

function checkSize(n: number, name: string, min: number, max: number): number {
  if (n < min || n > max || (n & (n - 1)) !== 0) {
    throw new CliError(`${name} must be a power of two from ${formatBytes(min)} to ${formatBytes(max)}`, `e.g. '${name} 16M'`, EXIT_USAGE);
  }
  return n;
}

function parseInteger(value: unknown, name: string, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  const n = typeof value === 'string' && /^\d+$/.test(value.trim()) ? Number(value.trim()) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new CliError(`${name} must be a whole number from ${min} to ${max}`, `e.g. '${name} ${fallback}'`, EXIT_USAGE);
  return n;
}

/** `127.0.0.1:PORT` (or `localhost:PORT`) → PORT; anything off the loopback is refused. */
export function parseLoopback(value: string): number {
  const m = /^(127\.0\.0\.1|localhost):(\d{1,5})$/.exec(value.trim());
  const port = m ? Number(m[2]) : NaN;
  if (!m || port < 1 || port > 65535) {
    throw new CliError(`--to must be 127.0.0.1:PORT (got '${value}')`, 'migrations run between simulated hosts on this machine only', EXIT_USAGE);
  }
  return port;
}

/** `12.3 MiB`. */
export function formatBytes(n: number): string {
  if (n < KiB) return `${Math.round(n)} B`;
  if (n < MiB) return `${(n / KiB).toFixed(1)} KiB`;
  if (n < 1024 * MiB) return `${(n / MiB).toFixed(1)} MiB`;
  return `${(n / (1024 * MiB)).toFixed(2)} GiB`;
}

function migrateReport(view: MigrateView): Report {
  const blocks: Block[] = [
    fields(
      [
        ['device', `${view.device} (vfio-migratable: ${formatBytes(view.state_bytes)} of device memory, ${formatBytes(view.ram_bytes)} of guest RAM)`],
        ['to', view.destination],
        ['downtime', `${view.downtime_ms.toFixed(2)} ms (stop-copy ${view.stop_copy.ms.toFixed(2)} ms, resume ${view.resume_ms.toFixed(2)} ms)`],
        ['total time', `${view.total_ms.toFixed(2)} ms`],
        ['transferred', `${formatBytes(view.total_bytes)} at ${formatBytes(view.rate_bytes_per_s)}/s`],
        ['verified', view.verified ? `yes: registers and device memory identical; the DMA under way completed at the destination (${view.transfers_after_resume} transfer)` : 'NO'],
      ],
      'migration complete',
    ),
    table(
      ['phase', { header: 'device data', align: 'right' }, { header: 'guest RAM', align: 'right' }, { header: 'ms', align: 'right' }],
      [
        ...view.pre_copy.map((r) => [`pre-copy round ${r.round}`, formatBytes(r.device_bytes), formatBytes(r.ram_bytes), r.ms.toFixed(2)]),
        ['stop-copy', formatBytes(view.stop_copy.device_bytes), formatBytes(view.stop_copy.ram_bytes), view.stop_copy.ms.toFixed(2)],
        ['resume', '', '', view.resume_ms.toFixed(2)],
      ],
    ),
  ];
  return { data: view, blocks };
}

function listenReport(view: ListenView): Report {
  return {
    data: view,
    blocks: [
      fields(
        [
          ['from', view.peer],
          ['received', `${formatBytes(view.received_bytes)} (${formatBytes(view.state_bytes)} device, ${formatBytes(view.ram_bytes)} guest RAM)`],
          ['resume', `${view.resume_ms.toFixed(2)} ms (RESUMING → RUNNING)`],
          ['total time', `${view.total_ms.toFixed(2)} ms`],
          ['verified', view.verified ? `yes: the device runs here (${view.transfers_after_resume} transfer completed)` : 'NO'],
        ],
        `migration received on 127.0.0.1:${view.port}`,
      ),
    ],
  };
}

/** Options of {@link makeMigrateCommand} (for embedding and tests). */
export interface MigrateCommandOptions {
  /**
   * Where the progress bar is drawn. Default: standard error when it is a terminal (never with `--json`);
   * `null` draws nothing.
   */
  readonly progress?: ProgressSink | null;
  /** Told the port once `--listen` is listening (useful with `--listen 0`). */
  readonly onListening?: (port: number) => void;
}

/** Builds the `migrate` command. */
export function makeMigrateCommand(options: MigrateCommandOptions = {}): VfioCommand {
  return {
    name: 'migrate',
    configure: (cmd) =>
      cmd
        .summary('live-migrate a running device from one simulated host to another')
        .description(
          'Live-migrates the sample vfio-migratable device, mid-DMA, between two embedded simulated hosts with VFIO ' +
            'migration v2: guest RAM and PRE_COPY rounds while it runs, STOP_COPY, RESUMING, then RUNNING at the ' +
            'destination. Both hosts run in this process unless --listen and --to put them in two processes on 127.0.0.1.',
        )
        .option('--to <127.0.0.1:port>', 'send the device to a destination started with --listen')
        .option('--listen <port>', 'be the destination: accept one migration on 127.0.0.1:PORT (0 picks a port)')
        .option('--size <bytes>', 'device memory (BAR2) of the migrated device, a power of two (default 16M)')
        .option('--ram <bytes>', 'guest RAM, a power of two (default 16M)')
        .option('--rounds <n>', 'most pre-copy rounds; 0 goes straight to STOP_COPY (default 4)')
        .option('--timeout <ms>', 'longest wait for the other end (default 30000)')
        .option('--max-size <bytes>', 'with --listen: largest device memory or RAM accepted (default 1G)'),
    run: async ({ options: o }) => {
      const jsonOut = o['json'] === true;
      const stderr = (t: string): void => {
        process.stderr.write(t);
      };
      // The bar only on a terminal (and never with --json); the listening address always, on standard error.
      const sink = options.progress === null ? undefined : (options.progress ?? (!jsonOut && process.stderr.isTTY ? stderr : undefined));
      const progress = new Progress(sink, options.progress === null ? undefined : (options.progress ?? stderr));
      const timeoutMs = parseInteger(o['timeout'], '--timeout', 100, 3_600_000, 30_000);
      if (o['listen'] !== undefined && o['to'] !== undefined) throw new CliError('--listen and --to exclude each other', 'run the destination and the source as two commands', EXIT_USAGE);
      if (o['listen'] !== undefined) {
        const port = parseInteger(o['listen'], '--listen', 0, 65535, 0);
        const max = parseSize(o['maxSize'], '--max-size', 1024 * MiB);
        return listenReport(await listen(port, timeoutMs, max, options.onListening, progress));
      }
      const shape: VmShape = {
        stateBytes: checkSize(parseSize(o['size'], '--size', 16 * MiB), '--size', 64 * KiB, 1024 * MiB),
        ramBytes: checkSize(parseSize(o['ram'], '--ram', 16 * MiB), '--ram', 64 * KiB, 1024 * MiB),
      };
      const rounds = parseInteger(o['rounds'], '--rounds', 0, 100, 4);
      if (typeof o['to'] === 'string') {
        const port = parseLoopback(o['to']);
        const link = await tcpLink(port, timeoutMs);
        try {
          return migrateReport(await migrate(link, shape, rounds, progress, 'tcp', `127.0.0.1:${port}`));
        } finally {
          link.close();
        }
      }
      return migrateReport(await migrate(localLink(), shape, rounds, progress, 'in-process', 'a second host in this process'));
    },
  };
}

/** `vfio migrate`. */
export const migrateCommand: VfioCommand = makeMigrateCommand();
