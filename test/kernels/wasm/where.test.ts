/**
 * The wasm `where` kernel (out = cond ? a : b) against the cpu backend's whereViews: every value
 * is a bit-for-bit copy of the one picked (NaN payloads and -0 included), over the layouts the
 * ops make (broadcast conditions and operands, transposed and sliced views, 4 dims, rows whose
 * length is not a multiple of 4), with an int32 or a float32 condition, and with the tasks of a
 * large output run in reverse order.
 */
import { BackendError } from '../../../src/errors';
import { whereViews, type Layout } from '../../../src/kernels/cpu/strided';
import { whereInto, type WasmOperand } from '../../../src/kernels/wasm/elementwise';
import type { WasmKernelRunner } from '../../../src/kernels/wasm/runner';
import { mulberry32 } from '../../helpers';
import { createWasmEnv, orderedRunner } from './helpers';

const env = createWasmEnv();
afterEach(() => env.reset());

const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** Float32 values with NaNs of two payloads, -0, infinities and subnormals among them. */
function floats(n: number, seed: number): Float32Array {
  const rand = mulberry32(seed);
  const out = new Float32Array(n);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < n; i++) {
    out[i] = rand() * 8 - 4;
    if (i % 5 === 1) bits[i] = [0x7fc00001, 0xffc12345, 0x80000000, 0x7f800000, 0x00000001][(i / 5) % 5 | 0];
  }
  return out;
}

/** A condition: int32 0 / 1 / -7, or float32 0, -0, NaN, 2.5 (nonzero is true: NaN is, -0 is not). */
function condition(n: number, dtype: 'int32' | 'float32', seed: number): Int32Array | Float32Array {
  const rand = mulberry32(seed);
  if (dtype === 'int32') return Int32Array.from({ length: n }, () => [0, 1, -7][(rand() * 3) | 0]);
  return Float32Array.from({ length: n }, () => [0, -0, NaN, 2.5][(rand() * 4) | 0]);
}

function put(data: Int32Array | Float32Array, layout: Layout): WasmOperand {
  const address = env.alloc(data.byteLength);
  new Uint8Array(env.memory.buffer, address, data.byteLength).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  return { address, shape: layout.shape, strides: layout.strides, offset: layout.offset };
}

/** A runner that runs the tasks last to first and records how many there were. */
function reversedRunner(): { runner: WasmKernelRunner; tasks: number[] } {
  const tasks: number[] = [];
  const runner = orderedRunner(env, (count) => {
    tasks.push(count);
    return Array.from({ length: count }, (_, i) => count - 1 - i);
  });
  return { runner, tasks };
}

type Case = [name: string, cond: [number, Layout], a: [number, Layout], b: [number, Layout]];
const flat = (n: number): [number, Layout] => [n, { shape: [n], strides: [1], offset: 0 }];
const CASES: Case[] = [
  ['all contiguous, 61 elements', flat(61), flat(61), flat(61)],
  ['scalar value a (maskedFill)', [35, { shape: [5, 7], strides: [7, 1], offset: 0 }], [1, { shape: [5, 7], strides: [0, 0], offset: 0 }], [35, { shape: [5, 7], strides: [7, 1], offset: 0 }]],
  ['scalar zero b (a backward)', [35, { shape: [5, 7], strides: [7, 1], offset: 0 }], [35, { shape: [5, 7], strides: [7, 1], offset: 0 }], [1, { shape: [5, 7], strides: [0, 0], offset: 0 }]],
  ['causal mask [T, T] over [B, H, T, T]', [36, { shape: [2, 3, 6, 6], strides: [0, 0, 6, 1], offset: 0 }], [1, { shape: [2, 3, 6, 6], strides: [0, 0, 0, 0], offset: 0 }], [216, { shape: [2, 3, 6, 6], strides: [108, 36, 6, 1], offset: 0 }]],
  ['column condition, row a, transposed b', [5, { shape: [5, 7], strides: [1, 0], offset: 0 }], [7, { shape: [5, 7], strides: [0, 1], offset: 0 }], [35, { shape: [5, 7], strides: [1, 5], offset: 0 }]],
  ['3-d slices with offsets', [84, { shape: [2, 3, 5], strides: [28, 7, 1], offset: 9 }], [40, { shape: [2, 3, 5], strides: [20, 5, 1], offset: 3 }], [84, { shape: [2, 3, 5], strides: [28, 7, 2], offset: 1 }]],
  ['reversed condition', [33, { shape: [33], strides: [-1], offset: 32 }], flat(33), flat(33)],
];

