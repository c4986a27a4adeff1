/**
 * BlockOptimizerRatio's masks: which entries of each parameter a mask selects (k = ceil(r·n)
 * flat indices, 'adjacent' or 'scatter', moving on by k at each switch; see ratio.ts), and one
 * parameter's record: its mask, its k-element Adam state and its float32 master.
 */
import { Tensor } from '../../tensor/tensor';
import { Generator } from '../../tensor/random';
import { keep } from '../../tensor/scope';
import type { BackendBuffer, View } from '../../kernels/backend';
import { backendByName } from '../../kernels/registry';
import type { MaskMode } from './ratio-options';

/** One trainable parameter: its mask, and the Adam state and master of the selected entries. */
export interface MaskedParam {
  name: string;
  param: Tensor;
  numel: number;
  k: number;
  dense: boolean;
  seed: number;
  offset: number;
  /** Whether weightDecay applies (false for biases, norm weights and 1-D parameters, unless groups decide). */
  decay: boolean;
  /** Its entry in paramGroups. */
  group: number;
  /** 'scatter': the sorted int32 indices of the current mask. */
  indices: Tensor | null;
  step: number;
  expAvg: Tensor | null;
  expAvgSq: Tensor | null;
  /** float16 parameters: the float32 master of the k selected entries (made at a period's first step). */
  master: Tensor | null;
  /** The gradient of the k selected entries, packed by the post-accumulate hook (ratio-grads.ts); null for dense parameters. */
  grad: Tensor | null;
}

/** k = ceil(r·n), with r·n an integer up to rounding (0.7·10 = 7.000000000000001) kept as is. */
export function selectedCount(ratio: number, numel: number): number {
  return Math.min(numel, Math.max(1, Math.ceil(ratio * numel * (1 - 1e-12))));
}

/**
 * The flat indices of a mask, sorted: 'adjacent' [offset, offset+k) mod n; 'scatter' the
 * permutation `new Generator(seed).permutation(n)` at positions [offset, offset+k) mod n.
 */
export function ratioMaskIndices(mode: MaskMode, numel: number, k: number, offset: number, seed: number): Int32Array {
  const out = new Int32Array(k);
  if (mode === 'adjacent') {
    for (let j = 0; j < k; j++) out[j] = (offset + j) % numel;
  } else {
    const perm = new Generator(seed).permutation(numel);
    for (let j = 0; j < k; j++) out[j] = perm[(offset + j) % numel];
  }
  return out.sort();
}

/**
 * A new record for parameter `p`: a mask of `ratio` of its entries from offset 0 (every entry
 * when it has fewer than `preserveThreshold`, or the ratio selects them all), and no state yet.
 */
export function newMaskedParam(name: string, p: Tensor, ratio: number, preserveThreshold: number, seed: number, decay: boolean, group = 0): MaskedParam {
  const numel = p.numel;
  const dense = numel < preserveThreshold || ratio === 1 || selectedCount(ratio, numel) === numel;
  return {
    name,
    param: p,
    numel,
    k: dense ? numel : selectedCount(ratio, numel),
    dense,
    seed,
    offset: 0,
    decay,
    group,
    indices: null,
    step: 0,
    expAvg: null,
    expAvgSq: null,
    master: null,
    grad: null,
  };
}

/** A contiguous 1-D window [start, start+length) of a packed flat view. */
export function window(v: View, start: number, length: number): View {
  return { buffer: v.buffer, shape: [length], strides: [1], offset: v.offset + start };
}

/** 'scatter': (re)builds the index tensor of the current mask; 'adjacent' needs none. */
export function buildMask(e: MaskedParam, mode: MaskMode): void {
  e.indices?.dispose();
  e.indices = null;
  if (e.dense || mode !== 'scatter') return;
  const idx = ratioMaskIndices('scatter', e.numel, e.k, e.offset, e.seed);
  // kept: a mask may be rebuilt inside a tidy scope (a gradient hook, a step after release())
  e.indices = keep(new Tensor(backendByName(e.param.backend).upload('int32', idx), [e.k]).tagMemory('other'));
}

/** Frees the moments and the master (the next step starts a fresh Adam on the mask). */
export function dropMoments(e: MaskedParam): void {
  e.expAvg?.dispose();
  e.expAvgSq?.dispose();
  e.master?.dispose();
  e.expAvg = null;
  e.expAvgSq = null;
  e.master = null;
  e.step = 0;
}

/** The selected entries of a flat view as a fresh packed k-vector (`keep` registers the temporaries). */
export function gather(e: MaskedParam, mode: MaskMode, flat: View, keep: (b: BackendBuffer) => BackendBuffer): BackendBuffer {
  const backend = backendByName(e.param.backend);
  const dtype = flat.buffer.dtype;
  if (mode === 'adjacent') {
    const n1 = Math.min(e.k, e.numel - e.offset);
    if (n1 === e.k) return keep(backend.copy(window(flat, e.offset, e.k), dtype));
    const out = keep(backend.zeros(dtype, e.k));
    const outView: View = { buffer: out, shape: [e.k], strides: [1], offset: 0 };
    backend.assign(window(outView, 0, n1), window(flat, e.offset, n1));
    backend.assign(window(outView, n1, e.k - n1), window(flat, 0, e.k - n1));
    return out;
  }
  // indexSelect reads a packed buffer (its elements from element 0)
  const packed = flat.offset === 0 && flat.buffer.length === e.numel ? flat.buffer : keep(backend.copy(flat, dtype));
  return keep(backend.indexSelect(packed, (e.indices as Tensor).buffer, 1, e.numel, 1));
}
