// Elementwise kernels for blockgrad's wasm backend: out = op(x), out = op(a, b) and
// out = cond ? a : b (where), float32.
//
// One export per op, all with the parallel-kernel signature (see matmul.ts):
//
//   unary_<op>_f32(desc: usize, task: i32, scratch: usize): void
//   binary_<op>_f32(desc: usize, task: i32, scratch: usize): void
//   where_<i32|f32>_f32(desc: usize, task: i32, scratch: usize): void   (the condition's dtype)
//
// Each export inlines one op into the loops below, so the loops carry no per-element dispatch.
// The output is contiguous (float32, or int32 0/1 for comparisons); the operands are strided
// views over the output's shape, which JS has coalesced to at most 4 dims and padded in front to
// exactly 4 (size 1, stride 0). Task t writes output elements [t·chunk, (t+1)·chunk), so tasks
// write disjoint ranges; JS makes chunk a multiple of 16 (64 bytes: no two threads share a line).
//
// Descriptor (little-endian 32-bit fields, byte offsets; mirrored in src/kernels/wasm/elementwise.ts):
//
//    0 out      byte address of the output's first element
//    4 a        byte address of operand a's first element (its view offset included)
//    8 b        same for operand b (binary kernels only)
//   12 shape    4 x i32, outermost first
//   28 aStride  4 x i32, elements (may be 0 or negative)
//   44 bStride  4 x i32
//   60 chunk    output elements per task
//   64 total    output elements
//   68 p0, 72 p1   f32 parameters (clamp, inRange)
//   76 cond     byte address of where's condition (its view offset included)
//   80 cStride  4 x i32 elements
//
// Each output row (the innermost dim) runs one loop chosen by the operands' innermost strides:
// 1 (a contiguous vector load), 0 (one value splatted) or anything else (a gather of 4 lanes).
// The last 1..3 elements of a row go through the same vector op with partial loads and stores,
// so every element is computed by the same instructions.

import { gather, gatherPartial, storePartial } from './lanes';
import {
  expV, fixInf, geluGradV, geluTanhGradV, geluTanhV, geluV, logV, sigmoidV, siluGradV, siluV, tanhV,
} from './math';

const D_OUT: usize = 0;
const D_A: usize = 4;
const D_B: usize = 8;
const D_SHAPE: usize = 12;
const D_A_STRIDE: usize = 28;
const D_B_STRIDE: usize = 44;
const D_CHUNK: usize = 60;
const D_TOTAL: usize = 64;
const D_P0: usize = 68;
const D_P1: usize = 72;
const D_COND: usize = 76;
const D_COND_STRIDE: usize = 80;

// ---------------------------------------------------------------------------------------------
// The ops on four lanes. Each mirrors the cpu backend's formula (src/kernels/cpu/math.ts),
// NaN behaviour included; comments say where the float32 result is exactly the cpu backend's.
// ---------------------------------------------------------------------------------------------

const U_NEG = 0;
const U_EXP = 1;
const U_LOG = 2;
const U_SQRT = 3;
const U_RSQRT = 4;
const U_ABS = 5;
const U_SIGN = 6;
const U_TANH = 7;
const U_SIGMOID = 8;
const U_RELU = 9;
const U_SILU = 10;
const U_SILU_GRAD = 11;
const U_GELU_TANH = 12;
const U_GELU_TANH_GRAD = 13;
const U_SQUARE = 14; // powScalar 2
const U_IDENTITY = 15; // powScalar 1
const U_ONE = 16; // powScalar 0
const U_SQRT_POW = 17; // powScalar 0.5
const U_RSQRT_POW = 18; // powScalar -0.5
const U_RECIP = 19; // powScalar -1
const U_CLAMP = 20;
const U_IN_RANGE = 21;
const U_GELU = 22;
const U_GELU_GRAD = 23;

@inline function splat(x: f32): v128 {
  return f32x4.splat(x);
}

