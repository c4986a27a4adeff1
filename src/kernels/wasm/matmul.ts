/**
 * The JS side of the wasm matmul kernels (wasm/assembly/matmul.ts): cuts C into tasks, writes
 * the kernel's descriptor and has the runner run the tasks.
 *
 * Descriptor, at rt.descPtr, 15 little-endian u32 fields (byte offset: field):
 *
 *    0 a        byte address of A[0]; A[b] is m x k row-major (k x m when transA)
 *    4 b        byte address of B[0]; B[b] is k x n row-major (n x k when transB)
 *    8 c        byte address of C[0]; C[b] is m x n row-major, products one after another
 *   12 batch    16 m    20 k    24 n
 *   28 flags    bit 0 transA, bit 1 transB
 *   32 aStride  elements between A[b] and A[b+1] (0: one A for every b)
 *   36 bStride  elements between B[b] and B[b+1] (0: one B for every b)
 *   40 batchPer products per task
 *   44 rowsPer  rows of C per task       48 colsPer  columns of C per task
 *   52 tilesM   ceil(m / rowsPer)        56 tilesN   ceil(n / colsPer)
 *
 * Task t computes batches [tb*batchPer, +batchPer), rows [tm*rowsPer, +rowsPer), columns
 * [tn*colsPer, +colsPer) of C, clipped, where t = (tb*tilesM + tm)*tilesN + tn.
 */
import { BackendError } from '../../errors';
import type { MatmulShape } from '../backend';
import type { WasmKernelRunner } from './runner';

export type WasmMatmulDType = 'float32' | 'float64';

/** How one matmul is cut into tasks (the descriptor's fields 40..56). */
export interface MatmulPlan {
  tasks: number;
  batchPer: number;
  rowsPer: number;
  colsPer: number;
  tilesM: number;
  tilesN: number;
}

/** Register tile rows of both kernels: rowsPer is a multiple of it (unless it is all of m). */
const MR = 4;
/**
 * Columns per task are a multiple of 64 bytes of C (a cache line: two threads never write one
 * line, and the kernels' 8-float / 4-double register tiles divide it).
 */
const COL_ALIGN_BYTES = 64;
/**
 * Multiply-adds a task should at least do (~80 us at 25 GFLOP/s), so that handing a task to
 * another thread costs little next to the work. Products smaller than this are one task, or
 * several of them share one.
 */
const MIN_TASK_WORK = 1 << 20;
/** Tiles one product is cut into at most: enough for 2 threads to balance, few enough that re-packing the operands of each tile stays cheap. */
const MAX_TILES = 8;
/** A tile keeps at least this many rows and columns (re-packing cost grows as tiles shrink). */
const MIN_TILE_SIDE = 64;

const bytesOf = (dtype: WasmMatmulDType): number => (dtype === 'float32' ? 4 : 8);

/**
 * The shape the kernel is given. One B for every product (bBatchStride 0) times A's products
 * stored back to back, untransposed, is one product with batch*m rows, because C's products are
 * back to back too: a linear layer over [batch, tokens, features]. Folding it packs B once
 * instead of once per product, and gives the task split more rows; each element of C is still
 * the same sum in the same order.
 */
function kernelShape(s: MatmulShape): MatmulShape {
  if (s.batch > 1 && s.bBatchStride === 0 && !s.transA && s.aBatchStride === s.m * s.k) {
    return { ...s, batch: 1, m: s.batch * s.m, aBatchStride: 0 };
  }
  return s;
}

/**
 * How many tasks (and of what size) matmulInto runs for this shape on `threads` threads; 0 when
 * C is empty. One thread gets one tile per product: every tile packs its own rows of A and
 * columns of B, so cutting a product only adds packing (~9% for the 64 x 688 x 256 product of a
 * backward's dX, whose A each of 8 column tiles packed again) unless another thread takes tiles.
 */
