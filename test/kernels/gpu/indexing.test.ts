/**
 * The gpu backend's indexing kernels against the cpu backend, in every gpu.js mode this process
 * offers (headlessgl only under `xvfb-run -a`). Gathers move values and must agree exactly; the
 * adjoints (indexAdd, scatterAdd) sum in the cpu's order and are compared to 1e-6 relative, with
 * repeated indices so that sums must accumulate, and some hand-computed sums as well.
 */
import { CpuBackend } from '../../../src/kernels/cpu/backend';
import type { BackendBuffer } from '../../../src/kernels/backend';
import { GpuBackend } from '../../../src/kernels/gpu/backend';
import { availableGpuModes, memory } from '../../../src';
import { INDEX_ADD_SCAN_LIMIT } from '../../../src/kernels/gpu/indexing';
import type { DType } from '../../../src/tensor/dtype';
import { contiguousStrides, numel } from '../../../src/tensor/shape';
import { expectClose, mulberry32 } from '../../helpers';

const cpu = new CpuBackend();
const MODES = availableGpuModes();

/** Floats in [-3, 3) (for float16: multiples of 1/8, so float16 sums of a few are exact); ints in [-9, 9]. */
function values(dtype: DType, n: number, rand: () => number): number[] {
  return Array.from({ length: n }, () => {
    if (dtype === 'int32') return Math.floor(rand() * 19) - 9;
    if (dtype === 'float16') return Math.floor(rand() * 48) / 8 - 3;
    return rand() * 6 - 3;
  });
}

/** Whole numbers in [0, size), from a small range so that repeats are certain. */
function indices(n: number, size: number, rand: () => number): number[] {
  return Array.from({ length: n }, () => Math.floor(rand() * size));
}

const asNumbers = (a: ArrayLike<number>): number[] => Array.from(a);

test('at least the cpu and webasm gpu.js modes run here', () => {
  expect(MODES).toEqual(expect.arrayContaining(['cpu', 'webasm']));
});

