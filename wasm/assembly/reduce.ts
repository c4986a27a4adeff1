// Sum / max / min over the last axis (reduce_rows_f32) or the middle axis (reduce_middle_f32) of
// contiguous float32 data, for blockgrad's wasm backend; re-exported by rows.ts.
//
// As the cpu backend (src/kernels/cpu/rows.ts reduceRows, reduceMiddle): sums accumulate in
// doubles and are rounded once; max / min propagate NaN. reduce_middle_f32 is bit-identical to
// the cpu: each column's double sum is taken in the same order m = 0, 1, ... (the lanes run
// across columns), and max / min take `v` exactly when the cpu's `v > acc || v !== v` does.
// reduce_rows_f32 sums in lanes (a different order, so a result may differ by one rounding of
// the double sum: at most 1 ulp of float32); its max / min equal the cpu's, signed zeros
// included (the first zero of the row, as the cpu's strict comparison keeps it).
//
// Min is computed as -max(-x): negation is exact, so every comparison and every NaN test is the
// mirror of the min's, and one code path serves both.
//
// Descriptors (little-endian i32 / u32, byte offsets; mirrored in src/kernels/wasm/rows.ts):
//
//   reduce_rows_f32:    0 x   4 out   16 outer   20 inner   24 rowsPer   28 op
//     task t reduces rows [t*rowsPer, +rowsPer) (clipped) into out[r], one float32 per row.
//
//   reduce_middle_f32:  0 x   4 out   8 outer   12 mid   16 inner   20 op
//                       24 outerPer   28 colsPer   32 tilesN
//     x is [outer, mid, inner], out [outer, inner]. Task t = to*tilesN + tn reduces outer slices
//     [to*outerPer, +outerPer) and columns [tn*colsPer, +colsPer) (each clipped).
//
//   op: 0 sum, 1 max, 2 min.

import { hmax, loadPartial, maxSkipNaN, promoteHigh, sumRow } from './rowmath';

const OP_SUM = 0;
const OP_MIN = 2;

/** Flips the sign bit of every lane when `flip` is the sign mask (min as -max(-x)), else nothing. */
// @ts-ignore: decorator
@inline function neg4(v: v128, flip: v128): v128 {
  return v128.xor(v, flip);
}

/** max (min when isMin) of the row: NaN if any element is NaN, -inf (inf) if the row is empty. */
function extremeRow(x: usize, n: i32, isMin: bool): f32 {
  const flip = i32x4.splat(isMin ? 0x80000000 : 0);
  const n4 = n & ~3;
  let best = f32x4.splat(-Infinity);
  let nan = i32x4.splat(0);
  for (let i = 0; i < n4; i += 4) {
    const v = neg4(v128.load(x + (<usize>i << 2)), flip);
    best = maxSkipNaN(best, v);
    nan = v128.or(nan, f32x4.ne(v, v));
  }
  const tail = neg4(loadPartial(x + (<usize>n4 << 2), n & 3, NaN), flip);
  best = maxSkipNaN(best, tail); // the NaN fill is skipped here ...
  for (let i = n4; i < n; i++) if (isNaN(load<f32>(x + (<usize>i << 2)))) return NaN; // ... and tested here
  if (v128.any_true(nan)) return NaN;
  const m = hmax(best);
  if (m != 0) return isMin ? -m : m;
  // max is a zero: the cpu keeps the first element equal to it, +0 or -0
  let i = 0;
  while (load<f32>(x + (<usize>i << 2)) != 0) i++;
  return load<f32>(x + (<usize>i << 2));
}

/** Sum (op 0), max (1) or min (2) of each row of the task, one float32 per row into out. */
export function reduce_rows_f32(desc: usize, task: i32, scratch: usize): void {
  const x = <usize>load<u32>(desc, 0);
  const out = <usize>load<u32>(desc, 4);
  const outer = load<i32>(desc, 16);
  const inner = load<i32>(desc, 20);
  const rowsPer = load<i32>(desc, 24);
  const op = load<i32>(desc, 28);
  const rowBytes = <usize>inner << 2;
  const r1 = min(outer, task * rowsPer + rowsPer);
  for (let r = task * rowsPer; r < r1; r++) {
    const row = x + <usize>r * rowBytes;
    store<f32>(out + (<usize>r << 2), op == OP_SUM ? <f32>sumRow(row, inner) : extremeRow(row, inner, op == OP_MIN));
  }
}

// ---------------------------------------------------------------------------------------------
// reduce over the middle axis
// ---------------------------------------------------------------------------------------------

/** acc = v where v > acc or v is NaN, lane-wise: the cpu's `if (v > acc[i] || v !== v) acc[i] = v`. */
// @ts-ignore: decorator
@inline function takeMax(acc: v128, v: v128): v128 {
  return v128.bitselect(v, acc, v128.or(f32x4.gt(v, acc), f32x4.ne(v, v)));
}

/**
 * Columns [j0, j1) of one [mid, inner] slice (x at its first element, rows rowBytes apart):
 * out[j] = Σ_m x[m][j] in doubles, in order m = 0, 1, .... Sixteen columns (a cache line of each
 * row) at a time in eight double vectors, then four, then one.
 */
