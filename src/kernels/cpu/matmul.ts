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
//       pack opB[pc:pc+KC, jc:jc+NC]  -> bPack   (column panels NR wide; sized for L2)
//       for ic in 0..m step MC        -- a block of MC rows of out / opA
//         pack opA[ic:ic+MC, pc:pc+KC] -> aPack  (row panels MR tall; sized for L2)
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
// Why the 4x8 register tile: each step of the innermost loop loads 4 values of A and 8 of B
// and does 32 multiply-adds into 32 local variables (V8 keeps most in registers, the rest in
// L1-resident stack slots). That is ~2.7 flops per array load instead of the naive kernel's 1
// (whose B load is also strided). Measured in V8, 4x4 / 4x8 / 8x8 tiles all land within ~10%
// of each other; 4x8 was the best of the readable ones.
//
// Edges: panels are zero-padded up to a multiple of MR / NR, and the micro-kernel writes into
// a Float64Array accumulator `acc` (one m x NC column block of out) whose size is also rounded
// up to multiples of MR x NR, so the micro-kernel never needs an edge case: the padded
// rows/columns just compute zeros that are never copied out. `acc` also keeps the partial sums
// over the KC slices in double precision (storing them into a Float32Array/Int32Array `out`
// between slices would round each time); the valid part is converted into `out` once, after
// the last slice. Its size is bounded by m*NC, not m*n.

/** Register tile: rows of out per micro-kernel call (microKernel4x8 is written for 4). */
const MR = 4;
/** Register tile: columns of out per micro-kernel call (microKernel4x8 is written for 8). */
const NR = 8;
/**
 * Slice of the shared dimension per pass: one B micro-panel is KC*NR*8 bytes = 16 KiB and one
 * A micro-panel 8 KiB, so both stay in a 32-48 KiB L1 while the micro-kernel runs.
 */
const KC = 256;
/** Rows of A packed at a time: MC*KC*8 bytes = 256 KiB, comfortably inside L2. */
const MC = 128;
/** Columns of B packed at a time: KC*NC*8 bytes = 512 KiB, inside L2 next to the A block. */
const NC = 256;

// Scratch buffers, shared across calls and grown on demand (JS is single-threaded, and none of
// these functions re-enter one another, so sharing is safe).
const aPack = new Float64Array(MC * KC); // the largest A block ever packed
let bPack = new Float64Array(KC * 64);
let acc = new Float64Array(64 * 64);

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
    for (let p = 0; p < kc; p++) {
      const src = aBase + (i0 + ir) * aRow + (p0 + p) * aCol;
      for (let ii = 0; ii < rows; ii++) dst[d + ii] = a[src + ii * aRow];
      for (let ii = rows; ii < MR; ii++) dst[d + ii] = 0;
      d += MR;
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
    for (let p = 0; p < kc; p++) {
      const src = bBase + (p0 + p) * bRow + (j0 + jr) * bCol;
      for (let jj = 0; jj < cols; jj++) dst[d + jj] = b[src + jj * bCol];
      for (let jj = cols; jj < NR; jj++) dst[d + jj] = 0;
      d += NR;
    }
  }
}

/**
 * The micro-kernel: c[0:4, 0:8] (+)= aPanel (4 x kc) @ bPanel (kc x 8), where the panels are
 * packed as described above and c starts at `cOff` with row stride `ldc`. `accumulate` false
 * overwrites c (first KC slice), true adds to it (later slices).
 *
 * Written out by hand: 32 accumulators in locals, the 4 values of A for step p held in locals,
 * and B consumed one value at a time (each feeding 4 multiply-adds). That order measured
 * faster in V8 than loading all 8 B values up front (fewer live values, less spilling), and
 * 4x8 slightly faster than 4x4 (2.67 instead of 2 flops per load).
 */
