/**
 * The long-run program of long-run.test.ts (run in a child process under a small heap): trains a
 * 4-layer Llama for many steps in a synchronous loop that never yields to the event loop, each
 * step inside tidy() as the README writes it, and prints live bytes and heap every `every` steps
 * as JSON lines. Usage: long-run <adam|badam> <steps> <every> [cpu|wasm|gpu] [wasm threads] [gpu mode]
 */
import { Adam, BlockOptimizer, LlamaForCausalLM, memory, setBackend, tensor, tidy, type Tensor } from '../../src';

const [optimizerName = 'adam', stepsArg = '600', everyArg = '100', backend = 'cpu', threads = '', gpuMode = ''] = process.argv.slice(2);
const steps = Number(stepsArg);
const every = Number(everyArg);
if (backend === 'wasm') setBackend('wasm', threads ? { threads: Number(threads) } : undefined);
else if (backend === 'gpu') setBackend('gpu', gpuMode ? { mode: gpuMode } : undefined);
else setBackend(backend);

const model = new LlamaForCausalLM({
  vocabSize: 64,
  hiddenSize: 32,
  intermediateSize: 64,
  numHiddenLayers: 4,
  numAttentionHeads: 4,
  numKeyValueHeads: 2,
  maxPositionEmbeddings: 32,
  dtype: 'float32',
  seed: 0,
});
const base = new Adam(model.parameters(), { lr: 1e-3 });
const opt = optimizerName === 'badam' ? new BlockOptimizer(model, base, { switchEvery: 50, verbose: 0 }) : base;

/** Four fixed batches of 2 x 16 tokens, cycled. */
const batches: number[][][] = [0, 1, 2, 3].map((b) =>
  [0, 1].map((r) => Array.from({ length: 16 }, (_, i) => (b * 31 + r * 17 + i * 7) % 64)),
);

/** Heap after a full collection (node --expose-gc), so that the reading does not depend on when the collector last ran. */
const heapUsed = () => {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().heapUsed;
};
let lastLoss = NaN;
for (let step = 1; step <= steps; step++) {
  lastLoss = tidy(() => {
    const ids: Tensor = tensor(batches[step % 4], { dtype: 'int32' });
    const { loss } = model.forward(ids, { labels: ids });
    opt.zeroGrad();
    (loss as Tensor).backward();
    opt.step();
    return (loss as Tensor).item();
  });
  if (step % every === 0) {
    const stats = memory.stats();
    console.log(JSON.stringify({ step, liveBytes: stats.liveBytes, liveBuffers: stats.liveBuffers, heapUsed: heapUsed(), loss: lastLoss }));
  }
}