function sumColumns(x: usize, out: usize, mid: i32, rowBytes: usize, j0: i32, j1: i32): void {
  let j = j0;
  for (; j + 16 <= j1; j += 16) {
    let a0 = f64x2.splat(0), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    let p = x + (<usize>j << 2);
    for (let m = 0; m < mid; m++, p += rowBytes) {
      const v0 = v128.load(p), v1 = v128.load(p, 16), v2 = v128.load(p, 32), v3 = v128.load(p, 48);
      a0 = f64x2.add(a0, f64x2.promote_low_f32x4(v0));
      a1 = f64x2.add(a1, promoteHigh(v0));
      a2 = f64x2.add(a2, f64x2.promote_low_f32x4(v1));
      a3 = f64x2.add(a3, promoteHigh(v1));
      a4 = f64x2.add(a4, f64x2.promote_low_f32x4(v2));
      a5 = f64x2.add(a5, promoteHigh(v2));
      a6 = f64x2.add(a6, f64x2.promote_low_f32x4(v3));
      a7 = f64x2.add(a7, promoteHigh(v3));
    }
    const o = out + (<usize>j << 2);
    v128.store(o, i64x2.shuffle(f32x4.demote_f64x2_zero(a0), f32x4.demote_f64x2_zero(a1), 0, 2));
    v128.store(o, i64x2.shuffle(f32x4.demote_f64x2_zero(a2), f32x4.demote_f64x2_zero(a3), 0, 2), 16);
    v128.store(o, i64x2.shuffle(f32x4.demote_f64x2_zero(a4), f32x4.demote_f64x2_zero(a5), 0, 2), 32);
    v128.store(o, i64x2.shuffle(f32x4.demote_f64x2_zero(a6), f32x4.demote_f64x2_zero(a7), 0, 2), 48);
  }
  for (; j + 4 <= j1; j += 4) {
    let a0 = f64x2.splat(0), a1 = a0;
    let p = x + (<usize>j << 2);
    for (let m = 0; m < mid; m++, p += rowBytes) {
      const v = v128.load(p);
      a0 = f64x2.add(a0, f64x2.promote_low_f32x4(v));
      a1 = f64x2.add(a1, promoteHigh(v));
    }
    v128.store(out + (<usize>j << 2), i64x2.shuffle(f32x4.demote_f64x2_zero(a0), f32x4.demote_f64x2_zero(a1), 0, 2));
  }
  for (; j < j1; j++) {
    let s: f64 = 0;
    let p = x + (<usize>j << 2);
    for (let m = 0; m < mid; m++, p += rowBytes) s += <f64>load<f32>(p);
    store<f32>(out + (<usize>j << 2), <f32>s);
  }
}

/** As sumColumns, for max (min when isMin, through -max(-x)); an empty middle axis gives -inf (inf). */
function extremeColumns(x: usize, out: usize, mid: i32, rowBytes: usize, j0: i32, j1: i32, isMin: bool): void {
  const flip = i32x4.splat(isMin ? 0x80000000 : 0);
  const init = f32x4.splat(-Infinity);
  let j = j0;
  for (; j + 16 <= j1; j += 16) {
    let a0 = init, a1 = init, a2 = init, a3 = init;
    let p = x + (<usize>j << 2);
    for (let m = 0; m < mid; m++, p += rowBytes) {
      a0 = takeMax(a0, neg4(v128.load(p), flip));
      a1 = takeMax(a1, neg4(v128.load(p, 16), flip));
      a2 = takeMax(a2, neg4(v128.load(p, 32), flip));
      a3 = takeMax(a3, neg4(v128.load(p, 48), flip));
    }
    const o = out + (<usize>j << 2);
    v128.store(o, neg4(a0, flip));
    v128.store(o, neg4(a1, flip), 16);
    v128.store(o, neg4(a2, flip), 32);
    v128.store(o, neg4(a3, flip), 48);
  }
  for (; j + 4 <= j1; j += 4) {
    let a = init;
    let p = x + (<usize>j << 2);
    for (let m = 0; m < mid; m++, p += rowBytes) a = takeMax(a, neg4(v128.load(p), flip));
    v128.store(out + (<usize>j << 2), neg4(a, flip));
  }
  for (; j < j1; j++) {
    let a = init;
    let p = x + (<usize>j << 2);
    for (let m = 0; m < mid; m++, p += rowBytes) a = takeMax(a, neg4(v128.load32_splat(p), flip));
    store<f32>(out + (<usize>j << 2), f32x4.extract_lane(neg4(a, flip), 0));
  }
}

/** Sum / max / min over the middle axis of [outer, mid, inner]: one task's slices and columns. */
export function reduce_middle_f32(desc: usize, task: i32, scratch: usize): void {
  const x = <usize>load<u32>(desc, 0);
  const out = <usize>load<u32>(desc, 4);
  const outer = load<i32>(desc, 8);
  const mid = load<i32>(desc, 12);
  const inner = load<i32>(desc, 16);
  const op = load<i32>(desc, 20);
  const outerPer = load<i32>(desc, 24);
  const colsPer = load<i32>(desc, 28);
  const tilesN = load<i32>(desc, 32);
  const tn = task % tilesN;
  const o0 = (task / tilesN) * outerPer;
  const o1 = min(outer, o0 + outerPer);
  const j0 = tn * colsPer;
  const j1 = min(inner, j0 + colsPer);
  const rowBytes = <usize>inner << 2;
  for (let o = o0; o < o1; o++) {
    const src = x + <usize>o * <usize>mid * rowBytes;
    const dst = out + <usize>o * rowBytes;
    if (op == OP_SUM) sumColumns(src, dst, mid, rowBytes, j0, j1);
    else extremeColumns(src, dst, mid, rowBytes, j0, j1, op == OP_MIN);
  }
}
