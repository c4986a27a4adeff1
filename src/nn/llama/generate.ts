/**
 * Autoregressive generation for LlamaForCausalLM.generate: the prompt runs once, then one token
 * at a time with the key/value cache, greedy or sampled (temperature, top-k), with a left-padded
 * batch's positions taken from its attention mask.
 */
import { ShapeError, ValueError, fmtShape } from '../../errors';
import { Tensor } from '../../tensor/tensor';
import { tensor } from '../../tensor/creation';
import { Generator, defaultGenerator } from '../../tensor/random';
import { noGrad } from '../../autograd/grad-mode';
import { cast } from '../../autograd/ops/elementwise';
import { reshape } from '../../autograd/ops/shape';
import { positiveInt } from './config';
import type { KVCache } from './kv-cache';
import { checkInputIds } from './model';
import type { LlamaForCausalLM } from './causal-lm';
import { isHalf } from '../../tensor/dtype';

export interface GenerateOptions {
  maxNewTokens: number;
  /** 0 picks the most likely token (greedy); otherwise logits are divided by it before sampling. */
  temperature?: number;
  /** Sample among the k most likely tokens only (ties at the k-th value are kept, as HF). */
  topK?: number;
  /** Seed of a fresh Generator for sampling; without it (and without `generator`) the default generator is used. */
  seed?: number;
  generator?: Generator;
  /** Stop a sequence once it produces this token (or any of these); generation ends when all have. */
  eosTokenId?: number | readonly number[];
  /** Fills finished sequences of a batch (default: the first eosTokenId). */
  padTokenId?: number;
  /** [B, T] for a left-padded batch of prompts: 1 real, 0 padding. */
  attentionMask?: Tensor;
}

