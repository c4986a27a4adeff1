/**
 * BAdam's per-block backward against the full backward, in time, on the active backend: the
 * backward suite's model (bench/backward.bench.ts: 8 layers, hidden 256, batch 1 x seq 64) with
 * everything trainable ('full') and with only decoder layer i trainable ('block i', the flags
 * BlockOptimizer sets: `model.layers.{i}.*`), next to the matmul FLOPs the kernels count. The mean
 * block's time over the full backward's should come close to the FLOP ratio (0.354 at D = 8)
 * when matmul dominates the backward.
 *
 *   node scripts/run-ts.mjs bench/badam-ratio.bench.ts [cpu | wasm [threads]]     (~40 s on wasm)
 *
 * The ratio is small differences of short times, so this times the cases side by side rather
 * than one after another as the backward suite does: in each round every case, in turn (the
 * first rotates), records its forward (untimed), runs one untimed backward, then times
 * `backward(retainGraph) + free the gradients` for ROUND_SECONDS; inside tidy(), so the round's
 * graph is released at its end. The table shows each case's median round.
 */
import { LlamaForCausalLM, getBackendName, backendInfo, profile, setBackend, tidy, type LlamaConfig, type Tensor } from '../src';
import { BACKWARD_INPUT, BACKWARD_MODEL, clearGrads, isEntry, tokenIds } from './backward.bench';
import { llamaFlopDims, meanBlockBackwardFlops, fullBackwardFlops } from './flops';
import { load1, sampled, timeRound, yieldToLoop, type Sampled } from './rounds';

export interface BadamCaseRow {
  /** 'full' or 'block i'. */
  name: string;
  time: Sampled;
  /** Median time / the full backward's median time. */
  timeRatio: number;
  /** Matmul FLOPs of one backward, counted by the kernels. */
  flops: number;
  flopRatio: number;
}

export interface BadamRatioResult {
  backend: string;
  threads: number | null;
  model: LlamaConfig;
  input: { batch: number; seqLen: number };
  rounds: number;
  roundSeconds: number;
  full: BadamCaseRow;
  blocks: BadamCaseRow[];
  meanBlockSeconds: number;
  /** Mean of the blocks' median times / the full backward's. */
  meanTimeRatio: number;
  /** The same for the counted FLOPs, and bench/flops.ts's prediction. */
  meanFlopRatio: number;
  predictedFlopRatio: number;
  /** meanTimeRatio − meanFlopRatio. */
  gap: number;
  load: [number, number];
}

/** Sets the flags: everything trainable (block null), or only `model.layers.{block}.*`. */
function setTrainable(model: LlamaForCausalLM, block: number | null): void {
  model.requiresGrad_(block === null);
  if (block === null) return;
  for (const [name, p] of model.namedParameters()) if (name.startsWith(`model.layers.${block}.`)) p.requiresGrad_(true);
}