@inline function unaryOp(op: i32, x: v128, p0: v128, p1: v128): v128 {
  const zero = splat(0.0);
  const one = splat(1.0);
  switch (op) {
    case U_NEG: return f32x4.neg(x); // exact
    case U_EXP: return expV(x);
    case U_LOG: return logV(x);
    case U_SQRT: return f32x4.sqrt(x); // exact (correctly rounded either way)
    case U_RSQRT: return f32x4.div(one, f32x4.sqrt(x));
    case U_ABS: return f32x4.abs(x); // exact
    case U_SIGN: {
      // x > 0 ? 1 : x < 0 ? -1 : x (keeps ±0 and NaN); exact
      const r = v128.bitselect(one, x, f32x4.gt(x, zero));
      return v128.bitselect(splat(-1.0), r, f32x4.lt(x, zero));
    }
    case U_TANH: return tanhV(x);
    case U_SIGMOID: return sigmoidV(x);
    case U_RELU: return v128.bitselect(zero, x, f32x4.le(x, zero)); // x <= 0 ? 0 : x: NaN stays; exact
    case U_SILU: return siluV(x);
    case U_SILU_GRAD: return siluGradV(x);
    case U_GELU: return geluV(x);
    case U_GELU_GRAD: return geluGradV(x);
    case U_GELU_TANH: return geluTanhV(x);
    case U_GELU_TANH_GRAD: return geluTanhGradV(x);
    case U_SQUARE: return f32x4.mul(x, x); // x ** 2 is x·x, exact in double, rounded once: exact
    case U_IDENTITY: return x;
    case U_ONE: return one; // x ** 0 is 1, even for NaN
    case U_SQRT_POW: {
      // x ** 0.5: sqrt, except (-0) ** 0.5 = +0 and (-Infinity) ** 0.5 = +Infinity
      return fixInf(f32x4.sqrt(f32x4.add(x, zero)), x, Infinity, Infinity);
    }
    case U_RSQRT_POW: {
      // x ** -0.5: (-0) ** -0.5 = +Infinity, (-Infinity) ** -0.5 = +0
      return fixInf(f32x4.div(one, f32x4.sqrt(f32x4.add(x, zero))), x, 0.0, 0.0);
    }
    case U_RECIP: return f32x4.div(one, x); // x ** -1 = 1/x, correctly rounded either way
    case U_CLAMP: {
      // x < lo ? lo : x, then y > hi ? hi : y; NaN passes through (comparisons are false)
      const y = v128.bitselect(p0, x, f32x4.lt(x, p0));
      return v128.bitselect(p1, y, f32x4.gt(y, p1));
    }
    case U_IN_RANGE: return v128.and(v128.and(f32x4.ge(x, p0), f32x4.le(x, p1)), one);
    default: return x;
  }
}

const B_ADD = 0;
const B_SUB = 1;
const B_MUL = 2;
const B_DIV = 3;
const B_MAXIMUM = 4;
const B_MINIMUM = 5;
const B_EQ = 6;
const B_NE = 7;
const B_LT = 8;
const B_LE = 9;
const B_GT = 10;
const B_GE = 11;

/** A comparison mask (lanes all ones or zero) as int32 1 / 0. */
@inline function ones(mask: v128): v128 {
  return v128.and(mask, i32x4.splat(1));
}

/** Lanes where a or b is NaN become NaN (maximum / minimum propagate NaN, as torch). */
@inline function nanOf(r: v128, a: v128, b: v128): v128 {
  return v128.bitselect(a, v128.bitselect(b, r, f32x4.ne(b, b)), f32x4.ne(a, a));
}

// +, -, ·, / of two float32 values rounded to float32 equal the double result rounded to float32
// (the double is exact for · and close enough for +, -, / that rounding it again changes nothing),
// so these are exactly the cpu backend's results.
@inline function binaryOp(op: i32, a: v128, b: v128): v128 {
  switch (op) {
    case B_ADD: return f32x4.add(a, b);
    case B_SUB: return f32x4.sub(a, b);
    case B_MUL: return f32x4.mul(a, b);
    case B_DIV: return f32x4.div(a, b);
    // a > b ? a : b, not f32x4.max: the cpu backend returns b when equal, so max(+0, -0) = -0
    case B_MAXIMUM: return nanOf(v128.bitselect(a, b, f32x4.gt(a, b)), a, b);
    case B_MINIMUM: return nanOf(v128.bitselect(a, b, f32x4.lt(a, b)), a, b);
    case B_EQ: return ones(f32x4.eq(a, b));
    case B_NE: return ones(f32x4.ne(a, b));
    case B_LT: return ones(f32x4.lt(a, b));
    case B_LE: return ones(f32x4.le(a, b));
    case B_GT: return ones(f32x4.gt(a, b));
    case B_GE: return ones(f32x4.ge(a, b));
    default: return a;
  }
}

// ---------------------------------------------------------------------------------------------
// Loads and stores
// ---------------------------------------------------------------------------------------------

/** len elements at out, all set to lane values of v (v's four lanes are equal). */
@inline function fillRow(out: usize, v: v128, len: i32): void {
  let i = 0;
  for (; i + 4 <= len; i += 4) {
    v128.store(out, v);
    out += 16;
  }
  if (i < len) storePartial(out, v, len - i);
}

