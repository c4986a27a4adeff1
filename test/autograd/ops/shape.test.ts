/**
 * Shape ops: values against index arithmetic written here, which ops are views (same buffer) and
 * which copy, float64 gradchecks, views of views, and gradients through broadcast (stride-0) views.
 */
import {
  DimError,
  ShapeError,
  Tensor,
  ValueError,
  arange,
  cat,
  contiguous,
  expand,
  flatten,
  gradcheck,
  mul,
  narrow,
  permute,
  reshape,
  select,
  slice,
  squeeze,
  stack,
  sum,
  tensor,
  transpose,
  unsqueeze,
  view_,
} from '../../../src';
import { flat, uniformLeaf } from '../../helpers';

type Shape = number[];

const numelOf = (s: Shape) => s.reduce((a, b) => a * b, 1);
const check = (fn: (...x: Tensor[]) => Tensor, inputs: Tensor[]) => expect(gradcheck(fn, inputs).ok).toBe(true);


/** 0..n-1 as float64, shaped; element (i, j, k) of [2,3,4] is 12i + 4j + k. */
function iota(shape: Shape, requiresGrad = false): Tensor {
  return arange(numelOf(shape), { dtype: 'float64' }).reshape(shape).detach().requiresGrad_(requiresGrad);
}

/** Row-major list of f(index) over `shape`. */
function build(shape: Shape, f: (idx: number[]) => number): number[] {
  const out: number[] = [];
  const n = numelOf(shape);
  for (let i = 0; i < n; i++) {
    const idx: number[] = [];
    let r = i;
    for (let d = shape.length - 1; d >= 0; d--) {
      idx[d] = r % shape[d];
      r = Math.floor(r / shape[d]);
    }
    out.push(f(idx));
  }
  return out;
}

// ------------------------------------------------------------------ reshape / view / flatten

describe('reshape', () => {
  test.each([
    [[6, 4], [6, 4]],
    [[-1], [24]],
    [[4, -1], [4, 6]],
    [[2, -1, 2], [2, 6, 2]],
    [[1, 24, 1], [1, 24, 1]],
  ] as [Shape, Shape][])('to %j gives shape %j, same order, same buffer', (target, expected) => {
    const a = iota([2, 3, 4]);
    const r = reshape(a, target);
    expect(r.shape).toEqual(expected);
    expect(flat(r)).toEqual(flat(a));
    expect(r.buffer).toBe(a.buffer);
    expect(r.isContiguous()).toBe(true);
  });

  test('of a transposed tensor copies, in the transposed order', () => {
    const a = iota([2, 3]);
    const t = transpose(a);
    const r = reshape(t, [-1]);
    expect(r.buffer).not.toBe(a.buffer);
    expect(flat(r)).toEqual([0, 3, 1, 4, 2, 5]);
    expect(r.isContiguous()).toBe(true);
  });

  test('of a contiguous view with an offset keeps sharing the buffer', () => {
    const a = iota([4, 3]);
    const rows = narrow(a, 0, 1, 2); // offset 3, contiguous
    const r = reshape(rows, [3, 2]);
    expect(r.buffer).toBe(a.buffer);
    expect(r.toArray()).toEqual([
      [3, 4],
      [5, 6],
      [7, 8],
    ]);
  });

  test('0-d to and from', () => {
    const s = tensor(5, { dtype: 'float64' });
    expect(reshape(s, [1, 1]).toArray()).toEqual([[5]]);
    expect(reshape(s, [-1]).shape).toEqual([1]);
    expect(reshape(tensor([7]), []).item()).toBe(7);
  });

  test('gradcheck, contiguous and not', () => {
    check((x) => reshape(x, [4, -1]), [uniformLeaf([2, 3, 4], 1)]);
    check((x) => reshape(transpose(x, 0, 2), [2, 12]), [uniformLeaf([2, 3, 4], 2)]);
  });

  test('errors: wrong size, two -1, bad entries', () => {
    const a = iota([2, 3]);
    expect(() => reshape(a, [4])).toThrow(ShapeError);
    expect(() => reshape(a, [4, -1])).toThrow(/reshape.*\[2,3\]/);
    expect(() => reshape(a, [-1, -1])).toThrow(ShapeError);
    expect(() => reshape(a, [2, -3])).toThrow(ShapeError);
    expect(() => reshape(a, [2.5, 2])).toThrow(ShapeError);
  });
});

