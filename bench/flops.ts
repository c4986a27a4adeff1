/**
 * Analytic matmul FLOPs of a Llama-style model's forward and of its backward under the three
 * pruning mechanisms (docs/design.md, "The chain-rule saving"), in terms of the model's dimensions.
 * bench/backward.bench.ts prints these beside the FLOPs the kernels counted
 * (profile().report.matmulFlops), and test/bench/backward-flops.test.ts asserts they agree.
 *
 * Notation: B batch, T sequence length, N = B·T tokens, H hidden size, I intermediate size,
 * nh attention heads, nkv key/value heads, d head size, V vocabulary, D decoder layers. A
 * product [m, k] @ [k, n] costs 2·m·k·n FLOPs; its two input gradients cost the same each
 * (dA = g @ Bᵀ, dB = Aᵀ @ g), so a backward matmul costs 1x its forward per input it
 * differentiates.
 *
 * Forward, per decoder layer:
 *   F_qkv  = 2N·H·(nh·d) + 2·2N·H·(nkv·d)     q, k, v projections (they read the layer's normed input)
 *   F_o    = 2N·(nh·d)·H                        o projection
 *   F_gu   = 2·2N·H·I                           gate and up projections
 *   F_down = 2N·I·H                             down projection
 *   F_lin  = F_qkv + F_o + F_gu + F_down        the seven linears
 *   F_attn = 2 · 2B·nh·T·T·d                    scores q·kᵀ and context probs·v (keys repeated for GQA)
 *   F_layer = F_lin + F_attn
 * and the head F_head = 2N·H·V (the embedding is a gather: no matmul). F_fwd = D·F_layer + F_head.
 *
 * Backward, everything trainable: every linear computes dX and dW, every attention product both
 * operand gradients (layer 0's input, the embedding output, requires grad too), so
 *   full = 2·F_fwd = 2·(D·F_layer + F_head).
 *
 * Backward with block i active (BAdam: only `model.layers.{i}.` trainable; embedding, final norm
 * and lm_head frozen), i = 0 at the bottom:
 *   - lm_head: dX only (weight frozen): F_head;
 *   - each of the D−1−i layers above i: dX only for the seven linears (F_lin), but BOTH operand
 *     gradients of the two attention products, since q, k, v and probs all depend on block i's
 *     output: F_lin + 2·F_attn;
 *   - layer i: dW of its seven linears (F_lin) plus dX of every linear and both gradients of the
 *     attention products (F_lin + 2·F_attn) — with one exception: the dX of the first projections
 *     (q, k, v) is skipped only when their input does not require grad. In Llama it does:
 *     `input_layernorm.weight` belongs to block i, so the normed input requires grad and its
 *     gradient (through q, k, v) is what that norm weight's gradient needs. gate/up always need
 *     dX (their input depends on the attention weights). So layer i costs 2·F_layer, or
 *     2·F_layer − F_qkv when the input norm is frozen (`inputNormTrainable: false`);
 *   - layers below i and the embedding: nothing (no node was recorded).
 *   block(i) = 2·F_layer [− F_qkv] + (D−1−i)·(F_lin + 2·F_attn) + F_head
 *   mean over i = 2·F_layer [− F_qkv] + (D−1)/2·(F_lin + 2·F_attn) + F_head.
 *
 * The coarse estimate of docs/design.md (all per-layer costs equal, no head, block i costing 1 forward)
 * gives mean/full = (D+1)/2 / 2D = (D+1)/(4D); `designRatio` returns it for comparison. It
 * undercounts block i (which costs ~2 forwards, not 1) and the attention products above i (2x,
 * not 1x), so for D = 8 it says 0.281 where the exact count is ~0.35.
 *
 * LoRA (adapters of rank r on a set of linears in every layer, all base weights frozen): layer 0's
 * input does not require grad, so there the adapters' A computes dW only, B dW and dX, the frozen
 * base projections record nothing, and an attention product differentiates only the operands that
 * carry an adapter downstream; every higher layer computes dX everywhere (as a layer above the
 * active block) plus dW and dX of each adapter. `loraBackwardFlops` spells it out.
 */
