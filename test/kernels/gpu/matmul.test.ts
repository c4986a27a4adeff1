/**
 * The gpu backend's batched matmul against the cpu backend's, in every gpu.js mode that works in
 * this process (headlessgl under `xvfb-run -a`). Inputs are float32 in [-1, 1); the gpu sums k
 * products in float32 where the cpu sums in doubles, so results agree to 1e-5 relative (absolute
 * below 1); float16 outputs to 2e-3 (one float16 step, where the two sums round to neighbours).
 */
import { availableGpuModes } from '../../../src';
import type { Backend, BackendBuffer, MatmulShape } from '../../../src/kernels/backend';
import { CpuBackend } from '../../../src/kernels/cpu/backend';
import { GpuBackend } from '../../../src/kernels/gpu/backend';
import type { DType } from '../../../src/tensor/dtype';
import { decodeFloat16, encodeFloat16 } from '../../../src/tensor/float16';
import { expectClose, uniformValues } from '../../helpers';

const TOL = 1e-5;
const cpu = new CpuBackend();
const modes = availableGpuModes();
const gpus = new Map(modes.map((mode) => [mode, new GpuBackend({ mode })]));
afterAll(() => gpus.forEach((g) => g.dispose()));

const values = (be: Backend, buf: BackendBuffer): number[] => Array.from(be.read({ buffer: buf, shape: [buf.length], strides: [1], offset: 0 }));


/** A full shape from the parts a case sets; A and B sized to hold every matrix the shape reads. */
function shapeOf(p: Partial<MatmulShape> & Pick<MatmulShape, 'm' | 'k' | 'n'>): { s: MatmulShape; aLen: number; bLen: number } {
  const batch = p.batch ?? 1;
  const s: MatmulShape = { batch, transA: false, transB: false, aBatchStride: p.m * p.k, bBatchStride: p.k * p.n, ...p };
  const aLen = (s.aOffset ?? 0) + (batch - 1) * s.aBatchStride + s.m * s.k + 2; // + 2: data past the end is not read
  const bLen = (s.bOffset ?? 0) + (batch - 1) * s.bBatchStride + s.k * s.n + 3;
  return { s, aLen, bLen };
}

/** Runs the case on cpu and gpu from the same float32 inputs; checks dtype, length and values. */
function compare(gpu: GpuBackend, p: Parameters<typeof shapeOf>[0], outDtype: DType = 'float32', tol = TOL, seed = 1): number[] {
  const { s, aLen, bLen } = shapeOf(p);
  const a = uniformValues(aLen, seed);
  const b = uniformValues(bLen, seed + 1);
  const run = (be: Backend) => be.matmul(be.upload('float32', a), be.upload('float32', b), s, outDtype);
  const c = run(cpu);
  const g = run(gpu);
  expect(g.dtype).toBe(outDtype);
  expect(g.length).toBe(s.batch * s.m * s.n);
  const got = values(gpu, g);
  expectClose(got, values(cpu, c), tol);
  return got;
}

describe.each(modes)('gpu matmul, mode %s', (mode) => {
  const gpu = gpus.get(mode)!;

  test('by hand: [[1, 2], [3, 4]] @ [[5, 6], [7, 8]], and with each operand transposed', () => {
    const a = gpu.upload('float32', [1, 2, 3, 4]);
    const b = gpu.upload('float32', [5, 6, 7, 8]);
    const mm = (transA: boolean, transB: boolean) =>
      values(gpu, gpu.matmul(a, b, { batch: 1, m: 2, k: 2, n: 2, transA, transB, aBatchStride: 4, bBatchStride: 4 }, 'float32'));
    expect(mm(false, false)).toEqual([19, 22, 43, 50]);
    expect(mm(true, false)).toEqual([26, 30, 38, 44]); // [[1, 3], [2, 4]] @ B
    expect(mm(false, true)).toEqual([17, 23, 39, 53]); // A @ [[5, 7], [6, 8]]
    expect(mm(true, true)).toEqual([23, 31, 34, 46]);
  });

  test.each([
    [1, 1, 1],
    [7, 33, 1],
    [1, 33, 7],
    [33, 7, 5],
    [5, 1, 7], // k = 1: an outer product
  ])('m=%i k=%i n=%i matches cpu for each transA/transB', (m, k, n) => {
    for (const transA of [false, true]) for (const transB of [false, true]) compare(gpu, { m, k, n, transA, transB }, 'float32', TOL, m * 100 + k);
  });

  test('batches: own matrices, broadcast A (aBatchStride 0), broadcast B, transposed', () => {
    compare(gpu, { batch: 3, m: 7, k: 5, n: 4 });
    compare(gpu, { batch: 3, m: 7, k: 5, n: 4, aBatchStride: 0 });
    compare(gpu, { batch: 4, m: 3, k: 33, n: 2, bBatchStride: 0, transB: true });
    compare(gpu, { batch: 2, m: 1, k: 7, n: 7, aBatchStride: 0, transA: true });
    // broadcast A really is one matrix: every batch entry of A @ B[b] uses the same A
    const a = gpu.upload('float32', [1, 0, 0, 2]);
    const b = gpu.upload('float32', [1, 2, 3, 4, 5, 6, 7, 8]);
    const out = gpu.matmul(a, b, { batch: 2, m: 2, k: 2, n: 2, transA: false, transB: false, aBatchStride: 0, bBatchStride: 4 }, 'float32');
    expect(values(gpu, out)).toEqual([1, 2, 6, 8, 5, 6, 14, 16]);
  });

  test('offsets of A[0] and B[0] are honoured, and a new offset reuses the compiled kernel', () => {
    compare(gpu, { batch: 2, m: 3, k: 7, n: 5, aOffset: 4, bOffset: 9 });
    compare(gpu, { batch: 2, m: 3, k: 7, n: 5, aOffset: 1, bOffset: 2, transA: true, aBatchStride: 30 });
    const a = gpu.upload('float32', [9, 9, 1, 2, 3, 4]);
    const b = gpu.upload('float32', [5, 6, 7, 8, 0]);
    const mm = (aOffset: number, bOffset: number) =>
      values(gpu, gpu.matmul(a, b, { batch: 1, m: 2, k: 2, n: 2, transA: false, transB: false, aBatchStride: 0, bBatchStride: 0, aOffset, bOffset }, 'float32'));
    expect(mm(2, 0)).toEqual([19, 22, 43, 50]);
    const compiled = gpu.info().kernelsCompiled;
    expect(mm(1, 1)).toEqual([9 * 6 + 1 * 8, 9 * 7 + 1 * 0, 2 * 6 + 3 * 8, 2 * 7 + 3 * 0]);
    expect(gpu.info().kernelsCompiled).toBe(compiled);
  });

  test('float16 output: rounded to float16 values, close to cpu', () => {
    const got = compare(gpu, { batch: 2, m: 7, k: 33, n: 3, transB: true }, 'float16', 2e-3);
    expect(Array.from(decodeFloat16(encodeFloat16(got)))).toEqual(got);
  });

  test('float64 output is refused', () => {
    const a = gpu.upload('float32', [1]);
    expect(() => gpu.matmul(a, a, { batch: 1, m: 1, k: 1, n: 1, transA: false, transB: false, aBatchStride: 1, bBatchStride: 1 }, 'float64')).toThrow(/float64/);
  });
});
