import { BackendError } from '../../../src/errors';
import type { BinaryOp, UnaryOp } from '../../../src/kernels/backend';
import { UNARY } from '../../../src/kernels/cpu/math';
import { binaryViews, gatherView, unaryView, type Layout } from '../../../src/kernels/cpu/strided';
import { binaryInto, binaryOutDtype, unaryInto, type WasmOperand } from '../../../src/kernels/wasm/elementwise';
import type { WasmKernelRunner } from '../../../src/kernels/wasm/runner';
import { mulberry32 } from '../../helpers';
import { createWasmEnv } from './helpers';

const env = createWasmEnv();
afterEach(() => env.reset());

const F32_MAX = 3.4028234663852886e38;
const f32 = Math.fround;

// ------------------------------------------------------------------ ops and their tolerances

/** Unary cases: op, params, and the error allowed in ulps (0: bit for bit the cpu backend's result). */
const UNARY_CASES: [string, UnaryOp, number[], number][] = [
  ['neg', 'neg', [], 0], ['abs', 'abs', [], 0], ['sign', 'sign', [], 0], ['relu', 'relu', [], 0], ['sqrt', 'sqrt', [], 0],
  ['clamp', 'clamp', [-0.7, 1.3], 0], ['clamp lo > hi', 'clamp', [1, -1], 0], ['inRange', 'inRange', [-0.7, 1.3], 0],
  ['x ** 2', 'powScalar', [2], 0], ['x ** 1', 'powScalar', [1], 0], ['x ** 0', 'powScalar', [0], 0],
  ['x ** 0.5', 'powScalar', [0.5], 0], ['x ** -1', 'powScalar', [-1], 0], ['x ** -0.5', 'powScalar', [-0.5], 2],
  ['rsqrt', 'rsqrt', [], 2], ['exp', 'exp', [], 2], ['log', 'log', [], 3], ['tanh', 'tanh', [], 3],
  ['sigmoid', 'sigmoid', [], 3], ['silu', 'silu', [], 4], ['siluGrad', 'siluGrad', [], 6],
  ['geluTanh', 'geluTanh', [], 4], ['geluTanhGrad', 'geluTanhGrad', [], 8], ['gelu', 'gelu', [], 5], ['geluGrad', 'geluGrad', [], 4],
];
const BINARY_OPS: BinaryOp[] = ['add', 'sub', 'mul', 'div', 'maximum', 'minimum', 'eq', 'ne', 'lt', 'le', 'gt', 'ge'];
const COMPARISONS = new Set<BinaryOp>(['eq', 'ne', 'lt', 'le', 'gt', 'ge']);

// Accurate float64 references where the cpu backend's formulas cancel: its 0.5·x·(1 + tanh(u))
// loses all digits in float64 below x ≈ -6 (1 + tanh(u) rounds to 0), while x·σ(2u) keeps them;
// likewise its Φ(x) = 0.5·(1 + erf(x/√2)) below x ≈ -6, while φ(x)·R(-x) with the Mills ratio
// R(a) = Φ(-a)/φ(a) keeps them (R here: a series below 2, Laplace's continued fraction above).
const sigmoid = (z: number): number => (z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z)));
const C = Math.sqrt(2 / Math.PI);
const twoU = (x: number): number => 2 * C * (x + 0.044715 * x * x * x);
const geluW = (x: number): number => 2 * x * C * (1 + 3 * 0.044715 * x * x);

function millsRatio(a: number): number {
  if (a < 2) {
    // √(π/2)·e^{a²/2} - Σ a^{2n+1} / (1·3···(2n+1))
    let term = a;
    let sum = a;
    for (let n = 1; n < 300 && term > sum * 1e-18; n++) sum += term *= (a * a) / (2 * n + 1);
    return Math.sqrt(Math.PI / 2) * Math.exp(0.5 * a * a) - sum;
  }
  let f = a;
  for (let k = 300; k >= 1; k--) f = a + k / f;
  return 1 / f;
}
const phi = (x: number): number => Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);

