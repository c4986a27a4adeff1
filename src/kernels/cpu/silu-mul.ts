/**
 * SwiGLU's product silu(a)·b (Llama's MLP: down_proj(silu(gate)·up)) and its backward, the
 * reference kernels, over contiguous arrays of n elements.
 *
 * Why fused: the composite's backward (mul, mul, siluGrad, mul) recomputes σ(a), an exponential
 * per element, which made silu's derivative the costliest elementwise kernel of a Llama backward.
 * The forward computes σ(a) anyway, so it hands it over, and the backward is a few products.
 *
 * Rounding (`round` rounds to the dtype: Math.fround for float32, the identity for float64):
 *  - forward: out = round(round(silu(a))·b), the composite silu then mul bit for bit, silu from
 *    cpu/math.ts; σ = round(σ(a)), math.ts's sigmoid.
 *  - backward, from σ as stored: da = g·b·σ·(1 + a·(1 − σ)), db = g·a·σ, each in doubles and
 *    rounded once. The composite rounded after every step and used σ(a) unrounded, so the two
 *    agree to a few roundings (relative to g·b·σ·(1 + |a·(1 − σ)|) for da: silu' crosses 0).
 */
import { UNARY } from './math';

type Arr = { [i: number]: number; readonly length: number };

/** out = silu(a)·b, and σ(a) into `sigmoid` unless it is null. */
export function siluMulForward(a: Arr, b: Arr, n: number, round: (v: number) => number, out: Arr, sigmoid: Arr | null): void {
  for (let i = 0; i < n; i++) {
    out[i] = round(round(UNARY.silu(a[i], 0, 0)) * b[i]);
    if (sigmoid) sigmoid[i] = round(UNARY.sigmoid(a[i], 0, 0));
  }
}

/** da and db (either may be null: not computed) from the gradient g of silu(a)·b and s = σ(a). */
export function siluMulBackward(g: Arr, a: Arr, b: Arr, s: Arr, n: number, round: (v: number) => number, gradA: Arr | null, gradB: Arr | null): void {
  for (let i = 0; i < n; i++) {
    if (gradA) gradA[i] = round(g[i] * b[i] * s[i] * (1 + a[i] * (1 - s[i])));
    if (gradB) gradB[i] = round(g[i] * a[i] * s[i]);
  }
}
