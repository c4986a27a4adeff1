/**
 * BAdam on the wasm (1 and 2 threads) and gpu backends: fine-tuning a tiny 2-layer Llama (float32)
 * for 20 steps gives the same per-step losses as the same run on the cpu backend (same seed, same
 * data), and one backward prunes exactly the same work on each backend (the engine's statistics: nodes
 * recorded and not recorded, gradients skipped, nodes pruned, kernel launches per kernel).
 */
import { Adam, BlockOptimizer, backward, profile, setBackend, type ProfileReport, type Tensor } from '../../src';
import { kernels } from '../../src/kernels/registry';
import type { GpuBackend } from '../../src/kernels/gpu/backend';
import { backendsUnderTest, intTensor, onCpu, requireHeadlessGlInCI, tinyLlama, tokenBatch, valuesOf } from './helpers';

const STEPS = 20;

/**
 * Per-step losses may differ by float32 rounding only (the gpu kernels sum rows in another order
 * than the cpu loops, and use their own exp/log): measured, at most 1.3e-7 relative over the 20
 * steps on gpu.js's cpu, webasm and headlessgl modes. Adam divides by √v, which can amplify
 * differences in tiny gradient entries, so allow 1e-5 relative, ~100x the measured spread; a
 * wrong kernel (a wrong gradient, a skipped or doubled update) moves the loss by far more.
 */
const LOSS_RTOL = 1e-5;

/** Labels: the tokens themselves, with the last two positions of the second row ignored (-100). */
function labelsFor(tokens: Tensor): Tensor {
  const values = valuesOf(tokens);
  const [b, t] = tokens.shape;
  for (let j = t - 2; j < t; j++) values[(b - 1) * t + j] = -100;
  return intTensor(values, tokens.shape);
}

/**
 * 20 BAdam steps on the active backend. The embedding and lm_head are blocks of their own, so
 * with 5 steps per block every block (embedding, layer 0, layer 1, lm_head) trains once, and the
 * embedding's gradient (indexAdd), attention, the MLP and the loss all take part.
 */
function fineTune(): number[] {
  const model = tinyLlama();
  const opt = new BlockOptimizer(model, new Adam(model.parameters(), { lr: 1e-2 }), {
    verbose: 0,
    switchEvery: 5,
    switchMode: 'ascending',
    includeEmbedding: true,
    includeLmHead: true,
  });
  expect(opt.blocks().length).toBe(4);
  const losses: number[] = [];
  for (let step = 0; step < STEPS; step++) {
    // four batches, cycled: the model sees each again, so the loss falls clearly within 20 steps
    const tokens = tokenBatch(step % 4);
    const { loss } = model.forward(tokens, { labels: labelsFor(tokens) });
    opt.zeroGrad();
    (loss as Tensor).backward();
    opt.step();
    losses.push((loss as Tensor).item());
  }
  return losses;
}

/** The parts of a profile that say what was pruned and launched (no timings). */
function pruning(forward: ProfileReport, backwardReport: ProfileReport) {
  return {
    forward: {
      nodesRecorded: forward.nodesRecorded,
      notRecorded: forward.notRecorded,
      recorded: forward.recorded.map((e) => [e.op, e.inputNames, e.needsInputGrad, e.savedBytes]),
      kernels: forward.kernels,
    },
    backward: {
      nodesRun: backwardReport.nodesRun,
      gradsSkippedByMask: backwardReport.gradsSkippedByMask,
      nodesPrunedByReachability: backwardReport.nodesPrunedByReachability,
      gradsSkippedByReachability: backwardReport.gradsSkippedByReachability,
      nodes: backwardReport.backwardNodes.map((e) => [e.op, e.inputNames, e.computed]),
      kernels: backwardReport.kernels,
      kernelLaunches: backwardReport.kernelLaunches,
      matmulFlops: backwardReport.matmulFlops,
    },
  };
}

const layerOf = (name: string | undefined): number | null => {
  const m = name === undefined ? null : /^model\.layers\.(\d+)\./.exec(name);
  return m ? Number(m[1]) : null;
};

