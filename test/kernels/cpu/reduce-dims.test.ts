/**
 * Reductions over any dims through the public ops. Dims that form one adjacent block not reaching
 * the last dim (the dim-0 sum behind a bias gradient, sumTo over [B, T, C] -> [C]) now run the
 * reduceMiddle kernel on the data as it lies, instead of a transposed copy; the rest still move
 * the reduced dims last. Every dims subset, on contiguous, permuted and sliced tensors, in each
 * dtype, must agree bit for bit with the reference cpu backend (plain paths everywhere) and with
 * a plain loop written here.
 */
import { Tensor, logsumexp, max, mean, min, permute, registerBackend, setBackend, slice, sum, sumTo, tensor, type DType } from '../../../src';
import { kernelCounters } from '../../../src/kernels';
import { CpuBackend } from '../../../src/kernels/cpu/backend';
import { mulberry32 as rng } from '../../helpers';

registerBackend('cpu-reference', () => new CpuBackend({ reference: true }));
afterAll(() => setBackend('cpu'));


const SHAPE = [3, 4, 2, 5];
const values = (dtype: DType, n: number, rand: () => number) =>
  Array.from({ length: n }, () => (dtype === 'int32' ? Math.floor(rand() * 19) - 9 : rand() * 4 - 2));

/** Every non-empty subset of [0, nd). */
const subsets = (nd: number) => Array.from({ length: 2 ** nd - 1 }, (_, m) => [...Array(nd).keys()].filter((d) => ((m + 1) >> d) & 1));

/** The tensors to reduce, built on the active backend from the same numbers: contiguous, a permuted view, a sliced view. */
function inputs(dtype: DType, data: number[]): [string, Tensor][] {
  const base = tensor(data, { dtype }).reshape([6, 4, 2, 5]);
  return [
    ['contiguous', slice(base, 0, 0, 3).contiguous()],
    ['permuted view (1, 0, 3, 2) of [4, 3, 5, 2]', permute(tensor(data.slice(0, 120), { dtype }).reshape([4, 3, 5, 2]), [1, 0, 3, 2])],
    ['sliced view with an offset', slice(base, 0, 2, 5)],
  ];
}

/** The plain reduction: loop over every element, accumulate into its output slot (doubles). */
function plain(op: 'sum' | 'max' | 'min', t: Tensor, dims: number[]): number[] {
  const x = Array.from(t.toTypedArray() as ArrayLike<number>);
  const shape = t.shape;
  const kept = shape.map((_, i) => i).filter((i) => !dims.includes(i));
  const outSize = kept.reduce((a, d) => a * shape[d], 1);
  const out = new Array<number>(outSize).fill(op === 'sum' ? 0 : op === 'max' ? -Infinity : Infinity);
  const idx = shape.map(() => 0);
  for (const v of x) {
    let o = 0;
    for (const d of kept) o = o * shape[d] + idx[d];
    out[o] = op === 'sum' ? out[o] + v : op === 'max' ? Math.max(out[o], v) : Math.min(out[o], v);
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

const read = (t: Tensor) => Array.from(t.toTypedArray() as ArrayLike<number>);

describe('sum/max/min over every dims subset agree with the reference backend and a plain loop', () => {
  for (const dtype of ['float64', 'float32', 'float16', 'int32'] as DType[]) {
    test(dtype, () => {
      const data = values(dtype, 240, rng(dtype.length));
      const results: Record<string, number[][]> = {};
      for (const backend of ['cpu', 'cpu-reference']) {
        setBackend(backend);
        const out: number[][] = [];
        for (const [name, t] of inputs(dtype, data)) {
          expect([name, t.shape]).toEqual([name, SHAPE]);
          for (const dims of subsets(4)) {
            for (const keepDim of [false, true]) {
              const s = sum(t, { dim: dims, keepDim });
              out.push(read(s));
              out.push(read(max(t, dims.length === 1 ? dims[0] : 0, keepDim).values));
              out.push(read(min(t, dims.length === 1 ? dims[0] : 0).values));
              if (backend === 'cpu' && !keepDim) {
                const tol = dtype === 'float16' ? 2e-3 : dtype === 'float32' ? 1e-6 : 1e-12;
                const want = plain('sum', t, dims);
                const got = read(s);
                got.forEach((v, i) => expect(Math.abs(v - want[i])).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(want[i]) * 10)));
              }
            }
            if (dtype !== 'int32') out.push(read(mean(t, { dim: dims })), read(logsumexp(t, { dim: dims })));
          }
          // max/min over a whole block (extremeAll goes through the same reduction)
          out.push(read(max(t)), read(min(t)));
          expect(read(max(t))).toEqual(plain('max', t, [0, 1, 2, 3]));
        }
        results[backend] = out;
      }
      setBackend('cpu');
      expect(results.cpu.length).toBe(results['cpu-reference'].length);
      results.cpu.forEach((r, i) => expect(r).toEqual(results['cpu-reference'][i]));
    });
  }
});

describe('the dim-0 reduction of a bias gradient runs in place', () => {
  test('sum over dim 0 of a packed [N, out] tensor: one reduceMiddle launch, no copy, values as a loop', () => {
    setBackend('cpu');
    const N = 64;
    const out = 33;
    const rand = rng(9);
    const g = tensor(values('float32', N * out, rand), { dtype: 'float32' }).reshape([N, out]);
    const before = { ...kernelCounters.launches };
    const s = sum(g, { dim: 0 });
    const launched = Object.fromEntries(Object.entries(kernelCounters.launches).map(([k, v]) => [k, v - (before[k] ?? 0)]).filter(([, v]) => v !== 0));
    expect(launched).toEqual({ reduceMiddle: 1 });
    expect(s.shape).toEqual([out]);
    const x = read(g);
    const want = Array.from({ length: out }, (_, j) => {
      let acc = 0;
      for (let i = 0; i < N; i++) acc += x[i * out + j];
      return Math.fround(acc);
    });
    expect(read(s)).toEqual(want);
  });

  test('sumTo [B, T, C] -> [C] and -> [1, T, 1] (a non-adjacent pair, through the transpose path)', () => {
    setBackend('cpu');
    const rand = rng(10);
    const g = tensor(values('float64', 2 * 3 * 4, rand), { dtype: 'float64' }).reshape([2, 3, 4]);
    expect(read(sumTo(g, [4]))).toEqual(plain('sum', g, [0, 1]));
    expect(read(sumTo(g, [1, 3, 1]))).toEqual(plain('sum', g, [0, 2]));
    const before = kernelCounters.launches.reduceLast ?? 0;
    sumTo(g, [1, 3, 1]);
    expect((kernelCounters.launches.reduceLast ?? 0) - before).toBe(1);
  });

  test('a transposed view whose reduced dims are last in memory uses reduceLast without a copy', () => {
    setBackend('cpu');
    const x = tensor(values('float64', 12, rng(11)), { dtype: 'float64' }).reshape([3, 4]);
    const t = permute(x, [1, 0]); // [4, 3]; dim 0 of t is the last in memory
    const before = { ...kernelCounters.launches };
    const s = sum(t, { dim: 0 });
    expect((kernelCounters.launches.reduceLast ?? 0) - (before.reduceLast ?? 0)).toBe(1);
    expect((kernelCounters.launches.copy ?? 0) - (before.copy ?? 0)).toBe(0);
    expect((kernelCounters.launches.reduceMiddle ?? 0) - (before.reduceMiddle ?? 0)).toBe(0);
    expect(read(s)).toEqual(plain('sum', t, [0]));
  });
});