// ---------------------------------------------------------------------------------------------
// Rows: out[0..len) = op(x[0], x[s], x[2s], ...)  (s in bytes)
// ---------------------------------------------------------------------------------------------

@inline function unaryRow(op: i32, x: usize, s: usize, out: usize, len: i32, p0: v128, p1: v128): void {
  if (s == 0) {
    fillRow(out, unaryOp(op, f32x4.splat(load<f32>(x)), p0, p1), len);
    return;
  }
  let i = 0;
  if (s == 4) {
    for (; i + 4 <= len; i += 4) {
      v128.store(out, unaryOp(op, v128.load(x), p0, p1));
      x += 16;
      out += 16;
    }
  } else {
    for (; i + 4 <= len; i += 4) {
      v128.store(out, unaryOp(op, gather(x, s), p0, p1));
      x += 4 * s;
      out += 16;
    }
  }
  if (i < len) storePartial(out, unaryOp(op, gatherPartial(x, s, len - i), p0, p1), len - i);
}

@inline function binaryRow(op: i32, a: usize, sa: usize, b: usize, sb: usize, out: usize, len: i32): void {
  let i = 0;
  if (sa == 4 && sb == 4) {
    for (; i + 4 <= len; i += 4) {
      v128.store(out, binaryOp(op, v128.load(a), v128.load(b)));
      a += 16;
      b += 16;
      out += 16;
    }
  } else if (sa == 4 && sb == 0) {
    const vb = f32x4.splat(load<f32>(b));
    for (; i + 4 <= len; i += 4) {
      v128.store(out, binaryOp(op, v128.load(a), vb));
      a += 16;
      out += 16;
    }
  } else if (sa == 0 && sb == 4) {
    const va = f32x4.splat(load<f32>(a));
    for (; i + 4 <= len; i += 4) {
      v128.store(out, binaryOp(op, va, v128.load(b)));
      b += 16;
      out += 16;
    }
  } else if (sa == 0 && sb == 0) {
    fillRow(out, binaryOp(op, f32x4.splat(load<f32>(a)), f32x4.splat(load<f32>(b))), len);
    return;
  } else {
    for (; i + 4 <= len; i += 4) {
      v128.store(out, binaryOp(op, gather(a, sa), gather(b, sb)));
      a += 4 * sa;
      b += 4 * sb;
      out += 16;
    }
  }
  if (i < len) storePartial(out, binaryOp(op, gatherPartial(a, sa, len - i), gatherPartial(b, sb, len - i)), len - i);
}

// ---------------------------------------------------------------------------------------------
// Tasks: the rows (or parts of rows) of one output range
// ---------------------------------------------------------------------------------------------

@inline function min(a: i32, b: i32): i32 {
  return a < b ? a : b;
}

const ROWS_UNARY = 0;
const ROWS_BINARY = 1;
const ROWS_WHERE = 2;

/**
 * Walks output elements [task·chunk, +chunk) row by row (a task may start and end inside a row),
 * running the row function of `kind` on each: unaryRow over operand a, binaryRow over a and b,
 * whereRow over the condition, a and b. `kind` is a constant at every call, so the inlined walk
 * keeps only its own operands. Positions are element offsets (i32: memory holds at most 2^30
 * float32 values), turned into byte addresses with wrap-around arithmetic so that negative
 * strides work.
 */
