/**
 * matmul and linear: forward values against a plain JS triple loop written here (torch.matmul
 * semantics: 1-D operands, broadcast batch dims), dtype promotion, float64 gradchecks over
 * plain, broadcast, 1-D and transposed-view operands, the kernel launches (no copies for
 * transposed views, one matmul per needed gradient) and the shape errors.
 */
import {
  ShapeError,
  Tensor,
  grad,
  gradcheck,
  linear,
  manualSeed,
  matmul,
  profile,
  randn,
  sum,
  tensor,
} from '../../../src';
import { contiguousStrides, numel } from '../../../src/tensor/shape';
import { flat, uniformLeaf } from '../../helpers';

// ------------------------------------------------------------------ helpers

type Shape = number[];




/** torch.matmul on flat row-major arrays with triple loops, written independently of the library. */
function refMatmul(a: number[], aShape: Shape, b: number[], bShape: Shape): { values: number[]; shape: Shape } {
  const aS = aShape.length === 1 ? [1, aShape[0]] : aShape;
  const bS = bShape.length === 1 ? [bShape[0], 1] : bShape;
  const m = aS[aS.length - 2];
  const k = aS[aS.length - 1];
  const n = bS[bS.length - 1];
  const ba = aS.slice(0, -2);
  const bb = bS.slice(0, -2);
  const nb = Math.max(ba.length, bb.length);
  const batch: Shape = [];
  for (let i = 0; i < nb; i++) {
    const x = ba[i - (nb - ba.length)] ?? 1;
    const y = bb[i - (nb - bb.length)] ?? 1;
    batch.push(Math.max(x, y));
  }
  const values: number[] = [];
  const bStr = contiguousStrides(batch);
  const aBatchStr = contiguousStrides(ba);
  const bBatchStr = contiguousStrides(bb);
  for (let flatB = 0; flatB < numel(batch); flatB++) {
    const coord = batch.map((_, d) => Math.floor(flatB / bStr[d]) % batch[d]);
    let aBase = 0;
    let bBase = 0;
    for (let d = 0; d < ba.length; d++) {
      const c = coord[d + nb - ba.length];
      aBase += (ba[d] === 1 ? 0 : c) * aBatchStr[d];
    }
    for (let d = 0; d < bb.length; d++) {
      const c = coord[d + nb - bb.length];
      bBase += (bb[d] === 1 ? 0 : c) * bBatchStr[d];
    }
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) s += a[(aBase * m + i) * k + p] * b[(bBase * k + p) * n + j];
        values.push(s);
      }
    }
  }
  const shape = [...batch, ...(aShape.length === 1 ? [] : [m]), ...(bShape.length === 1 ? [] : [n])];
  return { values, shape };
}

function expectClose(actual: number[], expected: number[], tol = 1e-10): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < actual.length; i++) {
    if (Math.abs(actual[i] - expected[i]) > tol * (1 + Math.abs(expected[i]))) {
      throw new Error(`index ${i}: got ${actual[i]}, expected ${expected[i]}`);
    }
  }
}

/** x @ Wᵀ + b by loops: x [N, in], W [out, in], b [out] | null. */
function refLinear(x: number[], n: number, inF: number, w: number[], outF: number, b: number[] | null): number[] {
  const out: number[] = [];
  for (let r = 0; r < n; r++) {
    for (let o = 0; o < outF; o++) {
      let s = b ? b[o] : 0;
      for (let i = 0; i < inF; i++) s += x[r * inF + i] * w[o * inF + i];
      out.push(s);
    }
  }
  return out;
}

// shape pairs covering every torch.matmul case
const CASES: [Shape, Shape][] = [
  [[3], [3]], // dot
  [[2, 3], [3, 4]], // 2-D @ 2-D
  [[3], [3, 4]], // 1-D @ 2-D
  [[3, 4], [4]], // 2-D @ 1-D
  [[4], [2, 4, 3]], // 1-D @ batched
  [[2, 3, 4], [4]], // batched @ 1-D
  [[2, 1, 3, 4], [5, 4, 2]], // broadcast batch dims on both sides
  [[5, 2, 3], [3, 4]], // batch @ shared matrix (folded)
  [[3, 4], [2, 4, 5]], // shared matrix @ batch
  [[2, 3, 4], [2, 4, 5]], // equal batches
  [[1, 3, 4], [2, 4, 5]], // size-1 batch dim
  [[2, 1, 2, 3], [1, 3, 3, 2]], // both broadcast in different dims
  [[1, 3], [3, 1]], // degenerate matrices
];

