/**
 * blockgrad against TensorFlow.js (`@tensorflow/tfjs-core` 4.x with its cpu backend and its wasm
 * backend, XNNPACK with SIMD, single-threaded in Node), in one process and one run:
 *   - float32 square matmul at the sizes of the ops suite;
 *   - one training step of the same MLP, 784-256-10 with ReLU, batch 64, mean softmax
 *     cross-entropy, Adam (lr 1e-3): forward, backward, update. blockgrad: Linear/relu/
 *     crossEntropy/backward/Adam.step; TensorFlow.js: optimizer.minimize (variableGrads + Adam).
 * Reported as ratios blockgrad time / peer time (below 1: blockgrad is faster).
 *
 *   node scripts/run-ts.mjs bench/peers.bench.ts        (about 40 s)
 *
 * Fairness notes. Both libraries run on one thread here (blockgrad's kernels are single-threaded;
 * tfjs-wasm finds no SharedArrayBuffer threads in Node). TensorFlow.js runs in production mode
 * (tf.enableProdMode(): no debug checks, no console banner). Results are not read back to JS in the
 * matmul timings: blockgrad's product already lives in a JS typed array, tfjs-wasm's in the wasm
 * heap, and the cpu and wasm backends compute eagerly and synchronously, so the timed call has
 * done the work when it returns. Do not return dataSync() from tf.tidy: tidy walks the returned
 * array element by element, which costs more than a small product.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { buildSync } from 'esbuild';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import {
  Adam,
  Generator,
  Linear,
  crossEntropy,
  matmul,
  noGrad,
  randn,
  relu,
  reshape,
  tensor,
} from '../src';
import { isEntry, measure, type Timing } from './backward.bench';
import { OP_MATMUL_SIZES } from './ops.bench';
import { randomFloat32 } from './matmul.bench';

export const PEER_BACKENDS = ['cpu', 'wasm'] as const;
export type PeerBackend = (typeof PEER_BACKENDS)[number];
export const MLP = { inputs: 784, hidden: 256, classes: 10, batch: 64, lr: 1e-3 };

export interface PeerMatmulRow {
  size: number;
  blockgrad: Timing;
  blockgradGflops: number;
  /** By tfjs backend; absent when that backend could not start. */
  peers: Partial<Record<PeerBackend, { time: Timing; gflops: number; ratio: number }>>;
}

export interface PeerMlpResult {
  blockgrad: Timing;
  peers: Partial<Record<PeerBackend, { time: Timing; ratio: number }>>;
  /** Loss after the timed steps, a sanity check that every library trained. */
  finalLoss: Partial<Record<'blockgrad' | PeerBackend, number>>;
}

export interface PeersBenchResult {
  tfjsVersion: string;
  backends: PeerBackend[];
  unavailable: { backend: string; reason: string }[];
  matmul: PeerMatmulRow[];
  mlp: PeerMlpResult;
}

let wasmPathsSet = false;
let gradientsRegistered = false;

/**
 * tfjs-core's Node build registers no gradients: the union package `@tensorflow/tfjs` imports
 * `@tensorflow/tfjs-core/dist/register_all_gradients`, an ES module tree with extensionless
 * imports that Node cannot load as it stands (and scripts/run-ts.mjs keeps packages external).
 * So it is bundled here once with esbuild into .tmp/run/ and required. Its copy of tfjs-core
 * internals shares the engine and the gradient registry with the main copy (both live on the
 * global object, and tfjs Tensors define Symbol.hasInstance for exactly this case).
 */
export function registerTfGradients(): void {
  if (gradientsRegistered) return;
  const outDir = join(process.cwd(), '.tmp', 'run');
  mkdirSync(outDir, { recursive: true });
  const outfile = join(outDir, 'tfjs-register-all-gradients.cjs');
  buildSync({
    entryPoints: [require.resolve('@tensorflow/tfjs-core/dist/register_all_gradients.js')],
    bundle: true,
    format: 'cjs',
    platform: 'node',
    outfile,
    logLevel: 'warning',
  });
  require(outfile);
  gradientsRegistered = true;
}