export function matmulTasks(shape: MatmulShape, dtype: WasmMatmulDType, threads: number): MatmulPlan {
  const { batch, m, n, k } = kernelShape(shape);
  if (batch * m * n === 0) return { tasks: 0, batchPer: 1, rowsPer: m, colsPer: n, tilesM: 0, tilesN: 0 };
  const perProduct = m * n * Math.max(k, 1);
  // Tiles per product: a power of two, so that 2 threads get equal shares.
  let wanted = 1;
  while (threads > 1 && wanted < MAX_TILES && perProduct >= 2 * wanted * MIN_TASK_WORK) wanted *= 2;
  // Halve the longer side until there are enough tiles or the sides get too short.
  let tm = 1;
  let tn = 1;
  while (tm * tn < wanted) {
    const rows = m / tm;
    const cols = n / tn;
    if (rows >= cols && rows >= 2 * MIN_TILE_SIDE) tm *= 2;
    else if (cols >= 2 * MIN_TILE_SIDE) tn *= 2;
    else if (rows >= 2 * MIN_TILE_SIDE) tm *= 2;
    else break;
  }
  const colAlign = COL_ALIGN_BYTES / bytesOf(dtype);
  const rowsPer = tm === 1 ? m : roundUp(Math.ceil(m / tm), MR);
  const colsPer = tn === 1 ? n : roundUp(Math.ceil(n / tn), colAlign);
  const tilesM = Math.ceil(m / rowsPer);
  const tilesN = Math.ceil(n / colsPer);
  // Small products: several per task, up to MIN_TASK_WORK (so a big batch of them still splits).
  const batchPer = tilesM * tilesN === 1 ? Math.max(1, Math.min(batch, Math.floor(MIN_TASK_WORK / perProduct))) : 1;
  return { tasks: Math.ceil(batch / batchPer) * tilesM * tilesN, batchPer, rowsPer, colsPer, tilesM, tilesN };
}

function roundUp(x: number, to: number): number {
  return Math.ceil(x / to) * to;
}

/** Throws a BackendError unless the shape's counts are valid and every operand lies inside memory. */
function check(rt: WasmKernelRunner, dtype: WasmMatmulDType, a: number, b: number, c: number, s: MatmulShape): void {
  const fail = (problem: string, fix: string): never => {
    const shape = `batch ${s.batch}, m ${s.m}, k ${s.k}, n ${s.n}, transA ${s.transA}, transB ${s.transB}`;
    throw new BackendError('matmul', `wasm ${dtype} kernel (${shape}): ${problem}; ${fix}`);
  };
  const count = (name: string, v: number): void => {
    if (!(Number.isInteger(v) && v >= 0 && v <= 0xffffffff)) fail(`${name} must be an integer in [0, 2^32), got ${v}`, 'pass element counts');
  };
  count('batch', s.batch);
  count('m', s.m);
  count('k', s.k);
  count('n', s.n);
  count('aBatchStride', s.aBatchStride);
  count('bBatchStride', s.bBatchStride);
  if ((s.aOffset ?? 0) !== 0 || (s.bOffset ?? 0) !== 0) {
    fail(`aOffset ${s.aOffset} / bOffset ${s.bOffset} given`, 'fold the offsets into the byte addresses a and b');
  }
  const size = bytesOf(dtype);
  const memBytes = rt.memory.buffer.byteLength;
  const extent = (name: string, addr: number, elems: number): void => {
    if (!(Number.isInteger(addr) && addr >= 0 && addr % size === 0)) {
      fail(`${name} must be a byte address aligned to ${size}, got ${addr}`, 'allocate operands on element boundaries');
    }
    if (addr + elems * size > memBytes) {
      fail(`${name} (byte ${addr}, ${elems} elements) runs past the end of wasm memory (${memBytes} bytes)`, 'check the operand\'s address and size');
    }
  };
  if (s.batch === 0) return;
  if (s.m * s.k > 0) extent('A', a, (s.batch - 1) * s.aBatchStride + s.m * s.k);
  if (s.k * s.n > 0) extent('B', b, (s.batch - 1) * s.bBatchStride + s.k * s.n);
  extent('C', c, s.batch * s.m * s.n);
}

/**
 * C = op(A) @ op(B) in wasm memory, for every batch entry: a, b and c are byte addresses of the
 * operands' first elements (offsets already folded in), C is written contiguously (batch x m x n)
 * and must not overlap A or B. k = 0 writes zeros.
 */
export function matmulInto(
  rt: WasmKernelRunner,
  dtype: WasmMatmulDType,
  a: number,
  b: number,
  c: number,
  shape: MatmulShape,
): void {
  check(rt, dtype, a, b, c, shape);
  const plan = matmulTasks(shape, dtype, rt.threads ?? 1);
  if (plan.tasks === 0) return;
  const s = kernelShape(shape);
  const d = new Uint32Array(rt.memory.buffer, rt.descPtr, 15);
  d[0] = a;
  d[1] = b;
  d[2] = c;
  d[3] = s.batch;
  d[4] = s.m;
  d[5] = s.k;
  d[6] = s.n;
  d[7] = (s.transA ? 1 : 0) | (s.transB ? 2 : 0);
  d[8] = s.aBatchStride;
  d[9] = s.bBatchStride;
  d[10] = plan.batchPer;
  d[11] = plan.rowsPer;
  d[12] = plan.colsPer;
  d[13] = plan.tilesM;
  d[14] = plan.tilesN;
  rt.run(dtype === 'float32' ? 'matmul_f32' : 'matmul_f64', rt.descPtr, plan.tasks);
}