import type { LlamaConfig } from '../src';

/** The dimensions that the FLOP count depends on (a subset of LlamaConfig plus the input shape). */
export interface LlamaFlopDims {
  numHiddenLayers: number;
  hiddenSize: number;
  intermediateSize: number;
  numAttentionHeads: number;
  /** Default numAttentionHeads. */
  numKeyValueHeads?: number;
  /** Default hiddenSize / numAttentionHeads. */
  headDim?: number;
  vocabSize: number;
  batch: number;
  seqLen: number;
}

/** The dimensions the formulas need, read off a model config and an input size. */
export function llamaFlopDims(config: LlamaConfig, input: { batch: number; seqLen: number }): LlamaFlopDims {
  return {
    numHiddenLayers: config.numHiddenLayers,
    hiddenSize: config.hiddenSize,
    intermediateSize: config.intermediateSize,
    numAttentionHeads: config.numAttentionHeads,
    numKeyValueHeads: config.numKeyValueHeads,
    headDim: config.headDim,
    vocabSize: config.vocabSize,
    batch: input.batch,
    seqLen: input.seqLen,
  };
}

/** Forward matmul FLOPs of the pieces of one decoder layer and of the head. */
export interface LlamaForwardFlops {
  qkv: number;
  o: number;
  gateUp: number;
  down: number;
  /** The seven linears: qkv + o + gateUp + down. */
  linears: number;
  /** The two attention products (scores and context). */
  attention: number;
  /** One decoder layer: linears + attention. */
  layer: number;
  /** lm_head. */
  head: number;
  /** The whole forward: D·layer + head. */
  total: number;
}

function dims(m: LlamaFlopDims) {
  const nh = m.numAttentionHeads;
  const nkv = m.numKeyValueHeads ?? nh;
  const d = m.headDim ?? m.hiddenSize / nh;
  return { D: m.numHiddenLayers, H: m.hiddenSize, I: m.intermediateSize, nh, nkv, d, V: m.vocabSize, B: m.batch, T: m.seqLen, N: m.batch * m.seqLen };
}

export function llamaForwardFlops(m: LlamaFlopDims): LlamaForwardFlops {
  const { D, H, I, nh, nkv, d, V, B, T, N } = dims(m);
  const qkv = 2 * N * H * (nh * d) + 2 * (2 * N * H * (nkv * d));
  const o = 2 * N * (nh * d) * H;
  const gateUp = 2 * (2 * N * H * I);
  const down = 2 * N * I * H;
  const linears = qkv + o + gateUp + down;
  const attention = 2 * (2 * B * nh * T * T * d);
  const layer = linears + attention;
  const head = 2 * N * H * V;
  return { qkv, o, gateUp, down, linears, attention, layer, head, total: D * layer + head };
}

/** Backward matmul FLOPs with every parameter trainable: 2·F_fwd. */
export function fullBackwardFlops(m: LlamaFlopDims): number {
  return 2 * llamaForwardFlops(m).total;
}

export interface BlockFlopOptions {
  /**
   * Whether block i's input_layernorm weight is trainable (it is under BlockOptimizer: it is in
   * `model.layers.{i}.`). When false, q/k/v skip their input gradient.
   */
  inputNormTrainable?: boolean;
}

/** Backward matmul FLOPs with only decoder layer `i` (0-based from the bottom) trainable. */
export function blockBackwardFlops(m: LlamaFlopDims, i: number, options: BlockFlopOptions = {}): number {
  const D = m.numHiddenLayers;
  if (!Number.isInteger(i) || i < 0 || i >= D) throw new RangeError(`blockBackwardFlops: block ${i} is not in [0, ${D})`);
  const f = llamaForwardFlops(m);
  const own = 2 * f.layer - (options.inputNormTrainable === false ? f.qkv : 0);
  return own + (D - 1 - i) * (f.linears + 2 * f.attention) + f.head;
}

