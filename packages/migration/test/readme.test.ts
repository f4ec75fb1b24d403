// The README example, kept runnable: if this file changes, update README.md (and the other way round).
import { expect, it } from 'vitest';
import {
  VFIO_DEVICE_STATE_RESUMING,
  VFIO_DEVICE_STATE_RUNNING,
  VFIO_DEVICE_STATE_STOP_COPY,
  VFIO_MIGRATION_STOP_COPY,
} from '@vfio-ts/uapi';
import { DmaLogger, IovaBitmap, MigrationStateMachine } from '../src/index.js';
import type { MigrationDriver } from '../src/index.js';

it('README example', () => {
  // A vendor driver: one primitive arc at a time; the device state is a byte array.
  function counterDevice(state: Uint8Array): MigrationDriver & { state: Uint8Array } {
    return {
      state,
      migrationFlags: VFIO_MIGRATION_STOP_COPY,
      setState(arc) {
        if (arc.resumed) this.state = arc.resumed.payload(); // RESUMING → STOP: load the validated stream
        if (arc.to === VFIO_DEVICE_STATE_STOP_COPY) return { finalState: () => this.state.slice() };
      },
      dataSize() {
        return this.state.length;
      },
    };
  }

  const source = counterDevice(new TextEncoder().encode('device registers and queues'));
  const target = counterDevice(new Uint8Array(0));
  const a = new MigrationStateMachine(source, { tag: 'acme:nic:v1' });
  const b = new MigrationStateMachine(target, { tag: 'acme:nic:v1' });

  // RUNNING → STOP → STOP_COPY: the last arc opens the saving session (the data fd).
  const out = a.setState(VFIO_DEVICE_STATE_STOP_COPY);
  const into = b.setState(VFIO_DEVICE_STATE_RESUMING);
  if (out?.kind !== 'saving' || into?.kind !== 'resuming') throw new Error('expected two data sessions');
  for (let chunk = out.read(16); chunk.length > 0; chunk = out.read(16)) into.write(chunk);

  // RESUMING → STOP (stream validated, then loaded) → RUNNING.
  b.setState(VFIO_DEVICE_STATE_RUNNING);
  expect(new TextDecoder().decode(target.state)).toBe('device registers and queues');

  // Dirty logging: the device model marks DMA writes; a report at 2 MiB granularity aggregates 4 KiB pages.
  const log = new DmaLogger();
  log.logStart([{ iova: 0n, length: 1n << 30n }], 4096n);
  log.markDirty(0x20_1000n, 8n);
  const report = new IovaBitmap(0n, 1n << 30n, 2n << 20n);
  log.logReadAndClear(0n, 1n << 30n, report);
  expect(report.testBit(1)).toBe(true);
});
