/**
 * Experiment 2, time. The paper: BAdam's backward costs about half of LoRA's and LOMO's, because
 * the layers below the active block need no backward and the layers above it only activation
 * gradients. Measured here: forward, backward and update time per step of every method on the
 * same float32 model and batch (the backward suite's 8-layer model, hidden 256; float32, where
 * every backend computes natively, so that the times are the methods' and not float16 decoding),
 * means over the steps, BAdam visiting every block (one step each, ascending) so that its times
 * average over the blocks. One process, one method after another, on the default backend.
 */
import { LlamaForCausalLM, backendInfo, getBackendName, tensor, tidy, type LlamaConfig, type Tensor } from '../src';
import { METHODS, buildMethod, type MethodName } from './methods';

export interface TimeRow {
  method: MethodName;
  /** Mean milliseconds per step (BAdam: over every block, each visited equally often). */
  forward: number;
  backward: number;
  update: number;
  steps: number;
}

export interface TimeResult {
  backend: string;
  threads: number | null;
  model: LlamaConfig;
  input: { batch: number; seqLen: number };
  rows: TimeRow[];
  /** BAdam's mean backward over LoRA's and over LOMO's (LOMO's includes its fused update). */
  badamOverLora: number;
  badamOverLomo: number;
}

/** --quick (and the test suite, on the slow cpu backend): a smaller model and batch. */
export const QUICK_TIME_MODEL: LlamaConfig = { vocabSize: 259, hiddenSize: 64, intermediateSize: 172, numHiddenLayers: 4, numAttentionHeads: 4, dtype: 'float32', seed: 1 };

export const TIME_MODEL: LlamaConfig = { vocabSize: 259, hiddenSize: 256, intermediateSize: 688, numHiddenLayers: 8, numAttentionHeads: 4, dtype: 'float32', seed: 1 };

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

export function runTime(quick: boolean, log: (line: string) => void): TimeResult {
  const config = quick ? QUICK_TIME_MODEL : TIME_MODEL;
  const input = quick ? { batch: 2, seqLen: 32 } : { batch: 4, seqLen: 64 };
  const ids = tensor(Array.from({ length: input.batch * input.seqLen }, (_, i) => (i * 37 + 11) % 259), { dtype: 'int32' }).reshape([input.batch, input.seqLen]);
  const layers = config.numHiddenLayers as number;
  // BAdam: every block once per round, so that its median is over the blocks
  const steps = quick ? layers : 3 * layers;
  const rows: TimeRow[] = [];
  for (const method of METHODS) {
    const model = new LlamaForCausalLM(config);
    const built = buildMethod(method, model);
    const f: number[] = [];
    const b: number[] = [];
    const u: number[] = [];
    for (let s = -2; s < steps; s++) {
      tidy(() => {
        built.zeroGrad();
        const t0 = performance.now();
        const loss = model.forward(ids, { labels: ids }).loss as Tensor;
        const t1 = performance.now();
        built.backward(loss);
        const t2 = performance.now();
        built.update();
        const t3 = performance.now();
        if (s >= 0) {
          f.push(t1 - t0);
          b.push(t2 - t1);
          u.push(t3 - t2);
        }
      });
    }
    built.release();
    for (const p of model.parameters()) p.dispose();
    const row = { method, forward: mean(f), backward: mean(b), update: mean(u), steps };
    rows.push(row);
    log(`time: ${method.padEnd(11)} forward ${row.forward.toFixed(1)} ms, backward ${row.backward.toFixed(1)} ms, update ${row.update.toFixed(1)} ms`);
  }
  const backward = (m: MethodName) => rows.find((r) => r.method === m)?.backward as number;
  return {
    backend: getBackendName(),
    threads: backendInfo().threads ?? null,
    model: config,
    input,
    rows,
    badamOverLora: backward('badam') / backward('lora'),
    badamOverLomo: backward('badam') / backward('lomo'),
  };
}
