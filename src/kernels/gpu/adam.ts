/**
 * The fused Adam/AdamW step for the gpu backend, in place and without reading anything back.
 *
 * A kernel writes one output, so the step is three or four kernels: the new first moment, the new
 * second moment, (amsgrad) the new running maximum of the second moment, then the new parameter
 * values from the OLD parameter and the NEW moments. The moment buffers then take the new data
 * (`gpu.replace` frees the old), and so does the parameter: directly when its view is its whole
 * buffer in order, else through `gpu.assign` from a contiguous temporary.
 *
 * Every hyperparameter travels in the `h` argument (they change per call: lr schedules, the step
 * count in the bias corrections), as do the views' offsets; only layouts, dtypes and amsgrad (which
 * buffer the last kernel reads) are baked into the source. Scalars derived from the hyperparameters
 * (bias corrections, 1 - β) are computed on the host in doubles, as the cpu backend does.
 */
import type { AdamHyper, BackendBuffer, View } from '../backend';
import { BackendError } from '../../errors';
import { contiguousStrides, isContiguous, numel } from '../../tensor/shape';
import type { GpuBackend } from './backend';
import type { GpuBuffer } from './buffer';
import { layoutKey, store, viewOffset } from './codegen';

// positions in the h array
const H = {
  gradOffset: 0,
  paramOffset: 1,
  maximize: 2,
  /** wd when the decay is added to the gradient (Adam), else 0 */
  l2: 3,
  /** 1 - lr·wd when the weights decay directly (AdamW), else 1 */
  decay: 4,
  /** the lerp weight 1 - β1 and its complement β1 */
  w: 5,
  oneMinusW: 6,
  beta2: 7,
  oneMinusBeta2: 8,
  stepSize: 9,
  bc2Sqrt: 10,
  eps: 11,
} as const;

export function adamUpdate(gpu: GpuBackend, param: View, grad: View, expAvg: BackendBuffer, expAvgSq: BackendBuffer, maxExpAvgSq: BackendBuffer | null, h: AdamHyper): void {
  const op = 'adamUpdate';
  const n = numel(param.shape);
  const moments = [expAvg, expAvgSq, ...(maxExpAvgSq ? [maxExpAvgSq] : [])];
  if ([param.buffer, grad.buffer, ...moments].some((b) => b.dtype === 'int32')) {
    throw new BackendError(op, 'the parameter, its gradient and the moment buffers must be floating (float32 or float16), not int32');
  }
  if (numel(grad.shape) !== n || moments.some((b) => b.length !== n)) {
    throw new BackendError(op, `got ${n} parameter elements but a gradient or moment buffer of another length`);
  }
  const p0 = gpu.input(op, param.buffer);
  const g = gpu.input(op, grad.buffer);
  const m0 = gpu.input(op, expAvg);
  const v0 = gpu.input(op, expAvgSq);
  const x0 = maxExpAvgSq ? gpu.input(op, maxExpAvgSq) : null;
  if (n === 0) return;

  const { lr, beta1, beta2, eps, weightDecay: wd, decoupled, step, maximize } = h;
  const w = 1 - beta1;
  const hp = gpu.params([
    grad.offset,
    param.offset,
    maximize ? 1 : 0,
    wd !== 0 && !decoupled ? wd : 0,
    wd !== 0 && decoupled ? 1 - lr * wd : 1,
    w,
    1 - w,
    beta2,
    1 - beta2,
    lr / (1 - beta1 ** step),
    Math.sqrt(1 - beta2 ** step),
    eps,
  ]);
  const pDtype = param.buffer.dtype;
  const layout = `${pDtype}:${layoutKey(param)}:${grad.buffer.dtype}:${layoutKey(grad)}`;
  // the gradient as the moments see it: negated to maximize, plus wd·p for (non-decoupled) Adam
  const gradient = `
        ${viewOffset('og', 'this.thread.x', grad, `h[${H.gradOffset}]`)}
        let gi = g[og];
        if (h[${H.maximize}] != 0) { gi = -gi; }
        if (h[${H.l2}] != 0) {
          ${viewOffset('op', 'this.thread.x', param, `h[${H.paramOffset}]`)}
          gi = gi + h[${H.l2}] * p[op];
        }`;

  // m = lerp(m, g, 1 - β1) with PyTorch's two-sided formula
  const m1 = gpu.launch(
    `${op} exp_avg`,
    n,
    `adam:m:${expAvg.dtype}:${layout}`,
    () => `function(p, g, m, h) {
        ${gradient}
        const mi = m[this.thread.x];
        const w = h[${H.w}];
        if (w < 0.5) { return ${store(expAvg.dtype, 'mi + w * (gi - mi)')}; }
        return ${store(expAvg.dtype, `gi - (gi - mi) * h[${H.oneMinusW}]`)};
      }`,
    [p0, g, m0, hp],
  );
  // v = β2·v + (1 - β2)·g²
  const v1 = gpu.launch(
    `${op} exp_avg_sq`,
    n,
    `adam:v:${expAvgSq.dtype}:${layout}`,
    () => `function(p, g, v, h) {
        ${gradient}
        return ${store(expAvgSq.dtype, `h[${H.beta2}] * v[this.thread.x] + h[${H.oneMinusBeta2}] * gi * gi`)};
      }`,
    [p0, g, v0, hp],
  );
  // amsgrad: vmax = max(vmax, v), which then stands in for v
  const x1 =
    maxExpAvgSq && x0
      ? gpu.launch(
          `${op} max_exp_avg_sq`,
          n,
          `adam:vmax:${maxExpAvgSq.dtype}:${expAvgSq.dtype}`,
          () => `function(x, v) { return ${store(maxExpAvgSq.dtype, 'Math.max(x[this.thread.x], v[this.thread.x])')}; }`,
          [x0, v1],
        )
      : null;
  // p = p·decay - lr/(1-β1^t) · m / (sqrt(v̂)/sqrt(1-β2^t) + eps), from the old p and the new moments
  const p1 = gpu.launch(
    `${op} param`,
    n,
    `adam:p:${layout}`,
    () => `function(p, m, v, h) {
        ${viewOffset('op', 'this.thread.x', param, `h[${H.paramOffset}]`)}
        const pi = p[op] * h[${H.decay}];
        const step = h[${H.stepSize}] * (m[this.thread.x] / (Math.sqrt(v[this.thread.x]) / h[${H.bc2Sqrt}] + h[${H.eps}]));
        return ${store(pDtype, 'pi - step')};
      }`,
    [p0, m1, x1 ?? v1, hp],
  );

  // The parameter first: writing a strided view runs one more kernel (assign), the only step
  // here that can still fail; the moments are swapped only after it, so a failure leaves the
  // parameter and its state as they were, never half-updated.
  const whole = param.offset === 0 && n === param.buffer.length && isContiguous(param.shape, param.strides);
  if (whole) {
    gpu.replace(param.buffer as GpuBuffer, p1);
  } else {
    const temp = gpu.wrap(pDtype, n, p1);
    try {
      gpu.assign(param, { buffer: temp, shape: param.shape, strides: contiguousStrides(param.shape), offset: 0 });
    } catch (err) {
      for (const d of [m1, v1, x1]) if (d) gpu.runtime.free(d);
      throw err;
    } finally {
      gpu.release(temp);
    }
  }
  gpu.replace(expAvg as GpuBuffer, m1);
  gpu.replace(expAvgSq as GpuBuffer, v1);
  if (maxExpAvgSq && x1) gpu.replace(maxExpAvgSq as GpuBuffer, x1);
}
