/**
 * Indexing ops: indexSelect, gather, embedding, maskedFill, tril, triu. Forward values against
 * plain JS loops written here, float64 gradchecks over several shapes and dims, duplicate
 * indices accumulating gradient (hand-computed), paddingIdx, and the dtype / range / shape errors.
 */
import {
  DTypeError,
  DimError,
  Generator,
  ShapeError,
  Tensor,
  ValueError,
  embedding,
  gather,
  grad,
  gradcheck,
  indexSelect,
  maskedFill,
  mul,
  profile,
  sum,
  tensor,
  tril,
  triu,
} from '../../../src';
import { contiguousStrides, numel } from '../../../src/tensor/shape';
import { flat, uniformLeaf } from '../../helpers';

// ------------------------------------------------------------------ helpers

type Shape = number[];

const idx = (values: number[] | number[][] | number[][][]) => tensor(values as number[], { dtype: 'int32' });


function randomIndex(shape: Shape, high: number, seed: number): Tensor {
  const g = new Generator(seed);
  const values = Array.from({ length: numel(shape) }, () => Math.floor(g.random() * high));
  return tensor(Int32Array.from(values)).reshape(shape);
}


/** Coordinates of flat position p in a row-major array of `shape`. */
function coordsOf(p: number, shape: Shape): number[] {
  const st = contiguousStrides(shape);
  return shape.map((s, d) => Math.floor(p / st[d]) % s);
}

const flatPos = (coord: number[], shape: Shape) => coord.reduce((s, c, d) => s + c * contiguousStrides(shape)[d], 0);

/** index_select by loops. */
function refIndexSelect(a: number[], shape: Shape, dim: number, index: number[]): number[] {
  const outShape = shape.map((s, d) => (d === dim ? index.length : s));
  return Array.from({ length: numel(outShape) }, (_, p) => {
    const c = coordsOf(p, outShape);
    c[dim] = index[c[dim]];
    return a[flatPos(c, shape)];
  });
}

/** torch.gather by loops. */
function refGather(a: number[], shape: Shape, dim: number, index: number[], indexShape: Shape): number[] {
  return Array.from({ length: numel(indexShape) }, (_, p) => {
    const c = coordsOf(p, indexShape);
    c[dim] = index[p];
    return a[flatPos(c, shape)];
  });
}

// ------------------------------------------------------------------ indexSelect

describe('indexSelect', () => {
  test.each([
    [[5], 0, [4, 0, 4, 2]],
    [[3, 4], 0, [2, 0, 2]],
    [[3, 4], 1, [3, 3, 1]],
    [[3, 4], -1, [0]],
    [[2, 3, 4], 1, [2, 1, 2, 0, 1]],
    [[2, 3, 4], 2, [1, 3]],
  ] as [Shape, number, number[]][])('forward %j dim %d index %j matches the loop', (shape, dim, index) => {
    const a = uniformLeaf(shape, 1).detach();
    const out = indexSelect(a, dim, idx(index));
    const d = dim < 0 ? dim + shape.length : dim;
    expect(out.shape).toEqual(shape.map((s, i) => (i === d ? index.length : s)));
    expect(flat(out)).toEqual(refIndexSelect(flat(a), shape, d, index));
  });

  test.each([
    [[5], 0, [4, 0, 4, 2]],
    [[3, 4], 0, [2, 0, 2]],
    [[3, 4], 1, [3, 3, 1]],
    [[2, 3, 4], 1, [2, 1, 2, 0, 1]],
    [[2, 3, 4], -1, [1, 3, 3]],
  ] as [Shape, number, number[]][])('gradcheck %j dim %d index %j', (shape, dim, index) => {
    const i = idx(index);
    expect(gradcheck((a) => indexSelect(a, dim, i), [uniformLeaf(shape, 2)]).ok).toBe(true);
  });

  test('duplicate indices accumulate their gradients (hand-computed)', () => {
    const a = tensor([[1, 2], [3, 4], [5, 6]], { dtype: 'float64', requiresGrad: true });
    const out = indexSelect(a, 0, idx([2, 0, 2]));
    expect(out.toArray()).toEqual([[5, 6], [1, 2], [5, 6]]);
    sum(mul(out, tensor([[1, 1], [10, 10], [100, 100]], { dtype: 'float64' }))).backward();
    expect((a.grad as Tensor).toArray()).toEqual([[10, 10], [0, 0], [101, 101]]);
  });

  test('non-contiguous input and index views', () => {
    const a = uniformLeaf([4, 3], 3).detach().transpose(); // [3, 4] view
    const index = idx([0, 1, 2, 3, 3, 1]).slice(0, 0, 6, 2); // [0, 2, 3] with stride 2
    const out = a.indexSelect(1, index);
    expect(flat(out)).toEqual(refIndexSelect(flat(a.contiguous()), [3, 4], 1, [0, 2, 3]));
    expect(gradcheck((x) => indexSelect(x.transpose(), 1, index), [uniformLeaf([4, 3], 4)]).ok).toBe(true);
  });

  test('a 0-d index selects one slice, keeping the dim', () => {
    const a = uniformLeaf([3, 2], 5).detach();
    const out = indexSelect(a, 0, tensor(1, { dtype: 'int32' }));
    expect(out.shape).toEqual([1, 2]);
    expect(flat(out)).toEqual(flat(a).slice(2, 4));
  });

  test('second derivatives (the adjoint is itself recorded)', () => {
    // s = Σ d/da Σ sel(a)² = Σ 2·indexAdd(sel(a)); ds/da[r] = 2·count(r) per element
    const a = uniformLeaf([3, 2], 6);
    const i = idx([2, 0, 2]);
    const y = indexSelect(a, 0, i);
    const [ga] = grad(sum(mul(y, y)), [a], { createGraph: true });
    sum(ga as Tensor).backward();
    expect((a.grad as Tensor).toArray()).toEqual([[2, 2], [0, 0], [4, 4]]);
  });

  test('errors: index dtype, index range, index rank, dim', () => {
    const a = uniformLeaf([3, 4], 7).detach();
    expect(() => indexSelect(a, 0, tensor([0, 1]))).toThrow(DTypeError);
    expect(() => indexSelect(a, 0, tensor([0, 1]))).toThrow(/indexSelect: index must be an int32 tensor, got float32/);
    expect(() => indexSelect(a, 0, idx([0, 3]))).toThrow(ValueError);
    expect(() => indexSelect(a, 0, idx([0, 3]))).toThrow(/index 3 is out of range .*valid indices are 0\.\.2/);
    expect(() => indexSelect(a, 1, idx([-1]))).toThrow(/index -1 is out of range .*0\.\.3/);
    expect(() => indexSelect(a, 0, idx([[0], [1]]))).toThrow(ShapeError);
    expect(() => indexSelect(a, 2, idx([0]))).toThrow(DimError);
  });
});

