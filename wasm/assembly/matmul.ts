// Matrix multiply kernels for blockgrad's wasm backend: C = op(A) @ op(B), float32 and float64.
//
// Calling convention (every parallel kernel of this module):
//
//   matmul_f32(desc: usize, task: i32, scratch: usize): void      (and matmul_f64)
//
//   desc     byte address of a descriptor written by JS (layout below);
//   task     which tile of C to compute, 0 <= task < (tasks described by desc);
//   scratch  byte address of SCRATCH_BYTES bytes that belong to the calling thread alone, where
//            the task packs its operand panels.
//
// A task reads A and B and writes only its own tile of C, so tasks may run in any order and on
// any thread at the same time. Nothing here has static data or globals to initialise: every
// instance sharing one memory (one per worker) can call any kernel at once.
//
// Descriptor (little-endian u32 fields, byte offsets; mirrored in src/kernels/wasm/matmul.ts):
//
//    0 a          byte address of A[0]              A[b] is m x k row-major, or k x m if transA
//    4 b          byte address of B[0]              B[b] is k x n row-major, or n x k if transB
//    8 c          byte address of C[0]              C[b] is m x n row-major, batch after batch
//   12 batch      number of products
//   16 m
//   20 k
//   24 n
//   28 flags      bit 0 transA, bit 1 transB
//   32 aStride    elements between A[b] and A[b+1] (0 broadcasts one A)
//   36 bStride    elements between B[b] and B[b+1] (0 broadcasts one B)
//   40 batchPer   batches per task
//   44 rowsPer    rows of C per task (a multiple of MR unless it covers all m)
//   48 colsPer    columns of C per task (a multiple of NR unless it covers all n)
//   52 tilesM     ceil(m / rowsPer)
//   56 tilesN     ceil(n / colsPer)
//
// Task t covers batches [tb*batchPer, +batchPer), rows [tm*rowsPer, +rowsPer) and columns
// [tn*colsPer, +colsPer) (each clipped to the matrix), where t = (tb*tilesM + tm)*tilesN + tn.
// How C is cut into tasks is decided in JS (matmulTasks); the kernel just follows the descriptor.

import { A_STEP_BYTES, MR, NR_BYTES, microKernel, nr } from './matmul-kernels';

/**
 * Bytes of per-thread scratch a task may use: the packed B block, the packed A block and one
 * edge tile (see "Blocking"), with room to spare. src/kernels/wasm/runner.ts has the same value.
 */
export const SCRATCH_BYTES: i32 = 1 << 20;

const D_A: usize = 0;
const D_B: usize = 4;
const D_C: usize = 8;
const D_BATCH: usize = 12;
const D_M: usize = 16;
const D_K: usize = 20;
const D_N: usize = 24;
const D_FLAGS: usize = 28;
const D_A_STRIDE: usize = 32;
const D_B_STRIDE: usize = 36;
const D_BATCH_PER: usize = 40;
const D_ROWS_PER: usize = 44;
const D_COLS_PER: usize = 48;
const D_TILES_M: usize = 52;
const D_TILES_N: usize = 56;

// ---------------------------------------------------------------------------------------------
// Blocking
// ---------------------------------------------------------------------------------------------
//
// The classic GotoBLAS / BLIS loop nest, per task tile C[i0:i1, j0:j1]:
//
//   for jc in j0..j1 step NC                  columns of C whose B block is packed at once
//     for pc in 0..k step KC                  a slice of the shared dimension
//       pack opB[pc:+kc, jc:+nc] -> Bp        NR-wide column panels, kc x NR each
//       for ic in i0..i1 step MC
//         pack opA[ic:+mc, pc:+kc] -> Ap      MR-tall row panels, per p MR values, each broadcast
//         for jr in 0..nc step NR             one B panel (kc x NR) stays in L1 ...
//           for ir in 0..mc step MR           ... while the A panels of the block stream from L2
//             micro-kernel: C[ic+ir:+MR, jc+jr:+NR] (+)= Ap panel @ Bp panel
//
// The first KC slice overwrites C, the later ones add to it, so C itself is the accumulator
// and no extra buffer is needed. Packing is what lets the micro-kernel see one layout whatever
// transA / transB are: it reads both panels strictly sequentially. Panels are zero-padded to
// whole MR / NR, so the micro-kernel has no edge cases; an edge tile is computed into a small
// buffer and only its valid part copied into C.
//
// The register tiles (MR x NR) and the micro-kernels are in ./matmul-kernels.ts.

