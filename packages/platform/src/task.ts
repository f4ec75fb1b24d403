/**
 * The calling task as a backend sees it (Linux `current`): its memory, credentials and limits.
 */
import type { AddressSpace } from './memory.js';

/** Linux capabilities the simulation knows. */
export type Capability = 'CAP_IPC_LOCK' | 'CAP_SYS_RAWIO' | 'CAP_SYS_ADMIN' | 'CAP_SYS_RESOURCE' | 'CAP_DAC_OVERRIDE';

export interface Task {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
  /** The task's address space (Linux current->mm). */
  readonly mm: AddressSpace;
  /** True when the capability is in the task's effective set. */
  capable(cap: Capability): boolean;
  /** RLIMIT_MEMLOCK in bytes (soft limit); `null` when unlimited. */
  readonly memlockLimit: bigint | null;
  /** Writes a kernel log line (dmesg), e.g. a memlock warning. */
  log(text: string): void;
}
