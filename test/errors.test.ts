/**
 * Typed errors: every failure is an instance of a BlockgradError subclass whose message starts
 * with the op's name and shows the shapes involved, and a failing op leaves its inputs (values,
 * views, autograd fields) and the memory accounting exactly as they were.
 */
import {
  AutogradError,
  BlockgradError,
  DTypeError,
  DimError,
  ShapeError,
  Tensor,
  ValueError,
  add,
  argmax,
  argmin,
  cat,
  div,
  eq,
  expand,
  flatten,
  fmtShape,
  ge,
  gt,
  le,
  logsumexp,
  lt,
  max,
  maximum,
  mean,
  memory,
  min,
  minimum,
  mul,
  narrow,
  ne,
  permute,
  pow,
  randn,
  reshape,
  select,
  slice,
  squeeze,
  stack,
  sub,
  sum,
  tensor,
  transpose,
  unsqueeze,
  variance,
  view_,
  where,
  zeros,
  Generator,
} from '../src';
import { expectError } from './helpers';


const a23 = () => randn([2, 3], { dtype: 'float64', generator: new Generator(1) });
const a4 = () => randn([4], { dtype: 'float64', generator: new Generator(2) });

// ------------------------------------------------------------------ binary ops

describe('shape mismatch in every binary op is a ShapeError naming the op and both shapes', () => {
  const ops: [string, (x: Tensor, y: Tensor) => Tensor][] = [
    ['add', add],
    ['sub', sub],
    ['mul', mul],
    ['div', div],
    ['pow', pow],
    ['maximum', maximum],
    ['minimum', minimum],
    ['eq', eq],
    ['ne', ne],
    ['lt', lt],
    ['le', le],
    ['gt', gt],
    ['ge', ge],
  ];

  test.each(ops)('%s', (name, op) => {
    expectError(() => op(a23(), a4()), ShapeError, name, '[2,3]', '[4]');
    expectError(() => op(a4(), a23()), ShapeError, name, '[4]', '[2,3]');
    expectError(() => op(randn([2, 3, 4]), randn([3, 1, 4])), ShapeError, name, '[2,3,4]', '[3,1,4]');
  });

  test('method forms fail the same way', () => {
    expectError(() => a23().add(a4()), ShapeError, 'add', '[2,3]', '[4]');
    expectError(() => a23().pow(a4()), ShapeError, 'pow', '[2,3]', '[4]');
    expectError(() => a23().maximum(a4()), ShapeError, 'maximum', '[2,3]', '[4]');
  });

  test('where: cond against a, and a against b', () => {
    const cond = tensor([[1, 0, 1], [0, 1, 0]], { dtype: 'int32' });
    expectError(() => where(cond, a23(), a4()), ShapeError, 'where', '[2,3]', '[4]');
    expectError(() => where(cond, a4(), a23()), ShapeError, 'where', '[2,3]', '[4]');
    expectError(() => where(tensor([1, 0, 1, 0], { dtype: 'int32' }), a23(), 0), ShapeError, 'where', '[4]', '[2,3]');
    expectError(() => a23().where(tensor([1, 0, 1, 0]), 0), ShapeError, 'where');
  });

  test('non-tensor operands are a ValueError naming the op', () => {
    expectError(() => add(a23(), null as never), ValueError, 'add');
    expectError(() => mul('2' as never, a23()), ValueError, 'mul');
    expectError(() => where([1] as never, a23(), 0), ValueError, 'where');
  });
});

// ------------------------------------------------------------------ reshape and views

describe('reshape and view errors', () => {
  test('reshape to a wrong size names both shapes', () => {
    expectError(() => reshape(a23(), [4]), ShapeError, 'reshape', '[2,3]', '[4]');
    expectError(() => reshape(a23(), [5, -1]), ShapeError, 'reshape', '[2,3]', '[5,-1]');
    expectError(() => a23().reshape([7]), ShapeError, 'reshape', '[2,3]');
    expectError(() => reshape(a23(), [-1, -1]), ShapeError, 'reshape');
  });

  test('view of a non-contiguous tensor, and view to a wrong size', () => {
    expectError(() => view_(transpose(a23()), [6]), ShapeError, 'view', '[3,2]', 'reshape');
    expectError(() => view_(a23(), [4]), ShapeError, 'view', '[2,3]', '[4]');
  });

  test('expand', () => {
    expectError(() => expand(a23(), [4, 3]), ShapeError, 'expand', '[2,3]', '[4,3]');
    expectError(() => expand(a23(), [3]), ShapeError, 'expand', '[2,3]', '[3]');
  });

  test('narrow, select and cat shape errors', () => {
    expectError(() => narrow(a23(), 1, 2, 2), ShapeError, 'narrow', '[2,3]');
    expectError(() => select(a23(), 0, 2), ShapeError, 'select');
    expectError(() => cat([a23(), a4()]), ShapeError, 'cat', '[4]', '[2,3]');
    expectError(() => stack([a23(), transpose(a23())]), ShapeError, 'stack', '[3,2]', '[2,3]');
  });
});

// ------------------------------------------------------------------ dims out of range