function microKernel4x8(
  ap: Float64Array,
  aOff: number,
  bp: Float64Array,
  bOff: number,
  kc: number,
  c: Float64Array,
  cOff: number,
  ldc: number,
  accumulate: boolean,
): void {
  let c00 = 0, c01 = 0, c02 = 0, c03 = 0, c04 = 0, c05 = 0, c06 = 0, c07 = 0;
  let c10 = 0, c11 = 0, c12 = 0, c13 = 0, c14 = 0, c15 = 0, c16 = 0, c17 = 0;
  let c20 = 0, c21 = 0, c22 = 0, c23 = 0, c24 = 0, c25 = 0, c26 = 0, c27 = 0;
  let c30 = 0, c31 = 0, c32 = 0, c33 = 0, c34 = 0, c35 = 0, c36 = 0, c37 = 0;
  let ai = aOff;
  let bi = bOff;
  for (let p = 0; p < kc; p++) {
    // One rank-1 update of the tile: column p of the A panel times row p of the B panel.
    const a0 = ap[ai], a1 = ap[ai + 1], a2 = ap[ai + 2], a3 = ap[ai + 3];
    let b = bp[bi];
    c00 += a0 * b; c10 += a1 * b; c20 += a2 * b; c30 += a3 * b;
    b = bp[bi + 1];
    c01 += a0 * b; c11 += a1 * b; c21 += a2 * b; c31 += a3 * b;
    b = bp[bi + 2];
    c02 += a0 * b; c12 += a1 * b; c22 += a2 * b; c32 += a3 * b;
    b = bp[bi + 3];
    c03 += a0 * b; c13 += a1 * b; c23 += a2 * b; c33 += a3 * b;
    b = bp[bi + 4];
    c04 += a0 * b; c14 += a1 * b; c24 += a2 * b; c34 += a3 * b;
    b = bp[bi + 5];
    c05 += a0 * b; c15 += a1 * b; c25 += a2 * b; c35 += a3 * b;
    b = bp[bi + 6];
    c06 += a0 * b; c16 += a1 * b; c26 += a2 * b; c36 += a3 * b;
    b = bp[bi + 7];
    c07 += a0 * b; c17 += a1 * b; c27 += a2 * b; c37 += a3 * b;
    ai += MR;
    bi += NR;
  }
  const r0 = cOff, r1 = r0 + ldc, r2 = r1 + ldc, r3 = r2 + ldc;
  if (accumulate) {
    c[r0] += c00; c[r0 + 1] += c01; c[r0 + 2] += c02; c[r0 + 3] += c03;
    c[r0 + 4] += c04; c[r0 + 5] += c05; c[r0 + 6] += c06; c[r0 + 7] += c07;
    c[r1] += c10; c[r1 + 1] += c11; c[r1 + 2] += c12; c[r1 + 3] += c13;
    c[r1 + 4] += c14; c[r1 + 5] += c15; c[r1 + 6] += c16; c[r1 + 7] += c17;
    c[r2] += c20; c[r2 + 1] += c21; c[r2 + 2] += c22; c[r2 + 3] += c23;
    c[r2 + 4] += c24; c[r2 + 5] += c25; c[r2 + 6] += c26; c[r2 + 7] += c27;
    c[r3] += c30; c[r3 + 1] += c31; c[r3 + 2] += c32; c[r3 + 3] += c33;
    c[r3 + 4] += c34; c[r3 + 5] += c35; c[r3 + 6] += c36; c[r3 + 7] += c37;
  } else {
    c[r0] = c00; c[r0 + 1] = c01; c[r0 + 2] = c02; c[r0 + 3] = c03;
    c[r0 + 4] = c04; c[r0 + 5] = c05; c[r0 + 6] = c06; c[r0 + 7] = c07;
    c[r1] = c10; c[r1 + 1] = c11; c[r1 + 2] = c12; c[r1 + 3] = c13;
    c[r1 + 4] = c14; c[r1 + 5] = c15; c[r1 + 6] = c16; c[r1 + 7] = c17;
    c[r2] = c20; c[r2 + 1] = c21; c[r2 + 2] = c22; c[r2 + 3] = c23;
    c[r2 + 4] = c24; c[r2 + 5] = c25; c[r2 + 6] = c26; c[r2 + 7] = c27;
    c[r3] = c30; c[r3 + 1] = c31; c[r3 + 2] = c32; c[r3 + 3] = c33;
    c[r3 + 4] = c34; c[r3 + 5] = c35; c[r3 + 6] = c36; c[r3 + 7] = c37;
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

  // Size the scratch buffers for this problem (they only ever grow).
  const ldc = roundUp(Math.min(NC, n), NR); // row stride of acc: the widest column block, padded
  const bPackNeed = ldc * Math.min(KC, k);
  if (bPack.length < bPackNeed) bPack = new Float64Array(bPackNeed);
  const accNeed = roundUp(m, MR) * ldc;
  if (acc.length < accNeed) acc = new Float64Array(accNeed);
  const ap = aPack;
  const bp = bPack;
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
              microKernel4x8(ap, aOff, bp, bOff, kc, c, (ic + ir) * ldc + jr, ldc, accumulate);
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
 * float32 cubes: the blocked kernel is level at ~6^3 and 1.7x faster at 8^3.
 */
const BLOCKED_MIN_WORK = 8 * 8 * 8;

/** What the backend calls: picks matmulBlocked when it pays off (e.g. m*n*k above a small threshold), else the reference. */
export function matmul(a: NumericArray, b: NumericArray, out: NumericArray, s: MatmulShape): void {
  // Very thin products waste most of each 4x8 register tile on zero padding: measured with
  // k = n = 256, the blocked kernel loses at m = 1 and wins from m = 2; with m = k = 256 it
  // loses at n = 1, 2 and wins from n = 3.
  if (s.m * s.n * s.k >= BLOCKED_MIN_WORK && s.m >= 2 && s.n >= 3) {
    matmulBlocked(a, b, out, s);
  } else {
    matmulReference(a, b, out, s);
  }
}