// ------------------------------------------------------------------ matmul forward

describe('matmul forward', () => {
  test.each(CASES)('%j @ %j matches the triple loop', (aShape, bShape) => {
    const a = uniformLeaf(aShape, 1).detach();
    const b = uniformLeaf(bShape, 2).detach();
    const out = matmul(a, b);
    const ref = refMatmul(flat(a), aShape, flat(b), bShape);
    expect(out.shape).toEqual(ref.shape);
    expect(out.dtype).toBe('float64');
    expectClose(flat(out), ref.values);
  });

  test('1-D · 1-D is a 0-d dot product', () => {
    const out = matmul(tensor([1, 2, 3]), tensor([4, 5, 6]));
    expect(out.shape).toEqual([]);
    expect(out.item()).toBe(32);
  });

  test('a product large enough for the blocked kernel matches the loop', () => {
    const a = uniformLeaf([3, 17, 33], 3).detach();
    const b = uniformLeaf([33, 19], 4).detach();
    expectClose(flat(matmul(a, b)), refMatmul(flat(a), [3, 17, 33], flat(b), [33, 19]).values);
  });

  test('int32 @ int32 stays int32 with exact values', () => {
    const a = tensor([[1, 2], [3, 4]], { dtype: 'int32' });
    const b = tensor([[5, -6], [7, 8]], { dtype: 'int32' });
    const out = matmul(a, b);
    expect(out.dtype).toBe('int32');
    expect(out.toArray()).toEqual([[19, 10], [43, 14]]);
  });

  test('dtypes promote as PyTorch', () => {
    const f32 = tensor([[1, 2]], { dtype: 'float32' });
    const f64 = tensor([[3], [4]], { dtype: 'float64' });
    const i32 = tensor([[3], [4]], { dtype: 'int32' });
    expect(matmul(f32, f64).dtype).toBe('float64');
    expect(matmul(f32, i32).dtype).toBe('float32');
    expect(matmul(f32, i32).toArray()).toEqual([[11]]);
    const f16 = tensor([[1, 2]], { dtype: 'float16' });
    expect(matmul(f16, i32).dtype).toBe('float16');
    expect(matmul(f16, i32).toArray()).toEqual([[11]]);
  });

  test('the method form is the same op', () => {
    const a = uniformLeaf([2, 3], 5).detach();
    const b = uniformLeaf([3, 2], 6).detach();
    expect(flat(a.matmul(b))).toEqual(flat(matmul(a, b)));
  });

  test('transposed views are read in place: no copy kernel, values as the contiguous product', () => {
    const wStored = uniformLeaf([5, 4], 7).detach(); // [out, in]
    const x = uniformLeaf([3, 4], 8).detach();
    const wT = wStored.transpose(); // [4, 5] view
    const { result, report } = profile(() => matmul(x, wT));
    expect(report.kernels.matmul).toBe(1);
    expect(report.kernels.copy).toBeUndefined();
    const wTValues = flat(wT.contiguous());
    expectClose(flat(result), refMatmul(flat(x), [3, 4], wTValues, [4, 5]).values);

    // a transposed first operand, batched
    const aStored = uniformLeaf([2, 4, 3], 9).detach();
    const aT = aStored.transpose(-1, -2); // [2, 3, 4]
    const b = uniformLeaf([4, 2], 10).detach();
    const r2 = profile(() => matmul(aT, b));
    expect(r2.report.kernels.matmul).toBe(1);
    expect(r2.report.kernels.copy).toBeUndefined();
    expectClose(flat(r2.result), refMatmul(flat(aT.contiguous()), [2, 3, 4], flat(b), [4, 2]).values);
  });

  test('a matrix broadcast over the batch is not copied', () => {
    const a = uniformLeaf([6, 3, 4], 11).detach();
    const b = uniformLeaf([4, 5], 12).detach();
    const { report } = profile(() => matmul(a, b));
    expect(report.kernels.matmul).toBe(1);
    expect(report.kernels.copy).toBeUndefined();
    const c = uniformLeaf([3, 4], 13).detach();
    const d = uniformLeaf([6, 4, 5], 14).detach();
    const r = profile(() => matmul(c, d));
    expect(r.report.kernels.copy).toBeUndefined();
    expectClose(flat(r.result), refMatmul(flat(c), [3, 4], flat(d), [6, 4, 5]).values);
  });

  test('layouts the kernel cannot express (column slices, offsets, expanded views) are still correct', () => {
    const big = uniformLeaf([4, 6], 15).detach();
    const cols = big.narrow(1, 1, 3); // [4, 3], row stride 6
    const rows = big.narrow(0, 1, 3); // [3, 6] at an offset
    const other = uniformLeaf([3, 2], 16).detach();
    expectClose(flat(matmul(cols, other)), refMatmul(flat(cols.contiguous()), [4, 3], flat(other), [3, 2]).values);
    const r = uniformLeaf([6, 2], 17).detach();
    expectClose(flat(matmul(rows, r)), refMatmul(flat(rows.contiguous()), [3, 6], flat(r), [6, 2]).values);
    // a strided 1-D vector
    const v = big.select(1, 2); // [4], stride 6
    const m = uniformLeaf([4, 3], 18).detach();
    expectClose(flat(matmul(v, m)), refMatmul(flat(v.contiguous()), [4], flat(m), [4, 3]).values);
    // an expanded batch that the flat batch stride cannot describe
    const e = uniformLeaf([2, 1, 3, 4], 19).detach().expand([2, 5, 3, 4]);
    const f = uniformLeaf([5, 4, 2], 20).detach();
    expectClose(flat(matmul(e, f)), refMatmul(flat(e.contiguous()), [2, 5, 3, 4], flat(f), [5, 4, 2]).values);
  });

  test('empty products', () => {
    const a = tensor(new Float64Array(0)).reshape([2, 0]);
    const b = tensor(new Float64Array(0)).reshape([0, 3]);
    const out = matmul(a, b);
    expect(out.shape).toEqual([2, 3]);
    expect(flat(out)).toEqual([0, 0, 0, 0, 0, 0]);
    expect(matmul(tensor(new Float64Array(0)).reshape([0, 2]), uniformLeaf([2, 3], 1).detach()).shape).toEqual([0, 3]);
  });
});