// ------------------------------------------------------------------ gather

describe('gather', () => {
  const CASES: [Shape, number, Shape][] = [
    [[5], 0, [7]],
    [[3, 4], 0, [5, 4]],
    [[3, 4], 1, [3, 6]],
    [[3, 4], 1, [2, 2]], // index smaller than the input in the other dim
    [[2, 3, 4], 1, [2, 5, 3]],
    [[2, 3, 4], -1, [1, 3, 4]],
  ];

  test.each(CASES)('forward %j dim %d index shape %j matches the loop', (shape, dim, indexShape) => {
    const d = dim < 0 ? dim + shape.length : dim;
    const a = uniformLeaf(shape, 8).detach();
    const index = randomIndex(indexShape, shape[d], 9);
    const out = gather(a, dim, index);
    expect(out.shape).toEqual(indexShape);
    expect(flat(out)).toEqual(refGather(flat(a), shape, d, flat(index), indexShape));
  });

  test.each(CASES)('gradcheck %j dim %d index shape %j', (shape, dim, indexShape) => {
    const d = dim < 0 ? dim + shape.length : dim;
    const index = randomIndex(indexShape, shape[d], 10);
    expect(gradcheck((a) => gather(a, dim, index), [uniformLeaf(shape, 11)]).ok).toBe(true);
  });

  test('duplicate indices accumulate their gradients (hand-computed)', () => {
    const a = tensor([[1, 2, 3], [4, 5, 6]], { dtype: 'float64', requiresGrad: true });
    const out = a.gather(1, idx([[0, 0, 1], [2, 2, 2]]));
    expect(out.toArray()).toEqual([[1, 1, 2], [6, 6, 6]]);
    sum(out).backward();
    expect((a.grad as Tensor).toArray()).toEqual([[2, 1, 0], [0, 0, 3]]);
  });

  test('gradcheck through a transposed input', () => {
    const index = randomIndex([3, 2], 4, 12);
    expect(gradcheck((a) => gather(a.transpose(), 1, index), [uniformLeaf([4, 3], 13)]).ok).toBe(true);
  });

  test('errors: index dtype, range, rank and size', () => {
    const a = uniformLeaf([3, 4], 14).detach();
    expect(() => gather(a, 1, tensor([[0]], { dtype: 'float64' }))).toThrow(DTypeError);
    expect(() => gather(a, 1, tensor([[0]], { dtype: 'float64' }))).toThrow(/float64/);
    expect(() => gather(a, 1, idx([[0, 4]]))).toThrow(/index 4 is out of range .*0\.\.3/);
    expect(() => gather(a, 1, idx([0, 1]))).toThrow(ShapeError);
    expect(() => gather(a, 1, idx([[0], [1], [2], [0]]))).toThrow(/\[4,1\].*\[3,4\].*dim 0/);
    expect(() => gather(a, -3, idx([[0]]))).toThrow(DimError);
  });
});

