/**
 * Shape arithmetic (src/tensor/shape.ts is internal, so it is imported directly): broadcasting,
 * dim normalisation and its errors, row-major strides and the contiguity test.
 */
import { DimError, ShapeError, ValueError } from '../../src';
import {
  broadcastShapes,
  broadcastStrides,
  checkShape,
  contiguousStrides,
  isContiguous,
  normalizeDim,
  normalizeDims,
  numel,
  sameShape,
} from '../../src/tensor/shape';

describe('broadcastShapes', () => {
  test.each([
    [[2, 3], [2, 3], [2, 3]],
    [[3, 1], [1, 4], [3, 4]],
    [[2, 3, 4], [4], [2, 3, 4]],
    [[4], [2, 3, 4], [2, 3, 4]],
    [[2, 1, 3], [4, 1], [2, 4, 3]],
    [[], [2, 3], [2, 3]],
    [[2, 3], [], [2, 3]],
    [[], [], []],
    [[1], [], [1]],
    [[5, 1, 1], [1, 1], [5, 1, 1]],
    [[0, 3], [1, 3], [0, 3]],
    [[0], [1], [0]],
  ] as number[][][])('%j with %j gives %j', (a, b, out) => {
    expect(broadcastShapes('op', a, b)).toEqual(out);
    expect(broadcastShapes('op', b, a)).toEqual(out);
  });

  test.each([
    [[2, 3], [4]],
    [[3], [4]],
    [[2, 3, 4], [3, 1, 4]],
    [[0], [2]],
  ] as number[][][])('%j with %j is a ShapeError naming the op and both shapes', (a, b) => {
    const run = () => broadcastShapes('myop', a, b);
    expect(run).toThrow(ShapeError);
    try {
      run();
    } catch (e) {
      const message = (e as Error).message;
      expect(message).toContain('myop');
      expect(message).toContain(`[${a.join(',')}]`);
      expect(message).toContain(`[${b.join(',')}]`);
      expect((e as ShapeError).op).toBe('myop');
    }
  });
});

describe('broadcastStrides', () => {
  test('size-1 and missing leading dims get stride 0', () => {
    expect(broadcastStrides([3, 1], [1, 1], [2, 3, 4])).toEqual([0, 1, 0]);
    expect(broadcastStrides([4], [1], [2, 3, 4])).toEqual([0, 0, 1]);
    expect(broadcastStrides([], [], [2, 2])).toEqual([0, 0]);
    expect(broadcastStrides([2, 3], [1, 2], [2, 3])).toEqual([1, 2]);
    // a size-1 dim that stays size 1 keeps its stride
    expect(broadcastStrides([1, 3], [3, 1], [1, 3])).toEqual([3, 1]);
  });
});

describe('normalizeDim', () => {
  test('maps negative dims from the end', () => {
    expect(normalizeDim('op', 0, 3)).toBe(0);
    expect(normalizeDim('op', 2, 3)).toBe(2);
    expect(normalizeDim('op', -1, 3)).toBe(2);
    expect(normalizeDim('op', -3, 3)).toBe(0);
  });

  test('0-d tensors accept 0 and -1 (as PyTorch)', () => {
    expect(normalizeDim('op', 0, 0)).toBe(0);
    expect(normalizeDim('op', -1, 0)).toBe(0);
    expect(() => normalizeDim('op', 1, 0)).toThrow(DimError);
  });

  test.each([
    [3, 3],
    [-4, 3],
    [1, 1],
    [-2, 1],
    [0.5, 3],
    [NaN, 3],
  ])('dim %p for %p dims is a DimError naming the op, the dim and the valid range', (dim, ndim) => {
    expect(() => normalizeDim('sum', dim, ndim)).toThrow(DimError);
    try {
      normalizeDim('sum', dim, ndim);
    } catch (e) {
      const m = (e as Error).message;
      expect(m).toMatch(/^sum: /);
      expect(m).toContain(String(dim));
      expect(m).toContain(`[${-ndim}, ${ndim - 1}]`);
      expect(e).toBeInstanceOf(DimError);
      expect((e as Error).name).toBe('DimError');
    }
  });

  test('normalizeDims: undefined means all, sorted, repeats rejected', () => {
    expect(normalizeDims('op', undefined, 3)).toEqual([0, 1, 2]);
    expect(normalizeDims('op', -1, 3)).toEqual([2]);
    expect(normalizeDims('op', [2, 0], 3)).toEqual([0, 2]);
    expect(normalizeDims('op', [-1, 0], 3)).toEqual([0, 2]);
    expect(normalizeDims('op', [], 3)).toEqual([]);
    expect(() => normalizeDims('op', [1, -2], 3)).toThrow(DimError);
    expect(() => normalizeDims('op', [0, 3], 3)).toThrow(DimError);
  });
});

describe('contiguousStrides and isContiguous', () => {
  test('row-major strides', () => {
    expect(contiguousStrides([2, 3, 4])).toEqual([12, 4, 1]);
    expect(contiguousStrides([5])).toEqual([1]);
    expect(contiguousStrides([])).toEqual([]);
    expect(contiguousStrides([3, 1, 2])).toEqual([2, 2, 1]);
    expect(contiguousStrides([2, 0, 3])).toEqual([0, 3, 1]);
  });

  test('isContiguous', () => {
    expect(isContiguous([2, 3, 4], [12, 4, 1])).toBe(true);
    expect(isContiguous([], [])).toBe(true);
    expect(isContiguous([3, 2], [1, 3])).toBe(false); // transposed
    expect(isContiguous([2, 3], [0, 1])).toBe(false); // broadcast
    expect(isContiguous([3, 2], [4, 1])).toBe(false); // a row slice with gaps
    expect(isContiguous([3, 2], [2, 2])).toBe(false); // every other column
    // strides of size-1 dims do not matter
    expect(isContiguous([1, 3], [99, 1])).toBe(true);
    expect(isContiguous([2, 1, 3], [3, 7, 1])).toBe(true);
    expect(isContiguous([1], [0])).toBe(true);
  });
});

describe('numel, sameShape, checkShape', () => {
  test('numel', () => {
    expect(numel([2, 3, 4])).toBe(24);
    expect(numel([])).toBe(1);
    expect(numel([3, 0])).toBe(0);
  });

  test('sameShape', () => {
    expect(sameShape([2, 3], [2, 3])).toBe(true);
    expect(sameShape([2, 3], [3, 2])).toBe(false);
    expect(sameShape([1], [])).toBe(false);
  });

  test('checkShape returns a copy and rejects negative or fractional sizes', () => {
    const s = [2, 3];
    const c = checkShape('op', s);
    expect(c).toEqual([2, 3]);
    expect(c).not.toBe(s);
    expect(() => checkShape('op', [-1])).toThrow(ValueError);
    expect(() => checkShape('zeros', [2, 0.5])).toThrow(/zeros.*\[2,0.5\]/);
  });
});