// ------------------------------------------------------------------ matmul backward

describe('matmul backward', () => {
  test.each(CASES)('gradcheck %j @ %j', (aShape, bShape) => {
    const a = uniformLeaf(aShape, 21);
    const b = uniformLeaf(bShape, 22);
    expect(gradcheck(matmul, [a, b]).ok).toBe(true);
  });

  test('gradcheck through transposed views of either operand', () => {
    const x = uniformLeaf([3, 4], 23);
    const w = uniformLeaf([5, 4], 24);
    expect(gradcheck((x, w) => matmul(x, w.transpose()), [x, w]).ok).toBe(true);
    const a = uniformLeaf([2, 4, 3], 25);
    const b = uniformLeaf([2, 5, 4], 26);
    expect(gradcheck((a, b) => matmul(a.transpose(-1, -2), b.transpose(-1, -2)), [a, b]).ok).toBe(true);
    const c = uniformLeaf([4, 3], 27);
    const d = uniformLeaf([6, 4, 2], 28);
    expect(gradcheck((c, d) => matmul(c.transpose(), d), [c, d]).ok).toBe(true);
  });

  test('gradient values: dA = g Bᵀ, dB = Aᵀ g (hand-computed)', () => {
    const a = tensor([[1, 2], [3, 4]], { dtype: 'float64', requiresGrad: true });
    const b = tensor([[5, 6], [7, 8]], { dtype: 'float64', requiresGrad: true });
    sum(matmul(a, b)).backward();
    // g = ones: dA[i][p] = Σ_j B[p][j], dB[p][j] = Σ_i A[i][p]
    expect((a.grad as Tensor).toArray()).toEqual([[11, 15], [11, 15]]);
    expect((b.grad as Tensor).toArray()).toEqual([[4, 4], [6, 6]]);
  });

  test('only one operand requiring grad: one matmul kernel, the other gradient not produced', () => {
    manualSeed(1);
    const x = randn([4, 3, 5], { dtype: 'float64', requiresGrad: true });
    const w = randn([5, 2], { dtype: 'float64' });
    const loss = sum(matmul(x, w));
    const { report } = profile(() => loss.backward());
    expect(report.kernels.matmul).toBe(1);
    expect(x.grad).not.toBeNull();
    expect(w.grad).toBeNull();

    const x2 = randn([4, 3, 5], { dtype: 'float64' });
    const w2 = randn([5, 2], { dtype: 'float64', requiresGrad: true });
    const loss2 = sum(matmul(x2, w2));
    const r2 = profile(() => loss2.backward());
    expect(r2.report.kernels.matmul).toBe(1);
    expect(x2.grad).toBeNull();
    expect(w2.grad?.shape).toEqual([5, 2]);
  });

  test('both gradients: two matmul kernels, the batch of a shared matrix folded', () => {
    const x = uniformLeaf([4, 3, 5], 29);
    const w = uniformLeaf([5, 2], 30);
    const loss = sum(matmul(x, w));
    const { report } = profile(() => loss.backward());
    expect(report.kernels.matmul).toBe(2);
    // dW = Σ over rows of xᵀ·1: each W[p][j] gets Σ_rows x[..][p]
    const xv = flat(x);
    const expected: number[] = [];
    for (let p = 0; p < 5; p++) {
      let s = 0;
      for (let r = 0; r < 12; r++) s += xv[r * 5 + p];
      expected.push(s, s);
    }
    expectClose(flat(w.grad as Tensor), expected);
  });

  test('backward reads the transposes through the kernel flags: no copy kernels', () => {
    const cases: [Shape, Shape][] = [[[3, 4], [4, 5]], [[2, 3, 4], [2, 4, 5]], [[6, 3, 4], [4, 5]]];
    for (const [aShape, bShape] of cases) {
      const a = uniformLeaf(aShape, 50);
      const b = uniformLeaf(bShape, 51);
      const y = matmul(a, b);
      const gOut = uniformLeaf(y.shape as Shape, 52).detach();
      const { report } = profile(() => y.backward(gOut));
      expect(report.kernels.matmul).toBe(2);
      expect(report.kernels.copy).toBeUndefined();
      // dA = g @ Bᵀ (no broadcast here, so nothing is summed)
      const bTShape = [...bShape.slice(0, -2), bShape[bShape.length - 1], bShape[bShape.length - 2]];
      expectClose(flat(a.grad as Tensor), refMatmul(flat(gOut), y.shape as Shape, flat(b.transpose().contiguous()), bTShape).values);
    }
    const x = uniformLeaf([2, 3, 4], 53);
    const w = uniformLeaf([5, 4], 54);
    const y = linear(x, w);
    const { report } = profile(() => y.backward(uniformLeaf([2, 3, 5], 55).detach()));
    expect(report.kernels.matmul).toBe(2);
    expect(report.kernels.copy).toBeUndefined();
  });

  test('gradients keep the operand dtype when dtypes were promoted', () => {
    const a = tensor([[1, 2]], { dtype: 'float32', requiresGrad: true });
    const b = tensor([[3], [4]], { dtype: 'float64', requiresGrad: true });
    const [ga, gb] = grad(sum(matmul(a, b)), [a, b]);
    expect(ga?.dtype).toBe('float32');
    expect(gb?.dtype).toBe('float64');
    expect(ga?.toArray()).toEqual([[3, 4]]);
    expect(gb?.toArray()).toEqual([[1], [2]]);
  });

  test('second derivatives through matmul (createGraph)', () => {
    // f = Σ (A B)²: df/dA = 2 (A B) Bᵀ, and s = Σ df/dA has ds/dA[i][p] = 2 Σ_q (B Bᵀ)[p][q]
    const a = uniformLeaf([2, 3], 31);
    const b = uniformLeaf([3, 2], 32);
    const y = matmul(a, b);
    const [ga] = grad(sum(y.mul(y)), [a], { createGraph: true });
    sum(ga as Tensor).backward();
    const bv = flat(b);
    const bbt = (p: number, q: number) => bv[p * 2] * bv[q * 2] + bv[p * 2 + 1] * bv[q * 2 + 1];
    const row = [0, 1, 2].map((p) => 2 * [0, 1, 2].reduce((s, q) => s + bbt(p, q), 0));
    expectClose(flat(a.grad as Tensor), [...row, ...row]);
  });
});

