/**
 * The Tensor object: construction from data, the read-out methods, the autograd fields that
 * belong to the tensor itself, detach, dispose and the memory accounting behind them.
 */
import { Float16Array, isFloat16Array } from '@petamoriken/float16';
import {
  AutogradError,
  DTypeError,
  DimError,
  ValueError,
  add,
  memory,
  mul,
  noGrad,
  tensor,
  zeros,
  type DType,
} from '../../src';

// ------------------------------------------------------------------ tensor()

describe('tensor() from data', () => {
  test('nested arrays: shape, default float32, values', () => {
    const t = tensor([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    expect(t.shape).toEqual([2, 3]);
    expect(t.dtype).toBe('float32');
    expect(t.ndim).toBe(2);
    expect(t.numel).toBe(6);
    expect(t.toArray()).toEqual([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    const deep = tensor([[[1], [2]], [[3], [4]]], { dtype: 'float64' });
    expect(deep.shape).toEqual([2, 2, 1]);
    expect(deep.dtype).toBe('float64');
    expect(Array.from(deep.toTypedArray())).toEqual([1, 2, 3, 4]);
  });

  test('float32 storage rounds; float64 keeps every bit', () => {
    expect(tensor([0.1]).toArray()).toEqual([Math.fround(0.1)]);
    expect(tensor([0.1], { dtype: 'float64' }).toArray()).toEqual([0.1]);
    expect(tensor([2.9, -2.9], { dtype: 'int32' }).toArray()).toEqual([2, -2]);
  });

  test('a number gives a 0-d tensor; empty arrays give empty shapes', () => {
    const s = tensor(3.5);
    expect(s.shape).toEqual([]);
    expect(s.ndim).toBe(0);
    expect(s.numel).toBe(1);
    expect(s.toArray()).toBe(3.5);
    expect(s.item()).toBe(3.5);
    expect(tensor([]).shape).toEqual([0]);
    expect(tensor([[]]).shape).toEqual([1, 0]);
    expect(tensor([[], []]).numel).toBe(0);
  });

  test('typed arrays give 1-d tensors of the matching dtype', () => {
    const f64 = tensor(new Float64Array([0.1, 0.2]));
    expect(f64.dtype).toBe('float64');
    expect(f64.toArray()).toEqual([0.1, 0.2]);
    const f32 = tensor(new Float32Array([1.5, 2.5]));
    expect(f32.dtype).toBe('float32');
    const i32 = tensor(new Int32Array([7, -8]));
    expect(i32.dtype).toBe('int32');
    expect(i32.toArray()).toEqual([7, -8]);
    const cast = tensor(new Float64Array([1.25, 2.75]), { dtype: 'int32' });
    expect(cast.dtype).toBe('int32');
    expect(cast.toArray()).toEqual([1, 2]);
  });

  test('the source array is copied, not aliased', () => {
    const src = new Float64Array([1, 2, 3]);
    const t = tensor(src);
    src[0] = 100;
    expect(t.toArray()).toEqual([1, 2, 3]);
  });

  test('Float16Array gives float16; toTypedArray returns a Float16Array with the same values', () => {
    const values = [0.5, -2, 65504, 1 / 3, 6e-8];
    const h = new Float16Array(values);
    const t = tensor(h);
    expect(t.dtype).toBe('float16');
    expect(t.shape).toEqual([5]);
    const back = t.toTypedArray();
    expect(isFloat16Array(back)).toBe(true);
    expect(Array.from(back as ArrayLike<number>)).toEqual(Array.from(h));
    expect(t.toArray()).toEqual(Array.from(h));
    // float16 from a plain array rounds to nearest
    const r = tensor([1 / 3, 1000.3], { dtype: 'float16' });
    expect(r.toArray()).toEqual([0.333251953125, 1000.5]);
    // a Float16Array asked for float32 keeps the values
    const w = tensor(h, { dtype: 'float32' });
    expect(w.dtype).toBe('float32');
    expect(w.toArray()).toEqual(Array.from(h));
  });

  test('float16 toTypedArray of views (transposed, offset) reads the view', () => {
    const t = tensor(
      [
        [1, 2, 3],
        [4, 5, 6],
      ],
      { dtype: 'float16' },
    );
    const tt = t.transpose(0, 1).toTypedArray();
    expect(isFloat16Array(tt)).toBe(true);
    expect(Array.from(tt as ArrayLike<number>)).toEqual([1, 4, 2, 5, 3, 6]);
    expect(Array.from(t.select(0, 1).toTypedArray() as ArrayLike<number>)).toEqual([4, 5, 6]);
  });

  test('from a Tensor: a copy, optionally cast', () => {
    const a = tensor([1.5, 2.5], { dtype: 'float64' });
    const b = tensor(a);
    expect(b.buffer).not.toBe(a.buffer);
    expect(b.dtype).toBe('float64');
    expect(b.toArray()).toEqual([1.5, 2.5]);
    const c = tensor(a.reshape([2, 1]).transpose(0, 1), { dtype: 'int32' });
    expect(c.shape).toEqual([1, 2]);
    expect(c.toArray()).toEqual([[1, 2]]);
  });

  test('ragged nested arrays are rejected with a ValueError', () => {
    expect(() => tensor([[1, 2], [3]])).toThrow(ValueError);
    expect(() => tensor([[1, 2], 3] as never)).toThrow(/ragged/);
    expect(() => tensor([1, [2]] as never)).toThrow(ValueError);
    expect(() => tensor([[[1], [2]], [[3]]])).toThrow(ValueError);
    expect(() => tensor([[1, 2], [3, 4, 5]])).toThrow(/tensor/);
  });

  test('unknown dtypes and non-numeric data are rejected', () => {
    expect(() => tensor([1], { dtype: 'float8' as DType })).toThrow(ValueError);
    expect(() => tensor('abc' as never)).toThrow(ValueError);
  });

  test('requiresGrad option', () => {
    expect(tensor([1], { requiresGrad: true }).requiresGrad).toBe(true);
    expect(tensor([1]).requiresGrad).toBe(false);
    expect(() => tensor([1], { dtype: 'int32', requiresGrad: true })).toThrow(DTypeError);
  });
});

// ------------------------------------------------------------------ reading

describe('reading a tensor', () => {
  const t = tensor(
    [
      [1, 2, 3],
      [4, 5, 6],
    ],
    { dtype: 'float64' },
  );

  test('shape, dtype, numel, ndim, size(dim)', () => {
    expect(t.shape).toEqual([2, 3]);
    expect(t.dtype).toBe('float64');
    expect(t.numel).toBe(6);
    expect(t.ndim).toBe(2);
    expect(t.size()).toEqual([2, 3]);
    expect(t.size(0)).toBe(2);
    expect(t.size(1)).toBe(3);
    expect(t.size(-1)).toBe(3);
    expect(t.size(-2)).toBe(2);
    expect(() => t.size(2)).toThrow(DimError);
    expect(() => t.size(-3)).toThrow(DimError);
    expect(() => t.size(0.5)).toThrow(DimError);
    expect(t.strides).toEqual([3, 1]);
    expect(t.offset).toBe(0);
    expect(t.isContiguous()).toBe(true);
  });

  test('size() returns a copy; shape is frozen', () => {
    const s = t.size();
    s[0] = 99;
    expect(t.shape).toEqual([2, 3]);
    expect(Object.isFrozen(t.shape)).toBe(true);
  });

  test('a 0-d tensor has no dims to ask the size of', () => {
    const s = tensor(1);
    expect(s.size()).toEqual([]);
    expect(() => s.size(0)).toThrow(DimError);
  });

  test('toArray of views', () => {
    expect(t.transpose(0, 1).toArray()).toEqual([
      [1, 4],
      [2, 5],
      [3, 6],
    ]);
    expect(t.select(1, 2).toArray()).toEqual([3, 6]);
    expect(t.select(0, 1).select(0, 0).toArray()).toBe(4);
  });

  test('item', () => {
    expect(tensor(2.5).item()).toBe(2.5);
    expect(tensor([[7]]).item()).toBe(7);
    expect(t.select(0, 1).select(0, 2).item()).toBe(6);
    expect(() => t.item()).toThrow(ValueError);
    expect(() => t.item()).toThrow(/item.*\[2,3\]/);
    expect(() => tensor([]).item()).toThrow(ValueError);
  });

  test('toTypedArray gives a fresh row-major array of the storage type', () => {
    const a = t.toTypedArray();
    expect(a).toBeInstanceOf(Float64Array);
    expect(Array.from(a)).toEqual([1, 2, 3, 4, 5, 6]);
    a[0] = 100;
    expect(t.toArray()).toEqual([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    expect(tensor([1, 2]).toTypedArray()).toBeInstanceOf(Float32Array);
    expect(tensor([1, 2], { dtype: 'int32' }).toTypedArray()).toBeInstanceOf(Int32Array);
    expect(Array.from(t.transpose(0, 1).toTypedArray())).toEqual([1, 4, 2, 5, 3, 6]);
  });

  test('toString names shape and dtype', () => {
    expect(String(t)).toContain('[2,3]');
    expect(String(t)).toContain('float64');
  });
});

// ------------------------------------------------------------------ autograd fields

describe('requiresGrad and detach', () => {
  test('requiresGrad_ on a floating leaf, and the setter', () => {
    const a = tensor([1, 2]);
    expect(a.isLeaf).toBe(true);
    expect(a.requiresGrad_()).toBe(a);
    expect(a.requiresGrad).toBe(true);
    a.requiresGrad = false;
    expect(a.requiresGrad).toBe(false);
    a.requiresGrad = true;
    expect(a.requiresGrad).toBe(true);
    for (const dtype of ['float64', 'float16'] as DType[]) {
      expect(tensor([1], { dtype }).requiresGrad_().requiresGrad).toBe(true);
    }
  });

  test('requiresGrad_ on an int32 tensor is a DTypeError naming the remedy', () => {
    const i = tensor([1, 2], { dtype: 'int32' });
    expect(() => i.requiresGrad_()).toThrow(DTypeError);
    expect(() => i.requiresGrad_(true)).toThrow(/requiresGrad_.*int32/);
    expect(() => {
      i.requiresGrad = true;
    }).toThrow(DTypeError);
    expect(i.requiresGrad).toBe(false);
    expect(i.requiresGrad_(false).requiresGrad).toBe(false);
  });

  test('requiresGrad_ on a non-leaf throws an AutogradError', () => {
    const a = tensor([1, 2], { requiresGrad: true });
    const b = mul(a, 2);
    expect(b.isLeaf).toBe(false);
    expect(b.requiresGrad).toBe(true);
    expect(() => b.requiresGrad_(false)).toThrow(AutogradError);
    expect(() => b.requiresGrad_(true)).toThrow(/detach/);
  });

  test('results of ops on inputs that require grad require grad; under noGrad they do not', () => {
    const a = tensor([1, 2], { requiresGrad: true });
    expect(add(a, 1).requiresGrad).toBe(true);
    expect(add(a, 1).gradFn).not.toBeNull();
    expect(noGrad(() => add(a, 1)).requiresGrad).toBe(false);
    expect(add(tensor([1]), 1).requiresGrad).toBe(false);
  });

  test('detach shares storage and cuts the graph', () => {
    const a = tensor([1, 2, 3, 4], { requiresGrad: true });
    const b = mul(a, 2).reshape([2, 2]).transpose(0, 1);
    const d = b.detach();
    expect(d.buffer).toBe(b.buffer);
    expect(d.shape).toEqual(b.shape);
    expect(d.strides).toEqual(b.strides);
    expect(d.offset).toBe(b.offset);
    expect(d.requiresGrad).toBe(false);
    expect(d.isLeaf).toBe(true);
    expect(d.gradFn).toBeNull();
    expect(d.toArray()).toEqual([
      [2, 6],
      [4, 8],
    ]);
    expect(a.detach().buffer).toBe(a.buffer);
    expect(d.requiresGrad_().requiresGrad).toBe(true);
  });
});

// ------------------------------------------------------------------ dispose and memory

describe('dispose and memory accounting', () => {
  const live = () => memory.stats().liveBytes;

  test.each([
    ['float64', 8],
    ['float32', 4],
    ['float16', 2],
    ['int32', 4],
  ] as [DType, number][])('a new %s tensor adds numel x %p bytes; dispose removes them', (dtype, itemSize) => {
    const before = memory.stats();
    const t = zeros([3, 5], { dtype });
    const after = memory.stats();
    expect(after.liveBytes - before.liveBytes).toBe(15 * itemSize);
    expect(after.liveBuffers - before.liveBuffers).toBe(1);
    t.dispose();
    expect(live()).toBe(before.liveBytes);
    expect(memory.stats().liveBuffers).toBe(before.liveBuffers);
    expect(t.isDisposed).toBe(true);
  });

  test('tensor() from data and a binary op each allocate exactly their output', () => {
    const l0 = live();
    const a = tensor([1, 2, 3], { dtype: 'float64' });
    expect(live() - l0).toBe(24);
    const b = tensor([[1], [2]], { dtype: 'float32' });
    expect(live() - l0).toBe(24 + 8);
    const c = add(a, b); // [2,3] float64
    expect(live() - l0).toBe(24 + 8 + 48);
    for (const t of [a, b, c]) t.dispose();
    expect(live()).toBe(l0);
  });

  test('views and detached tensors share the buffer: it is released when the last holder is disposed', () => {
    const l0 = live();
    const base = zeros([4, 4], { dtype: 'float64' });
    expect(live() - l0).toBe(128);
    const v1 = base.transpose(0, 1);
    const rows = base.narrow(0, 1, 2);
    const v2 = rows.reshape([8]); // a view of a view: both hold the buffer
    const d = base.detach();
    expect(live() - l0).toBe(128); // views allocate nothing
    base.dispose();
    v1.dispose();
    d.dispose();
    rows.dispose();
    expect(live() - l0).toBe(128); // v2 still holds the buffer
    expect(v2.toArray()).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    v2.dispose();
    expect(live()).toBe(l0);
  });

  test('dispose twice is a no-op; reading a disposed tensor is a ValueError', () => {
    const l0 = live();
    const t = zeros([10]);
    t.dispose();
    t.dispose();
    expect(live()).toBe(l0);
    expect(() => t.toArray()).toThrow(ValueError);
    expect(() => t.item()).toThrow(/disposed/);
    expect(() => t.toTypedArray()).toThrow(ValueError);
  });

  test('a view whose buffer was released (its base disposed last) cannot be read either', () => {
    const base = zeros([2, 2]);
    const v = base.transpose(0, 1);
    v.dispose();
    base.dispose();
    expect(() => v.toArray()).toThrow(ValueError);
  });

  test('peakBytes and resetPeak', () => {
    memory.resetPeak();
    const s0 = memory.stats();
    expect(s0.peakBytes).toBe(s0.liveBytes);
    expect(s0.peakBuffers).toBe(s0.liveBuffers);
    const big = zeros([1000], { dtype: 'float64' });
    const small = zeros([10], { dtype: 'float32' });
    big.dispose();
    small.dispose();
    const s1 = memory.stats();
    expect(s1.liveBytes).toBe(s0.liveBytes);
    expect(s1.peakBytes).toBe(s0.liveBytes + 8000 + 40);
    expect(s1.peakBuffers).toBe(s0.liveBuffers + 2);
    memory.resetPeak();
    expect(memory.stats().peakBytes).toBe(s0.liveBytes);
  });

  test('byCategory: new buffers are "other"; tagMemory moves them; dispose removes them from their category', () => {
    const c0 = memory.stats().byCategory;
    const w = zeros([6], { dtype: 'float64' });
    expect(memory.stats().byCategory.other - c0.other).toBe(48);
    expect(w.tagMemory('weights')).toBe(w);
    const c1 = memory.stats().byCategory;
    expect(c1.weights - c0.weights).toBe(48);
    expect(c1.other).toBe(c0.other);
    // tagging a view tags the shared buffer; tagging twice to the same category changes nothing
    const v = w.reshape([2, 3]).tagMemory('weights');
    expect(memory.stats().byCategory.weights - c0.weights).toBe(48);
    memory.tag(v, 'optimizer');
    const c2 = memory.stats().byCategory;
    expect(c2.optimizer - c0.optimizer).toBe(48);
    expect(c2.weights).toBe(c0.weights);
    w.dispose();
    expect(memory.stats().byCategory.optimizer - c0.optimizer).toBe(48); // the view still holds it
    v.dispose();
    expect(memory.stats().byCategory).toEqual(c0);
  });
});

describe('float16 results are rounded once', () => {
  test('float64 -> float16 does not round through float32 first', () => {
    // 1 + 2^-11 + 2^-40 is just above the midpoint between 1 and 1 + 2^-10: it must round up.
    // Through float32 it would first become exactly 1 + 2^-11 (a tie) and then round down to 1.
    const x = tensor([1 + 2 ** -11 + 2 ** -40], { dtype: 'float64' });
    expect(x.to('float16').item()).toBe(1 + 2 ** -10);
    const y = zeros([1], { dtype: 'float16' });
    y.copy_(x);
    expect(y.item()).toBe(1 + 2 ** -10);
  });
});