/** Starts a tfjs backend; the wasm binaries are read from node_modules (setWasmPaths needs a trailing slash). */
export async function startTfBackend(name: PeerBackend): Promise<void> {
  if (name === 'wasm' && !wasmPathsSet) {
    setWasmPaths(join(process.cwd(), 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist') + '/');
    wasmPathsSet = true;
  }
  const ok = await tf.setBackend(name);
  await tf.ready();
  if (!ok || tf.getBackend() !== name) throw new Error(`tf.setBackend('${name}') failed`);
}


// ------------------------------------------------------------------ the MLP step in each library

interface MlpData {
  x: Float32Array;
  labels: Int32Array;
}

function mlpData(): MlpData {
  const x = randomFloat32(MLP.batch * MLP.inputs, 11);
  const labels = Int32Array.from({ length: MLP.batch }, (_, i) => (i * 7) % MLP.classes);
  return { x, labels };
}

function blockgradMlp(data: MlpData): { step: () => void; loss: () => number } {
  const gen = new Generator(3);
  const fc1 = new Linear(MLP.inputs, MLP.hidden, { generator: gen });
  const fc2 = new Linear(MLP.hidden, MLP.classes, { generator: gen });
  const params = [...fc1.parameters(), ...fc2.parameters()];
  const opt = new Adam(params, { lr: MLP.lr });
  const xs = reshape(tensor(data.x, { dtype: 'float32' }), [MLP.batch, MLP.inputs]);
  const ys = tensor(data.labels, { dtype: 'int32' });
  let last = NaN;
  return {
    step: () => {
      opt.zeroGrad();
      const loss = crossEntropy(fc2.forward(relu(fc1.forward(xs))), ys);
      loss.backward();
      opt.step();
      last = loss.item();
      loss.dispose();
    },
    loss: () => last,
  };
}

function tfMlp(data: MlpData): { step: () => void; loss: () => number; dispose: () => void } {
  const init = (shape: [number, number], seed: number) => tf.variable(tf.tidy(() => tf.mul(tf.tensor2d(randomFloat32(shape[0] * shape[1], seed), shape), 1 / Math.sqrt(shape[0]))));
  const w1 = init([MLP.inputs, MLP.hidden], 21);
  const b1 = tf.variable(tf.zeros([MLP.hidden]));
  const w2 = init([MLP.hidden, MLP.classes], 22);
  const b2 = tf.variable(tf.zeros([MLP.classes]));
  const xs = tf.tensor2d(data.x, [MLP.batch, MLP.inputs]);
  const onehot = tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(data.labels, 'int32'), MLP.classes), 'float32'));
  const opt = tf.train.adam(MLP.lr);
  let last = NaN;
  return {
    step: () => {
      const cost = opt.minimize(() => tf.losses.softmaxCrossEntropy(onehot, tf.add(tf.matMul(tf.relu(tf.add(tf.matMul(xs, w1), b1)), w2), b2)) as tf.Scalar, true);
      if (cost) {
        last = cost.dataSync()[0];
        cost.dispose();
      }
    },
    loss: () => last,
    dispose: () => {
      opt.dispose();
      for (const t of [w1, b1, w2, b2, xs, onehot]) t.dispose();
    },
  };
}

// ------------------------------------------------------------------ the suite