export async function runBadamRatioBench(options: { rounds?: number; roundSeconds?: number } = {}): Promise<BadamRatioResult> {
  // 8 rounds of 0.4 s: the ratio is a difference of a few milliseconds, and with fewer, shorter
  // rounds its median moved by ±0.02 between runs on this 2-core machine
  const rounds = options.rounds ?? 8;
  const roundSeconds = options.roundSeconds ?? 0.4;
  const config = BACKWARD_MODEL;
  const input = BACKWARD_INPUT;
  const loadBefore = load1();
  const model = tidy(() => new LlamaForCausalLM(config)); // tidy: its initialisation's temporaries go now
  const ids = tidy(() => tokenIds(input.batch, input.seqLen, config.vocabSize));
  const D = config.numHiddenLayers;
  const cases: { name: string; block: number | null }[] = [
    { name: 'full', block: null },
    ...Array.from({ length: D }, (_, i) => ({ name: `block ${i}`, block: i })),
  ];
  const info = backendInfo();
  console.log(
    `BAdam backward time vs FLOPs on ${getBackendName()}${info.threads ? ` (${info.threads} threads)` : ''}: ` +
      `${rounds} interleaved rounds of >= ${roundSeconds} s per case; load average ${loadBefore}`,
  );
  const flops: number[] = [];
  const perRound: number[][] = cases.map(() => []);
  try {
    for (const c of cases) {
      setTrainable(model, c.block);
      tidy(() => {
        const loss = model.forward(ids, { labels: ids }).loss as Tensor;
        flops.push(profile(() => loss.backward(null, { retainGraph: true })).report.matmulFlops);
        clearGrads(model);
      });
    }
    for (let r = 0; r < rounds; r++) {
      for (let j = 0; j < cases.length; j++) {
        const idx = (r + j) % cases.length;
        setTrainable(model, cases[idx].block);
        tidy(() => {
          const loss = model.forward(ids, { labels: ids }).loss as Tensor;
          const backward = () => {
            loss.backward(null, { retainGraph: true });
            clearGrads(model);
          };
          backward(); // untimed: the first backward of a graph allocates what the later ones reuse
          perRound[idx].push(timeRound(backward, roundSeconds));
        });
        await yieldToLoop();
      }
    }
  } finally {
    for (const p of model.parameters()) p.dispose();
    for (const [, b] of model.namedBuffers()) b.dispose();
    ids.dispose();
  }
  const rows: BadamCaseRow[] = cases.map((c, i) => ({ name: c.name, time: sampled(perRound[i]), timeRatio: NaN, flops: flops[i], flopRatio: flops[i] / flops[0] }));
  for (const row of rows) row.timeRatio = row.time.medianSeconds / rows[0].time.medianSeconds;
  const blocks = rows.slice(1);
  const meanBlockSeconds = blocks.reduce((s, b) => s + b.time.medianSeconds, 0) / D;
  const meanTimeRatio = meanBlockSeconds / rows[0].time.medianSeconds;
  const meanFlopRatio = blocks.reduce((s, b) => s + b.flops, 0) / D / rows[0].flops;
  const dims = llamaFlopDims(config, input);
  const result: BadamRatioResult = {
    backend: getBackendName(),
    threads: info.threads ?? null,
    model: config,
    input,
    rounds,
    roundSeconds,
    full: rows[0],
    blocks,
    meanBlockSeconds,
    meanTimeRatio,
    meanFlopRatio,
    predictedFlopRatio: meanBlockBackwardFlops(dims) / fullBackwardFlops(dims),
    gap: meanTimeRatio - meanFlopRatio,
    load: [loadBefore, load1()],
  };
  for (const row of rows) console.log(`${row.name.padEnd(8)} ${(row.time.medianSeconds * 1e3).toFixed(1).padStart(7)} ms  time x${row.timeRatio.toFixed(3)}  FLOPs x${row.flopRatio.toFixed(3)}`);
  console.log(`mean block: time x${meanTimeRatio.toFixed(3)}, FLOPs x${meanFlopRatio.toFixed(3)} (gap ${result.gap >= 0 ? '+' : ''}${result.gap.toFixed(3)}; load ${load1()})`);
  return result;
}

/** How close the mean-block time ratio must come to its FLOP ratio (the issue's criterion). */
export const RATIO_TOLERANCE = 0.02;

export function badamRatioMarkdown(r: BadamRatioResult): string {
  const ms = (t: Sampled) => `${(t.medianSeconds * 1e3).toFixed(1)} (${(t.minSeconds * 1e3).toFixed(1)}–${(t.maxSeconds * 1e3).toFixed(1)})`;
  const row = (c: BadamCaseRow) => `| ${c.name} | ${ms(c.time)} | ${c.timeRatio.toFixed(3)} | ${c.flopRatio.toFixed(3)} |`;
  return [
    `The backward suite's model (${r.model.numHiddenLayers} layers, hidden ${r.model.hiddenSize}, batch ${r.input.batch} × seq ${r.input.seqLen}, float32) ` +
      `on ${r.backend}${r.threads ? ` with ${r.threads} thread(s)` : ''}: backward on a retained graph, median of ${r.rounds} interleaved rounds ` +
      `of >= ${r.roundSeconds} s per case (min–max of the rounds); load average ${r.load[0]} before, ${r.load[1]} after.`,
    '',
    '| backward | ms, median (min–max) | time / full | matmul FLOPs / full |',
    '| :--- | ---: | ---: | ---: |',
    row(r.full),
    ...r.blocks.map(row),
    `| **mean over the ${r.blocks.length} blocks** | ${(r.meanBlockSeconds * 1e3).toFixed(1)} | **${r.meanTimeRatio.toFixed(3)}** | **${r.meanFlopRatio.toFixed(3)}** |`,
    '',
    `Mean block / full backward: time ${r.meanTimeRatio.toFixed(3)}, matmul FLOPs ${r.meanFlopRatio.toFixed(3)} (bench/flops.ts predicts ${r.predictedFlopRatio.toFixed(3)}); ` +
      `the time ratio is ${r.gap >= 0 ? '+' : ''}${r.gap.toFixed(3)} off, ${Math.abs(r.gap) <= RATIO_TOLERANCE ? 'within' : '**not within**'} the issue's ${RATIO_TOLERANCE}.`,
  ].join('\n');
}

if (isEntry('badam-ratio.bench')) {
  const [backend = 'wasm', threads = '2'] = process.argv.slice(2);
  if (backend === 'wasm') setBackend('wasm', { threads: Number(threads) });
  else setBackend(backend);
  runBadamRatioBench()
    .then((r) => console.log('\n' + badamRatioMarkdown(r)))
    .catch((err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    });
}