/** Slice of the shared dimension: a B panel is KC * 32 bytes = 8 KiB, in L1 with an A panel (16 KiB). */
const KC: i32 = 256;
/** Bytes of packed A: MC rows * KC steps * 16 bytes (each value broadcast to a v128), in L2; MC = 64. */
const AP_BYTES: i32 = 256 << 10;
/** Bytes of packed B: KC * NC elements; 512 KiB for float32. */
const BP_BYTES: i32 = 512 << 10;
// scratch layout: [Bp: BP_BYTES][Ap: AP_BYTES][edge tile: MR * NR_BYTES]

@inline function mc(): i32 { return AP_BYTES / (KC * (A_STEP_BYTES / MR)); }
@inline function nc<T>(): i32 { return BP_BYTES / (KC * sizeof<T>()); }

@inline function min(a: i32, b: i32): i32 { return a < b ? a : b; }

// ---------------------------------------------------------------------------------------------
// Packing
// ---------------------------------------------------------------------------------------------
//
// A packed B panel holds, for each p = 0..kc-1, NR columns of opB side by side. Depending on the
// layout, their source is either contiguous in memory (plain B: a straight copy) or spread over
// NR rows of the stored matrix that are contiguous along p (transposed B): then a 4 x 4 (float32)
// or 4 x 2 (float64) block is loaded row by row and transposed in registers with shuffles.
// A packed A panel holds, for each p, the MR values opA[i..i+MR][p], each broadcast to a whole
// v128 (why: ./matmul-kernels.ts); a broadcast load per value does it in any layout. Partial
// panels (the last, past the matrix edge) fill the missing rows / columns with zeros.

/** For p in 0..kc-1: copies 32 bytes (one B panel row) from src + p*srcStep to dst + p*32. */
function copyPanel(src: usize, srcStep: usize, kc: i32, dst: usize): void {
  for (let p = 0; p < kc; p++) {
    v128.store(dst, v128.load(src));
    v128.store(dst, v128.load(src, 16), 16);
    src += srcStep;
    dst += 32;
  }
}

/**
 * Four rows of a matrix that are contiguous along p (row r at src + r*rowBytes): for each p in
 * 0..kc-1, writes their 4 elements at column p side by side at dst + p*dstStep.
 */
function transposePanel4<T>(src: usize, rowBytes: usize, kc: i32, dst: usize, dstStep: usize): void {
  const size = sizeof<T>();
  const s1 = src + rowBytes, s2 = src + 2 * rowBytes, s3 = src + 3 * rowBytes;
  let off: usize = 0;
  let p = 0;
  if (size == 4) {
    // 4 x 4 floats: rows r0..r3 (4 p each) -> columns p..p+3 (4 rows each)
    for (; p + 4 <= kc; p += 4) {
      const r0 = v128.load(src + off), r1 = v128.load(s1 + off), r2 = v128.load(s2 + off), r3 = v128.load(s3 + off);
      const t0 = i32x4.shuffle(r0, r1, 0, 4, 1, 5); // r0[0] r1[0] r0[1] r1[1]
      const t1 = i32x4.shuffle(r0, r1, 2, 6, 3, 7); // r0[2] r1[2] r0[3] r1[3]
      const t2 = i32x4.shuffle(r2, r3, 0, 4, 1, 5);
      const t3 = i32x4.shuffle(r2, r3, 2, 6, 3, 7);
      v128.store(dst, i64x2.shuffle(t0, t2, 0, 2)); // column p:   r0 r1 r2 r3
      v128.store(dst + dstStep, i64x2.shuffle(t0, t2, 1, 3)); // column p+1
      v128.store(dst + 2 * dstStep, i64x2.shuffle(t1, t3, 0, 2));
      v128.store(dst + 3 * dstStep, i64x2.shuffle(t1, t3, 1, 3));
      off += 16;
      dst += 4 * dstStep;
    }
  } else {
    // 4 x 2 doubles: rows r0..r3 (2 p each) -> columns p, p+1 (4 rows = 2 vectors each)
    for (; p + 2 <= kc; p += 2) {
      const r0 = v128.load(src + off), r1 = v128.load(s1 + off), r2 = v128.load(s2 + off), r3 = v128.load(s3 + off);
      v128.store(dst, i64x2.shuffle(r0, r1, 0, 2));
      v128.store(dst, i64x2.shuffle(r2, r3, 0, 2), 16);
      v128.store(dst + dstStep, i64x2.shuffle(r0, r1, 1, 3));
      v128.store(dst + dstStep, i64x2.shuffle(r2, r3, 1, 3), 16);
      off += 16;
      dst += 2 * dstStep;
    }
  }
  for (; p < kc; p++) {
    store<T>(dst, load<T>(src + off));
    store<T>(dst + size, load<T>(s1 + off));
    store<T>(dst + 2 * size, load<T>(s2 + off));
    store<T>(dst + 3 * size, load<T>(s3 + off));
    off += size;
    dst += dstStep;
  }
}