@inline function walkRows(kind: i32, op: i32, desc: usize, task: i32): void {
  const a = <usize>load<u32>(desc, D_A);
  const b = <usize>load<u32>(desc, D_B);
  const c = <usize>load<u32>(desc, D_COND);
  const p0 = f32x4.splat(load<f32>(desc, D_P0));
  const p1 = f32x4.splat(load<f32>(desc, D_P1));
  const d1 = load<i32>(desc, D_SHAPE + 4), d2 = load<i32>(desc, D_SHAPE + 8), d3 = load<i32>(desc, D_SHAPE + 12);
  const a0 = load<i32>(desc, D_A_STRIDE), a1 = load<i32>(desc, D_A_STRIDE + 4);
  const a2 = load<i32>(desc, D_A_STRIDE + 8), a3 = load<i32>(desc, D_A_STRIDE + 12);
  const b0 = load<i32>(desc, D_B_STRIDE), b1 = load<i32>(desc, D_B_STRIDE + 4);
  const b2 = load<i32>(desc, D_B_STRIDE + 8), b3 = load<i32>(desc, D_B_STRIDE + 12);
  const c0 = load<i32>(desc, D_COND_STRIDE), c1 = load<i32>(desc, D_COND_STRIDE + 4);
  const c2 = load<i32>(desc, D_COND_STRIDE + 8), c3 = load<i32>(desc, D_COND_STRIDE + 12);
  const chunk = load<i32>(desc, D_CHUNK);
  let e = task * chunk;
  const end = min(load<i32>(desc, D_TOTAL), e + chunk);
  // the multi-index of element e
  let i3 = e % d3, r = e / d3;
  let i2 = r % d2;
  r /= d2;
  let i1 = r % d1, i0 = r / d1;
  let out = <usize>load<u32>(desc, D_OUT) + (<usize>e << 2);
  while (e < end) {
    const len = min(d3 - i3, end - e);
    const pa = a + (<usize>(i0 * a0 + i1 * a1 + i2 * a2 + i3 * a3) << 2);
    if (kind == ROWS_UNARY) {
      unaryRow(op, pa, <usize>a3 << 2, out, len, p0, p1);
    } else {
      const pb = b + (<usize>(i0 * b0 + i1 * b1 + i2 * b2 + i3 * b3) << 2);
      if (kind == ROWS_BINARY) binaryRow(op, pa, <usize>a3 << 2, pb, <usize>b3 << 2, out, len);
      else {
        const pc = c + (<usize>(i0 * c0 + i1 * c1 + i2 * c2 + i3 * c3) << 2);
        whereRow(op != 0, pc, <usize>c3 << 2, pa, <usize>a3 << 2, pb, <usize>b3 << 2, out, len);
      }
    }
    e += len;
    out += <usize>len << 2;
    i3 = 0;
    if (++i2 == d2) {
      i2 = 0;
      if (++i1 == d1) {
        i1 = 0;
        i0++;
      }
    }
  }
}

@inline function taskUnary(op: i32, desc: usize, task: i32): void {
  walkRows(ROWS_UNARY, op, desc, task);
}

@inline function taskBinary(op: i32, desc: usize, task: i32): void {
  walkRows(ROWS_BINARY, op, desc, task);
}

// ---------------------------------------------------------------------------------------------
// where: out = cond ? a : b, a bit-for-bit selection (NaN payloads and -0 kept)
// ---------------------------------------------------------------------------------------------

/** Four lanes from p, p + s, ... for any stride s in bytes: one load, one splat or a gather. */
@inline function lanesAt(p: usize, s: usize): v128 {
  if (s == 4) return v128.load(p);
  if (s == 0) return v128.load32_splat(p);
  return gather(p, s);
}

/** Lanes that are true (all ones) where the condition is nonzero: int32, or float32 (NaN is nonzero, -0 is not). */
@inline function isTrue(condF32: bool, c: v128): v128 {
  return condF32 ? f32x4.ne(c, f32x4.splat(0)) : i32x4.ne(c, i32x4.splat(0));
}

@inline function whereRow(condF32: bool, c: usize, sc: usize, a: usize, sa: usize, b: usize, sb: usize, out: usize, len: i32): void {
  let i = 0;
  for (; i + 4 <= len; i += 4) {
    v128.store(out, v128.bitselect(lanesAt(a, sa), lanesAt(b, sb), isTrue(condF32, lanesAt(c, sc))));
    c += 4 * sc;
    a += 4 * sa;
    b += 4 * sb;
    out += 16;
  }
  if (i < len) {
    const n = len - i;
    const pick = isTrue(condF32, gatherPartial(c, sc, n));
    storePartial(out, v128.bitselect(gatherPartial(a, sa, n), gatherPartial(b, sb, n), pick), n);
  }
}

/** where over the condition (D_COND), a and b; `condF32`: the condition is float32, else int32. */
@inline function taskWhere(condF32: bool, desc: usize, task: i32): void {
  walkRows(ROWS_WHERE, condF32 ? 1 : 0, desc, task);
}

// ---------------------------------------------------------------------------------------------
// Exports (names built in src/kernels/wasm/elementwise.ts as `unary_${name}_f32`, `binary_${op}_f32`,
// `where_${cond}_f32`)
// ---------------------------------------------------------------------------------------------

