/**
 * The step suite's Llama-style model written in TensorFlow.js, for tfjs-wasm's equivalent of
 * blockgrad's training step: the same module structure and sizes as blockgrad's LlamaForCausalLM
 * (RMSNorm, rotary embeddings in the rotate-half layout, causal multi-head attention, SwiGLU MLP,
 * untied lm_head, shifted causal-LM cross-entropy), trained by tf.train.adam through
 * optimizer.minimize (forward, gradients and update, inside tfjs's own tidy).
 *
 * Where it differs, and why:
 * - weights are stored [in, out] and multiplied as x·W, tf.layers.dense's layout: the forward
 *   products run on tfjs-wasm's XNNPACK path, which takes only untransposed operands (blockgrad
 *   and PyTorch store [out, in] and compute x·Wᵀ). The backward products need a transposed
 *   operand in either layout.
 * - the embedding is a product one-hot(ids)·E instead of a gather: tfjs-wasm has no kernel for
 *   gather's gradient (UnsortedSegmentSum). It adds 2·N·V·H FLOPs forward and backward, about
 *   0.7% of the step.
 * - the causal mask is added (0 or −1e9) rather than filled; the softmax is the same.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LlamaConfig } from '../src';
import { randomFloat32 } from './matmul.bench';

interface Layer {
  inputNorm: tf.Variable;
  wq: tf.Variable;
  wk: tf.Variable;
  wv: tf.Variable;
  wo: tf.Variable;
  postNorm: tf.Variable;
  wGate: tf.Variable;
  wUp: tf.Variable;
  wDown: tf.Variable;
}

export interface TfLlamaStep {
  /** One training step; returns the loss it computed. */
  step: () => number;
  /** Elements of every trainable variable. */
  parameters: number;
  dispose: () => void;
}

/**
 * Builds the model on tfjs's current backend, for `ids` (batch x seqLen token ids, labels = ids).
 * Weights are N(0, 0.02)-like (uniform of the same standard deviation: the cost does not depend on it).
 */
export function tfjsLlamaStep(config: LlamaConfig, batch: number, seqLen: number, ids: Int32Array, lr = 1e-3): TfLlamaStep {
  const H = config.hiddenSize;
  const I = config.intermediateSize;
  const V = config.vocabSize;
  const nh = config.numAttentionHeads;
  const d = H / nh;
  const eps = config.rmsNormEps ?? 1e-6;
  const theta = config.ropeTheta ?? 10000;
  const B = batch;
  const T = seqLen;
  const N = B * T;
  let seed = 100;
  // uniform in [-a, a) has standard deviation a/√3
  const weight = (rows: number, cols: number) =>
    tf.variable(tf.tidy(() => tf.mul(tf.tensor2d(randomFloat32(rows * cols, seed++), [rows, cols]), 0.02 * Math.sqrt(3))));
  const ones = (n: number) => tf.variable(tf.ones([n]));

  const embed = weight(V, H);
  const layers: Layer[] = Array.from({ length: config.numHiddenLayers }, () => ({
    inputNorm: ones(H),
    wq: weight(H, H),
    wk: weight(H, H),
    wv: weight(H, H),
    wo: weight(H, H),
    postNorm: ones(H),
    wGate: weight(H, I),
    wUp: weight(H, I),
    wDown: weight(I, H),
  }));
  const finalNorm = ones(H);
  const lmHead = weight(H, V);
  const variables = [embed, ...layers.flatMap((l) => Object.values(l) as tf.Variable[]), finalNorm, lmHead];

  // constants: one-hot inputs, one-hot shifted labels, rotary tables [T, d], additive causal mask [T, T]
  const inputOneHot = tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(ids, 'int32'), V), 'float32'));
  const next = new Int32Array(B * (T - 1));
  for (let b = 0; b < B; b++) for (let t = 0; t < T - 1; t++) next[b * (T - 1) + t] = ids[b * T + t + 1];
  const labelOneHot = tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(next, 'int32'), V), 'float32'));
  const cosv = new Float32Array(T * d);
  const sinv = new Float32Array(T * d);
  for (let p = 0; p < T; p++) {
    for (let j = 0; j < d / 2; j++) {
      const angle = p / Math.pow(theta, (2 * j) / d);
      cosv[p * d + j] = cosv[p * d + j + d / 2] = Math.cos(angle);
      sinv[p * d + j] = sinv[p * d + j + d / 2] = Math.sin(angle);
    }
  }
  const cos = tf.tensor2d(cosv, [T, d]);
  const sin = tf.tensor2d(sinv, [T, d]);
  const maskv = new Float32Array(T * T);
  for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) maskv[i * T + j] = -1e9;
  const mask = tf.tensor2d(maskv, [T, T]);
  const constants = [inputOneHot, labelOneHot, cos, sin, mask];

  const rmsNorm = (x: tf.Tensor, w: tf.Tensor) => tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), eps))), w);
  // [N, H] -> [B, nh, T, d]
  const heads = (x: tf.Tensor) => tf.transpose(tf.reshape(x, [B, T, nh, d]), [0, 2, 1, 3]);
  const rotateHalf = (x: tf.Tensor) => tf.concat([tf.neg(tf.slice(x, [0, 0, 0, d / 2], [-1, -1, -1, d / 2])), tf.slice(x, [0, 0, 0, 0], [-1, -1, -1, d / 2])], -1);
  const rotary = (x: tf.Tensor) => tf.add(tf.mul(x, cos), tf.mul(rotateHalf(x), sin));

  const loss = (): tf.Scalar => {
    let x: tf.Tensor = tf.matMul(inputOneHot, embed); // [N, H]
    for (const l of layers) {
      const h = rmsNorm(x, l.inputNorm);
      const q = tf.reshape(rotary(heads(tf.matMul(h, l.wq))), [B * nh, T, d]);
      const k = tf.reshape(rotary(heads(tf.matMul(h, l.wk))), [B * nh, T, d]);
      const v = tf.reshape(heads(tf.matMul(h, l.wv)), [B * nh, T, d]);
      const scores = tf.add(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(d)), mask);
      const context = tf.matMul(tf.softmax(scores), v); // [B·nh, T, d]
      const merged = tf.reshape(tf.transpose(tf.reshape(context, [B, nh, T, d]), [0, 2, 1, 3]), [N, H]);
      x = tf.add(x, tf.matMul(merged, l.wo));
      const h2 = rmsNorm(x, l.postNorm);
      const gate = tf.matMul(h2, l.wGate);
      const act = tf.mul(tf.mul(gate, tf.sigmoid(gate)), tf.matMul(h2, l.wUp));
      x = tf.add(x, tf.matMul(act, l.wDown));
    }
    const logits = tf.reshape(tf.matMul(rmsNorm(x, finalNorm), lmHead), [B, T, V]);
    const shifted = tf.reshape(tf.slice(logits, [0, 0, 0], [B, T - 1, V]), [B * (T - 1), V]);
    return tf.losses.softmaxCrossEntropy(labelOneHot, shifted) as tf.Scalar;
  };

  const optimizer = tf.train.adam(lr, 0.9, 0.999, 1e-8);
  return {
    step: () => {
      const cost = optimizer.minimize(loss, true, variables);
      const value = cost ? cost.dataSync()[0] : NaN;
      cost?.dispose();
      return value;
    },
    parameters: variables.reduce((s, v) => s + v.size, 0),
    dispose: () => {
      optimizer.dispose();
      for (const t of [...variables, ...constants]) t.dispose();
    },
  };
}