function reference(op: UnaryOp, x: number, params: readonly number[]): number {
  if (op === 'gelu') return x === -Infinity ? NaN : x === Infinity ? x : x < 0 ? x * phi(x) * millsRatio(-x) : x * (1 - phi(x) * millsRatio(x));
  if (op === 'geluGrad') return !Number.isFinite(x) ? NaN : x < 0 ? phi(x) * (millsRatio(-x) + x) : 1 + phi(x) * (x - millsRatio(x));
  if (op === 'geluTanh') return x === -Infinity ? NaN : x * sigmoid(twoU(x));
  if (op === 'geluTanhGrad') {
    if (!Number.isFinite(x)) return NaN;
    const s = sigmoid(twoU(x));
    return s * (1 + geluW(x) * (1 - s));
  }
  return UNARY[op](x, params[0] ?? 0, params[1] ?? 0);
}

/**
 * The size errors are measured against: the result, or for the derivatives that are a difference
 * of two terms the larger term (near their root there is no relative accuracy left to measure).
 */
function errorScale(op: UnaryOp, x: number, ref: number): number {
  if (op === 'siluGrad' || op === 'geluTanhGrad') {
    const [z, w] = op === 'siluGrad' ? [x, x] : [twoU(x), geluW(x)];
    const s = sigmoid(z);
    return Math.max(Math.abs(ref), s * (1 + Math.abs(w) * (1 - s)));
  }
  // Φ(x) + x·φ(x) crosses 0 near x = -0.75: measured against its terms, φ(x)·(R(|x|) + |x|)
  if (op === 'geluGrad' && Number.isFinite(x)) return Math.max(Math.abs(ref), phi(x) * (millsRatio(Math.abs(x)) + Math.abs(x)));
  return Math.abs(ref);
}

/** The gap between float32 values at the magnitude of v (2^-149 for subnormals and 0). */
function ulp(v: number): number {
  const a = Math.abs(v);
  if (a < 2 ** -126) return 2 ** -149;
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--; // log2 rounding just below a power of two
  return 2 ** (e - 23);
}

/** Error of a float32 result in ulps of `scale` (0 when it is the reference rounded to float32). */
function ulpError(got: number, ref: number, scale: number): number {
  if (Number.isNaN(ref) || Number.isNaN(got)) return Number.isNaN(ref) && Number.isNaN(got) ? 0 : Infinity;
  if (got === f32(ref)) return 0;
  if (!Number.isFinite(got) || !Number.isFinite(ref)) return Infinity;
  return Math.abs(got - ref) / ulp(scale);
}

/** Same float32 value: NaN equals NaN, and +0 and -0 differ. */
const same = (a: number, b: number): boolean => Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b));

// ------------------------------------------------------------------ running the kernels

/** Random values in [-4, 4) with special values sprinkled in (every 7th is one of them). */
function values(n: number, seed: number): Float32Array {
  const rand = mulberry32(seed);
  const special = [NaN, 0, -0, Infinity, -Infinity, 1e-40, -3];
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = i % 7 === 3 ? special[(i / 7) % special.length | 0] : rand() * 8 - 4;
  return out;
}

/** Puts `data` in wasm memory; the operand views it with `layout`. */
function operand(data: Float32Array, layout: Layout): WasmOperand {
  return { address: env.put(data), shape: layout.shape, strides: layout.strides, offset: layout.offset };
}

const GUARD = 64;

/** An output of n elements filled with 0xff bytes, between guard zones that must stay 0xff. */
function output(n: number): { ptr: number; read: (int: boolean) => Float32Array | Int32Array; guardsIntact: () => boolean } {
  const base = env.alloc(4 * n + 2 * GUARD);
  env.fill(base, 4 * n + 2 * GUARD, 0xff);
  const ptr = base + GUARD;
  const bytes = (at: number) => new Uint8Array(env.memory.buffer, at, GUARD);
  return {
    ptr,
    read: (int) => (int ? new Int32Array(env.memory.buffer, ptr, n).slice() : env.getF32(ptr, n)),
    guardsIntact: () => bytes(base).every((b) => b === 0xff) && bytes(ptr + 4 * n).every((b) => b === 0xff),
  };
}

