/**
 * BlockOptimizerRatio's packed gradients: the ratio mode trains k of each parameter's n entries,
 * so it keeps only their gradient. A post-accumulate hook on each masked parameter gathers the
 * selected entries of the dense gradient the backward just completed into a k-vector (adding to
 * what earlier micro-batches left there, in the gradient's dtype as the engine would) and frees
 * the dense gradient at once. Gradient memory is then the k-vectors plus, for a moment, the dense
 * gradient of the one parameter whose hook is running, instead of every dense gradient until
 * step(). Parameters updated densely (small, or ratio 1) keep their ordinary `.grad`. A 2-D
 * weight with an 'adjacent' mask does better still: its row-gradient sink (below) has linear's
 * backward compute the rows the mask touches only, so its dense gradient never exists.
 */
import { Tensor } from '../../tensor/tensor';
import type { BackendBuffer, View } from '../../kernels/backend';
import { backendByName } from '../../kernels/registry';
import { noGrad } from '../../autograd/grad-mode';
import { add } from '../../autograd/ops/elementwise';
import { buildMask, gather, type MaskedParam } from './ratio-masks';
import type { MaskMode } from './ratio-options';
import type { RowGradientSink } from '../../autograd/row-gradients';

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

/** Overlapping or touching [start, end) ranges joined, in order. */
function mergeRanges(ranges: [number, number][]): [number, number][] {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const [start, end] of sorted) {
    const last = out[out.length - 1];
    if (last && start <= last[1]) last[1] = Math.max(last[1], end);
    else out.push([start, end]);
  }
  return out;
}

/**
 * The row-gradient sink (autograd/row-gradients.ts) of an 'adjacent' mask on a 2-D weight: the
 * mask's flat range [offset, offset + k) mod n lies in a few whole rows, so linear's backward
 * computes dW for those rows only, and the selected entries are added into `e.grad` here. No dense
 * gradient of the weight is ever made. null where the mask is dense or the parameter not 2-D.
 */
export function adjacentRowSink(e: MaskedParam, isActive: () => boolean): RowGradientSink | null {
  if (e.dense || e.param.ndim !== 2) return null;
  const inF = e.param.shape[1];
  /** The mask as flat ranges [from, to) and where each starts in the packed k-vector. */
  const segments = (): [number, number, number][] => {
    const n1 = Math.min(e.k, e.numel - e.offset);
    return n1 < e.k ? [[e.offset, e.numel, 0], [0, e.k - n1, n1]] : [[e.offset, e.offset + e.k, 0]];
  };
  return {
    active: isActive,
    // a wrapped mask's two segments can share a row: merged, each row is computed (and added) once
    rows: () => mergeRanges(segments().map(([from, to]): [number, number] => [Math.floor(from / inF), Math.ceil(to / inF)])),
    accept(start, rows) {
      const backend = backendByName(e.param.backend);
      e.grad ??= new Tensor(backend.zeros(rows.dtype, e.k), [e.k]).tagMemory('grads');
      const grad = e.grad;
      const first = start * inF; // the flat index of rows' element 0
      for (const [from, to, packedAt] of segments()) {
        const lo = Math.max(from, first);
        const hi = Math.min(to, first + rows.numel);
        if (lo >= hi) continue;
        const dst: View = { buffer: grad.buffer, shape: [hi - lo], strides: [1], offset: grad.offset + packedAt + (lo - from) };
        const src: View = { buffer: rows.buffer, shape: [hi - lo], strides: [1], offset: rows.offset + (lo - first) };
        const sum = backend.binary('add', dst, src, grad.dtype);
        backend.assign(dst, { buffer: sum, shape: [hi - lo], strides: [1], offset: 0 });
        backend.release(sum);
      }
    },
  };
}