/**
 * Any layout, any width: for each p, `width` elements (the first `count` read from
 * src + (p*pStride + r*rStride) elements, the rest zeros) side by side at dst + p*width.
 */
function packPartial<T>(src: usize, pStride: usize, rStride: usize, count: i32, width: i32, kc: i32, dst: usize): void {
  const size = sizeof<T>();
  for (let p = 0; p < kc; p++) {
    for (let r = 0; r < width; r++) {
      store<T>(dst + <usize>r * size, r < count ? load<T>(src + (<usize>p * pStride + <usize>r * rStride) * size) : <T>0);
    }
    dst += <usize>width * size;
  }
}

/** v128 with every lane the T at `ptr` (a broadcast load). */
@inline function splatLoad<T>(ptr: usize): v128 {
  return sizeof<T>() == 4 ? v128.load32_splat(ptr) : v128.load64_splat(ptr);
}

/**
 * Packs opA[i0:i0+mc, p0:p0+kc] into MR-row panels at `dst`: panel q holds, for p = 0..kc-1,
 * opA[i0+q*MR+r][p0+p] for r = 0..MR-1, each broadcast to a v128 (A_STEP_BYTES per p); rows
 * past mc are zeros. A is m x k row-major (or k x m if transA) at `a`.
 */
function packA<T>(a: usize, m: i32, k: i32, transA: bool, i0: i32, mc: i32, p0: i32, kc: i32, dst: usize): void {
  const size = sizeof<T>();
  const rowBytes: usize = (transA ? 1 : <usize>k) * size; // bytes between opA[i][p] and opA[i+1][p]
  const colBytes: usize = (transA ? <usize>m : 1) * size; // ... and opA[i][p+1]
  for (let ir = 0; ir < mc; ir += MR) {
    let src = a + (<usize>(i0 + ir)) * rowBytes + (<usize>p0) * colBytes;
    const rows = min(MR, mc - ir);
    if (rows == MR) {
      for (let p = 0; p < kc; p++) {
        v128.store(dst, splatLoad<T>(src));
        v128.store(dst, splatLoad<T>(src + rowBytes), 16);
        v128.store(dst, splatLoad<T>(src + 2 * rowBytes), 32);
        v128.store(dst, splatLoad<T>(src + 3 * rowBytes), 48);
        src += colBytes;
        dst += A_STEP_BYTES;
      }
    } else {
      for (let p = 0; p < kc; p++) {
        for (let r = 0; r < MR; r++) {
          v128.store(dst + <usize>r * 16, r < rows ? splatLoad<T>(src + <usize>r * rowBytes) : i32x4.splat(0));
        }
        src += colBytes;
        dst += A_STEP_BYTES;
      }
    }
  }
}

/**
 * Packs opB[p0:p0+kc, j0:j0+nc] into NR-column panels at `dst`: panel q holds, for p = 0..kc-1,
 * opB[p0+p][j0+q*NR+0..NR-1] side by side; columns past nc are zeros.
 * B is k x n row-major (or n x k if transB) at `b`.
 */
function packB<T>(b: usize, k: i32, n: i32, transB: bool, p0: i32, kc: i32, j0: i32, nc: i32, dst: usize): void {
  const size = sizeof<T>();
  const NR = nr<T>();
  const rowStride: usize = transB ? 1 : <usize>n; // elements between opB[p][j] and opB[p+1][j]
  const colStride: usize = transB ? <usize>k : 1; // ... and opB[p][j+1]
  const panelBytes = <usize>kc * NR_BYTES;
  for (let jr = 0; jr < nc; jr += NR) {
    const src = b + ((<usize>p0) * rowStride + (<usize>(j0 + jr)) * colStride) * size;
    const cols = min(NR, nc - jr);
    if (cols < NR) packPartial<T>(src, rowStride, colStride, cols, NR, kc, dst);
    else if (!transB) copyPanel(src, rowStride * size, kc, dst);
    else {
      // NR stored rows of B, contiguous along p: 4 at a time (float32 has NR = 8: two halves)
      const rowBytes = colStride * size;
      transposePanel4<T>(src, rowBytes, kc, dst, NR_BYTES);
      if (NR == 8) transposePanel4<T>(src + 4 * rowBytes, rowBytes, kc, dst + 16, NR_BYTES);
    }
    dst += panelBytes;
  }
}

// ---------------------------------------------------------------------------------------------
// One tile of one product
// ---------------------------------------------------------------------------------------------