/** The mean of blockBackwardFlops over the D blocks (one block-epoch). */
export function meanBlockBackwardFlops(m: LlamaFlopDims, options: BlockFlopOptions = {}): number {
  const D = m.numHiddenLayers;
  let s = 0;
  for (let i = 0; i < D; i++) s += blockBackwardFlops(m, i, options);
  return s / D;
}

/** The coarse ratio (docs/design.md) of the mean BAdam backward to the full backward: (D+1)/2 / 2D. */
export function designRatio(numLayers: number): number {
  return (numLayers + 1) / (4 * numLayers);
}

export interface LoraFlopOptions {
  /** Rank of the adapters. */
  r: number;
  /** Which projections carry adapters, by Llama module name. */
  targets: readonly ('q_proj' | 'k_proj' | 'v_proj' | 'o_proj' | 'gate_proj' | 'up_proj' | 'down_proj')[];
}

/**
 * Backward matmul FLOPs with LoRA adapters on `targets` in every layer and every base weight
 * frozen (see the file comment). Assumes plain multi-head shapes for the adapters' sizes.
 */
export function loraBackwardFlops(m: LlamaFlopDims, lora: LoraFlopOptions): number {
  const { D, H, I, nh, nkv, d, B, T, N } = dims(m);
  const f = llamaForwardFlops(m);
  const r = lora.r;
  const size: Record<LoraFlopOptions['targets'][number], [number, number]> = {
    q_proj: [H, nh * d],
    k_proj: [H, nkv * d],
    v_proj: [H, nkv * d],
    o_proj: [nh * d, H],
    gate_proj: [H, I],
    up_proj: [H, I],
    down_proj: [I, H],
  };
  const has = (t: LoraFlopOptions['targets'][number]) => lora.targets.includes(t);
  // an adapter x -> A (r x in) -> B (out x r): forward 2N·in·r + 2N·r·out
  const adapterA = (t: LoraFlopOptions['targets'][number]) => 2 * N * size[t][0] * r;
  const adapterB = (t: LoraFlopOptions['targets'][number]) => 2 * N * r * size[t][1];
  const scores = 2 * B * nh * T * T * d;
  const context = scores;

  // layers 1..D-1: input requires grad: dX of every base linear, both attention gradients,
  // and for each adapter dW + dX of A and of B
  let upper = f.linears + 2 * f.attention;
  for (const t of lora.targets) upper += 2 * adapterA(t) + 2 * adapterB(t);

  // layer 0: the input (normed embedding, both frozen) needs no grad
  if (has('o_proj') || has('gate_proj') || has('up_proj') || has('down_proj') || has('k_proj')) {
    // keep the count honest: only the attention-input adapters are modelled for layer 0
    throw new RangeError('loraBackwardFlops: layer 0 is modelled for adapters on q_proj and/or v_proj only');
  }
  const qGrad = has('q_proj');
  const vGrad = has('v_proj');
  let layer0 = 0;
  if (qGrad || vGrad) {
    // scores = q·kᵀ: k never needs grad here (k_proj frozen, input frozen); dq iff q has an adapter
    layer0 += qGrad ? scores : 0;
    // context = probs·v: dprobs iff probs needs grad (q adapted), dv iff v adapted
    layer0 += (qGrad ? context : 0) + (vGrad ? context : 0);
    // o_proj and the MLP see an input that requires grad: dX only
    layer0 += f.o + f.gateUp + f.down;
    // the adapters: A dW only (its input needs no grad), B dW + dX
    for (const t of lora.targets) layer0 += adapterA(t) + 2 * adapterB(t);
  }
  return layer0 + (D - 1) * upper + f.head;
}