export async function runPeersBench(options: { maxTime?: number } = {}): Promise<PeersBenchResult> {
  const maxTime = options.maxTime ?? 1.2;
  tf.enableProdMode();
  registerTfGradients();
  const result: PeersBenchResult = { tfjsVersion: tf.version_core, backends: [], unavailable: [], matmul: [], mlp: { blockgrad: { meanSeconds: NaN, rme: NaN, samples: 0 }, peers: {}, finalLoss: {} } };
  for (const b of PEER_BACKENDS) {
    try {
      await startTfBackend(b);
      result.backends.push(b);
    } catch (err) {
      result.unavailable.push({ backend: `tfjs-${b}`, reason: err instanceof Error ? err.message : String(err) });
    }
  }
  console.log(`blockgrad vs TensorFlow.js ${result.tfjsVersion} (${result.backends.map((b) => `tfjs-${b}`).join(', ')}); ratio = blockgrad time / peer time`);
  for (const u of result.unavailable) console.log(`${u.backend}: unavailable (${u.reason})`);

  const gen = new Generator(5);
  for (const n of OP_MATMUL_SIZES) {
    const flops = 2 * n ** 3;
    const a = randn([n, n], { generator: gen });
    const b = randn([n, n], { generator: gen });
    const mine = await measure(`blockgrad matmul ${n}`, () => noGrad(() => matmul(a, b)).dispose(), { maxTime });
    a.dispose();
    b.dispose();
    const row: PeerMatmulRow = { size: n, blockgrad: mine, blockgradGflops: flops / mine.meanSeconds / 1e9, peers: {} };
    for (const backend of result.backends) {
      await startTfBackend(backend);
      const ta = tf.tensor2d(randomFloat32(n * n, 1), [n, n]);
      const tb = tf.tensor2d(randomFloat32(n * n, 2), [n, n]);
      const time = await measure(`tfjs-${backend} matmul ${n}`, () => tf.matMul(ta, tb).dispose(), { maxTime });
      ta.dispose();
      tb.dispose();
      row.peers[backend] = { time, gflops: flops / time.meanSeconds / 1e9, ratio: mine.meanSeconds / time.meanSeconds };
    }
    result.matmul.push(row);
    console.log(
      `matmul ${String(n).padStart(3)}: blockgrad ${row.blockgradGflops.toFixed(2)} GFLOP/s` +
        result.backends.map((b) => `, tfjs-${b} ${row.peers[b]?.gflops.toFixed(2)} GFLOP/s (ratio ${row.peers[b]?.ratio.toFixed(2)})`).join(''),
    );
  }

  const data = mlpData();
  const mine = blockgradMlp(data);
  const stepTime = Math.max(maxTime, 2);
  result.mlp.blockgrad = await measure('blockgrad MLP step', mine.step, { maxTime: stepTime });
  result.mlp.finalLoss.blockgrad = mine.loss();
  for (const backend of result.backends) {
    await startTfBackend(backend);
    const peer = tfMlp(data);
    const time = await measure(`tfjs-${backend} MLP step`, peer.step, { maxTime: stepTime });
    result.mlp.finalLoss[backend] = peer.loss();
    peer.dispose();
    result.mlp.peers[backend] = { time, ratio: result.mlp.blockgrad.meanSeconds / time.meanSeconds };
  }
  console.log(
    `MLP ${MLP.inputs}-${MLP.hidden}-${MLP.classes} batch ${MLP.batch} Adam step: blockgrad ${(result.mlp.blockgrad.meanSeconds * 1e3).toFixed(2)} ms` +
      result.backends.map((b) => `, tfjs-${b} ${((result.mlp.peers[b]?.time.meanSeconds ?? NaN) * 1e3).toFixed(2)} ms (ratio ${result.mlp.peers[b]?.ratio.toFixed(2)})`).join(''),
  );
  return result;
}

export function peersMarkdown(r: PeersBenchResult): string {
  const ms = (t: Timing) => `${(t.meanSeconds * 1e3).toFixed(3)} (±${t.rme.toFixed(1)})`;
  const peerCols = r.backends.map((b) => `tfjs-${b}`);
  return [
    `TensorFlow.js ${r.tfjsVersion} (tfjs-core with ${r.backends.map((b) => `tfjs-backend-${b}`).join(' and ')}), production mode, one thread each. ` +
      'Ratio = blockgrad time / peer time: below 1, blockgrad is faster.' +
      (r.unavailable.length ? ` Unavailable: ${r.unavailable.map((u) => `${u.backend} (${u.reason})`).join('; ')}.` : ''),
    '',
    `| matmul n×n | blockgrad ms (±%) | GFLOP/s | ${peerCols.map((p) => `${p} ms (±%) | ${p} GFLOP/s | ratio vs ${p}`).join(' | ')} |`,
    `| ---: | ---: | ---: | ${peerCols.map(() => '---: | ---: | ---:').join(' | ')} |`,
    ...r.matmul.map(
      (row) =>
        `| ${row.size} | ${ms(row.blockgrad)} | ${row.blockgradGflops.toFixed(2)} | ` +
        r.backends.map((b) => {
          const p = row.peers[b];
          return p ? `${ms(p.time)} | ${p.gflops.toFixed(2)} | ${p.ratio.toFixed(2)}` : ' | | ';
        }).join(' | ') + ' |',
    ),
    '',
    `Training step of an MLP ${MLP.inputs}-${MLP.hidden}-${MLP.classes} (ReLU), batch ${MLP.batch}, softmax cross-entropy, Adam: forward, backward, update.`,
    '',
    '| library | ms per step (±%) | blockgrad / this | loss after the timed steps |',
    '| :--- | ---: | ---: | ---: |',
    `| blockgrad | ${ms(r.mlp.blockgrad)} | 1.00 | ${(r.mlp.finalLoss.blockgrad ?? NaN).toFixed(4)} |`,
    ...r.backends.map((b) => {
      const p = r.mlp.peers[b];
      return p ? `| tfjs-${b} | ${ms(p.time)} | ${p.ratio.toFixed(2)} | ${(r.mlp.finalLoss[b] ?? NaN).toFixed(4)} |` : `| tfjs-${b} | | | |`;
    }),
  ].join('\n');
}

if (isEntry('peers.bench')) {
  runPeersBench()
    .then((r) => console.log('\n' + peersMarkdown(r)))
    .catch((err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    });
}
