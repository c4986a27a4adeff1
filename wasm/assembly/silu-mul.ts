// SwiGLU's product silu(a)·b and its backward, float32, over contiguous arrays of n elements (the
// cpu reference and why they are fused: src/kernels/cpu/silu-mul.ts).
//
//   silu_mul_f32(desc, task, scratch)            out = silu(a)·b, and σ(a) when sig != 0
//   silu_mul_backward_f32(desc, task, scratch)   da = g·b·σ·(1 + a·(1 − σ)), db = g·a·σ
//
// The forward is the composite's kernels inlined: silu(a) is math.ts's siluV and σ(a) its sigmoidV,
// both from one exponential (they share e^-|a|), and out = silu(a)·b rounded in float32: bit for
// bit the unary silu then binary mul. The backward multiplies in float32 in the order written,
// (((g·b)·σ)·(1 + a·(1 − σ))) and ((g·a)·σ), rounding each step (a few ulp from the cpu's single
// rounding of the double product).
//
// Descriptor (32-bit little-endian fields, byte offsets; mirrored in src/kernels/wasm/silu-mul.ts):
//
//   forward:   0 a   4 b   8 out   12 sig (0: none)                    16 n   20 chunk
//   backward:  0 a   4 b   8 g     12 sig   16 gradA (0: none)   20 gradB (0: none)   24 n   28 chunk
//
// Task t does elements [t·chunk, min(n, (t+1)·chunk)); chunk is a multiple of 16, so tasks never
// share a 64-byte line of an output. The last 1..3 elements go through the same vector code on
// partial vectors.

import { expN, expR, expm1Small, fixInf, reduceNegAbs, scale2 } from './math';
import { loadPartial, storePartial } from './rowmath';

@inline function splat(x: f32): v128 {
  return f32x4.splat(x);
}

/** Loads `count` lanes (4: a whole vector). */
@inline function load4(p: usize, count: i32): v128 {
  return count == 4 ? v128.load(p) : loadPartial(p, count, 0);
}

@inline function store4(p: usize, v: v128, count: i32): void {
  if (count == 4) v128.store(p, v);
  else storePartial(p, v, count);
}

/**
 * Elements [i0, i0 + count) of the forward (count 1..4). silu is math.ts's mulSigmoidNR(x, xNeg,
 * ...) spelled out, so that σ (its mulSigmoidNR(1, 1, ...), p·1 being p) shares e^-|x| = 2^n·p and
 * d = 1 + e^-|x|, and costs one division more.
 */
@inline function forwardLanes(a: usize, b: usize, out: usize, sig: usize, count: i32, withSig: bool): void {
  const x = load4(a, count);
  const t = reduceNegAbs(x);
  const n = expN(t);
  const p = f32x4.add(splat(1.0), expm1Small(expR(t, n)));
  const d = f32x4.add(splat(1.0), scale2(p, n));
  const neg = f32x4.lt(x, splat(0.0));
  const n2 = v128.and(n, neg); // z < 0: the power of two applied last
  const num = v128.bitselect(f32x4.mul(f32x4.pmax(x, splat(-150.0)), p), x, neg);
  const silu = fixInf(scale2(f32x4.div(num, d), n2), x, Infinity, NaN); // siluV(x)
  store4(out, f32x4.mul(silu, load4(b, count)), count);
  if (withSig) store4(sig, scale2(f32x4.div(v128.bitselect(p, splat(1.0), neg), d), n2), count); // sigmoidV(x)
}

@inline function forwardRange(a: usize, b: usize, out: usize, sig: usize, i0: i32, i1: i32, withSig: bool): void {
  const i4 = i0 + ((i1 - i0) & ~3);
  for (let i = i0; i < i4; i += 4) {
    const at = <usize>i << 2;
    forwardLanes(a + at, b + at, out + at, sig + at, 4, withSig);
  }
  if (i4 < i1) {
    const at = <usize>i4 << 2;
    forwardLanes(a + at, b + at, out + at, sig + at, i1 - i4, withSig);
  }
}

export function silu_mul_f32(desc: usize, task: i32, scratch: usize): void {
  const a = <usize>load<u32>(desc, 0);
  const b = <usize>load<u32>(desc, 4);
  const out = <usize>load<u32>(desc, 8);
  const sig = <usize>load<u32>(desc, 12);
  const n = load<i32>(desc, 16);
  const chunk = load<i32>(desc, 20);
  const i0 = task * chunk;
  const i1 = min(n, i0 + chunk);
  if (sig) forwardRange(a, b, out, sig, i0, i1, true);
  else forwardRange(a, b, out, sig, i0, i1, false);
}

/** Elements [i0, i0 + count) of the backward (count 1..4). */
@inline function backwardLanes(a: usize, b: usize, g: usize, sig: usize, gradA: usize, gradB: usize, count: i32, doA: bool, doB: bool): void {
  const av = load4(a, count);
  const gv = load4(g, count);
  const s = load4(sig, count);
  if (doA) {
    const one = splat(1.0);
    const d = f32x4.add(one, f32x4.mul(av, f32x4.sub(one, s))); // silu'(a) / σ
    store4(gradA, f32x4.mul(f32x4.mul(f32x4.mul(gv, load4(b, count)), s), d), count);
  }
  if (doB) store4(gradB, f32x4.mul(f32x4.mul(gv, av), s), count);
}

@inline function backwardRange(a: usize, b: usize, g: usize, sig: usize, gradA: usize, gradB: usize, i0: i32, i1: i32, doA: bool, doB: bool): void {
  const i4 = i0 + ((i1 - i0) & ~3);
  for (let i = i0; i < i4; i += 4) {
    const at = <usize>i << 2;
    backwardLanes(a + at, b + at, g + at, sig + at, gradA + at, gradB + at, 4, doA, doB);
  }
  if (i4 < i1) {
    const at = <usize>i4 << 2;
    backwardLanes(a + at, b + at, g + at, sig + at, gradA + at, gradB + at, i1 - i4, doA, doB);
  }
}

export function silu_mul_backward_f32(desc: usize, task: i32, scratch: usize): void {
  const a = <usize>load<u32>(desc, 0);
  const b = <usize>load<u32>(desc, 4);
  const g = <usize>load<u32>(desc, 8);
  const sig = <usize>load<u32>(desc, 12);
  const gradA = <usize>load<u32>(desc, 16);
  const gradB = <usize>load<u32>(desc, 20);
  const n = load<i32>(desc, 24);
  const chunk = load<i32>(desc, 28);
  const i0 = task * chunk;
  const i1 = min(n, i0 + chunk);
  if (gradA && gradB) backwardRange(a, b, g, sig, gradA, gradB, i0, i1, true, true);
  else if (gradA) backwardRange(a, b, g, sig, gradA, gradB, i0, i1, true, false);
  else if (gradB) backwardRange(a, b, g, sig, gradA, gradB, i0, i1, false, true);
}
