/**
 * One Adam/AdamW step on host arrays, the reference the wasm and gpu kernels are tested against
 * (Backend.adamUpdate documents the update). Everything is computed in doubles; the caller stores
 * the parameter back in its own dtype (float16 rounded once).
 */
import type { AdamHyper } from '../backend';

type Arr = { [i: number]: number; readonly length: number };

/** Updates p, m, v (and vmax with amsgrad) in place from the gradient g, for elements 0..n-1. */
export function adamStep(p: Arr, g: Arr, m: Arr, v: Arr, vmax: Arr | null, n: number, h: AdamHyper): void {
  const { lr, beta1, beta2, eps, weightDecay: wd, decoupled, step, maximize } = h;
  const stepSize = lr / (1 - beta1 ** step);
  const bc2Sqrt = Math.sqrt(1 - beta2 ** step);
  const w = 1 - beta1;
  const decay = 1 - lr * wd;
  for (let i = 0; i < n; i++) {
    let gi = maximize ? -g[i] : g[i];
    let pi = p[i];
    if (wd !== 0) {
      if (decoupled) pi *= decay;
      else gi += wd * pi;
    }
    // exp_avg.lerp_(g, 1 - β1), with PyTorch's two-sided lerp formula
    m[i] = w < 0.5 ? m[i] + w * (gi - m[i]) : gi - (gi - m[i]) * (1 - w);
    v[i] = beta2 * v[i] + (1 - beta2) * gi * gi;
    let vhat = v[i];
    if (vmax) {
      vmax[i] = Math.max(vmax[i], v[i]);
      vhat = vmax[i];
    }
    p[i] = pi - stepSize * (m[i] / (Math.sqrt(vhat) / bc2Sqrt + eps));
  }
}