const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

function runUnary(op: UnaryOp, data: Float32Array, layout: Layout, params: number[], runner: WasmKernelRunner = env.runner) {
  const n = numel(layout.shape);
  const out = output(n);
  const handled = unaryInto(runner, op, operand(data, layout), out.ptr, params);
  expect(out.guardsIntact()).toBe(true);
  const cpu = new Float32Array(n);
  unaryView(op, data, layout, cpu, params[0] ?? 0, params[1] ?? 0);
  return { handled, got: out.read(false), cpu };
}

/** Checks a unary result against the cpu backend's: bit for bit (tol 0) or within tol + 1 ulp (the cpu rounds too). */
function expectUnary(what: string, op: UnaryOp, params: number[], tol: number, xs: ArrayLike<number>, got: ArrayLike<number>, cpu: ArrayLike<number>): void {
  for (let i = 0; i < got.length; i++) {
    const ok = tol === 0 ? same(got[i], cpu[i]) : ulpError(got[i], cpu[i], errorScale(op, xs[i], cpu[i])) <= tol + 1;
    if (!ok) throw new Error(`${what}: element ${i} (x = ${xs[i]}) is ${got[i]}, the cpu backend gives ${cpu[i]}`);
  }
}

// ------------------------------------------------------------------ layouts

/** Unary layouts: name, the buffer's length, the view (shape, strides, offset) of the output's shape. */
const UNARY_LAYOUTS: [string, number, Layout][] = [
  ['contiguous', 60, { shape: [60], strides: [1], offset: 0 }],
  ['scalar broadcast', 1, { shape: [7, 9], strides: [0, 0], offset: 0 }],
  ['row broadcast [1, C]', 9, { shape: [7, 9], strides: [0, 1], offset: 0 }],
  ['column broadcast [R, 1]', 7, { shape: [7, 9], strides: [1, 0], offset: 0 }],
  ['transposed', 63, { shape: [7, 9], strides: [1, 7], offset: 0 }],
  ['3-d slice with offset', 84, { shape: [2, 3, 5], strides: [28, 7, 1], offset: 8 }],
  ['3-d every other column', 84, { shape: [2, 3, 3], strides: [28, 7, 2], offset: 1 }],
  ['4-d permuted', 120, { shape: [2, 3, 4, 5], strides: [60, 5, 15, 1], offset: 0 }],
  ['reversed', 33, { shape: [33], strides: [-1], offset: 32 }],
];

/** A layout no kernel walks: 5 dims that do not coalesce (every stride reversed). */
const FIVE_D: Layout = { shape: [2, 2, 2, 2, 2], strides: [1, 2, 4, 8, 16], offset: 0 };

/** Binary layout pairs over one output shape: name, buffer lengths and views of a and b. */
const BINARY_LAYOUTS: [string, [number, Layout], [number, Layout]][] = [
  ['both contiguous', [61, { shape: [61], strides: [1], offset: 0 }], [61, { shape: [61], strides: [1], offset: 0 }]],
  ['b scalar', [35, { shape: [5, 7], strides: [7, 1], offset: 0 }], [1, { shape: [5, 7], strides: [0, 0], offset: 0 }]],
  ['a scalar', [1, { shape: [5, 7], strides: [0, 0], offset: 0 }], [35, { shape: [5, 7], strides: [7, 1], offset: 0 }]],
  ['b row [1, C]', [35, { shape: [5, 7], strides: [7, 1], offset: 0 }], [7, { shape: [5, 7], strides: [0, 1], offset: 0 }]],
  ['a row [1, C]', [7, { shape: [5, 7], strides: [0, 1], offset: 0 }], [35, { shape: [5, 7], strides: [7, 1], offset: 0 }]],
  ['b column [R, 1]', [35, { shape: [5, 7], strides: [7, 1], offset: 0 }], [5, { shape: [5, 7], strides: [1, 0], offset: 0 }]],
  ['a column [R, 1]', [5, { shape: [5, 7], strides: [1, 0], offset: 0 }], [35, { shape: [5, 7], strides: [7, 1], offset: 0 }]],
  ['column x row', [5, { shape: [5, 7], strides: [1, 0], offset: 0 }], [7, { shape: [5, 7], strides: [0, 1], offset: 0 }]],
  ['a transposed', [35, { shape: [5, 7], strides: [1, 5], offset: 0 }], [35, { shape: [5, 7], strides: [7, 1], offset: 0 }]],
  ['3-d slices', [84, { shape: [2, 3, 5], strides: [28, 7, 1], offset: 9 }], [40, { shape: [2, 3, 5], strides: [20, 5, 1], offset: 3 }]],
  ['4-d permuted and broadcast', [120, { shape: [2, 3, 4, 5], strides: [60, 5, 15, 1], offset: 0 }], [20, { shape: [2, 3, 4, 5], strides: [0, 0, 5, 1], offset: 0 }]],
  ['3-d batch broadcast [1, R, C]', [12, { shape: [3, 4, 3], strides: [0, 3, 1], offset: 0 }], [36, { shape: [3, 4, 3], strides: [12, 3, 1], offset: 0 }]],
];