export function unary_neg_f32(desc: usize, task: i32, scratch: usize): void { taskUnary(U_NEG, desc, task); }
export function unary_exp_f32(desc: usize, task: i32, scratch: usize): void { taskUnary(U_EXP, desc, task); }
export function unary_log_f32(desc: usize, task: i32, scratch: usize): void { taskUnary(U_LOG, desc, task); }
export function unary_sqrt_f32(desc: usize, task: i32, scratch: usize): void { taskUnary(U_SQRT, desc, task); }
export function unary_rsqrt_f32(desc: usize, task: i32, scratch: usize): void { taskUnary(U_RSQRT, desc, task); }
export function unary_abs_f32(desc: usize, task: i32, scratch: usize): void { taskUnary(U_ABS, desc, task); }
export function unary_sign_f32(desc: usize, task: i32, scratch: usize): void { taskUnary(U_SIGN, desc, task); }
export function unary_tanh_f32(desc: usize, task: i32, scratch: usize): void { taskUnary(U_TANH, desc, task); }
export function unary_sigmoid_f32(desc: usize, task: i32, scratch: usize): void { taskUnary(U_SIGMOID, desc, task); }
export function unary_relu_f32(desc: usize, task: i32, scratch: usize): void { taskUnary(U_RELU, desc, task); }
export function unary_silu_f32(desc: usize, task: i32, scratch: usize): void { taskUnary(U_SILU, desc, task); }
export function unary_siluGrad_f32(desc: usize, task: i32, scratch: usize): void { taskUnary(U_SILU_GRAD, desc, task); }
export function unary_gelu_f32(desc: usize, task: i32, scratch: usize): void { taskUnary(U_GELU, desc, task); }
export function unary_geluGrad_f32(desc: usize, task: i32, scratch: usize): void { taskUnary(U_GELU_GRAD, desc, task); }
export function unary_geluTanh_f32(desc: usize, task: i32, scratch: usize): void { taskUnary(U_GELU_TANH, desc, task); }
export function unary_geluTanhGrad_f32(desc: usize, task: i32, scratch: usize): void { taskUnary(U_GELU_TANH_GRAD, desc, task); }
export function unary_square_f32(desc: usize, task: i32, scratch: usize): void { taskUnary(U_SQUARE, desc, task); }
export function unary_identity_f32(desc: usize, task: i32, scratch: usize): void { taskUnary(U_IDENTITY, desc, task); }
export function unary_one_f32(desc: usize, task: i32, scratch: usize): void { taskUnary(U_ONE, desc, task); }
export function unary_sqrtPow_f32(desc: usize, task: i32, scratch: usize): void { taskUnary(U_SQRT_POW, desc, task); }
export function unary_rsqrtPow_f32(desc: usize, task: i32, scratch: usize): void { taskUnary(U_RSQRT_POW, desc, task); }
export function unary_recip_f32(desc: usize, task: i32, scratch: usize): void { taskUnary(U_RECIP, desc, task); }
export function unary_clamp_f32(desc: usize, task: i32, scratch: usize): void { taskUnary(U_CLAMP, desc, task); }
export function unary_inRange_f32(desc: usize, task: i32, scratch: usize): void { taskUnary(U_IN_RANGE, desc, task); }

export function binary_add_f32(desc: usize, task: i32, scratch: usize): void { taskBinary(B_ADD, desc, task); }
export function binary_sub_f32(desc: usize, task: i32, scratch: usize): void { taskBinary(B_SUB, desc, task); }
export function binary_mul_f32(desc: usize, task: i32, scratch: usize): void { taskBinary(B_MUL, desc, task); }
export function binary_div_f32(desc: usize, task: i32, scratch: usize): void { taskBinary(B_DIV, desc, task); }
export function binary_maximum_f32(desc: usize, task: i32, scratch: usize): void { taskBinary(B_MAXIMUM, desc, task); }
export function binary_minimum_f32(desc: usize, task: i32, scratch: usize): void { taskBinary(B_MINIMUM, desc, task); }
export function binary_eq_f32(desc: usize, task: i32, scratch: usize): void { taskBinary(B_EQ, desc, task); }
export function binary_ne_f32(desc: usize, task: i32, scratch: usize): void { taskBinary(B_NE, desc, task); }
export function binary_lt_f32(desc: usize, task: i32, scratch: usize): void { taskBinary(B_LT, desc, task); }
export function binary_le_f32(desc: usize, task: i32, scratch: usize): void { taskBinary(B_LE, desc, task); }
export function binary_gt_f32(desc: usize, task: i32, scratch: usize): void { taskBinary(B_GT, desc, task); }
export function binary_ge_f32(desc: usize, task: i32, scratch: usize): void { taskBinary(B_GE, desc, task); }

export function where_i32_f32(desc: usize, task: i32, scratch: usize): void { taskWhere(false, desc, task); }
export function where_f32_f32(desc: usize, task: i32, scratch: usize): void { taskWhere(true, desc, task); }