/**
 * Layer 1 active ('fixed' mode): one forward and one backward, profiled. With `onlyInto`, the
 * backward accumulates into that parameter only (reachability pruning on top of BAdam's).
 */
function profiledStep(onlyInto?: string) {
  const model = tinyLlama();
  new BlockOptimizer(model, new Adam(model.parameters()), { verbose: 0, switchMode: 'fixed', startBlock: 1 });
  const tokens = tokenBatch(0);
  const { result: out, report: fwd } = profile(() => model.forward(tokens, { labels: labelsFor(tokens) }));
  const loss = out.loss as Tensor;
  const params = new Map(model.namedParameters());
  const inputs = onlyInto === undefined ? undefined : [params.get(onlyInto) as Tensor];
  const { report: bwd } = profile(() => backward(loss, null, { inputs }));
  return pruning(fwd, bwd);
}

/** The cpu backend's run, made once and shared by every gpu mode. */
let cpuLosses: number[] | null = null;
const cpuFineTune = (): number[] => (cpuLosses ??= onCpu(fineTune));

// the wasm backend on one and two threads, the gpu backend in gpu.js's cpu and webasm modes, and
// headlessgl where there is a display
const gpuBackends = backendsUnderTest({ cpu: false });

requireHeadlessGlInCI();

describe.each(gpuBackends)('BAdam fine-tune of a 2-layer Llama on $label matches the cpu backend', ({ name, options }) => {
  beforeAll(() => setBackend(name, options));
  afterAll(() => setBackend('cpu'));

  test(`the same losses for ${STEPS} steps`, () => {
    const expected = cpuFineTune();
    const got = fineTune();
    // training did something (so equal losses are not two untouched models): the same four
    // batches cost clearly less at the end
    const sumOf = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
    expect(sumOf(expected.slice(-4))).toBeLessThan(sumOf(expected.slice(0, 4)) - 0.4);
    expect(got.length).toBe(STEPS);
    got.forEach((loss, step) => {
      if (!(Math.abs(loss - expected[step]) <= LOSS_RTOL * Math.abs(expected[step]))) {
        throw new Error(`step ${step}: loss ${loss} on ${name}, ${expected[step]} on cpu (rtol ${LOSS_RTOL})`);
      }
    });
  });

  // the gpu backend keeps data on the device; wasm and cpu have nothing to read back
  if (name === 'gpu') test('nothing is read back from the device during training but the losses the loop asks for', () => {
    // every readback goes through the runtime's toHost: count them over a short run
    const runtime = (kernels() as unknown as GpuBackend).runtime;
    const original = runtime.toHost.bind(runtime);
    let readbacks = 0;
    runtime.toHost = (data) => {
      readbacks++;
      return original(data);
    };
    try {
      fineTune();
    } finally {
      runtime.toHost = original;
    }
    // one per loss.item(): forward (its checks of the token ids and labels read the host copies
    // of those int32 tensors), backward, zeroGrad and BAdam's Adam steps download nothing
    expect(readbacks).toBe(STEPS);
  });

  test.each([
    ['a full backward', undefined],
    ['a backward into one weight of the active layer', 'model.layers.1.mlp.down_proj.weight'],
  ])('%s prunes the same nodes, gradients and kernel launches', (_, onlyInto) => {
    const expected = onCpu(() => profiledStep(onlyInto));
    const got = profiledStep(onlyInto);
    expect(got).toEqual(expected);

    // and the statistics show pruning, so that their equality says something
    expect(Object.values(expected.forward.notRecorded).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    expect(expected.backward.gradsSkippedByMask).toBeGreaterThan(0);
    const touched = expected.backward.nodes.flatMap(([, names, computed]) =>
      (names as (string | undefined)[]).filter((n, k) => n !== undefined && (computed as boolean[])[k]),
    );
    expect(touched.length).toBeGreaterThan(0);
    expect(touched.every((n) => layerOf(n) === 1)).toBe(true);
    if (onlyInto !== undefined) {
      expect(expected.backward.nodesPrunedByReachability).toBeGreaterThan(0);
      expect([...new Set(touched)]).toEqual([onlyInto]);
    }
  });
});