// ------------------------------------------------------------------ embedding

describe('embedding', () => {
  test.each([[[4]], [[2, 3]], [[2, 1, 3]], [[]]] as [Shape][])('forward for indices of shape %j', (shape) => {
    const w = uniformLeaf([6, 3], 15).detach();
    const input = randomIndex(shape, 6, 16);
    const out = embedding(input, w);
    expect(out.shape).toEqual([...shape, 3]);
    const wv = flat(w);
    expect(flat(out)).toEqual(flat(input).flatMap((r) => wv.slice(r * 3, r * 3 + 3)));
  });

  test.each([[[4]], [[2, 3]], [[2, 1, 3]]] as [Shape][])('gradcheck for indices of shape %j', (shape) => {
    const input = randomIndex(shape, 5, 17);
    expect(gradcheck((w) => embedding(input, w), [uniformLeaf([5, 2], 18)]).ok).toBe(true);
  });

  test('duplicate indices accumulate; one node with the indices as a null input', () => {
    const w = tensor([[1, 2], [3, 4], [5, 6]], { dtype: 'float64', requiresGrad: true });
    const input = idx([[2, 0], [2, 2]]);
    const { result, report } = profile(() => embedding(input, w));
    expect(report.recorded.map((r) => r.op)).toEqual(['embedding']);
    expect(result.gradFn?.next[0]).toBeNull();
    expect(result.toArray()).toEqual([[[5, 6], [1, 2]], [[5, 6], [5, 6]]]);
    sum(mul(result, tensor([[[1, 1], [2, 2]], [[3, 3], [4, 4]]], { dtype: 'float64' }))).backward();
    expect((w.grad as Tensor).toArray()).toEqual([[2, 2], [0, 0], [8, 8]]);
  });

  test('paddingIdx rows get zero gradient but still look up their row', () => {
    const w = tensor([[1, 2], [3, 4], [5, 6]], { dtype: 'float64', requiresGrad: true });
    const input = idx([0, 1, 1, 2]);
    const out = embedding(input, w, { paddingIdx: 1 });
    expect(out.toArray()).toEqual([[1, 2], [3, 4], [3, 4], [5, 6]]);
    sum(out).backward();
    expect((w.grad as Tensor).toArray()).toEqual([[1, 1], [0, 0], [1, 1]]);
    // a negative paddingIdx counts from the end
    const w2 = tensor([[1, 2], [3, 4], [5, 6]], { dtype: 'float64', requiresGrad: true });
    sum(embedding(idx([2, 2, 0]), w2, { paddingIdx: -1 })).backward();
    expect((w2.grad as Tensor).toArray()).toEqual([[1, 1], [0, 0], [0, 0]]);
  });

  test('errors: index dtype, range, weight rank, paddingIdx', () => {
    const w = uniformLeaf([4, 2], 20).detach();
    expect(() => embedding(tensor([0, 1]), w)).toThrow(DTypeError);
    expect(() => embedding(tensor([0, 1]), w)).toThrow(/int32.*float32/);
    expect(() => embedding(idx([0, 4]), w)).toThrow(ValueError);
    expect(() => embedding(idx([0, 4]), w)).toThrow(/index 4 is out of range .*valid indices are 0\.\.3/);
    expect(() => embedding(idx([0]), uniformLeaf([4], 21).detach())).toThrow(ShapeError);
    expect(() => embedding(idx([0]), w, { paddingIdx: 4 })).toThrow(ValueError);
  });
});

// ------------------------------------------------------------------ maskedFill

