/**
 * BlockOptimizerRatio's packed gradients: the ratio mode trains k of each parameter's n entries,
 * so it keeps only their gradient. A post-accumulate hook on each masked parameter gathers the
 * selected entries of the dense gradient the backward just completed into a k-vector (adding to
 * what earlier micro-batches left there, in the gradient's dtype as the engine would) and frees
 * the dense gradient at once. Gradient memory is then the k-vectors plus, for a moment, the dense
 * gradient of the one parameter whose hook is running, instead of every dense gradient until
 * step(). Parameters updated densely (small, or ratio 1) keep their ordinary `.grad`.
 */
import { Tensor } from '../../tensor/tensor';
import type { BackendBuffer, View } from '../../kernels/backend';
import { backendByName } from '../../kernels/registry';
import { noGrad } from '../../autograd/grad-mode';
import { add } from '../../autograd/ops/elementwise';
import { buildMask, gather, type MaskedParam } from './ratio-masks';
import type { MaskMode } from './ratio-options';

/** Moves `e.param.grad`'s selected entries into `e.grad` (summing) and frees the dense gradient. */
export function packGradient(e: MaskedParam, mode: MaskMode): void {
  const p = e.param;
  const g = p.grad;
  if (g === null || e.dense) return;
  const backend = backendByName(p.backend);
  const temps: BackendBuffer[] = [];
  const keep = <B extends BackendBuffer>(b: B): B => (temps.push(b), b);
  let packed: Tensor;
  try {
    let flat: View = { buffer: g.buffer, shape: [e.numel], strides: [1], offset: g.offset };
    if (!g.isContiguous()) flat = { ...flat, buffer: keep(backend.copy(g, g.dtype)), offset: 0 };
    if (mode === 'scatter' && e.indices === null) buildMask(e, mode); // after release()
    const buffer = gather(e, mode, flat, keep);
    temps.splice(temps.indexOf(buffer), 1); // the packed gradient's storage: ours from here on
    packed = new Tensor(buffer, [e.k]).tagMemory('grads');
  } finally {
    for (const b of temps) if (!b.released) backend.release(b);
  }
  if (e.grad !== null) {
    const sum = noGrad(() => add(e.grad as Tensor, packed)).tagMemory('grads');
    e.grad.dispose();
    packed.dispose();
    packed = sum;
  }
  e.grad = packed;
  p.grad = null;
  g.dispose();
}

/** Drops `e`'s packed gradient (zeroGrad with setToNone, a mask switch, release). */
export function dropPackedGradient(e: MaskedParam): void {
  e.grad?.dispose();
  e.grad = null;
}