describe('view', () => {
  test('shares the buffer, infers -1', () => {
    const a = iota([2, 6]);
    const v = view_(a, [3, -1]);
    expect(v.shape).toEqual([3, 4]);
    expect(v.buffer).toBe(a.buffer);
    expect(flat(v)).toEqual(flat(a));
    expect(a.view([12]).buffer).toBe(a.buffer);
    check((x) => view_(x, [4, 3]), [uniformLeaf([2, 6], 3)]);
  });

  test('of a non-contiguous tensor is a ShapeError that names view and suggests reshape', () => {
    const t = transpose(iota([2, 3]));
    expect(() => view_(t, [6])).toThrow(ShapeError);
    expect(() => t.view([6])).toThrow(/view.*reshape/);
  });
});

describe('flatten', () => {
  test('default, with start/end dims, negative dims, 0-d', () => {
    const a = iota([2, 3, 4]);
    expect(flatten(a).shape).toEqual([24]);
    expect(flatten(a, 1).shape).toEqual([2, 12]);
    expect(flatten(a, 0, 1).shape).toEqual([6, 4]);
    expect(flatten(a, -2, -1).shape).toEqual([2, 12]);
    expect(flatten(a, 1, 1).shape).toEqual([2, 3, 4]);
    expect(flatten(a, 1).buffer).toBe(a.buffer);
    expect(flat(a.flatten(1))).toEqual(flat(a));
    expect(flatten(tensor(3)).shape).toEqual([1]);
    expect(() => flatten(a, 2, 1)).toThrow(DimError);
    expect(() => flatten(a, 3)).toThrow(DimError);
  });

  test('of a permuted tensor copies in the permuted order; gradcheck', () => {
    const a = iota([2, 3]);
    expect(flat(flatten(permute(a, [1, 0])))).toEqual([0, 3, 1, 4, 2, 5]);
    check((x) => flatten(permute(x, [2, 0, 1]), 1), [uniformLeaf([2, 3, 4], 4)]);
  });
});

// ------------------------------------------------------------------ permute / transpose

describe('permute and transpose', () => {
  test('permute values, a view with permuted strides', () => {
    const a = iota([2, 3, 4]);
    const p = permute(a, [2, 0, 1]); // [4,2,3], p[k][i][j] = a[i][j][k]
    expect(p.shape).toEqual([4, 2, 3]);
    expect(p.strides).toEqual([1, 12, 4]);
    expect(p.buffer).toBe(a.buffer);
    expect(flat(p)).toEqual(build([4, 2, 3], ([k, i, j]) => 12 * i + 4 * j + k));
    expect(flat(permute(a, [-1, 0, -2]))).toEqual(flat(p));
    expect(flat(a.permute([0, 1, 2]))).toEqual(flat(a));
  });

  test('permute gradcheck', () => {
    check((x) => permute(x, [2, 0, 1]), [uniformLeaf([2, 3, 4], 5)]);
    check((x) => permute(x, [1, 0]), [uniformLeaf([3, 2], 6)]);
  });

  test('transpose: default swaps the last two dims; explicit and negative dims', () => {
    const a = iota([2, 3, 4]);
    expect(transpose(a).shape).toEqual([2, 4, 3]);
    expect(flat(transpose(a))).toEqual(build([2, 4, 3], ([i, k, j]) => 12 * i + 4 * j + k));
    expect(flat(transpose(a, 0, 2))).toEqual(build([4, 3, 2], ([k, j, i]) => 12 * i + 4 * j + k));
    expect(flat(a.transpose(-3, -1))).toEqual(flat(transpose(a, 0, 2)));
    expect(transpose(a, 1, 1).shape).toEqual([2, 3, 4]);
    const v = iota([5]);
    expect(transpose(v)).toBe(v);
    expect(transpose(iota([2, 3])).isContiguous()).toBe(false);
    expect(transpose(transpose(iota([2, 3]))).isContiguous()).toBe(true);
  });

  test('transpose gradcheck', () => {
    check((x) => transpose(x), [uniformLeaf([2, 3, 4], 7)]);
    check((x) => transpose(x, 0, 1), [uniformLeaf([3, 2], 8)]);
  });

  test('errors', () => {
    const a = iota([2, 3]);
    expect(() => permute(a, [0])).toThrow(DimError);
    expect(() => permute(a, [0, 0])).toThrow(DimError);
    expect(() => permute(a, [0, 2])).toThrow(DimError);
    expect(() => transpose(a, 0, 2)).toThrow(DimError);
  });
});