describe('maskedFill', () => {
  test('forward with a full-shape and a broadcast mask', () => {
    const a = tensor([[1, 2, 3], [4, 5, 6]], { dtype: 'float64' });
    expect(maskedFill(a, idx([[1, 0, 0], [0, 0, 1]]), -9).toArray()).toEqual([[-9, 2, 3], [4, 5, -9]]);
    expect(a.maskedFill(idx([0, 1, 0]), 0.5).toArray()).toEqual([[1, 0.5, 3], [4, 0.5, 6]]);
    expect(maskedFill(a, idx([[1], [0]]), -Infinity).toArray()).toEqual([[-Infinity, -Infinity, -Infinity], [4, 5, 6]]);
    // any nonzero value fills, and the dtype is the input's
    const f32 = tensor([1, 2, 3]);
    const out = maskedFill(f32, tensor([0, 2.5, -1]), 7);
    expect(out.dtype).toBe('float32');
    expect(out.toArray()).toEqual([1, 7, 7]);
  });

  test('the gradient is zero where filled (hand-computed)', () => {
    const a = tensor([[1, 2, 3], [4, 5, 6]], { dtype: 'float64', requiresGrad: true });
    sum(mul(maskedFill(a, idx([1, 0, 1]), 0), a)).backward();
    // d/da of Σ fill(a)·a = fill(a) + a·[not filled] = 2a where kept, 0 where filled
    expect((a.grad as Tensor).toArray()).toEqual([[0, 4, 0], [0, 10, 0]]);
  });

  test.each([
    [[2, 3], [2, 3]],
    [[2, 3], [3]],
    [[2, 3, 4], [3, 1]],
    [[4], []],
  ] as [Shape, Shape][])('gradcheck input %j mask %j', (shape, maskShape) => {
    const mask = randomIndex(maskShape, 2, 22);
    expect(gradcheck((a) => maskedFill(a, mask, 3), [uniformLeaf(shape, 23)]).ok).toBe(true);
  });

  test('a mask that does not broadcast to the input is a ShapeError naming both shapes', () => {
    const a = uniformLeaf([2, 3], 24).detach();
    expect(() => maskedFill(a, idx([1, 0]), 0)).toThrow(ShapeError);
    expect(() => maskedFill(a, idx([1, 0]), 0)).toThrow(/\[2\].*\[2,3\]/);
    // broadcasting must not grow the input
    expect(() => maskedFill(uniformLeaf([3], 25).detach(), idx([[1, 0, 1], [0, 0, 0]]), 0)).toThrow(ShapeError);
  });
});

// ------------------------------------------------------------------ tril / triu

describe('tril and triu', () => {
  const refTri = (a: number[], shape: Shape, k: number, lower: boolean) => {
    const [r, c] = shape.slice(-2);
    return a.map((v, p) => {
      const i = Math.floor(p / c) % r;
      const j = p % c;
      return (lower ? j - i <= k : j - i >= k) ? v : 0;
    });
  };

  test.each([
    [[3, 4], 0],
    [[3, 4], 1],
    [[3, 4], -1],
    [[4, 3], 2],
    [[2, 3, 3], 0],
    [[2, 2, 3, 4], -2],
  ] as [Shape, number][])('forward %j diagonal %d matches the loop', (shape, k) => {
    const a = uniformLeaf(shape, 26).detach();
    expect(flat(tril(a, k))).toEqual(refTri(flat(a), shape, k, true));
    expect(flat(triu(a, k))).toEqual(refTri(flat(a), shape, k, false));
    expect(tril(a, k).shape).toEqual(shape);
  });

  test('defaults and methods', () => {
    const a = tensor([[1, 2, 3], [4, 5, 6], [7, 8, 9]]);
    expect(tril(a).toArray()).toEqual([[1, 0, 0], [4, 5, 0], [7, 8, 9]]);
    expect(a.triu().toArray()).toEqual([[1, 2, 3], [0, 5, 6], [0, 0, 9]]);
    expect(a.tril(-1).toArray()).toEqual([[0, 0, 0], [4, 0, 0], [7, 8, 0]]);
    expect(a.triu(1).toArray()).toEqual([[0, 2, 3], [0, 0, 6], [0, 0, 0]]);
    expect(tril(a.to('int32')).dtype).toBe('int32');
  });

  test.each([
    [[3, 4], 0],
    [[2, 3, 3], 1],
    [[2, 4, 3], -1],
  ] as [Shape, number][])('gradcheck %j diagonal %d', (shape, k) => {
    expect(gradcheck((a) => tril(a, k), [uniformLeaf(shape, 27)]).ok).toBe(true);
    expect(gradcheck((a) => triu(a, k), [uniformLeaf(shape, 28)]).ok).toBe(true);
  });

  test('the gradient is the triangle mask', () => {
    const a = uniformLeaf([2, 3], 29);
    sum(triu(a)).backward();
    expect((a.grad as Tensor).toArray()).toEqual([[1, 1, 1], [0, 1, 1]]);
  });

  test('fewer than 2 dims is a ShapeError; diagonal must be an integer', () => {
    expect(() => tril(uniformLeaf([3], 30).detach())).toThrow(ShapeError);
    expect(() => triu(uniformLeaf([3], 30).detach())).toThrow(/at least 2 dims.*\[3\]/);
    expect(() => tril(uniformLeaf([2, 2], 31).detach(), 0.5)).toThrow(ValueError);
  });
});
