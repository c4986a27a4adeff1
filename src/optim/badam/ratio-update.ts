/**
 * BlockOptimizerRatio's update of one parameter (Adam, PyTorch's bias correction, eps outside the
 * square root, weight decay decoupled as in AdamW) on the entries its mask selects: they are
 * gathered into k-vectors, the fused Adam kernel updates the k-vector (a float16 parameter's
 * float32 master) with k-element moments, and the result is written back: for 'adjacent' by
 * in-place strided assigns into at most two contiguous ranges (the wrap), for 'scatter' by
 * `where(mask, scattered values, parameter)` built with index-add kernels. Unselected entries are
 * never written, so they keep their bits.
 */
import { Tensor } from '../../tensor/tensor';
import type { BackendBuffer, View } from '../../kernels/backend';
import { backendByName } from '../../kernels/registry';
import { bumpVersion } from '../../autograd/version';
import { stateDtype } from '../state-tensors';
import { buildMask, gather, window, type MaskedParam } from './ratio-masks';
import type { MaskMode, RatioHyper } from './ratio-options';
import { isHalf } from '../../tensor/dtype';

/**
 * One Adam step on `e`'s selected entries with `grad` (checked by the caller; `packedGrad`: it is
 * already the k selected entries, ratio-grads.ts), reading the
 * hyperparameters from `group`; the moments (and a float16 parameter's master) are made at the
 * mask period's first step. Runs under noGrad.
 */
export function maskedAdamUpdate(e: MaskedParam, grad: Tensor, group: RatioHyper, mode: MaskMode, packedGrad = false): void {
  const p = e.param;
  const backend = backendByName(p.backend);
  if (e.expAvg === null || e.expAvgSq === null) {
    const dtype = stateDtype(p);
    e.expAvg = new Tensor(backend.zeros(dtype, e.k), [e.k]).tagMemory('optimizer');
    e.expAvgSq = new Tensor(backend.zeros(dtype, e.k), [e.k]).tagMemory('optimizer');
  }
  if (!e.dense && mode === 'scatter' && e.indices === null) buildMask(e, mode); // after release()
  const step = e.step + 1;
  const h = {
    lr: group.lr,
    beta1: group.betas[0],
    beta2: group.betas[1],
    eps: group.eps,
    weightDecay: e.decay ? group.weightDecay : 0,
    decoupled: true,
    step,
    maximize: false,
    amsgrad: false,
  };
  const half = isHalf(p.dtype);
  // Note [Version counter]: every path below writes into p, and a graph that saved p must refuse its backward
  bumpVersion(p);
  if (e.dense && !half) {
    backend.adamUpdate(p, grad, e.expAvg.buffer, e.expAvgSq.buffer, null, h);
    e.step = step;
    return;
  }
  const n = e.numel;
  const temps: BackendBuffer[] = [];
  const keep = <B extends BackendBuffer>(b: B): B => (temps.push(b), b);
  const packed = (b: BackendBuffer): View => ({ buffer: b, shape: [e.k], strides: [1], offset: 0 });
  try {
    const pFlat: View = { buffer: p.buffer, shape: [n], strides: [1], offset: p.offset };
    let gFlat: View = { buffer: grad.buffer, shape: [packedGrad ? e.k : n], strides: [1], offset: grad.offset };
    if (!grad.isContiguous()) gFlat = { ...gFlat, buffer: keep(backend.copy(grad, grad.dtype)), offset: 0 };
    const gk = e.dense || packedGrad ? gFlat : packed(gather(e, mode, gFlat, keep));
    // the k-vector Adam updates: the float32 master (float16 parameters; made from the float16
    // values at the period's first step) or a packed copy of the selected entries
    let target: View;
    if (half) {
      if (e.master === null) {
        const values = e.dense ? backend.copy(pFlat, 'float32') : backend.copy(packed(gather(e, mode, pFlat, keep)), 'float32');
        e.master = new Tensor(values, [e.k]).tagMemory('master');
      }
      target = packed(e.master.buffer);
    } else {
      target = packed(gather(e, mode, pFlat, keep));
    }
    bumpVersion(target); // the float32 master (a fresh packed copy needs none; the bump is harmless)
    backend.adamUpdate(target, gk, e.expAvg.buffer, e.expAvgSq.buffer, null, h);
    if (e.dense) {
      backend.assign(pFlat, target); // float16: the master rounded to nearest even
    } else if (mode === 'adjacent') {
      // at most two contiguous ranges: [offset, n) and [0, rest); assign rounds a master
      const n1 = Math.min(e.k, n - e.offset);
      backend.assign(window(pFlat, e.offset, n1), window(target, 0, n1));
      if (n1 < e.k) backend.assign(window(pFlat, 0, e.k - n1), window(target, n1, e.k - n1));
    } else {
      // p = where(mask, values scattered at the indices, p): the selected entries get the new
      // values exactly (a master rounded to the parameter's dtype first), the others are the
      // parameter's own (no arithmetic touches them)
      const values = half ? keep(backend.copy(target, p.dtype)) : target.buffer;
      const idx = (e.indices as Tensor).buffer;
      const mask = keep(backend.indexAdd(keep(backend.full(p.dtype, e.k, 1)), idx, 1, n, 1));
      const scattered = keep(backend.indexAdd(values, idx, 1, n, 1));
      const flat = (b: BackendBuffer): View => ({ buffer: b, shape: [n], strides: [1], offset: 0 });
      const merged = keep(backend.where(flat(mask), flat(scattered), pFlat, p.dtype));
      backend.assign(pFlat, flat(merged));
    }
    e.step = step;
  } finally {
    for (const b of temps) if (!b.released) backend.release(b);
  }
}