/** C[i0:i1, j0:j1] = opA @ opB for one batch entry (a, b, c at that entry's first element). */
function gemmTile<T>(
  a: usize, b: usize, c: usize, m: i32, k: i32, n: i32, transA: bool, transB: bool,
  i0: i32, i1: i32, j0: i32, j1: i32, scratch: usize,
): void {
  const size = sizeof<T>();
  const NR = nr<T>();
  const ldc = (<usize>n) * size;
  if (k == 0) {
    for (let i = i0; i < i1; i++) memory.fill(c + (<usize>i) * ldc + (<usize>j0) * size, 0, (<usize>(j1 - j0)) * size);
    return;
  }
  const bp = scratch;
  const ap = scratch + BP_BYTES;
  const edge = ap + AP_BYTES;
  const MC = mc();
  const NC = nc<T>();
  for (let jc = j0; jc < j1; jc += NC) {
    const ncur = min(NC, j1 - jc);
    for (let pc = 0; pc < k; pc += KC) {
      const kc = min(KC, k - pc);
      const accumulate = pc > 0;
      packB<T>(b, k, n, transB, pc, kc, jc, ncur, bp);
      for (let ic = i0; ic < i1; ic += MC) {
        const mcur = min(MC, i1 - ic);
        packA<T>(a, m, k, transA, ic, mcur, pc, kc, ap);
        for (let jr = 0; jr < ncur; jr += NR) {
          const cols = min(NR, ncur - jr);
          const bPanel = bp + (<usize>(jr * kc)) * size;
          for (let ir = 0; ir < mcur; ir += MR) {
            const rows = min(MR, mcur - ir);
            const aPanel = ap + (<usize>(ir * kc)) * (A_STEP_BYTES / MR);
            const cTile = c + (<usize>(ic + ir)) * ldc + (<usize>(jc + jr)) * size;
            if (rows == MR && cols == NR) {
              microKernel<T>(aPanel, bPanel, kc, cTile, ldc, accumulate);
            } else {
              // edge tile: compute the full padded tile aside, then copy / add its valid part
              microKernel<T>(aPanel, bPanel, kc, edge, NR_BYTES, false);
              for (let r = 0; r < rows; r++) {
                for (let j = 0; j < cols; j++) {
                  const src = edge + (<usize>r) * NR_BYTES + (<usize>j) * size;
                  const dst = cTile + (<usize>r) * ldc + (<usize>j) * size;
                  store<T>(dst, accumulate ? load<T>(dst) + load<T>(src) : load<T>(src));
                }
              }
            }
          }
        }
      }
    }
  }
}

/** Decodes the descriptor and task index, then computes the task's tiles, batch by batch. */
@inline function matmulTask<T>(desc: usize, task: i32, scratch: usize): void {
  const size = sizeof<T>();
  const a = <usize>load<u32>(desc, D_A);
  const b = <usize>load<u32>(desc, D_B);
  const c = <usize>load<u32>(desc, D_C);
  const batch = load<i32>(desc, D_BATCH);
  const m = load<i32>(desc, D_M);
  const k = load<i32>(desc, D_K);
  const n = load<i32>(desc, D_N);
  const flags = load<i32>(desc, D_FLAGS);
  const aStride = <usize>load<u32>(desc, D_A_STRIDE) * size;
  const bStride = <usize>load<u32>(desc, D_B_STRIDE) * size;
  const batchPer = load<i32>(desc, D_BATCH_PER);
  const rowsPer = load<i32>(desc, D_ROWS_PER);
  const colsPer = load<i32>(desc, D_COLS_PER);
  const tilesM = load<i32>(desc, D_TILES_M);
  const tilesN = load<i32>(desc, D_TILES_N);

  const tn = task % tilesN;
  const tm = (task / tilesN) % tilesM;
  const tb = task / (tilesN * tilesM);
  const i0 = tm * rowsPer, i1 = min(m, i0 + rowsPer);
  const j0 = tn * colsPer, j1 = min(n, j0 + colsPer);
  const b0 = tb * batchPer, b1 = min(batch, b0 + batchPer);
  const cStride = (<usize>m) * (<usize>n) * size;
  for (let bt = b0; bt < b1; bt++) {
    gemmTile<T>(
      a + (<usize>bt) * aStride, b + (<usize>bt) * bStride, c + (<usize>bt) * cStride,
      m, k, n, (flags & 1) != 0, (flags & 2) != 0, i0, i1, j0, j1, scratch,
    );
  }
}

/** float32 C = op(A) @ op(B): one task of the descriptor at `desc` (see the top of this file). */
export function matmul_f32(desc: usize, task: i32, scratch: usize): void {
  matmulTask<f32>(desc, task, scratch);
}

/** float64 C = op(A) @ op(B): one task of the descriptor at `desc` (see the top of this file). */
export function matmul_f64(desc: usize, task: i32, scratch: usize): void {
  matmulTask<f64>(desc, task, scratch);
}
