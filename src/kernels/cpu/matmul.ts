/**
 * CPU matrix-multiply kernels.
 *
 * Two implementations share one contract (see {@link MatmulShape}):
 *
 *  - {@link matmulReference}: the textbook triple loop. Easy to read, easy to trust, slow.
 *    The tests use it as the oracle for everything else.
 *  - {@link matmulBlocked}: a cache- and register-blocked kernel in the style of GotoBLAS /
 *    BLIS, written for what a JS engine does well (scalar doubles in locals, monomorphic
 *    Float64Array reads). Several times faster than the reference at a few hundred rows.
 *
 * {@link matmul} picks between them by problem size; it is what the backend calls.
 *
 * Both accumulate every dot product in JS numbers (doubles) and only convert when storing
 * into `out`, so Float32Array / Int32Array results are the double sum rounded once.
 */

export type NumericArray = Float64Array | Float32Array | Int32Array;

export interface MatmulShape {
  batch: number; // number of matrix products
  m: number;
  k: number;
  n: number; // out[b] (m x n) = opA(A[b]) (m x k) @ opB(B[b]) (k x n)
  transA: boolean; // A[b] is stored row-major as k x m (use its transpose) instead of m x k
  transB: boolean; // B[b] is stored row-major as n x k instead of k x n
  aBatchStride: number; // elements between consecutive A[b]; 0 broadcasts one A over the batch
  bBatchStride: number; // likewise for B
  aOffset?: number;
  bOffset?: number; // start of A[0]/B[0] in the arrays (default 0)
}

// ---------------------------------------------------------------------------------------------
// Argument checking (shared by both kernels)
// ---------------------------------------------------------------------------------------------

function checkCount(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 0) throw new RangeError(`matmul: ${name} must be a non-negative integer, got ${v}`);
}