// ------------------------------------------------------------------ expand

describe('expand', () => {
  test('size-1 dims and new leading dims become stride 0 on the same buffer', () => {
    const a = iota([3, 1]);
    const e = expand(a, [3, 4]);
    expect(e.shape).toEqual([3, 4]);
    expect(e.strides[1]).toBe(0);
    expect(e.buffer).toBe(a.buffer);
    expect(flat(e)).toEqual(build([3, 4], ([i]) => i));
    const l = expand(a, [2, 3, 4]);
    expect(l.shape).toEqual([2, 3, 4]);
    expect(l.strides[0]).toBe(0);
    expect(flat(l)).toEqual(build([2, 3, 4], ([, j]) => j));
  });

  test('-1 keeps a size', () => {
    const a = iota([3, 1]);
    expect(expand(a, [-1, 5]).shape).toEqual([3, 5]);
    expect(a.expand([2, -1, -1]).shape).toEqual([2, 3, 1]);
    expect(expand(iota([]), [2, 2]).toArray()).toEqual([
      [0, 0],
      [0, 0],
    ]);
  });

  test('errors: a non-1 dim, fewer dims, -1 in a new leading dim', () => {
    const a = iota([3, 1]);
    expect(() => expand(a, [4, 4])).toThrow(ShapeError);
    expect(() => expand(a, [3])).toThrow(ShapeError);
    expect(() => expand(a, [-1, 3, 4])).toThrow(ShapeError);
    expect(() => expand(a, [-2, 3, 4])).toThrow(ShapeError);
  });

  test('the gradient sums over the broadcast dims', () => {
    const a = tensor([[1], [2], [3]], { dtype: 'float64', requiresGrad: true });
    const w = iota([2, 3, 4]);
    sum(mul(expand(a, [2, 3, 4]), w)).backward();
    // d/da_j = Σ_{i,k} w[i][j][k]
    expect(a.grad?.toArray()).toEqual([0, 1, 2].map((j) => [build([2, 4], ([i, k]) => 12 * i + 4 * j + k).reduce((x, y) => x + y)]));
  });

  test('gradcheck, including an expand of a view and a reshape (copy) of an expand', () => {
    check((x) => expand(x, [2, 3, 4]), [uniformLeaf([3, 1], 9)]);
    check((x) => expand(x, [5, -1]), [uniformLeaf([1, 2], 10)]);
    check((x) => expand(x, [3, 2]), [uniformLeaf([], 11)]);
    check((x) => expand(transpose(x), [2, 4, 3]), [uniformLeaf([3, 1], 12)]);
    check((x) => reshape(expand(x, [2, 3, 4]), [6, 4]), [uniformLeaf([1, 4], 13)]);
    check((x) => narrow(expand(x, [3, 5]), 1, 1, 3), [uniformLeaf([3, 1], 14)]);
  });
});

// ------------------------------------------------------------------ narrow / slice / select

describe('narrow', () => {
  test('values, offsets, negative start', () => {
    const a = iota([4, 5]);
    const n = narrow(a, 1, 1, 3);
    expect(n.shape).toEqual([4, 3]);
    expect(n.buffer).toBe(a.buffer);
    expect(flat(n)).toEqual(build([4, 3], ([i, j]) => 5 * i + j + 1));
    expect(flat(narrow(a, 0, -2, 2))).toEqual(flat(a).slice(10));
    expect(narrow(a, 0, 4, 0).shape).toEqual([0, 5]);
    expect(a.narrow(-1, 0, 1).toArray()).toEqual([[0], [5], [10], [15]]);
  });

  test('gradient: zeros outside the window', () => {
    const a = tensor([1, 2, 3, 4], { dtype: 'float64', requiresGrad: true });
    sum(mul(narrow(a, 0, 1, 2), tensor([10, 20], { dtype: 'float64' }))).backward();
    expect(a.grad?.toArray()).toEqual([0, 10, 20, 0]);
    check((x) => narrow(x, 1, 1, 2), [uniformLeaf([2, 4], 15)]);
  });

  test('errors', () => {
    const a = iota([4, 5]);
    expect(() => narrow(a, 1, 3, 3)).toThrow(ShapeError);
    expect(() => narrow(a, 0, -5, 1)).toThrow(ShapeError);
    expect(() => narrow(a, 2, 0, 1)).toThrow(DimError);
  });
});

