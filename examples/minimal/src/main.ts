// `pnpm --filter @vfio-ts/example-minimal start`
import { runMinimal } from './flow.js';

const result = await runMinimal((line) => { console.log(line); });
console.log(`5! = ${result.factorial.value}, DMA verified: ${result.dma.verified}, MSIs: ${result.interrupts.msi}`);
