// The register-tiled micro-kernels of the matmul (./matmul.ts packs the operands for them).
//
// Register tiles (v128 locals; V8 gives wasm 15 of the 16 xmm registers on x64):
//   float32: MR=4 rows x NR=8 columns = 8 accumulators of f32x4, + 2 B vectors + 4 A vectors;
//   float64: MR=4 rows x NR=4 columns = 8 accumulators of f64x2, + 2 B vectors + 4 A vectors.
// Per step p the kernel loads one row of the B panel (2 vectors) and the MR values of column p
// of the A panel, each already broadcast to a whole vector by the packing (4 vector loads), i.e.
// one rank-1 update of the tile with 2*MR multiplies and 2*MR adds.
//
// Why the A panel holds each value broadcast (16 bytes per value, 4x the bytes of A): on x64,
// V8 compiles a broadcast load with an offset (v128.load32_splat(a, 4)) to an address
// computation plus the load, but folds the offset of a plain v128.load into the load itself.
// With the values broadcast beforehand the loop has 3 instructions fewer per step (30 instead
// of 33, of which 16 are the multiplies and adds; seen with node --print-wasm-code), and it
// measured ~20% faster (42-48 against 36-39 GFLOP/s, float32, 256-512 square, the two builds'
// matmul_f32 timed in alternating 25 ms slices in one process, the project's AMD EPYC, Node 20):
// a loop this dense is
// bound by how many instructions the core issues, not only by its floating-point ports. The
// extra bytes cost little: an A panel (kc x 64 bytes) is read from L1/L2 once per B panel.
//
// Why these tiles: every multiply and every add is its own instruction (wasm SIMD has no fused
// multiply-add outside relaxed SIMD), and 8 accumulators give the adds enough independent chains.
// V8 loads all of a step's operands before its arithmetic, so a tile's registers are its
// accumulators plus every operand of one step plus a temporary: 8 + 2 + 4 + 1 = 15 here, all
// there are. A larger tile spills to the stack, and so does a k loop unrolled four times: 6 x 8
// measured ~20% slower, the unrolled loop ~30% slower (an unroll by two gained nothing). With relaxed SIMD's f32x4.relaxed_madd (an FMA on x64) a 4 x 8 kernel measured
// 46 against 38 GFLOP/s (float64: 24 against 18) on the project's Xeon, Node 20 with
// --experimental-wasm-relaxed-simd; not used, because relaxed SIMD is not everywhere yet and
// its results may differ between machines (fused or not).

/** Rows of the register tile, both dtypes. */
export const MR: i32 = 4;
/** Bytes of one row of a B panel (two v128): NR = 8 floats or 4 doubles. */
export const NR_BYTES: i32 = 32;
/** Bytes of one step of an A panel: MR values, each broadcast to a v128. */
export const A_STEP_BYTES: i32 = MR * 16;
/** Columns of the register tile: 8 floats or 4 doubles. */
@inline export function nr<T>(): i32 { return NR_BYTES / sizeof<T>(); }

// ---------------------------------------------------------------------------------------------
// Micro-kernels
// ---------------------------------------------------------------------------------------------

/** a + b in T's lanes (f32x4 or f64x2). */
@inline function vadd<T>(a: v128, b: v128): v128 {
  return sizeof<T>() == 4 ? f32x4.add(a, b) : f64x2.add(a, b);
}

/** a · b in T's lanes. */
@inline function vmul<T>(a: v128, b: v128): v128 {
  return sizeof<T>() == 4 ? f32x4.mul(a, b) : f64x2.mul(a, b);
}

/**
 * C[0:4, 0:NR] (+)= A panel (4 x kc: per p, 4 values each broadcast to a v128) @ B panel (kc x NR,
 * NR values per p: 8 floats or 4 doubles), C at `c` with row stride `ldc` bytes. `accumulate`
 * adds to C instead of overwriting it. One function for both dtypes: T is known when it is
 * compiled, so each instance has only its own lane type's instructions.
 */
function kernel4xNR<T>(a: usize, b: usize, kc: i32, c: usize, ldc: usize, accumulate: bool): void {
  let c00 = i32x4.splat(0), c01 = c00, c10 = c00, c11 = c00;
  let c20 = c00, c21 = c00, c30 = c00, c31 = c00;
  const aEnd = a + (<usize>kc) * A_STEP_BYTES;
  while (a < aEnd) {
    const b0 = v128.load(b), b1 = v128.load(b, 16);
    const a0 = v128.load(a), a1 = v128.load(a, 16), a2 = v128.load(a, 32), a3 = v128.load(a, 48);
    c00 = vadd<T>(c00, vmul<T>(a0, b0));
    c01 = vadd<T>(c01, vmul<T>(a0, b1));
    c10 = vadd<T>(c10, vmul<T>(a1, b0));
    c11 = vadd<T>(c11, vmul<T>(a1, b1));
    c20 = vadd<T>(c20, vmul<T>(a2, b0));
    c21 = vadd<T>(c21, vmul<T>(a2, b1));
    c30 = vadd<T>(c30, vmul<T>(a3, b0));
    c31 = vadd<T>(c31, vmul<T>(a3, b1));
    a += A_STEP_BYTES;
    b += 32;
  }
  if (accumulate) {
    c00 = vadd<T>(c00, v128.load(c)); c01 = vadd<T>(c01, v128.load(c, 16));
    c10 = vadd<T>(c10, v128.load(c + ldc)); c11 = vadd<T>(c11, v128.load(c + ldc, 16));
    c20 = vadd<T>(c20, v128.load(c + 2 * ldc)); c21 = vadd<T>(c21, v128.load(c + 2 * ldc, 16));
    c30 = vadd<T>(c30, v128.load(c + 3 * ldc)); c31 = vadd<T>(c31, v128.load(c + 3 * ldc, 16));
  }
  v128.store(c, c00); v128.store(c, c01, 16);
  v128.store(c + ldc, c10); v128.store(c + ldc, c11, 16);
  v128.store(c + 2 * ldc, c20); v128.store(c + 2 * ldc, c21, 16);
  v128.store(c + 3 * ldc, c30); v128.store(c + 3 * ldc, c31, 16);
}

/** The micro-kernel for T (f32: a 4 x 8 tile, f64: 4 x 4); see kernel4xNR. */
@inline export function microKernel<T>(a: usize, b: usize, kc: i32, c: usize, ldc: usize, accumulate: bool): void {
  kernel4xNR<T>(a, b, kc, c, ldc, accumulate);
}

