// The register-tiled micro-kernels of the matmul (./matmul.ts packs the operands for them).
//
// Register tiles (v128 locals; V8 gives wasm 15 of the 16 xmm registers on x64):
//   float32: MR=4 rows x NR=8 columns = 8 accumulators of f32x4, + 2 B vectors + 1 A splat;
//   float64: MR=4 rows x NR=4 columns = 8 accumulators of f64x2, + 2 B vectors + 1 A splat.
// Per step p the kernel loads one row of the B panel (2 vectors) and broadcasts each of the MR
// values of column p of the A panel (v128.load32_splat / load64_splat), i.e. one rank-1 update
// of the tile with 2*MR multiplies and 2*MR adds.
//
// Why these tiles: every multiply and every add is its own instruction (wasm SIMD has no fused
// multiply-add outside relaxed SIMD), so the kernel is bound by the floating-point ports, not by
// loads; 8 accumulators already give the adds enough independent chains to fill them. A 6 x 8
// float32 tile (12 accumulators + 3 = 15 registers) measured ~20% slower: V8 spills. With relaxed
// SIMD's f32x4.relaxed_madd (an FMA on x64) this same 4 x 8 kernel measured 46 against 38
// GFLOP/s (float64: 24 against 18) on the project's Xeon, Node 20 with
// --experimental-wasm-relaxed-simd; not used, because relaxed SIMD is not everywhere yet and
// its results may differ between machines (fused or not).

/** Rows of the register tile, both dtypes. */
export const MR: i32 = 4;
/** Bytes of one row of a B panel (two v128): NR = 8 floats or 4 doubles. */
export const NR_BYTES: i32 = 32;
/** Columns of the register tile: 8 floats or 4 doubles. */
@inline export function nr<T>(): i32 { return NR_BYTES / sizeof<T>(); }

// ---------------------------------------------------------------------------------------------
// Micro-kernels
// ---------------------------------------------------------------------------------------------

/**
 * C[0:4, 0:8] (+)= A panel (4 x kc, packed 4 floats per p) @ B panel (kc x 8, 8 floats per p),
 * C at `c` with row stride `ldc` bytes. `accumulate` adds to C instead of overwriting it.
 */
function kernel4x8f32(a: usize, b: usize, kc: i32, c: usize, ldc: usize, accumulate: bool): void {
  let c00 = f32x4.splat(0), c01 = c00, c10 = c00, c11 = c00;
  let c20 = c00, c21 = c00, c30 = c00, c31 = c00;
  const aEnd = a + ((<usize>kc) << 4);
  while (a < aEnd) {
    const b0 = v128.load(b), b1 = v128.load(b, 16);
    let ai = v128.load32_splat(a);
    c00 = f32x4.add(c00, f32x4.mul(ai, b0));
    c01 = f32x4.add(c01, f32x4.mul(ai, b1));
    ai = v128.load32_splat(a, 4);
    c10 = f32x4.add(c10, f32x4.mul(ai, b0));
    c11 = f32x4.add(c11, f32x4.mul(ai, b1));
    ai = v128.load32_splat(a, 8);
    c20 = f32x4.add(c20, f32x4.mul(ai, b0));
    c21 = f32x4.add(c21, f32x4.mul(ai, b1));
    ai = v128.load32_splat(a, 12);
    c30 = f32x4.add(c30, f32x4.mul(ai, b0));
    c31 = f32x4.add(c31, f32x4.mul(ai, b1));
    a += 16;
    b += 32;
  }
  if (accumulate) {
    c00 = f32x4.add(c00, v128.load(c)); c01 = f32x4.add(c01, v128.load(c, 16));
    c10 = f32x4.add(c10, v128.load(c + ldc)); c11 = f32x4.add(c11, v128.load(c + ldc, 16));
    c20 = f32x4.add(c20, v128.load(c + 2 * ldc)); c21 = f32x4.add(c21, v128.load(c + 2 * ldc, 16));
    c30 = f32x4.add(c30, v128.load(c + 3 * ldc)); c31 = f32x4.add(c31, v128.load(c + 3 * ldc, 16));
  }
  v128.store(c, c00); v128.store(c, c01, 16);
  v128.store(c + ldc, c10); v128.store(c + ldc, c11, 16);
  v128.store(c + 2 * ldc, c20); v128.store(c + 2 * ldc, c21, 16);
  v128.store(c + 3 * ldc, c30); v128.store(c + 3 * ldc, c31, 16);
}

/** C[0:4, 0:4] (+)= A panel (4 x kc, 4 doubles per p) @ B panel (kc x 4, 4 doubles per p). */
function kernel4x4f64(a: usize, b: usize, kc: i32, c: usize, ldc: usize, accumulate: bool): void {
  let c00 = f64x2.splat(0), c01 = c00, c10 = c00, c11 = c00;
  let c20 = c00, c21 = c00, c30 = c00, c31 = c00;
  const aEnd = a + ((<usize>kc) << 5);
  while (a < aEnd) {
    const b0 = v128.load(b), b1 = v128.load(b, 16);
    let ai = v128.load64_splat(a);
    c00 = f64x2.add(c00, f64x2.mul(ai, b0));
    c01 = f64x2.add(c01, f64x2.mul(ai, b1));
    ai = v128.load64_splat(a, 8);
    c10 = f64x2.add(c10, f64x2.mul(ai, b0));
    c11 = f64x2.add(c11, f64x2.mul(ai, b1));
    ai = v128.load64_splat(a, 16);
    c20 = f64x2.add(c20, f64x2.mul(ai, b0));
    c21 = f64x2.add(c21, f64x2.mul(ai, b1));
    ai = v128.load64_splat(a, 24);
    c30 = f64x2.add(c30, f64x2.mul(ai, b0));
    c31 = f64x2.add(c31, f64x2.mul(ai, b1));
    a += 32;
    b += 32;
  }
  if (accumulate) {
    c00 = f64x2.add(c00, v128.load(c)); c01 = f64x2.add(c01, v128.load(c, 16));
    c10 = f64x2.add(c10, v128.load(c + ldc)); c11 = f64x2.add(c11, v128.load(c + ldc, 16));
    c20 = f64x2.add(c20, v128.load(c + 2 * ldc)); c21 = f64x2.add(c21, v128.load(c + 2 * ldc, 16));
    c30 = f64x2.add(c30, v128.load(c + 3 * ldc)); c31 = f64x2.add(c31, v128.load(c + 3 * ldc, 16));
  }
  v128.store(c, c00); v128.store(c, c01, 16);
  v128.store(c + ldc, c10); v128.store(c + ldc, c11, 16);
  v128.store(c + 2 * ldc, c20); v128.store(c + 2 * ldc, c21, 16);
  v128.store(c + 3 * ldc, c30); v128.store(c + 3 * ldc, c31, 16);
}

/** The micro-kernel for T (f32 or f64), same contract as kernel4x8f32. */
@inline export function microKernel<T>(a: usize, b: usize, kc: i32, c: usize, ldc: usize, accumulate: bool): void {
  if (sizeof<T>() == 4) kernel4x8f32(a, b, kc, c, ldc, accumulate);
  else kernel4x4f64(a, b, kc, c, ldc, accumulate);
}