describe('slice', () => {
  const a = iota([10]);

  test.each([
    [0, 10, 1, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]],
    [2, 8, 2, [2, 4, 6]],
    [1, 10, 3, [1, 4, 7]],
    [-3, undefined, 1, [7, 8, 9]],
    [0, -7, 1, [0, 1, 2]],
    [-4, -1, 2, [6, 8]],
    [-100, 3, 1, [0, 1, 2]],
    [8, 100, 1, [8, 9]],
    [5, 2, 1, []],
    [10, 10, 1, []],
  ] as [number, number | undefined, number, number[]][])('a[%p:%p:%p]', (start, end, step, expected) => {
    const s = slice(a, 0, start, end, step);
    expect(flat(s)).toEqual(expected);
    expect(s.shape).toEqual([expected.length]);
  });

  test('default start and end; a slice is a view', () => {
    const m = iota([3, 4]);
    const s = slice(m, 1, undefined, undefined, 2);
    expect(s.toArray()).toEqual([
      [0, 2],
      [4, 6],
      [8, 10],
    ]);
    expect(s.buffer).toBe(m.buffer);
    expect(m.slice(0, 1).toArray()).toEqual([
      [4, 5, 6, 7],
      [8, 9, 10, 11],
    ]);
  });

  test('gradient: the incoming gradient lands on the sliced positions', () => {
    const x = tensor([1, 2, 3, 4, 5, 6, 7], { dtype: 'float64', requiresGrad: true });
    sum(mul(slice(x, 0, 1, -1, 2), tensor([1, 2, 3], { dtype: 'float64' }))).backward();
    expect(x.grad?.toArray()).toEqual([0, 1, 0, 2, 0, 3, 0]);
  });

  test('gradcheck with steps and negative indices', () => {
    check((x) => slice(x, 1, -4, undefined, 2), [uniformLeaf([2, 5], 16)]);
    check((x) => slice(x, 0, 1, 3), [uniformLeaf([3, 2], 17)]);
    check((x) => slice(slice(x, 0, 0, 5, 2), 0, 1), [uniformLeaf([6], 18)]);
  });

  test('a step that is not a positive integer is a ValueError', () => {
    expect(() => slice(a, 0, 0, 5, 0)).toThrow(ValueError);
    expect(() => slice(a, 0, 0, 5, -1)).toThrow(ValueError);
    expect(() => slice(a, 1)).toThrow(DimError);
  });
});

describe('select', () => {
  test('values, negative index, view', () => {
    const a = iota([2, 3, 4]);
    const s = select(a, 1, 2);
    expect(s.shape).toEqual([2, 4]);
    expect(s.buffer).toBe(a.buffer);
    expect(flat(s)).toEqual(build([2, 4], ([i, k]) => 12 * i + 8 + k));
    expect(flat(select(a, -1, -1))).toEqual(build([2, 3], ([i, j]) => 12 * i + 4 * j + 3));
    expect(a.select(0, 1).select(0, 2).select(0, 3).item()).toBe(23);
  });

  test('gradient and gradcheck', () => {
    const x = tensor([[1, 2], [3, 4]], { dtype: 'float64', requiresGrad: true });
    sum(mul(select(x, 1, 0), tensor([5, 6], { dtype: 'float64' }))).backward();
    expect(x.grad?.toArray()).toEqual([
      [5, 0],
      [6, 0],
    ]);
    check((t) => select(t, 0, -1), [uniformLeaf([3, 2], 19)]);
    check((t) => select(t, 2, 1), [uniformLeaf([2, 2, 3], 20)]);
  });

  test('index out of range', () => {
    const a = iota([2, 3]);
    expect(() => select(a, 1, 3)).toThrow(ShapeError);
    expect(() => select(a, 1, -4)).toThrow(ShapeError);
    expect(() => select(a, 2, 0)).toThrow(DimError);
  });
});