// ------------------------------------------------------------------ tests

describe('wasm unary kernels against the cpu backend', () => {
  describe.each(UNARY_CASES)('%s', (name, op, params, tol) => {
    it.each(UNARY_LAYOUTS)('%s', (layoutName, length, layout) => {
      const data = values(length, 11);
      const { handled, got, cpu } = runUnary(op, data, layout, params);
      expect(handled).toBe(true);
      const xs = new Float32Array(cpu.length);
      gatherView(data, layout, xs); // the inputs in output order
      expectUnary(`${name}, ${layoutName}`, op, params, tol, xs, got, cpu);
    });

    it.each([1, 3, 5, 17, 1000, 70000])('%i contiguous elements (also as a column-broadcast [n, 3])', (n) => {
      const data = values(n, n);
      const flat = runUnary(op, data, { shape: [n], strides: [1], offset: 0 }, params);
      expect(flat.handled).toBe(true);
      expectUnary(`${name}, n = ${n}`, op, params, tol, data, flat.got, flat.cpu);
      const column = runUnary(op, data, { shape: [n, 3], strides: [1, 0], offset: 0 }, params);
      expect(column.handled).toBe(true);
      const xs = Float32Array.from({ length: 3 * n }, (_, i) => data[(i / 3) | 0]);
      expectUnary(`${name}, [${n}, 3] column`, op, params, tol, xs, column.got, column.cpu);
    });

    it('special values give the cpu backend\'s results: NaN, ±0 and ±Infinity exactly', () => {
      const xs = Float32Array.from([
        NaN, 0, -0, Infinity, -Infinity, F32_MAX, -F32_MAX, 2 ** -149, -(2 ** -149), 1e-40, -1e-40, 2 ** -126,
        1, -1, 0.5, 88.72, 88.73, -87.4, -103.9, -104, -110, -151, -1e4, 9, -9, 20, -20, 1e10, -1e10,
      ]);
      const { got, cpu } = runUnary(op, xs, { shape: [xs.length], strides: [1], offset: 0 }, params);
      for (let i = 0; i < xs.length; i++) {
        const x = xs[i];
        if (tol === 0 || Number.isNaN(x) || x === 0 || !Number.isFinite(x)) {
          if (!same(got[i], cpu[i])) throw new Error(`${name}(${Object.is(x, -0) ? '-0' : x}) is ${got[i]}, the cpu backend gives ${cpu[i]}`);
        } else {
          const ref = reference(op, x, params);
          const err = ulpError(got[i], ref, errorScale(op, x, ref));
          if (!(err <= tol)) throw new Error(`${name}(${x}) is ${got[i]}, ${err} ulp from ${ref}`);
        }
      }
    });
  });

  it.each(UNARY_CASES.filter(([, , , tol]) => tol > 0))('%s: at most the stated ulps from float64 over wide ranges', (name, op, params, tol) => {
    const rand = mulberry32(7);
    const n = 60000;
    const xs = new Float32Array(n);
    const bits = new Uint32Array(xs.buffer);
    const [lo, hi] = op === 'log' || op === 'rsqrt' || op === 'powScalar' ? [0, 30] : op === 'exp' ? [-104, 89] : [-25, 25];
    for (let i = 0; i < n / 2; i++) xs[i] = lo + ((hi - lo) * i) / (n / 2); // a dense grid
    for (let i = n / 2; i < n; i++) bits[i] = (rand() * 2 ** 32) >>> 0; // random bit patterns: every exponent
    const { got } = runUnary(op, xs, { shape: [n], strides: [1], offset: 0 }, params);
    let worst = 0;
    let at = 0;
    for (let i = 0; i < n; i++) {
      const ref = reference(op, xs[i], params);
      const err = ulpError(got[i], ref, errorScale(op, xs[i], ref));
      if (!(err <= worst)) [worst, at] = [err, xs[i]];
    }
    if (!(worst <= tol)) throw new Error(`${name}: ${worst} ulp at x = ${at}`);
  });

  it('inRange rounds its bounds inwards to float32, so lo <= x <= hi is decided as in float64', () => {
    // 0.1 rounds up to float32 and 0.3 rounds up too: the float32 next to each bound is tested
    const lo = 0.1;
    const hi = 0.3;
    const near = (v: number) => {
      const a = new Float32Array([v, 0, 0]);
      const b = new Int32Array(a.buffer);
      b[1] = b[0] - 1;
      b[2] = b[0] + 1;
      return [...a];
    };
    const xs = Float32Array.from([...near(lo), ...near(hi), 0.2, -Infinity, Infinity, NaN]);
    for (const [op, params] of [['inRange', [lo, hi]], ['clamp', [lo, hi]], ['inRange', [-Infinity, 1e39]], ['clamp', [-1e39, 1e39]]] as [UnaryOp, number[]][]) {
      const { got, cpu } = runUnary(op, xs, { shape: [xs.length], strides: [1], offset: 0 }, params);
      for (let i = 0; i < xs.length; i++) expect([op, xs[i], got[i]]).toEqual([op, xs[i], cpu[i]]);
    }
  });

  it('returns false, writing nothing, for ops, exponents and layouts without a kernel', () => {
    const data = values(32, 5);
    for (const [op, params, layout] of [
      ['sin', [], { shape: [32], strides: [1], offset: 0 }],
      ['cos', [], { shape: [32], strides: [1], offset: 0 }],
      ['powScalar', [3], { shape: [32], strides: [1], offset: 0 }],
      ['exp', [], FIVE_D],
    ] as [UnaryOp, number[], Layout][]) {
      const { handled, got } = runUnary(op, data, layout, params);
      expect([op, params, handled]).toEqual([op, params, false]);
      expect(new Uint32Array(got.buffer).every((b) => b === 0xffffffff)).toBe(true);
    }
  });
});

