/**
 * Issue 16, the silent wrong answers in tensor values (causes C, D, E, F and I), one describe per
 * cause. Each test failed before its fix: the old code gave a wrong number (or a raw RangeError,
 * or a NaN category) where the assertion now wants PyTorch's answer or a typed error naming the
 * op, the value or shape, and the fix. The NaN cases of every other backend are in
 * test/backends/ops.test.ts (they must match the cpu answers asserted here).
 */
import {
  ValueError,
  add,
  arange,
  argmax,
  cast,
  clamp,
  copy_,
  full,
  fullLike,
  matmul,
  max,
  maximum,
  memory,
  minimum,
  nn,
  pow,
  randint,
  relu,
  stateFromJSON,
  sum,
  tensor,
  transpose,
  zeros,
  type Tensor,
} from '../../src';
import { expectError, flat } from '../helpers';


const ints = (values: number[]): Tensor => tensor(Int32Array.from(values));

describe('C: values int32 cannot hold are refused, as PyTorch refuses them', () => {
  test("tensor(): the issue's [3e9, NaN, 2**31] names the first bad value and its index", () => {
    expectError(() => tensor([3e9, NaN, 2 ** 31], { dtype: 'int32' }), ValueError, 'tensor', 'value 3000000000 at index 0', 'without overflow', 'float32');
    expectError(() => tensor([[1, 2], [NaN, 4]], { dtype: 'int32' }), ValueError, 'tensor', 'value NaN at index [1,0]');
    expectError(() => tensor(Float64Array.of(1, -2147483649), { dtype: 'int32' }), ValueError, 'tensor', 'value -2147483649 at index 1');
    expectError(() => tensor(5e9, { dtype: 'int32' }), ValueError, 'tensor', 'value 5000000000');
    expectError(() => tensor(tensor([1, Infinity]), { dtype: 'int32' }), ValueError, 'tensor', 'value Infinity at index 1');
    // the whole range still converts, and fractions still truncate toward zero (PyTorch's rules)
    expect(flat(tensor([2147483647, -2147483648, 1.9, -1.9], { dtype: 'int32' }))).toEqual([2147483647, -2147483648, 1, -1]);
  });

  test('full, fullLike, arange and randint check their values or bounds', () => {
    expectError(() => full([2], 2 ** 31, { dtype: 'int32' }), ValueError, 'full', 'value 2147483648 at the fill value');
    expectError(() => fullLike(ints([1, 2]), NaN), ValueError, 'full', 'value NaN');
    expectError(() => arange(2e9, 3e9, 5e8), ValueError, 'arange', 'value 2500000000 at index 1 (the last value)');
    expect(flat(arange(2147483645, 2147483648))).toEqual([2147483645, 2147483646, 2147483647]);
    expectError(() => randint(0, 2 ** 31 + 1, [2]), ValueError, 'randint', 'value 2147483648 at high - 1');
    expect(randint(0, 2 ** 31, [3]).dtype).toBe('int32'); // high is exclusive: 2^31 is allowed, as in PyTorch
  });

  test('a number operand of an int32 op, and copy_ into int32 storage', () => {
    expectError(() => add(ints([1, 2]), 3e9), ValueError, 'add', 'value 3000000000');
    expectError(() => copy_(ints([1, 2]), 2 ** 40), ValueError, 'copy_', 'value 1099511627776');
    expectError(() => copy_(ints([1, 2]), tensor([0.5, NaN])), ValueError, 'copy_', 'value NaN at index 1');
    // a non-integer number promotes to float32 instead, as in PyTorch
    expect(flat(add(ints([1, 2]), 0.5))).toEqual([1.5, 2.5]);
  });

  test(".to('int32') of NaN, ±Infinity or out-of-range values is refused (undefined behaviour in PyTorch)", () => {
    expectError(() => cast(tensor([1, NaN]), 'int32'), ValueError, 'to', 'value NaN at index 1');
    expectError(() => tensor([[0, 0], [0, -Infinity]], { dtype: 'float64' }).to('int32'), ValueError, 'to', 'value -Infinity at index [1,1]');
    expectError(() => tensor([2 ** 31]).to('int32'), ValueError, 'to', 'value 2147483648');
    expect(flat(tensor([-(2 ** 31), -2.5, 2.5], { dtype: 'float64' }).to('int32'))).toEqual([-2147483648, -2, 2]);
  });

  test('the optimizer state JSON reader refuses them too', () => {
    const json = (data: unknown[]) => ({ state: { $tensor: { dtype: 'int32', shape: [2], data } } });
    expectError(() => stateFromJSON(json([1, 3e9])), ValueError, 'stateFromJSON', 'value 3000000000 at index 1 of the int32 $tensor at state');
    expectError(() => stateFromJSON(json(['NaN', 1])), ValueError, 'stateFromJSON', 'value NaN at index 0');
    expect(flat(stateFromJSON<{ state: Tensor }>(json([-7, 2147483647])).state)).toEqual([-7, 2147483647]);
  });
});