// ------------------------------------------------------------------ matmul errors

describe('matmul errors', () => {
  test('mismatched inner dims name both shapes', () => {
    const a = tensor([[1, 2, 3], [4, 5, 6]]);
    const b = randn([4, 5]);
    expect(() => matmul(a, b)).toThrow(ShapeError);
    expect(() => matmul(a, b)).toThrow('matmul: inner dimensions differ, [2,3] @ [4,5]');
    expect(() => matmul(randn([3]), randn([4]))).toThrow(/\[3\] @ \[4\]/);
    expect(() => matmul(randn([2, 3]), randn([2]))).toThrow(ShapeError);
  });

  test('0-d operands are rejected', () => {
    expect(() => matmul(tensor(2), randn([2]))).toThrow(ShapeError);
    expect(() => matmul(randn([2, 2]), tensor(2))).toThrow(/at least 1 dim/);
  });

  test('batch dims that do not broadcast', () => {
    expect(() => matmul(randn([2, 3, 4]), randn([3, 4, 5]))).toThrow(/\[2,3,4\] @ \[3,4,5\].*cannot be broadcast/);
  });
});

// ------------------------------------------------------------------ linear

describe('linear', () => {
  test.each([
    [[3, 4], true],
    [[3, 4], false],
    [[2, 3, 4], true],
    [[2, 3, 4], false],
    [[4], true],
  ] as [Shape, boolean][])('forward %j (bias %s) matches the loop', (xShape, withBias) => {
    const x = uniformLeaf(xShape, 33).detach();
    const w = uniformLeaf([5, 4], 34).detach();
    const b = withBias ? uniformLeaf([5], 35).detach() : null;
    const y = linear(x, w, b);
    expect(y.shape).toEqual([...xShape.slice(0, -1), 5]);
    const rows = numel(xShape) / 4;
    expectClose(flat(y), refLinear(flat(x), rows, 4, flat(w), 5, b ? flat(b) : null));
  });

  test('one graph node, one matmul kernel and no copy in the forward', () => {
    const x = uniformLeaf([2, 3, 4], 36);
    const w = uniformLeaf([5, 4], 37);
    const b = uniformLeaf([5], 38);
    const { result, report } = profile(() => linear(x, w, b));
    expect(report.recorded.map((r) => r.op)).toEqual(['linear']);
    expect(report.kernels.matmul).toBe(1);
    expect(report.kernels.copy).toBeUndefined();
    expect(result.gradFn?.op).toBe('linear');
    expect(result.gradFn?.next.length).toBe(3);
    const noBias = profile(() => linear(x, w));
    expect(noBias.report.recorded).toHaveLength(1);
    expect(noBias.result.gradFn?.next[2]).toBeNull();
  });

  test.each([
    [[3, 4], true],
    [[3, 4], false],
    [[2, 3, 4], true],
    [[2, 3, 4], false],
    [[4], true],
    [[1, 2, 1, 4], true],
  ] as [Shape, boolean][])('gradcheck %j (bias %s)', (xShape, withBias) => {
    const x = uniformLeaf(xShape, 39);
    const w = uniformLeaf([5, 4], 40);
    const inputs = withBias ? [x, w, uniformLeaf([5], 41)] : [x, w];
    expect(gradcheck((x, w, b) => linear(x, w, b), inputs).ok).toBe(true);
  });

  test('gradcheck with a transposed-view weight and a non-contiguous input', () => {
    const x = uniformLeaf([4, 3], 42); // used as its [3, 4] transpose
    const wt = uniformLeaf([4, 5], 43); // stored [in, out], used as its [5, 4] transpose
    expect(gradcheck((x, wt, b) => linear(x.transpose(), wt.transpose(), b), [x, wt, uniformLeaf([5], 44)]).ok).toBe(true);
  });

  test('full backward launches one matmul for dx and one for dW; gradients as hand-computed', () => {
    const x = tensor([[1, 2], [3, 4], [5, 6]], { dtype: 'float64', requiresGrad: true });
    const w = tensor([[1, 0], [2, -1]], { dtype: 'float64', requiresGrad: true });
    const b = tensor([0.5, -0.5], { dtype: 'float64', requiresGrad: true });
    const loss = sum(linear(x, w, b));
    const { report } = profile(() => loss.backward());
    expect(report.kernels.matmul).toBe(2);
    // g = ones [3, 2]: dx = g W = each row [3, -1]; dW = gᵀ x = each row Σ x rows = [9, 12]; db = [3, 3]
    expect((x.grad as Tensor).toArray()).toEqual([[3, -1], [3, -1], [3, -1]]);
    expect((w.grad as Tensor).toArray()).toEqual([[9, 12], [9, 12]]);
    expect((b.grad as Tensor).toArray()).toEqual([3, 3]);
  });

  test('frozen weight: backward launches exactly one matmul (dx) and produces no weight gradient', () => {
    manualSeed(2);
    const x = randn([4, 3, 8], { dtype: 'float64', requiresGrad: true });
    const w = randn([6, 8], { dtype: 'float64' }); // requiresGrad false
    const b = randn([6], { dtype: 'float64' });
    const loss = sum(linear(x, w, b));
    const { report } = profile(() => loss.backward());
    expect(report.kernels.matmul).toBe(1);
    expect(report.backwardNodes.find((n) => n.op === 'linear')?.computed).toEqual([true, false, false]);
    expect(x.grad?.shape).toEqual([4, 3, 8]);
    expect(w.grad).toBeNull();
    expect(b.grad).toBeNull();
    // dx = g @ W with g = ones: every row is the column sums of W
    const wv = flat(w);
    const colSums = Array.from({ length: 8 }, (_, i) => [0, 1, 2, 3, 4, 5].reduce((s, o) => s + wv[o * 8 + i], 0));
    expectClose(flat(x.grad as Tensor), Array.from({ length: 12 }, () => colSums).flat());
  });

  test('input not requiring grad: backward launches exactly one matmul (dW) and x.grad stays null', () => {
    manualSeed(3);
    const x = randn([4, 3, 8], { dtype: 'float64' });
    const w = randn([6, 8], { dtype: 'float64', requiresGrad: true });
    const b = randn([6], { dtype: 'float64', requiresGrad: true });
    const loss = sum(linear(x, w, b));
    const { report } = profile(() => loss.backward());
    expect(report.kernels.matmul).toBe(1);
    expect(report.gradsSkippedByMask).toBe(1);
    expect(x.grad).toBeNull();
    expect(w.grad?.shape).toEqual([6, 8]);
    expect(flat(b.grad as Tensor)).toEqual([12, 12, 12, 12, 12, 12]);
    // dW[o][i] = Σ_rows x[row][i]
    const xv = flat(x);
    const rowSums = Array.from({ length: 8 }, (_, i) => Array.from({ length: 12 }, (_, r) => xv[r * 8 + i]).reduce((s, v) => s + v, 0));
    expectClose(flat(w.grad as Tensor), Array.from({ length: 6 }, () => rowSums).flat());
  });

  test('saves only what a needed gradient reads (the weight for dx, the input for dW)', () => {
    const x = uniformLeaf([4, 8], 45); // 256 bytes
    const w = uniformLeaf([3, 8], 46).detach(); // 192 bytes, frozen
    expect(profile(() => linear(x, w)).report.savedBytes).toBe(3 * 8 * 8);
    const x2 = uniformLeaf([4, 8], 47).detach();
    const w2 = uniformLeaf([3, 8], 48);
    expect(profile(() => linear(x2, w2)).report.savedBytes).toBe(4 * 8 * 8);
    expect(profile(() => matmul(x2, w2.transpose())).report.savedBytes).toBe(4 * 8 * 8);
  });

  test('in-feature mismatch names both shapes and the weight layout', () => {
    const x = randn([2, 5]);
    const w = randn([3, 4]);
    expect(() => linear(x, w)).toThrow(ShapeError);
    expect(() => linear(x, w)).toThrow(/\[2,5\].*\[3,4\].*\[out, in\]/);
  });

  test('bad weight or bias shapes', () => {
    expect(() => linear(randn([2, 4]), randn([4]))).toThrow(/weight must be 2-D/);
    expect(() => linear(randn([2, 4]), randn([3, 4]), randn([4]))).toThrow(/bias has shape \[4\]/);
  });
});