function runCase(dtype: 'int32' | 'float32', [, [lc, vc], [la, va], [lb, vb]]: Case, seed: number, runner: WasmKernelRunner = env.runner) {
  const c = condition(lc, dtype, seed);
  const a = floats(la, seed + 1);
  const b = floats(lb, seed + 2);
  const n = numel(vc.shape);
  const out = env.alloc(4 * n + 16);
  env.fill(out, 4 * n + 16, 0xee);
  const handled = whereInto(runner, put(c, vc), dtype, put(a, va), put(b, vb), out);
  const cpu = new Float32Array(n);
  whereViews(c, vc, a, va, b, vb, cpu);
  const got = new Uint32Array(env.memory.buffer, out, n + 4).slice();
  return { handled, got: got.subarray(0, n), after: got.subarray(n), want: new Uint32Array(cpu.buffer) };
}

function expectBits(what: string, got: Uint32Array, want: Uint32Array): void {
  for (let i = 0; i < want.length; i++) {
    if (got[i] !== want[i]) throw new Error(`${what}: element ${i} has bits ${got[i].toString(16)}, the cpu backend's ${want[i].toString(16)}`);
  }
}

describe.each(['int32', 'float32'] as const)('where with a %s condition, bit for bit the cpu backend', (dtype) => {
  it.each(CASES)('%s', (...testCase) => {
    const { handled, got, after, want } = runCase(dtype, testCase, 7);
    expect(handled).toBe(true);
    expectBits(testCase[0], got, want);
    expect([...after]).toEqual([0xeeeeeeee, 0xeeeeeeee, 0xeeeeeeee, 0xeeeeeeee]); // nothing written past the output
  });

  it('a 70,000-element output: 2 tasks of up to 64K elements, run last to first', () => {
    const { runner, tasks } = reversedRunner();
    const big: Case = [
      'big',
      [350, { shape: [200, 350], strides: [0, 1], offset: 0 }],
      [70000, { shape: [200, 350], strides: [350, 1], offset: 0 }],
      [1, { shape: [200, 350], strides: [0, 0], offset: 0 }],
    ];
    const { handled, got, want } = runCase(dtype, big, 3, runner);
    expect(handled).toBe(true);
    expect(tasks).toEqual([2]);
    expectBits('70,000 elements', got, want);
  });
});

it('a float32 condition: NaN is true, -0 and 0 are false', () => {
  const layout: Layout = { shape: [4], strides: [1], offset: 0 };
  const out = env.alloc(16);
  const c = put(Float32Array.from([NaN, -0, 0, -1e-45]), layout);
  expect(whereInto(env.runner, c, 'float32', put(Float32Array.from([1, 2, 3, 4]), layout), put(Float32Array.from([-1, -2, -3, -4]), layout), out)).toBe(true);
  expect([...env.getF32(out, 4)]).toEqual([1, -2, -3, 4]);
});

it('returns false, writing nothing, for a layout of more than 4 dims after coalescing', () => {
  const five: Layout = { shape: [2, 2, 2, 2, 2], strides: [1, 2, 4, 8, 16], offset: 0 };
  const out = env.alloc(128);
  env.fill(out, 128, 0xee);
  const op = (data: Int32Array | Float32Array) => put(data, five);
  expect(whereInto(env.runner, op(new Int32Array(32)), 'int32', op(new Float32Array(32)), op(new Float32Array(32)), out)).toBe(false);
  expect(new Uint32Array(env.memory.buffer, out, 32).every((w) => w === 0xeeeeeeee)).toBe(true);
});

it('throws a BackendError naming where and the operand for one outside memory', () => {
  const layout: Layout = { shape: [8], strides: [1], offset: 0 };
  const ok = put(new Float32Array(8), layout);
  const past = { ...ok, address: env.memory.buffer.byteLength - 16 };
  expect(() => whereInto(env.runner, past, 'int32', ok, ok, env.alloc(32))).toThrow(BackendError);
  expect(() => whereInto(env.runner, ok, 'int32', ok, past, env.alloc(32))).toThrow(/^where: wasm kernel: operand b .* outside memory/);
});