// ------------------------------------------------------------------ squeeze / unsqueeze

describe('squeeze and unsqueeze', () => {
  test('squeeze all, one dim, a list; dims of size > 1 are left alone', () => {
    const a = iota([1, 3, 1, 2]);
    expect(squeeze(a).shape).toEqual([3, 2]);
    expect(squeeze(a, 0).shape).toEqual([3, 1, 2]);
    expect(squeeze(a, -2).shape).toEqual([1, 3, 2]);
    expect(squeeze(a, [0, 2]).shape).toEqual([3, 2]);
    expect(squeeze(a, 1).shape).toEqual([1, 3, 1, 2]);
    expect(squeeze(a).buffer).toBe(a.buffer);
    expect(flat(squeeze(a))).toEqual(flat(a));
    expect(squeeze(iota([1, 1])).shape).toEqual([]);
    expect(a.squeeze().toArray()).toEqual([
      [0, 1],
      [2, 3],
      [4, 5],
    ]);
  });

  test('unsqueeze at the front, the middle, the end, negative', () => {
    const a = iota([2, 3]);
    expect(unsqueeze(a, 0).shape).toEqual([1, 2, 3]);
    expect(unsqueeze(a, 1).shape).toEqual([2, 1, 3]);
    expect(unsqueeze(a, 2).shape).toEqual([2, 3, 1]);
    expect(unsqueeze(a, -1).shape).toEqual([2, 3, 1]);
    expect(unsqueeze(a, -3).shape).toEqual([1, 2, 3]);
    expect(unsqueeze(tensor(1), 0).shape).toEqual([1]);
    expect(unsqueeze(a, 1).buffer).toBe(a.buffer);
    expect(flat(a.unsqueeze(1))).toEqual(flat(a));
    expect(() => unsqueeze(a, 3)).toThrow(DimError);
    expect(() => squeeze(a, 2)).toThrow(DimError);
  });

  test('unsqueeze of a transposed tensor keeps the element order', () => {
    const t = transpose(iota([2, 3]));
    const u = unsqueeze(t, 1); // [3,1,2]
    expect(flat(u)).toEqual([0, 3, 1, 4, 2, 5]);
    expect(flat(expand(u, [3, 2, 2]))).toEqual([0, 3, 0, 3, 1, 4, 1, 4, 2, 5, 2, 5]);
  });

  test('gradcheck', () => {
    check((x) => squeeze(x), [uniformLeaf([1, 3, 1], 21)]);
    check((x) => squeeze(x, [0]), [uniformLeaf([1, 3, 1], 22)]);
    check((x) => unsqueeze(x, 1), [uniformLeaf([2, 3], 23)]);
    check((x) => unsqueeze(transpose(x), -1), [uniformLeaf([2, 3], 24)]);
  });
});

// ------------------------------------------------------------------ contiguous

describe('contiguous', () => {
  test('returns the tensor itself when contiguous, a contiguous copy otherwise', () => {
    const a = iota([2, 3]);
    expect(contiguous(a)).toBe(a);
    const t = transpose(a);
    const c = contiguous(t);
    expect(c.isContiguous()).toBe(true);
    expect(c.buffer).not.toBe(a.buffer);
    expect(c.strides).toEqual([2, 1]);
    expect(flat(c)).toEqual([0, 3, 1, 4, 2, 5]);
    expect(t.contiguous().toArray()).toEqual(t.toArray());
    const forced = contiguous(a, true);
    expect(forced.buffer).not.toBe(a.buffer);
    expect(forced.toArray()).toEqual(a.toArray());
  });

  test('gradcheck', () => {
    check((x) => contiguous(transpose(x)), [uniformLeaf([2, 3], 25)]);
    check((x) => contiguous(expand(x, [3, 3])), [uniformLeaf([1, 3], 26)]);
  });
});

// ------------------------------------------------------------------ cat / stack