describe.each(MODES)('gpu indexing kernels, gpu.js mode %s', (mode) => {
  let gpu: GpuBackend;
  beforeAll(() => {
    gpu = new GpuBackend({ mode });
  });
  afterAll(() => gpu.dispose());

  /** The same values on both backends. */
  const both = (dtype: DType, v: number[]): [BackendBuffer, BackendBuffer] => [cpu.upload(dtype, v), gpu.upload(dtype, v)];
  const read = (b: CpuBackend | GpuBackend, buf: BackendBuffer) => asNumbers(b.read({ buffer: buf, shape: [buf.length], strides: [1], offset: 0 }));

  describe('indexSelect', () => {
    it.each([
      [3, 5, 4, 7],
      [1, 6, 1, 9],
      [2, 4, 3, 1],
      [4, 2, 5, 0],
    ])('x [%i,%i,%i] with %i indices (repeats) matches cpu exactly', (outer, dimSize, inner, m) => {
      const rand = mulberry32(outer * 100 + dimSize * 10 + inner + m);
      const xv = values('float32', outer * dimSize * inner, rand);
      const iv = indices(m, dimSize, rand);
      const [xc, xg] = both('float32', xv);
      const [ic, ig] = both('int32', iv);
      const want = cpu.indexSelect(xc, ic, outer, dimSize, inner);
      const got = gpu.indexSelect(xg, ig, outer, dimSize, inner);
      expect(got.dtype).toBe('float32');
      expect(got.length).toBe(outer * m * inner);
      expect(read(gpu, got)).toEqual(read(cpu, want));
      if (m > 0) {
        // out[o=last, j=0, i=last] by hand
        const o = outer - 1;
        const i = inner - 1;
        expect(read(gpu, got)[(o * m + 0) * inner + i]).toBe(Math.fround(xv[(o * dimSize + iv[0]) * inner + i]));
      }
    });

    it.each(['float16', 'int32'] as DType[])('keeps the %s dtype', (dtype) => {
      const rand = mulberry32(7);
      const xv = values(dtype, 2 * 5 * 3, rand);
      const iv = [4, 0, 4, 2];
      const [xc, xg] = both(dtype, xv);
      const [ic, ig] = both('int32', iv);
      const got = gpu.indexSelect(xg, ig, 2, 5, 3);
      expect(got.dtype).toBe(dtype);
      expect(asNumbers(gpu.download(got))).toEqual(asNumbers(cpu.download(cpu.indexSelect(xc, ic, 2, 5, 3))));
    });
  });

  describe('indexAdd', () => {
    it.each([
      [3, 5, 4, 9],
      [1, 3, 1, 12],
      [2, 6, 3, 4],
    ])('out [%i,%i,%i] from %i source slices with repeated indices matches cpu', (outer, dimSize, inner, m) => {
      const rand = mulberry32(outer * 1000 + dimSize * 10 + inner + m);
      const sv = values('float32', outer * m * inner, rand);
      // every index in 0..dimSize-2 (the last row gets nothing and must stay 0), index 0 repeated
      const iv = indices(m, dimSize - 1, rand);
      iv[0] = 0;
      iv[m - 1] = 0;
      const [sc, sg] = both('float32', sv);
      const [ic, ig] = both('int32', iv);
      const want = read(cpu, cpu.indexAdd(sc, ic, outer, dimSize, inner));
      const gotBuf = gpu.indexAdd(sg, ig, outer, dimSize, inner);
      expect(gotBuf.dtype).toBe('float32');
      const got = read(gpu, gotBuf);
      expectClose(got, want, 1e-6);
      // by hand: out[o, 0, i] sums every j with index 0 (at least two of them)
      for (let o = 0; o < outer; o++) {
        for (let i = 0; i < inner; i++) {
          let sum = 0;
          for (let j = 0; j < m; j++) if (iv[j] === 0) sum += Math.fround(sv[(o * m + j) * inner + i]);
          expectClose([got[(o * dimSize + 0) * inner + i]], [sum], 1e-6);
          expect(got[(o * dimSize + dimSize - 1) * inner + i]).toBe(0);
        }
      }
    });

    it.each(['float16', 'int32'] as DType[])('sums and stores %s', (dtype) => {
      const rand = mulberry32(11);
      const sv = values(dtype, 2 * 6 * 3, rand);
      const iv = [1, 1, 3, 1, 0, 3];
      const [sc, sg] = both(dtype, sv);
      const [ic, ig] = both('int32', iv);
      const got = gpu.indexAdd(sg, ig, 2, 4, 3);
      expect(got.dtype).toBe(dtype);
      expect(asNumbers(gpu.download(got))).toEqual(asNumbers(cpu.download(cpu.indexAdd(sc, ic, 2, 4, 3))));
    });

    it('past the scan limit it sums through per-output lists, with the same result and one new buffer', () => {
      // 2^14 outputs x 2^13 index entries = 2^27 > INDEX_ADD_SCAN_LIMIT: BAdam-ratio-sized scatters
      const dimSize = 2 ** 14;
      const m = 2 ** 13;
      expect(dimSize * m).toBeGreaterThan(INDEX_ADD_SCAN_LIMIT);
      const rand = mulberry32(5);
      const sv = values('float32', m, rand);
      // mostly distinct positions, a few repeated (the longest list has 3 entries), many empty
      const iv = Array.from({ length: m }, (_, j) => (j * 7919) % dimSize);
      iv[10] = iv[20] = iv[30];
      const [sc, sg] = both('float32', sv);
      const [ic, ig] = both('int32', iv);
      const want = read(cpu, cpu.indexAdd(sc, ic, 1, dimSize, 1));
      const live = memory.stats().liveBuffers;
      const got = gpu.indexAdd(sg, ig, 1, dimSize, 1);
      expect(memory.stats().liveBuffers).toBe(live + 1);
      expectClose(read(gpu, got), want, 1e-6);
      expectClose([read(gpu, got)[iv[30]]], [Math.fround(sv[10]) + Math.fround(sv[20]) + Math.fround(sv[30])], 1e-6);
    });

    it('an empty index gives zeros', () => {
      const [, sg] = both('float32', []);
      const [, ig] = both('int32', []);
      const got = gpu.indexAdd(sg, ig, 2, 3, 4);
      expect(read(gpu, got)).toEqual(new Array(24).fill(0));
      // scatterAdd from an empty index (size 0 along dim) leaves its output zero too
      expect(read(gpu, gpu.scatterAdd(sg, ig, [2, 0], 1, [2, 3]))).toEqual(new Array(6).fill(0));
    });
  });

  describe('gather and scatterAdd on a 3-d shape', () => {
    const big = [4, 5, 6];
    const small = [3, 4, 5];

    it.each([0, 1, 2])('gather along dim %i with a smaller index shape matches cpu exactly', (dim) => {
      const rand = mulberry32(20 + dim);
      const xv = values('float32', numel(big), rand);
      const iv = indices(numel(small), big[dim], rand);
      const [xc, xg] = both('float32', xv);
      const [ic, ig] = both('int32', iv);
      const got = read(gpu, gpu.gather(xg, big, ig, small, dim));
      expect(got).toEqual(read(cpu, cpu.gather(xc, big, ic, small, dim)));
      // by hand at index position (2, 3, 4)
      const p = [2, 3, 4];
      const flatP = p[0] * 20 + p[1] * 5 + p[2];
      const q = [...p];
      q[dim] = iv[flatP];
      expect(got[flatP]).toBe(Math.fround(xv[q[0] * 30 + q[1] * 6 + q[2]]));
    });

    it.each([0, 1, 2])('scatterAdd along dim %i with a smaller index shape and repeated indices matches cpu', (dim) => {
      const rand = mulberry32(40 + dim);
      const sv = values('float32', numel(small), rand);
      // only indices 0 and 1 along dim: many collisions, and rows >= 2 along dim stay 0
      const iv = indices(numel(small), 2, rand);
      const [sc, sg] = both('float32', sv);
      const [ic, ig] = both('int32', iv);
      const got = read(gpu, gpu.scatterAdd(sg, ig, small, dim, big));
      const want = read(cpu, cpu.scatterAdd(sc, ic, small, dim, big));
      expectClose(got, want, 1e-6);
      // by hand: every output position, summing the index positions that land on it
      const expected = new Array<number>(numel(big)).fill(0);
      const outStrides = contiguousStrides(big);
      for (let a = 0; a < small[0]; a++) {
        for (let b = 0; b < small[1]; b++) {
          for (let c = 0; c < small[2]; c++) {
            const p = a * 20 + b * 5 + c;
            const coord = [a, b, c];
            coord[dim] = iv[p];
            expected[coord[0] * outStrides[0] + coord[1] * outStrides[1] + coord[2] * outStrides[2]] += Math.fround(sv[p]);
          }
        }
      }
      expectClose(got, expected, 1e-5);
      // some output must have received two or more sources (the sums accumulate)
      expect(new Set(iv).size).toBe(2);
    });

    it('scatterAdd keeps int32 and float16', () => {
      for (const dtype of ['int32', 'float16'] as DType[]) {
        const rand = mulberry32(60);
        const sv = values(dtype, numel(small), rand);
        const iv = indices(numel(small), 3, rand);
        const [sc, sg] = both(dtype, sv);
        const [ic, ig] = both('int32', iv);
        const got = gpu.scatterAdd(sg, ig, small, 1, big);
        expect(got.dtype).toBe(dtype);
        expect(asNumbers(gpu.download(got))).toEqual(asNumbers(cpu.download(cpu.scatterAdd(sc, ic, small, 1, big))));
      }
    });
  });

  describe('triangleMask', () => {
    it.each([
      [5, 7],
      [6, 3],
      [4, 4],
    ])('%i x %i, k = -1, 0, 2, lower and upper, matches cpu', (rows, cols) => {
      for (const k of [-1, 0, 2]) {
        for (const lower of [true, false]) {
          const got = gpu.triangleMask(rows, cols, k, lower);
          expect(got.dtype).toBe('int32');
          const bits = gpu.download(got);
          expect(bits).toBeInstanceOf(Int32Array);
          expect(asNumbers(bits)).toEqual(asNumbers(cpu.download(cpu.triangleMask(rows, cols, k, lower))));
          // by hand at (2, 1): col - row = -1
          expect(bits[2 * cols + 1]).toBe((lower ? -1 <= k : -1 >= k) ? 1 : 0);
        }
      }
    });
  });
});