/** The body of LlamaForCausalLM.generate (documented there): validates the options, then decodes under noGrad. */
export function generateTokens(model: LlamaForCausalLM, inputIds: Tensor, options: GenerateOptions): Tensor {
  const op = 'LlamaForCausalLM.generate';
  const cfg = model.config;
  const maxNew = options?.maxNewTokens;
  if (!Number.isInteger(maxNew) || maxNew < 0) throw new ValueError(op, `maxNewTokens must be a non-negative integer, got ${String(maxNew)}`);
  const temperature = options.temperature ?? 1;
  if (typeof temperature !== 'number' || !(temperature >= 0) || !Number.isFinite(temperature)) {
    throw new ValueError(op, `temperature must be a finite number >= 0 (0 is greedy), got ${String(temperature)}`);
  }
  const topK = options.topK;
  if (topK !== undefined && !positiveInt(topK)) throw new ValueError(op, `topK must be a positive integer, got ${String(topK)}`);
  const eos = options.eosTokenId === undefined ? [] : typeof options.eosTokenId === 'number' ? [options.eosTokenId] : [...options.eosTokenId];
  for (const id of eos) {
    if (!Number.isInteger(id) || id < 0 || id >= cfg.vocabSize) throw new ValueError(op, `eosTokenId ${id} is not a token id in [0, ${cfg.vocabSize})`);
  }
  const pad = options.padTokenId ?? eos[0] ?? 0;
  if (!Number.isInteger(pad) || pad < 0 || pad >= cfg.vocabSize) throw new ValueError(op, `padTokenId ${pad} is not a token id in [0, ${cfg.vocabSize})`);
  checkInputIds(op, inputIds, cfg.vocabSize);
  const [b, t] = inputIds.shape;
  if (t + maxNew > cfg.maxPositionEmbeddings) {
    throw new ValueError(op, `a prompt of ${t} tokens plus maxNewTokens ${maxNew} exceeds maxPositionEmbeddings (${cfg.maxPositionEmbeddings})`);
  }
  let mask: number[][] | null = null;
  if (options.attentionMask !== undefined) {
    const m = options.attentionMask;
    if (!(m instanceof Tensor) || m.ndim !== 2 || m.shape[0] !== b || m.shape[1] !== t) {
      throw new ShapeError(op, `attentionMask must have the prompt's shape [${b},${t}], got ${m instanceof Tensor ? fmtShape(m.shape) : typeof m}`);
    }
    const v = m.toTypedArray();
    mask = Array.from({ length: b }, (_, r) => Array.from({ length: t }, (_, c) => (v[r * t + c] !== 0 ? 1 : 0)));
  }
  const generator = options.generator ?? (options.seed !== undefined ? new Generator(options.seed) : defaultGenerator);

  return noGrad(() => {
    const ids = inputIds.toTypedArray() as Int32Array;
    const rows = Array.from({ length: b }, (_, r) => Array.from(ids.subarray(r * t, (r + 1) * t)));
    // with a padding mask, positions count real tokens only (HF: cumsum(mask) − 1, pads at 1)
    const realCount = mask ? mask.map((r) => r.reduce((s, x) => s + x, 0)) : null;
    const positionsOf = (m: number[][]) => {
      const p = m.map((r) => {
        let c = 0;
        return r.map((x) => (x ? c++ : 1));
      });
      return tensor(Int32Array.from(p.flat()), { dtype: 'int32' });
    };
    const maskTensor = (m: number[][], cols: number) => reshape(tensor(Int32Array.from(m.flat()), { dtype: 'int32' }), [b, cols]);
    const finished = new Array<boolean>(b).fill(false);

    let step = inputIds;
    let cache: KVCache | undefined;
    let fed = 0;
    for (let n = 0; n < maxNew; n++) {
      const stepLen = step.shape[1];
      const out = model.forward(step, {
        pastKeyValues: cache,
        useCache: true,
        logitsToKeep: 1,
        attentionMask: mask ? maskTensor(mask, fed + stepLen) : undefined,
        positionIds: mask
          ? n === 0
            ? reshape(positionsOf(mask), [b, t])
            : reshape(tensor(Int32Array.from((realCount as number[]).map((c) => c - 1)), { dtype: 'int32' }), [b, 1])
          : undefined,
      });
      cache?.dispose();
      cache = out.pastKeyValues;
      fed += stepLen;
      // float16 logits are read through a float32 copy (reading a Float16Array element by element is slow)
      const last = isHalf(out.logits.dtype) ? cast(out.logits, 'float32') : out.logits;
      const logits = last.toTypedArray();
      last.dispose();
      out.logits.dispose();
      const next = rows.map((row, r) => {
        const token = finished[r] ? pad : sampleToken(op, logits.subarray(r * cfg.vocabSize, (r + 1) * cfg.vocabSize), temperature, topK, generator);
        row.push(token);
        if (eos.includes(token)) finished[r] = true;
        return token;
      });
      if (finished.every((f) => f) || n === maxNew - 1) break;
      if (mask) {
        mask.forEach((m) => m.push(1));
        (realCount as number[]).forEach((_, r, a) => a[r]++);
      }
      step = reshape(tensor(Int32Array.from(next), { dtype: 'int32' }), [b, 1]);
    }
    cache?.dispose();
    const len = rows[0].length;
    return reshape(tensor(Int32Array.from(rows.flat()), { dtype: 'int32' }), [b, len]);
  });
}

/** One token from a row of logits: argmax at temperature 0, else a draw from softmax(logits / T) over the top k. */
function sampleToken(op: string, logits: ArrayLike<number>, temperature: number, topK: number | undefined, generator: Generator): number {
  const n = logits.length;
  let best = 0;
  for (let i = 0; i < n; i++) {
    if (Number.isNaN(logits[i])) throw new ValueError(op, `the logits contain NaN (token ${i}); the model's weights or inputs are not finite`);
    if (logits[i] > logits[best]) best = i;
  }
  if (temperature === 0) return best;
  const scaled = Array.from(logits, (x) => x / temperature);
  let threshold = -Infinity;
  if (topK !== undefined && topK < n) threshold = [...scaled].sort((x, y) => y - x)[topK - 1];
  const top = scaled[best];
  const weights = scaled.map((x) => (x >= threshold ? Math.exp(x - top) : 0));
  const total = weights.reduce((s, w) => s + w, 0);
  let r = generator.random() * total;
  for (let i = 0; i < n; i++) {
    r -= weights[i];
    if (r < 0 && weights[i] > 0) return i;
  }
  // rounding left r at (or just above) 0: the last token with any weight
  for (let i = n - 1; i >= 0; i--) if (weights[i] > 0) return i;
  return best;
}