describe('wasm binary kernels against the cpu backend', () => {
  function runBinary(op: BinaryOp, [la, va]: [number, Layout], [lb, vb]: [number, Layout], seed: number, runner: WasmKernelRunner = env.runner) {
    const da = values(la, seed);
    const db = values(lb, seed + 1);
    const n = numel(va.shape);
    const out = output(n);
    const handled = binaryInto(runner, op, operand(da, va), operand(db, vb), out.ptr);
    expect(out.guardsIntact()).toBe(true);
    const cpu = COMPARISONS.has(op) ? new Int32Array(n) : new Float32Array(n);
    binaryViews(op, da, va, db, vb, cpu);
    return { handled, got: out.read(COMPARISONS.has(op)), cpu };
  }

  function expectExact(what: string, got: ArrayLike<number>, cpu: ArrayLike<number>): void {
    for (let i = 0; i < got.length; i++) {
      if (!same(got[i], cpu[i])) throw new Error(`${what}: element ${i} is ${got[i]}, the cpu backend gives ${cpu[i]}`);
    }
  }

  describe.each(BINARY_OPS)('%s: bit for bit', (op) => {
    it.each(BINARY_LAYOUTS)('%s', (name, a, b) => {
      const { handled, got, cpu } = runBinary(op, a, b, 3);
      expect(handled).toBe(true);
      expectExact(`${op}, ${name}`, got, cpu);
    });

    it.each([1, 3, 5, 17, 1000, 70000])('%i elements: contiguous, b scalar, and [n/5, 5] + [1, 5]', (n) => {
      const flat: [number, Layout] = [n, { shape: [n], strides: [1], offset: 0 }];
      const cases: [string, [number, Layout], [number, Layout]][] = [
        ['contiguous', flat, flat],
        ['b scalar', flat, [1, { shape: [n], strides: [0], offset: 0 }]],
      ];
      if (n % 5 === 0) cases.push(['row', [n, { shape: [n / 5, 5], strides: [5, 1], offset: 0 }], [5, { shape: [n / 5, 5], strides: [0, 1], offset: 0 }]]);
      for (const [name, a, b] of cases) {
        const { handled, got, cpu } = runBinary(op, a, b, n);
        expect(handled).toBe(true);
        expectExact(`${op}, ${name}, n = ${n}`, got, cpu);
      }
    });

    it('every pair of special values', () => {
      const specials = [NaN, 0, -0, Infinity, -Infinity, 1, -1, 2.5, F32_MAX, -F32_MAX, 2 ** -149, 1e-40, 3];
      const k = specials.length;
      const da = Float32Array.from({ length: k * k }, (_, i) => specials[(i / k) | 0]);
      const db = Float32Array.from({ length: k * k }, (_, i) => specials[i % k]);
      const layout: Layout = { shape: [k * k], strides: [1], offset: 0 };
      const out = output(k * k);
      expect(binaryInto(env.runner, op, operand(da, layout), operand(db, layout), out.ptr)).toBe(true);
      const cpu = COMPARISONS.has(op) ? new Int32Array(k * k) : new Float32Array(k * k);
      binaryViews(op, da, layout, db, layout, cpu);
      const got = out.read(COMPARISONS.has(op));
      for (let i = 0; i < k * k; i++) {
        if (!same(got[i], cpu[i])) throw new Error(`${op}(${da[i]}, ${db[i]}) is ${got[i]}, the cpu backend gives ${cpu[i]}`);
      }
    });
  });

  it('binaryOutDtype: int32 for the comparisons, float32 for arithmetic', () => {
    expect(BINARY_OPS.map((op) => [op, binaryOutDtype(op)])).toEqual(BINARY_OPS.map((op) => [op, COMPARISONS.has(op) ? 'int32' : 'float32']));
  });

  it('maximum(+0, -0) is -0 and minimum(-0, +0) is +0, as the cpu backend (b when equal)', () => {
    const a = operand(Float32Array.from([0, -0]), { shape: [2], strides: [1], offset: 0 });
    const b = operand(Float32Array.from([-0, 0]), { shape: [2], strides: [1], offset: 0 });
    const out = output(2);
    binaryInto(env.runner, 'maximum', a, b, out.ptr);
    expect([...out.read(false)]).toEqual([-0, 0]);
    binaryInto(env.runner, 'minimum', a, b, out.ptr);
    expect([...out.read(false)]).toEqual([-0, 0]);
  });

  it('returns false, writing nothing, for pow and for layouts of more than 4 dims', () => {
    for (const [op, layout] of [['pow', { shape: [8], strides: [1], offset: 0 }], ['add', FIVE_D]] as [BinaryOp, Layout][]) {
      const { handled, got } = runBinary(op, [32, layout], [32, layout], 1);
      expect(handled).toBe(false);
      expect(new Uint32Array(got.buffer).every((b) => b === 0xffffffff)).toBe(true);
    }
  });
});

