/**
 * Timing helpers for `bench/index.ts` files. A benchmark measures its subject and a baseline in the same
 * run and reports the ratio; `report()` hands the figures to the root runner (tools/bench-runner.mjs).
 */
export interface Figure {
  value: number;
  unit: string;
  note: string;
}

/** Runs `fn` repeatedly for about `ms` milliseconds (after a warm-up) and returns nanoseconds per call. */
export function nsPerOp(fn: () => void, ms = 300, batch = 1): number {
  for (let i = 0; i < 3; i++) fn();
  let calls = 0;
  const start = process.hrtime.bigint();
  const budget = BigInt(ms) * 1_000_000n;
  let elapsed = 0n;
  do {
    for (let i = 0; i < batch; i++) fn();
    calls += batch;
    elapsed = process.hrtime.bigint() - start;
  } while (elapsed < budget);
  return Number(elapsed) / calls;
}

/** The best (lowest) of `rounds` measurements, to damp noise from a busy machine. */
export function bestNsPerOp(fn: () => void, rounds = 5, ms = 200, batch = 1): number {
  let best = Infinity;
  for (let r = 0; r < rounds; r++) best = Math.min(best, nsPerOp(fn, ms, batch));
  return best;
}

/** Wall time of one call in nanoseconds, best of `rounds`. */
export function timeOnce(fn: () => void, rounds = 3): number {
  let best = Infinity;
  for (let r = 0; r < rounds; r++) {
    const start = process.hrtime.bigint();
    fn();
    best = Math.min(best, Number(process.hrtime.bigint() - start));
  }
  return best;
}

/** Prints the figures in the form the root runner collects. Call once at the end of a bench. */
export function report(figures: Record<string, Figure>): void {
  console.log(`BENCH_RESULTS ${JSON.stringify(figures)}`);
}