describe('dims out of range are DimErrors naming the op', () => {
  const cases: [string, () => unknown][] = [
    ['sum', () => sum(a23(), { dim: 2 })],
    ['sum', () => sum(a23(), { dim: [0, -3] })],
    ['mean', () => mean(a23(), { dim: -3 })],
    ['var', () => variance(a23(), { dim: 5 })],
    ['logsumexp', () => logsumexp(a23(), { dim: 2 })],
    ['max', () => max(a23(), 2)],
    ['min', () => min(a23(), -3)],
    ['max', () => a23().max(7)],
    ['argmax', () => argmax(a23(), 2)],
    ['argmin', () => argmin(a23(), -3)],
    ['transpose', () => transpose(a23(), 0, 2)],
    ['transpose', () => a23().transpose(-3, 0)],
    ['narrow', () => narrow(a23(), 2, 0, 1)],
    ['slice', () => slice(a23(), 2)],
    ['select', () => select(a23(), -3, 0)],
    ['squeeze', () => squeeze(a23(), 2)],
    ['squeeze', () => squeeze(a23(), [0, 3])],
    ['unsqueeze', () => unsqueeze(a23(), 3)],
    ['unsqueeze', () => unsqueeze(a23(), -4)],
    ['permute', () => permute(a23(), [0, 2])],
    ['permute', () => permute(a23(), [0])],
    ['permute', () => permute(a23(), [1, 1])],
    ['cat', () => cat([a23(), a23()], 2)],
    ['cat', () => cat([a23(), a23()], -3)],
    ['stack', () => stack([a23(), a23()], 3)],
    ['flatten', () => flatten(a23(), 0, 2)],
    ['size', () => a23().size(2)],
  ];

  test.each(cases)('%s', (op, fn) => {
    const err = expectError(fn, DimError, op);
    expect(err.message).toMatch(/dim/);
  });

  test('the message gives the offending dim and the valid range', () => {
    expectError(() => sum(a23(), { dim: 2 }), DimError, 'sum', 'dim 2', '[-2, 1]');
    expectError(() => unsqueeze(a23(), 3), DimError, 'unsqueeze', 'dim 3', '[-3, 2]');
    expectError(() => max(a23(), -3), DimError, 'max', 'dim -3', '[-2, 1]');
  });
});

// ------------------------------------------------------------------ dtype and autograd misuse

describe('dtype and autograd errors', () => {
  test('an int32 tensor asked to require grad', () => {
    const i = tensor([1, 2], { dtype: 'int32' });
    expectError(() => i.requiresGrad_(), DTypeError, 'requiresGrad_', 'int32', '[2]');
    expectError(() => tensor([1], { dtype: 'int32', requiresGrad: true }), DTypeError, 'requiresGrad_');
    expectError(() => zeros([2], { dtype: 'int32', requiresGrad: true }), DTypeError, 'requiresGrad_');
    expect(i.requiresGrad).toBe(false);
  });

  test('requiresGrad_ on a non-leaf', () => {
    const x = tensor([1], { requiresGrad: true });
    expectError(() => mul(x, 2).requiresGrad_(false), AutogradError, 'requiresGrad_', 'detach');
  });

  test('fmtShape', () => {
    expect(fmtShape([2, 3])).toBe('[2,3]');
    expect(fmtShape([])).toBe('[]');
  });
});

// ------------------------------------------------------------------ failing ops change nothing

describe('a failing op leaves its inputs unchanged', () => {
  function snapshot(t: Tensor) {
    return {
      values: Array.from(t.toTypedArray() as ArrayLike<number>),
      shape: [...t.shape],
      strides: [...t.strides],
      offset: t.offset,
      dtype: t.dtype,
      requiresGrad: t.requiresGrad,
      gradFn: t.gradFn,
      grad: t.grad,
      gradValues: t.grad ? Array.from(t.grad.toTypedArray() as ArrayLike<number>) : null,
      buffer: t.buffer,
      refs: t.buffer.refs,
    };
  }

  test('values, views, autograd fields and live memory', () => {
    const a = randn([2, 3], { dtype: 'float64', requiresGrad: true, generator: new Generator(3) });
    const b = randn([4], { dtype: 'float64', requiresGrad: true, generator: new Generator(4) });
    sum(mul(a, 2)).backward(); // give a a .grad to check it is untouched
    const t = transpose(a); // a non-leaf view
    const cond = tensor([1, 0, 1, 1], { dtype: 'int32' });
    const before = [a, b, t, cond].map(snapshot);
    const live0 = memory.stats().liveBytes;
    const buffers0 = memory.stats().liveBuffers;

    const failing: (() => unknown)[] = [
      () => add(a, b),
      () => sub(b, a),
      () => mul(t, b),
      () => div(a, b),
      () => pow(a, b),
      () => maximum(a, b),
      () => minimum(t, b),
      () => where(cond, a, b),
      () => where(cond, a, 0),
      () => reshape(a, [4]),
      () => view_(t, [6]),
      () => expand(a, [4, 3]),
      () => sum(a, { dim: 2 }),
      () => mean(t, { dim: [0, 0] }),
      () => max(a, 2),
      () => argmax(t, 3),
      () => logsumexp(a, { dim: -3 }),
      () => transpose(a, 0, 2),
      () => narrow(a, 1, 2, 5),
      () => slice(a, 1, 0, 2, 0),
      () => squeeze(t, 4),
      () => unsqueeze(a, 5),
      () => permute(t, [0, 0]),
      () => cat([a, b]),
      () => cat([a, t], 1),
      () => stack([a, t]),
      () => select(a, 1, 3),
      () => cond.requiresGrad_(),
    ];
    for (const fn of failing) {
      expect(fn).toThrow(BlockgradError);
      expect(memory.stats().liveBytes).toBe(live0);
      expect(memory.stats().liveBuffers).toBe(buffers0);
    }
    const after = [a, b, t, cond].map(snapshot);
    expect(after).toEqual(before);
    after.forEach((s, i) => {
      expect(s.buffer).toBe(before[i].buffer);
      expect(s.gradFn).toBe(before[i].gradFn);
      expect(s.grad).toBe(before[i].grad);
    });
  });
});