describe('tasks and errors', () => {
  /** A runner that records its runs and runs the tasks last to first (any order must do). */
  function recordingRunner(): { runner: WasmKernelRunner; runs: [string, number][] } {
    const runs: [string, number][] = [];
    const inner = env.runner;
    return {
      runs,
      runner: {
        exports: inner.exports,
        memory: inner.memory,
        descPtr: inner.descPtr,
        run(fn, desc, tasks) {
          runs.push([fn, tasks]);
          const kernel = inner.exports[fn] as (d: number, t: number, s: number) => void;
          for (let t = tasks - 1; t >= 0; t--) kernel(desc, t, 0);
        },
      },
    };
  }

  it('cuts large outputs into tasks of 64K elements (light ops) or 16K (ops with an exp), which may run in any order; small ones are one task', () => {
    const { runner, runs } = recordingRunner();
    // [333, 400] + [1, 400]: task boundaries fall inside rows
    const n = 333 * 400;
    const a: [number, Layout] = [n, { shape: [333, 400], strides: [400, 1], offset: 0 }];
    const b: [number, Layout] = [400, { shape: [333, 400], strides: [0, 1], offset: 0 }];
    const da = values(n, 1);
    const db = values(400, 2);
    const out = output(n);
    expect(binaryInto(runner, 'mul', operand(da, a[1]), operand(db, b[1]), out.ptr)).toBe(true);
    const cpu = new Float32Array(n);
    binaryViews('mul', da, a[1], db, b[1], cpu);
    const got = out.read(false);
    for (let i = 0; i < n; i++) if (!same(got[i], cpu[i])) throw new Error(`element ${i}: ${got[i]} vs ${cpu[i]}`);
    const small = runUnary('exp', values(1000, 3), { shape: [1000], strides: [1], offset: 0 }, [], runner);
    expect(small.handled).toBe(true);
    const heavy = runUnary('exp', values(40000, 4), { shape: [40000], strides: [1], offset: 0 }, [], runner);
    expect(heavy.handled).toBe(true);
    expectUnary('exp, 40,000 elements in reversed tasks', 'exp', [], 2, values(40000, 4), heavy.got, heavy.cpu);
    const light = runUnary('neg', values(40000, 5), { shape: [40000], strides: [1], offset: 0 }, [], runner);
    expect(light.handled).toBe(true);
    expect(runs).toEqual([['binary_mul_f32', 3], ['unary_exp_f32', 1], ['unary_exp_f32', 3], ['unary_neg_f32', 1]]);
  });

  it('an empty output runs nothing and returns true', () => {
    const { runner, runs } = recordingRunner();
    const x = operand(new Float32Array(4), { shape: [0, 4], strides: [4, 1], offset: 0 });
    expect(unaryInto(runner, 'exp', x, env.alloc(16), [])).toBe(true);
    expect(binaryInto(runner, 'add', x, x, env.alloc(16))).toBe(true);
    expect(runs).toEqual([]);
  });

  it('throws a BackendError naming the op for operands outside memory, misaligned, or of different shapes', () => {
    const bytes = env.memory.buffer.byteLength;
    const ok = operand(new Float32Array(8), { shape: [8], strides: [1], offset: 0 });
    const out = env.alloc(32);
    const bad: [string, () => boolean][] = [
      ['past the end', () => unaryInto(env.runner, 'exp', { ...ok, address: bytes - 16 }, out, [])],
      ['misaligned', () => binaryInto(env.runner, 'add', ok, { ...ok, address: ok.address + 2 }, out)],
      ['output past the end', () => binaryInto(env.runner, 'add', ok, ok, bytes - 8)],
      ['shapes differ', () => binaryInto(env.runner, 'mul', ok, { ...ok, shape: [2, 4], strides: [4, 1] }, out)],
      ['negative reach', () => unaryInto(env.runner, 'neg', { ...ok, strides: [-1] }, out, [])],
    ];
    for (const [what, call] of bad) {
      let error: unknown;
      try {
        call();
      } catch (e) {
        error = e;
      }
      expect([what, error instanceof BackendError, String(error)]).toEqual([what, true, expect.stringMatching(/^BackendError: (exp|add|mul|neg): wasm kernel/)]);
    }
  });
});