/** Throws a RangeError unless every element either kernel will touch lies inside its array. */
function checkShape(a: NumericArray, b: NumericArray, out: NumericArray, s: MatmulShape): void {
  const { batch, m, k, n, aBatchStride, bBatchStride } = s;
  const aOffset = s.aOffset ?? 0;
  const bOffset = s.bOffset ?? 0;
  checkCount('batch', batch);
  checkCount('m', m);
  checkCount('k', k);
  checkCount('n', n);
  checkCount('aBatchStride', aBatchStride);
  checkCount('bBatchStride', bBatchStride);
  checkCount('aOffset', aOffset);
  checkCount('bOffset', bOffset);
  if (out.length < batch * m * n) {
    throw new RangeError(`matmul: out has ${out.length} elements, needs ${batch * m * n}`);
  }
  if (batch === 0) return;
  if (m * k > 0) {
    const aEnd = aOffset + (batch - 1) * aBatchStride + m * k;
    if (aEnd > a.length) throw new RangeError(`matmul: A has ${a.length} elements, needs ${aEnd}`);
  }
  if (k * n > 0) {
    const bEnd = bOffset + (batch - 1) * bBatchStride + k * n;
    if (bEnd > b.length) throw new RangeError(`matmul: B has ${b.length} elements, needs ${bEnd}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Reference kernel
// ---------------------------------------------------------------------------------------------

/** Textbook triple loop, for reading and as the oracle. Writes (does not accumulate) out, length batch*m*n, row-major, contiguous. */
export function matmulReference(a: NumericArray, b: NumericArray, out: NumericArray, s: MatmulShape): void {
  checkShape(a, b, out, s);
  const { batch, m, k, n, transA, transB, aBatchStride, bBatchStride } = s;
  const aOffset = s.aOffset ?? 0;
  const bOffset = s.bOffset ?? 0;

  // opA(A)[i][p] lives at aBase + i*aRow + p*aCol; opB(B)[p][j] at bBase + p*bRow + j*bCol.
  const aRow = transA ? 1 : k;
  const aCol = transA ? m : 1;
  const bRow = transB ? 1 : n;
  const bCol = transB ? k : 1;

  for (let bt = 0; bt < batch; bt++) {
    const aBase = aOffset + bt * aBatchStride;
    const bBase = bOffset + bt * bBatchStride;
    const outBase = bt * m * n;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let sum = 0;
        for (let p = 0; p < k; p++) {
          sum += a[aBase + i * aRow + p * aCol] * b[bBase + p * bRow + j * bCol];
        }
        out[outBase + i * n + j] = sum;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Blocked kernel
// ---------------------------------------------------------------------------------------------
//
// Loop structure (per batch entry), from outermost to innermost:
//
//   for jc in 0..n step NC            -- a block of NC columns of out / opB
//     for pc in 0..k step KC          -- a slice of KC along the shared dimension
//       pack opB[pc:pc+KC, jc:jc+NC]  -> bPack   (column panels NR wide)
//       for ic in 0..m step MC        -- a block of MC rows of out / opA
//         pack opA[ic:ic+MC, pc:pc+KC] -> aPack  (row panels MR tall)
//         for jr in 0..NC step NR     -- one B micro-panel (KC x NR, stays in L1) ...
//           for ir in 0..MC step MR   -- ... swept against every A micro-panel of the block
//             micro-kernel: acc[ic+ir.., jr..] (+)= aPanel (MR x KC) @ bPanel (KC x NR)
//     copy acc (m x NC, double) into out[:, jc:jc+NC]
//
// Why packing: the micro-kernel then reads both operands strictly sequentially from two
// Float64Arrays, whatever the strides and transpositions of the inputs were (transA/transB
// cost nothing beyond a different gather order while packing), and the hot loop touches only
// one array type, so V8 keeps it monomorphic. Each element of B is packed once and each element
// of A once per NC-column block, i.e. O(kn + mk*n/NC) copies against O(mnk) multiply-adds:
// cheap for all but tiny problems.
//
// What makes the micro-kernel fast in V8 (x64). Numbers are GFLOP/s for 512^3 float32 on this
// project's 2-core KVM Intel Xeon (48 KiB L1d and 2 MiB L2 per core), Node 20, best of 8-15
// timings of each variant, variants alternating in one process. The previous kernel (4x8
// tile, scratch buffers passed as parameters) ran at 4.0.
//
//  1. The packed buffers are fixed-size module constants that the micro-kernel reads directly,
//     not through parameters. TurboFan then knows each array's identity, so it drops the map
//     check and the reloads of the length / data pointer that it otherwise repeats on every
//     loop iteration for every array, and each bounds check becomes a compare with a constant.
//     The biggest single win: 4.0 -> 5.4 with the 2x4 tile below (a 4x8 tile only reaches 4.5
//     this way, because it is limited by spilling instead).
//  2. A 2x4 register tile: 8 accumulators + 2 values of A + 4 of B = 14 doubles, which fits the
//     16 XMM registers V8 allocates from (it keeps one as scratch), so the accumulators stay in
//     registers. Bigger tiles do fewer loads per multiply-add but spill accumulators to the
//     stack, and each spilled `c += a * b` becomes load + mul + add + store. With (1) in place:
//     2x4 5.4, 4x2 5.4, 2x3 5.3, 3x3 5.2, 1x8 5.0, 3x4 4.6, 8x4 4.5, 4x8 4.5, 6x4 4.4,
//     4x4 4.3, 2x2 4.5. Unrolling k by 2 hurt (2x4: 5.4 -> 4.4; more live values, more spills).
//  3. `| 0` on the panel index arithmetic: it tells TurboFan the sums wrap as int32, so
//     `ai + 1` and `ai += MR` compile to a single lea/add instead of add + overflow check (+ a
//     sign extension before the bounds check). Without it: 5.4 -> 4.4.
//  4. packA/packB copy full panels (all but the last of each block) with a fixed, unrolled
//     copy instead of a loop over a run-time row/column count: packing is O(n^2), so this only
//     shows at small sizes (+5% at 128^3).
//
// Measured and not kept: packing into Float32Array instead of Float64Array (halves the cache
// footprint, but every read then needs a float -> double conversion: 5.4 -> 4.3); other block
// sizes (KC 128 to 512, MC 64 to 512, NC 256 or 512 all within 1% at 256^3 and 512^3: the
// packed blocks fit the L2 either way and the kernel is compute-bound); a loop counted on the
// A index instead of p, and masking indices with `& (length - 1)` so TurboFan can drop the
// bounds checks (both no better or slower).
//
// Edges: panels are zero-padded up to a multiple of MR / NR, and the micro-kernel writes into
// a Float64Array accumulator `acc` (one m x NC column block of out) whose size is also rounded
// up to multiples of MR x NR, so the micro-kernel never needs an edge case: the padded
// rows/columns just compute zeros that are never copied out. `acc` also keeps the partial sums
// over the KC slices in double precision (storing them into a Float32Array/Int32Array `out`
// between slices would round each time); the valid part is converted into `out` once, after
// the last slice. Its size is bounded by m*NC, not m*n.

/** Register tile: rows of out per micro-kernel call (microKernel2x4 is written for 2). */
const MR = 2;
/** Register tile: columns of out per micro-kernel call (microKernel2x4 is written for 4). */
const NR = 4;
/**
 * Slice of the shared dimension per pass: one B micro-panel is KC*NR*8 bytes = 8 KiB and one
 * A micro-panel 4 KiB, so both stay in L1 (48 KiB here) while the micro-kernel runs.
 */
const KC = 256;
/** Rows of A packed at a time: MC*KC*8 bytes = 256 KiB, inside L2. Must be a multiple of MR. */
const MC = 128;
/** Columns of B packed at a time: KC*NC*8 bytes = 512 KiB, in L2 next to the A block. Multiple of NR. */
const NC = 256;

// Scratch buffers, shared across calls (JS is single-threaded, and none of these functions
// re-enter one another, so sharing is safe). aPack and bPack are sized once for the largest
// blocks ever packed and never replaced: see (1) above for why they must stay constants.
const aPack = new Float64Array(MC * KC);
const bPack = new Float64Array(KC * NC);
let acc = new Float64Array(64 * 64); // grows with m; only touched outside the hot loop

function roundUp(x: number, to: number): number {
  return Math.ceil(x / to) * to;
}

/**
 * Packs opA[i0:i0+mc, p0:p0+kc] into `aPack` as ceil(mc/MR) row panels; panel r holds, for each
 * p in 0..kc, the MR values opA[i0+r*MR+0..MR-1][p0+p] next to each other (zero past row mc).
 */
function packA(
  a: NumericArray,
  aBase: number,
  aRow: number,
  aCol: number,
  i0: number,
  mc: number,
  p0: number,
  kc: number,
): void {
  const dst = aPack;
  let d = 0;
  for (let ir = 0; ir < mc; ir += MR) {
    const rows = Math.min(MR, mc - ir);
    let src = aBase + (i0 + ir) * aRow + p0 * aCol;
    if (rows === MR) {
      // Full panel (all but possibly the last): unrolled for MR = 2, no padding (see (4)).
      for (let p = 0; p < kc; p++) {
        dst[d] = a[src];
        dst[d + 1] = a[src + aRow];
        src += aCol;
        d += MR;
      }
    } else {
      for (let p = 0; p < kc; p++) {
        for (let ii = 0; ii < rows; ii++) dst[d + ii] = a[src + ii * aRow];
        for (let ii = rows; ii < MR; ii++) dst[d + ii] = 0;
        src += aCol;
        d += MR;
      }
    }
  }
}

/**
 * Packs opB[p0:p0+kc, j0:j0+nc] into `bPack` as ceil(nc/NR) column panels; panel c holds, for
 * each p in 0..kc, the NR values opB[p0+p][j0+c*NR+0..NR-1] next to each other (zero past col nc).
 */
function packB(
  b: NumericArray,
  bBase: number,
  bRow: number,
  bCol: number,
  p0: number,
  kc: number,
  j0: number,
  nc: number,
): void {
  const dst = bPack;
  let d = 0;
  for (let jr = 0; jr < nc; jr += NR) {
    const cols = Math.min(NR, nc - jr);
    let src = bBase + p0 * bRow + (j0 + jr) * bCol;
    if (cols === NR) {
      // Full panel (all but possibly the last): unrolled for NR = 4, no padding (see (4)).
      const c2 = 2 * bCol, c3 = 3 * bCol;
      for (let p = 0; p < kc; p++) {
        dst[d] = b[src];
        dst[d + 1] = b[src + bCol];
        dst[d + 2] = b[src + c2];
        dst[d + 3] = b[src + c3];
        src += bRow;
        d += NR;
      }
    } else {
      for (let p = 0; p < kc; p++) {
        for (let jj = 0; jj < cols; jj++) dst[d + jj] = b[src + jj * bCol];
        for (let jj = cols; jj < NR; jj++) dst[d + jj] = 0;
        src += bRow;
        d += NR;
      }
    }
  }
}

/**
 * The micro-kernel: c[0:2, 0:4] (+)= aPanel (2 x kc) @ bPanel (kc x 4), where the A panel starts
 * at aPack[aOff] and the B panel at bPack[bOff], packed as described above, and c starts at
 * `cOff` with row stride `ldc`. `accumulate` false overwrites c (first KC slice), true adds to
 * it (later slices).
 *
 * Reads aPack/bPack directly rather than taking them as parameters (see (1) above), and needs
 * only 14 doubles live in the loop (see (2)): the 8 accumulators, then per step p the 2 values
 * of column p of the A panel and the 4 of row p of the B panel, feeding one rank-1 update of
 * the tile. Nothing is written to `c` until the loop is done. (TurboFan's instruction order
 * still parks 2 of the accumulators in stack slots, one load + one store each per step; every
 * larger tile spills many more.) Index arithmetic is `| 0`-wrapped, see (3).
 */
function microKernel2x4(
  aOff: number,
  bOff: number,
  kc: number,
  c: Float64Array,
  cOff: number,
  ldc: number,
  accumulate: boolean,
): void {
  const ap = aPack; // local aliases of the module constants: still constants to TurboFan
  const bp = bPack;
  let c00 = 0, c01 = 0, c02 = 0, c03 = 0;
  let c10 = 0, c11 = 0, c12 = 0, c13 = 0;
  let ai = aOff | 0;
  let bi = bOff | 0;
  for (let p = 0; p < kc; p++) {
    const a0 = ap[ai], a1 = ap[(ai + 1) | 0];
    const b0 = bp[bi], b1 = bp[(bi + 1) | 0], b2 = bp[(bi + 2) | 0], b3 = bp[(bi + 3) | 0];
    c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
    c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
    ai = (ai + MR) | 0;
    bi = (bi + NR) | 0;
  }
  const r0 = cOff, r1 = r0 + ldc;
  if (accumulate) {
    c[r0] += c00; c[r0 + 1] += c01; c[r0 + 2] += c02; c[r0 + 3] += c03;
    c[r1] += c10; c[r1 + 1] += c11; c[r1 + 2] += c12; c[r1 + 3] += c13;
  } else {
    c[r0] = c00; c[r0 + 1] = c01; c[r0 + 2] = c02; c[r0 + 3] = c03;
    c[r1] = c10; c[r1 + 1] = c11; c[r1 + 2] = c12; c[r1 + 3] = c13;
  }
}

/** Fast kernel, same contract. */
export function matmulBlocked(a: NumericArray, b: NumericArray, out: NumericArray, s: MatmulShape): void {
  checkShape(a, b, out, s);
  const { batch, m, k, n, transA, transB, aBatchStride, bBatchStride } = s;
  const aOffset = s.aOffset ?? 0;
  const bOffset = s.bOffset ?? 0;
  if (batch === 0 || m === 0 || n === 0) return;
  if (k === 0) {
    out.fill(0, 0, batch * m * n); // empty sums
    return;
  }

  // Same addressing as the reference: opA[i][p] = a[aBase + i*aRow + p*aCol], and so on.
  const aRow = transA ? 1 : k;
  const aCol = transA ? m : 1;
  const bRow = transB ? 1 : n;
  const bCol = transB ? k : 1;

  // Size the accumulator for this problem (it only ever grows; aPack/bPack are fixed).
  const ldc = roundUp(Math.min(NC, n), NR); // row stride of acc: the widest column block, padded
  const accNeed = roundUp(m, MR) * ldc;
  if (acc.length < accNeed) acc = new Float64Array(accNeed);
  const c = acc;

  for (let bt = 0; bt < batch; bt++) {
    const aBase = aOffset + bt * aBatchStride;
    const bBase = bOffset + bt * bBatchStride;

    for (let jc = 0; jc < n; jc += NC) {
      const nc = Math.min(NC, n - jc);
      for (let pc = 0; pc < k; pc += KC) {
        const kc = Math.min(KC, k - pc);
        const accumulate = pc > 0;
        packB(b, bBase, bRow, bCol, pc, kc, jc, nc);
        for (let ic = 0; ic < m; ic += MC) {
          const mc = Math.min(MC, m - ic);
          packA(a, aBase, aRow, aCol, ic, mc, pc, kc);
          // Sweep one B micro-panel (in L1) across all A micro-panels of the packed block.
          for (let jr = 0; jr < nc; jr += NR) {
            const bOff = (jr / NR) * kc * NR;
            for (let ir = 0; ir < mc; ir += MR) {
              const aOff = (ir / MR) * kc * MR;
              microKernel2x4(aOff, bOff, kc, c, (ic + ir) * ldc + jr, ldc, accumulate);
            }
          }
        }
      }

      // Copy the valid m x nc part of the padded accumulator into out[bt][:, jc:jc+nc]; this
      // is where Float32Array/Int32Array results get rounded/truncated, once.
      const outBase = bt * m * n + jc;
      for (let i = 0; i < m; i++) {
        const src = i * ldc;
        const dst = outBase + i * n;
        for (let j = 0; j < nc; j++) out[dst + j] = c[src + j];
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Dispatch
// ---------------------------------------------------------------------------------------------

/**
 * Below this many multiply-adds per matrix product (m*n*k) the packing, padding and copy-out of
 * the blocked kernel cost more than they save, so the reference loop is used. Measured on
 * float32 cubes with the earlier 4x8 kernel: the blocked kernel is level at ~6^3 and 1.7x
 * faster at 8^3. The current 2x4 kernel is faster still, so these thresholds are conservative
 * (see the note in {@link matmul}).
 */
const BLOCKED_MIN_WORK = 8 * 8 * 8;

/** What the backend calls: picks matmulBlocked when it pays off (e.g. m*n*k above a small threshold), else the reference. */
export function matmul(a: NumericArray, b: NumericArray, out: NumericArray, s: MatmulShape): void {
  // Very thin products waste most of each register tile on zero padding. Measured with the
  // earlier 4x8 kernel: with k = n = 256 the blocked kernel lost at m = 1 and won from m = 2;
  // with m = k = 256 it lost at n = 1, 2 and won from n = 3. The 2x4 kernel pads less, and
  // rough re-measurements (on a heavily loaded machine) suggest it also wins at m = 1 for
  // k, n >= 64 and at n = 2 for m, k >= 16, but still loses at n = 1 and at m = 1 with n = 2;
  // the thresholds were left unchanged until that can be measured cleanly.
  if (s.m * s.n * s.k >= BLOCKED_MIN_WORK && s.m >= 2 && s.n >= 3) {
    matmulBlocked(a, b, out, s);
  } else {
    matmulReference(a, b, out, s);
  }
}
