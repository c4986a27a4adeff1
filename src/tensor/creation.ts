/** Creating tensors: from data, filled, ranges, identity, and seeded random. */
import { Float16Array, isFloat16Array } from '@petamoriken/float16';
import { kernels } from '../kernels/registry';
import { ValueError, fmtShape } from '../errors';
import { DEFAULT_DTYPE, isDType, type DType } from './dtype';
import { float16ArrayToBits } from './float16';
import { defaultGenerator, type Generator } from './random';
import { checkInt32Scalar, checkInt32Values, checkCastToInt32 } from './int32';
import { checkNumel, checkShape, numel, type Shape } from './shape';
import { Tensor, type NestedArray } from './tensor';

export interface CreateOptions {
  dtype?: DType;
  requiresGrad?: boolean;
}

export interface RandomOptions extends CreateOptions {
  generator?: Generator;
}

export type TensorData = NestedArray | Float64Array | Float32Array | Int32Array | Float16Array | Tensor;

function resolveDType(op: string, dtype: DType | undefined, fallback: DType = DEFAULT_DTYPE): DType {
  if (dtype === undefined) return fallback;
  if (!isDType(dtype)) throw new ValueError(op, `unknown dtype '${String(dtype)}'; expected float64, float32, float16, bfloat16 or int32`);
  return dtype;
}

function finish(t: Tensor, options: CreateOptions): Tensor {
  if (options.requiresGrad) t.requiresGrad_(true);
  return t;
}

/** Flattens a nested array, checking that it is rectangular; returns values and shape. */
function flattenNested(op: string, data: NestedArray): { values: number[]; shape: number[] } {
  const shape: number[] = [];
  for (let d: NestedArray = data; Array.isArray(d); d = d[0]) {
    shape.push(d.length);
    if (d.length === 0) break;
  }
  const values: number[] = [];
  const walk = (d: NestedArray, dim: number, path: string) => {
    if (dim === shape.length) {
      if (typeof d !== 'number') throw new ValueError(op, `expected a number at ${path || 'the top level'}, got ${Array.isArray(d) ? 'an array' : typeof d}: the nested array is ragged`);
      values.push(d);
      return;
    }
    if (!Array.isArray(d) || d.length !== shape[dim]) {
      throw new ValueError(op, `ragged nested array: ${path || 'the top level'} has ${Array.isArray(d) ? d.length : 'no'} entries where ${shape[dim]} were expected (shape ${fmtShape(shape)})`);
    }
    d.forEach((x, i) => walk(x, dim + 1, `${path}[${i}]`));
  };
  walk(data, 0, '');
  return { values, shape };
}

/**
 * A tensor from data: a number (0-d), nested arrays, or a typed array (1-d). Number arrays become
 * float32 unless `dtype` says otherwise (JavaScript cannot tell 1 from 1.0, so unlike PyTorch no
 * integer dtype is inferred); Int32Array gives int32, Float64Array float64, Float16Array float16.
 */
export function tensor(data: TensorData, options: CreateOptions = {}): Tensor {
  const k = kernels();
  if (data instanceof Tensor) {
    const dtype = resolveDType('tensor', options.dtype, data.dtype);
    if (dtype === 'int32') checkCastToInt32('tensor', data);
    return finish(new Tensor(k.copy(data, dtype), data.shape), options);
  }
  if (isFloat16Array(data)) {
    const dtype = resolveDType('tensor', options.dtype, 'float16');
    const bits = float16ArrayToBits(data as Float16Array);
    if (dtype === 'int32') checkInt32Values('tensor', data as unknown as ArrayLike<number>);
    const buf = dtype === 'float16' ? k.uploadHalfBits('float16', bits) : k.upload(dtype, data as unknown as ArrayLike<number>);
    return finish(new Tensor(buf, [bits.length]), options);
  }
  if (data instanceof Uint16Array) {
    // ambiguous: float16 bits or small integers? Make the caller say which.
    throw new ValueError(
      'tensor',
      'a Uint16Array is ambiguous: wrap float16 bits as a Float16Array (@petamoriken/float16), or pass Int32Array.from(values) for integers',
    );
  }
  if (ArrayBuffer.isView(data)) {
    const arr = data as Float64Array | Float32Array | Int32Array;
    const inferred: DType = arr instanceof Float64Array ? 'float64' : arr instanceof Int32Array ? 'int32' : 'float32';
    const dtype = resolveDType('tensor', options.dtype, inferred);
    if (dtype === 'int32') checkInt32Values('tensor', arr);
    return finish(new Tensor(k.upload(dtype, arr), [arr.length]), options);
  }
  const dtype = resolveDType('tensor', options.dtype);
  if (typeof data === 'number') {
    if (dtype === 'int32') checkInt32Scalar('tensor', data);
    return finish(new Tensor(k.upload(dtype, [data]), []), options);
  }
  if (!Array.isArray(data)) throw new ValueError('tensor', `cannot make a tensor from ${typeof data}`);
  const { values, shape } = flattenNested('tensor', data);
  if (dtype === 'int32') checkInt32Values('tensor', values, shape);
  return finish(new Tensor(k.upload(dtype, values), shape), options);
}

/**
 * A 0-d tensor holding one number (used for the scalar operand of binary ops); `op` names the
 * op in the error when an int32 tensor cannot hold the number.
 */
export function scalarTensor(value: number, dtype: DType, op = 'scalarTensor'): Tensor {
  if (dtype === 'int32') checkInt32Scalar(op, value);
  return new Tensor(kernels().upload(dtype, [value]), []);
}

export function full(shape: Shape, value: number, options: CreateOptions = {}): Tensor {
  const s = checkShape('full', shape);
  const dtype = resolveDType('full', options.dtype);
  if (dtype === 'int32') checkInt32Scalar('full', value, 'the fill value');
  return finish(new Tensor(kernels().full(dtype, numel(s), value), s), options);
}