describe('cat', () => {
  test('along dim 0, 1 and -1 with different sizes', () => {
    const a = iota([2, 2]);
    const b = tensor([[10, 11, 12], [13, 14, 15]], { dtype: 'float64' });
    expect(cat([a, b], 1).toArray()).toEqual([
      [0, 1, 10, 11, 12],
      [2, 3, 13, 14, 15],
    ]);
    expect(cat([a, b], -1).toArray()).toEqual(cat([a, b], 1).toArray());
    const c = tensor([[7, 8]], { dtype: 'float64' });
    expect(cat([a, c, a]).toArray()).toEqual([
      [0, 1],
      [2, 3],
      [7, 8],
      [0, 1],
      [2, 3],
    ]);
    expect(cat([a]).toArray()).toEqual(a.toArray());
    expect(cat([a, iota([0, 2])]).shape).toEqual([2, 2]);
  });

  test('of views (transposed, sliced)', () => {
    const a = iota([3, 2]);
    const out = cat([transpose(a), slice(iota([2, 6]), 1, 1, 6, 2)], 1); // [2,3] ++ [2,3]
    expect(out.toArray()).toEqual([
      [0, 2, 4, 1, 3, 5],
      [1, 3, 5, 7, 9, 11],
    ]);
  });

  test('promotes dtypes', () => {
    const out = cat([tensor([1, 2], { dtype: 'int32' }), tensor([0.5], { dtype: 'float32' })]);
    expect(out.dtype).toBe('float32');
    expect(out.toArray()).toEqual([1, 2, 0.5]);
  });

  test('gradients: each input gets its piece', () => {
    const a = tensor([1, 2], { dtype: 'float64', requiresGrad: true });
    const b = tensor([3, 4, 5], { dtype: 'float64', requiresGrad: true });
    const c = tensor([6], { dtype: 'float64' });
    sum(mul(cat([a, c, b]), tensor([1, 2, 3, 4, 5, 6], { dtype: 'float64' }))).backward();
    expect(a.grad?.toArray()).toEqual([1, 2]);
    expect(b.grad?.toArray()).toEqual([4, 5, 6]);
    expect(c.grad).toBeNull();
  });

  test('gradcheck along several dims, the same tensor twice', () => {
    check((x, y) => cat([x, y], 0), [uniformLeaf([2, 3], 27), uniformLeaf([1, 3], 28)]);
    check((x, y, z) => cat([x, y, z], 1), [uniformLeaf([2, 1, 2], 29), uniformLeaf([2, 3, 2], 30), uniformLeaf([2, 2, 2], 31)]);
    check((x, y) => cat([x, y, x], -1), [uniformLeaf([2, 2], 32), uniformLeaf([2, 1], 33)]);
    check((x) => cat([transpose(x), x], 0), [uniformLeaf([2, 2], 34)]);
  });

  test('errors: empty list, mismatched dims, dim out of range, 0-d tensors', () => {
    expect(() => cat([])).toThrow(ValueError);
    expect(() => cat([iota([2, 2]), iota([2, 3])], 0)).toThrow(ShapeError);
    expect(() => cat([iota([2, 2]), iota([4])], 0)).toThrow(ShapeError);
    expect(() => cat([iota([2, 2]), iota([2, 2])], 2)).toThrow(DimError);
    expect(() => cat([tensor(1), tensor(2)])).toThrow(/cat/);
  });
});