describe('D: NaN propagates as in PyTorch', () => {
  test('relu(NaN) is NaN, on the contiguous fast path and on a strided view', () => {
    expect(flat(relu(tensor([NaN, -1, 0, 2])))).toEqual([NaN, 0, 0, 2]);
    const m = tensor([[NaN, -1], [3, NaN]], { dtype: 'float64' });
    expect(flat(relu(transpose(m)))).toEqual([NaN, 3, 0, NaN]);
    expect(flat(relu(tensor([NaN, -2], { dtype: 'float16' })))).toEqual([NaN, 0]);
  });

  test("relu's gradient passes at NaN (PyTorch zeroes it where x <= 0 only)", () => {
    const x = tensor([NaN, -1, 2], { dtype: 'float64', requiresGrad: true });
    sum(relu(x)).backward();
    expect(flat(x.grad as Tensor)).toEqual([1, 0, 1]);
  });

  test('max over all elements is NaN, and its gradient goes to the NaN (not 0/0 everywhere)', () => {
    const x = tensor([1, NaN, 3], { dtype: 'float64', requiresGrad: true });
    const y = max(x);
    expect(y.item()).toBeNaN();
    y.backward();
    expect(flat(x.grad as Tensor)).toEqual([0, 1, 0]);
  });

  test('maximum, minimum, clamp, max along a dim and argmax already followed PyTorch: checked', () => {
    const a = tensor([NaN, 1, -1]);
    expect(flat(maximum(a, tensor([0, NaN, -2])))).toEqual([NaN, NaN, -1]);
    expect(flat(minimum(a, 0))).toEqual([NaN, 0, -1]);
    expect(flat(clamp(a, -0.5, 0.5))).toEqual([NaN, 0.5, -0.5]);
    const r = max(tensor([[1, NaN, 2], [0, 5, -1]]), 1);
    expect([flat(r.values), flat(r.indices)]).toEqual([[NaN, 5], [1, 1]]);
    expect(argmax(tensor([0, 7, NaN, NaN])).item()).toBe(2);
  });
});

describe('E: integers to negative integer powers', () => {
  test('int32.pow(-1) is refused as in PyTorch, instead of truncating 0.5 to 0', () => {
    expectError(() => pow(ints([2, 3]), -1), ValueError, 'pow', 'Integers to negative integer powers are not allowed', '[2]', "to('float32')");
    expectError(() => ints([1]).pow(-2), ValueError, 'pow');
    // a non-integer exponent promotes to float32; a tensor exponent follows PyTorch's integer power (0 but for ±1)
    expect(flat(pow(ints([4]), -0.5))).toEqual([0.5]);
    expect(flat(pow(ints([2, 1, -1, -1]), ints([-1, -1, -1, -2])))).toEqual([0, 1, -1, 1]);
  });
});

describe('F: sizes past the largest typed array are typed errors naming the op, the shape and the limit', () => {
  test('zeros, arange, full, Linear, and a broadcast or a matmul whose result would be too big', () => {
    expectError(() => zeros([1e6, 1e6]), ValueError, 'zeros', 'shape [1000000,1000000] has 1000000000000 elements', 'limit of 4294967296');
    expectError(() => arange(0, 1e12), ValueError, 'arange', 'shape [1000000000000]');
    expectError(() => full([2 ** 16, 2 ** 16, 2], 1), ValueError, 'full', '8589934592 elements');
    expectError(() => new nn.Linear(1e6, 1e6), ValueError, 'zeros', '[1000000,1000000]');
    expectError(() => add(zeros([1e5, 1]), zeros([1, 1e5])), ValueError, 'add', 'shape [100000,100000] has 10000000000 elements');
    expectError(() => matmul(zeros([1e5, 1]), zeros([1, 1e5])), ValueError, 'matmul', 'shape [100000,100000]');
  });
});

describe('I: memory.tag refuses unknown categories', () => {
  test("'bogus' is a typed error listing the categories, and the stats stay numbers", () => {
    const t = zeros([4]);
    expectError(() => memory.tag(t, 'bogus' as never), ValueError, 'memory.tag', "unknown memory category 'bogus'", "'weights', 'grads', 'optimizer', 'master', 'activations', 'other'");
    const stats = memory.stats();
    expect(Object.keys(stats.byCategory)).not.toContain('bogus');
    expect(Object.values(stats.byCategory).every(Number.isFinite)).toBe(true);
    expect(memory.tag(t, 'activations')).toBe(t);
  });
});