export function zeros(shape: Shape, options: CreateOptions = {}): Tensor {
  const s = checkShape('zeros', shape);
  return finish(new Tensor(kernels().zeros(resolveDType('zeros', options.dtype), numel(s)), s), options);
}

export function ones(shape: Shape, options: CreateOptions = {}): Tensor {
  return full(shape, 1, options);
}

export function zerosLike(t: Tensor, options: CreateOptions = {}): Tensor {
  return zeros(t.shape, { dtype: t.dtype, ...options });
}

export function onesLike(t: Tensor, options: CreateOptions = {}): Tensor {
  return full(t.shape, 1, { dtype: t.dtype, ...options });
}

export function fullLike(t: Tensor, value: number, options: CreateOptions = {}): Tensor {
  return full(t.shape, value, { dtype: t.dtype, ...options });
}

/** Values start, start+step, ... below end (PyTorch's arange; int32 when all arguments are integers). */
export function arange(end: number, options?: CreateOptions): Tensor;
export function arange(start: number, end: number, step?: number, options?: CreateOptions): Tensor;
export function arange(a: number, b?: number | CreateOptions, c?: number | CreateOptions, d?: CreateOptions): Tensor {
  let start = 0;
  let end: number;
  let step = 1;
  let options: CreateOptions = {};
  if (typeof b === 'number') {
    start = a;
    end = b;
    if (typeof c === 'number') step = c;
    else if (c) options = c;
    if (d) options = d;
  } else {
    end = a;
    if (b) options = b;
  }
  if (step === 0 || !Number.isFinite(step)) throw new ValueError('arange', `step must be finite and non-zero, got ${step}`);
  if (!Number.isFinite(start) || !Number.isFinite(end)) throw new ValueError('arange', `start and end must be finite, got ${start}, ${end}`);
  const n = Math.max(0, Math.ceil((end - start) / step));
  checkNumel('arange', [n]);
  const allInts = [start, end, step].every(Number.isInteger);
  const dtype = resolveDType('arange', options.dtype, allInts ? 'int32' : DEFAULT_DTYPE);
  if (dtype === 'int32' && n > 0) {
    // the values run monotonically from the first to the last: checking both checks them all
    checkInt32Scalar('arange', start, 'index 0 (start)');
    checkInt32Scalar('arange', start + (n - 1) * step, `index ${n - 1} (the last value)`);
  }
  const values = Array.from({ length: n }, (_, i) => start + i * step);
  return finish(new Tensor(kernels().upload(dtype, values), [n]), options);
}

/** `steps` evenly spaced values from start to end inclusive. */
export function linspace(start: number, end: number, steps: number, options: CreateOptions = {}): Tensor {
  if (!Number.isInteger(steps) || steps < 0) throw new ValueError('linspace', `steps must be a non-negative integer, got ${steps}`);
  checkNumel('linspace', [steps]);
  const dtype = resolveDType('linspace', options.dtype);
  if (dtype === 'int32' && steps > 0) {
    checkInt32Scalar('linspace', start, 'index 0 (start)');
    checkInt32Scalar('linspace', end, `index ${steps - 1} (end)`);
  }
  const step = steps > 1 ? (end - start) / (steps - 1) : 0;
  // Fill from both ends, as PyTorch does, so the last value is exactly `end`.
  const half = Math.floor(steps / 2);
  // (steps = 1 gives [start], as PyTorch: half is 0 there, so it is special-cased)
  const values = Array.from({ length: steps }, (_, i) => (i < half || steps === 1 ? start + i * step : end - (steps - 1 - i) * step));
  return finish(new Tensor(kernels().upload(dtype, values), [steps]), options);
}

/** Identity matrix n x m (m defaults to n). */
export function eye(n: number, m: number = n, options: CreateOptions = {}): Tensor {
  checkShape('eye', [n, m]);
  const dtype = resolveDType('eye', options.dtype);
  const values = new Float64Array(n * m);
  for (let i = 0; i < Math.min(n, m); i++) values[i * m + i] = 1;
  return finish(new Tensor(kernels().upload(dtype, values), [n, m]), options);
}

function randomTensor(op: string, shape: Shape, options: RandomOptions, draw: (g: Generator) => number, fallback: DType = DEFAULT_DTYPE): Tensor {
  const s = checkShape(op, shape);
  const dtype = resolveDType(op, options.dtype, fallback);
  const g = options.generator ?? defaultGenerator;
  const values = new Float64Array(numel(s));
  for (let i = 0; i < values.length; i++) values[i] = draw(g);
  return finish(new Tensor(kernels().upload(dtype, values), s), options);
}

/** Uniform on [0, 1). */
export function rand(shape: Shape, options: RandomOptions = {}): Tensor {
  return randomTensor('rand', shape, options, (g) => g.random());
}

/** Standard normal. */
export function randn(shape: Shape, options: RandomOptions = {}): Tensor {
  return randomTensor('randn', shape, options, (g) => g.normal());
}

/** Uniform integers in [low, high), int32 by default. */
export function randint(low: number, high: number, shape: Shape, options: RandomOptions = {}): Tensor {
  if (!Number.isInteger(low) || !Number.isInteger(high) || high <= low) {
    throw new ValueError('randint', `expected integers low < high, got low=${low}, high=${high}`);
  }
  if (resolveDType('randint', options.dtype, 'int32') === 'int32') {
    // values run from low to high - 1 (PyTorch checks the same two bounds)
    checkInt32Scalar('randint', low, 'low');
    checkInt32Scalar('randint', high - 1, 'high - 1');
  }
  return randomTensor('randint', shape, options, (g) => g.randint(low, high), 'int32');
}