describe('stack', () => {
  test('along a new dim 0, 1 and -1', () => {
    const a = tensor([1, 2, 3], { dtype: 'float64' });
    const b = tensor([4, 5, 6], { dtype: 'float64' });
    expect(stack([a, b]).toArray()).toEqual([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    expect(stack([a, b], 1).toArray()).toEqual([
      [1, 4],
      [2, 5],
      [3, 6],
    ]);
    expect(stack([a, b], -1).toArray()).toEqual(stack([a, b], 1).toArray());
    expect(stack([tensor(1), tensor(2)]).toArray()).toEqual([1, 2]);
    const m = stack([iota([2, 3]), iota([2, 3])], 1);
    expect(m.shape).toEqual([2, 2, 3]);
    expect(flat(m)).toEqual(build([2, 2, 3], ([i, , k]) => 3 * i + k));
  });

  test('gradcheck', () => {
    check((x, y) => stack([x, y], 1), [uniformLeaf([2, 3], 35), uniformLeaf([2, 3], 36)]);
    check((x, y) => stack([x, y, x], -1), [uniformLeaf([2], 37), uniformLeaf([2], 38)]);
    check((x, y) => stack([x, y]), [uniformLeaf([], 39), uniformLeaf([], 40)]);
  });

  test('errors', () => {
    expect(() => stack([])).toThrow(ValueError);
    expect(() => stack([iota([2]), iota([3])])).toThrow(ShapeError);
    expect(() => stack([iota([2]), iota([2])], 2)).toThrow(DimError);
  });
});

// ------------------------------------------------------------------ views of views

describe('views of views', () => {
  test('transpose, then slice, then reshape: values and gradcheck', () => {
    const a = iota([4, 6]);
    const t = transpose(a); // [6,4], t[i][j] = a[j][i] = 6j + i
    const s = slice(t, 0, 1, 6, 2); // rows 1, 3, 5 of t: [3,4]
    expect(s.buffer).toBe(a.buffer);
    expect(flat(s)).toEqual(build([3, 4], ([r, j]) => 6 * j + (1 + 2 * r)));
    const r = reshape(s, [2, 6]); // a copy: s is not contiguous
    expect(r.buffer).not.toBe(a.buffer);
    expect(flat(r)).toEqual(flat(s));
    check((x) => reshape(slice(transpose(x), 0, 1, 6, 2), [2, 6]), [uniformLeaf([4, 6], 41)]);
  });

  test('permute, select, narrow, unsqueeze, expand chain', () => {
    const a = iota([2, 3, 4]);
    const v = expand(unsqueeze(narrow(select(permute(a, [2, 1, 0]), 1, 2), 0, 1, 2), 0), [3, 2, 2]);
    // permute -> [4,3,2] p[k][j][i] = a[i][j][k]; select dim 1 index 2 -> [4,2] (k, i) j = 2;
    // narrow dim 0 from 1, length 2 -> k in {1, 2}; unsqueeze + expand -> [3,2,2]
    expect(v.buffer).toBe(a.buffer);
    expect(flat(v)).toEqual(build([3, 2, 2], ([, k, i]) => 12 * i + 8 + (k + 1)));
    check((x) => expand(unsqueeze(narrow(select(permute(x, [2, 1, 0]), 1, 2), 0, 1, 2), 0), [3, 2, 2]), [uniformLeaf([2, 3, 4], 42)]);
  });

  test('slicing a slice composes offsets and steps', () => {
    const a = iota([20]);
    const s = slice(slice(slice(a, 0, 3, 19, 2), 0, 1, undefined, 3), 0, -2); // [3,5,...,17] -> [5,11,17] -> [11,17]
    expect(flat(s)).toEqual([11, 17]);
    expect(s.offset).toBe(11);
    expect(s.strides).toEqual([6]);
  });

  test('a view of a view of a non-leaf, and gradients accumulated from several views', () => {
    const x = tensor([1, 2, 3, 4, 5, 6], { dtype: 'float64', requiresGrad: true });
    const y = mul(x, 2); // non-leaf
    const m = reshape(y, [2, 3]);
    const out = sum(mul(select(m, 0, 1), 10)).add(sum(transpose(m).select(0, 2)));
    out.backward();
    // row 1 of m is x[3..5] (weight 10), column 2 of m is x[2] and x[5] (weight 1); dy/dx = 2
    expect(x.grad?.toArray()).toEqual([0, 0, 2, 20, 20, 22]);
  });

  test('gradients through broadcast views meet in the same input', () => {
    const a = tensor([[1], [2]], { dtype: 'float64', requiresGrad: true }); // [2,1]
    const e1 = expand(a, [2, 3]);
    const e2 = expand(transpose(a), [4, 2]); // [1,2] -> [4,2]
    sum(e1).add(sum(mul(e2, iota([4, 2])))).backward();
    // from e1: 3 per element; from e2: column sums of iota([4,2]) = [0+2+4+6, 1+3+5+7] = [12, 16]
    expect(a.grad?.toArray()).toEqual([[15], [19]]);
    check((x) => mul(expand(x, [2, 3]), expand(transpose(x), [3, 2]).transpose(0, 1)), [uniformLeaf([2, 1], 43)]);
  });
});
