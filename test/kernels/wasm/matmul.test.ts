import { BackendError } from '../../../src/errors';
import type { MatmulShape } from '../../../src/kernels/backend';
import { matmul as cpuMatmul } from '../../../src/kernels/cpu/matmul';
import { wasmKernelBytes } from '../../../src/kernels/wasm/binary';
import { matmulInto, matmulTasks, type WasmMatmulDType } from '../../../src/kernels/wasm/matmul';
import { SCRATCH_BYTES, type WasmKernelRunner } from '../../../src/kernels/wasm/runner';
import { mulberry32 } from '../../helpers';
import { createWasmEnv, kernelModule, orderedRunner, type WasmTestEnv } from './helpers';

const env: WasmTestEnv = createWasmEnv();
afterEach(() => env.reset());

const DTYPES: WasmMatmulDType[] = ['float32', 'float64'];
const LAYOUTS: [boolean, boolean][] = [[false, false], [true, false], [false, true], [true, true]];
const EDGE_SIZES = [1, 3, 7, 17, 33, 129];

function shapeOf(batch: number, m: number, k: number, n: number, opts: Partial<MatmulShape> = {}): MatmulShape {
  return { batch, m, k, n, transA: false, transB: false, aBatchStride: m * k, bBatchStride: k * n, ...opts };
}

const ctor = (dtype: WasmMatmulDType) => (dtype === 'float32' ? Float32Array : Float64Array);

/** Random operands for `s`, uniform in [-1, 1), already rounded to dtype. */
function operands(dtype: WasmMatmulDType, s: MatmulShape, seed: number): { a: Float32Array | Float64Array; b: Float32Array | Float64Array } {
  const rand = mulberry32(seed);
  const len = (stride: number, size: number) => Math.max(0, s.batch - 1) * stride + size;
  const fill = (n: number) => {
    const out = new (ctor(dtype))(n);
    for (let i = 0; i < n; i++) out[i] = rand() * 2 - 1;
    return out;
  };
  return { a: fill(len(s.aBatchStride, s.m * s.k)), b: fill(len(s.bBatchStride, s.k * s.n)) };
}

/** Triple loop in float64; also returns Σ_p |a_ip b_pj| per element, which bounds rounding errors. */
function reference(a: ArrayLike<number>, b: ArrayLike<number>, s: MatmulShape): { c: Float64Array; scale: Float64Array } {
  const { batch, m, k, n } = s;
  const c = new Float64Array(batch * m * n);
  const scale = new Float64Array(batch * m * n);
  // op(A)[i][p] = a[aBase + i*aRow + p*aCol], op(B)[p][j] = b[bBase + p*bRow + j*bCol]
  const [aRow, aCol] = s.transA ? [1, m] : [k, 1];
  const [bRow, bCol] = s.transB ? [1, k] : [n, 1];
  for (let bt = 0; bt < batch; bt++) {
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let ai = bt * s.aBatchStride + i * aRow;
        let bi = bt * s.bBatchStride + j * bCol;
        let sum = 0;
        let abs = 0;
        for (let p = 0; p < k; p++, ai += aCol, bi += bRow) {
          const xy = a[ai] * b[bi];
          sum += xy;
          abs += xy < 0 ? -xy : xy; // not Math.abs: globals are slow to reach inside jest's vm context
        }
        c[(bt * m + i) * n + j] = sum;
        scale[(bt * m + i) * n + j] = abs;
      }
    }
  }
  return { c, scale };
}

/**
 * Every element within (k + 2) unit roundoffs of Σ|a b| of the reference: a bound on the rounding
 * error of any summation order in dtype (≈ 1e-14 relative at k = 129 for float64).
 */
function expectNear(got: ArrayLike<number>, ref: { c: Float64Array; scale: Float64Array }, k: number, dtype: WasmMatmulDType, what: string): void {
  const u = dtype === 'float32' ? 2 ** -24 : 2 ** -53;
  expect(got.length).toBe(ref.c.length);
  for (let i = 0; i < ref.c.length; i++) {
    const tol = (k + 2) * u * ref.scale[i] + Number.MIN_VALUE;
    if (!(Math.abs(got[i] - ref.c[i]) <= tol)) {
      throw new Error(`${what}: element ${i} is ${got[i]}, expected ${ref.c[i]} (tolerance ${tol})`);
    }
  }
}

/** Copies the operands in, runs matmulInto on a C pre-filled with NaN (bytes 0xff) and guard bytes around it; returns C. */
function runWasm(dtype: WasmMatmulDType, s: MatmulShape, a: Float32Array | Float64Array, b: Float32Array | Float64Array, runner: WasmKernelRunner = env.runner) {
  const size = dtype === 'float32' ? 4 : 8;
  const aPtr = env.put(a);
  const bPtr = env.put(b);
  const cLen = s.batch * s.m * s.n;
  const guard = 64;
  const cPtr = env.alloc(cLen * size + 2 * guard) + guard;
  env.fill(cPtr - guard, cLen * size + 2 * guard, 0xff);
  matmulInto(runner, dtype, aPtr, bPtr, cPtr, s);
  const guards = [...new Uint8Array(env.memory.buffer, cPtr - guard, guard), ...new Uint8Array(env.memory.buffer, cPtr + cLen * size, guard)];
  expect(guards.every((x) => x === 0xff)).toBe(true); // nothing written outside C
  return dtype === 'float32' ? env.getF32(cPtr, cLen) : env.getF64(cPtr, cLen);
}

function check(dtype: WasmMatmulDType, s: MatmulShape, seed: number): void {
  const { a, b } = operands(dtype, s, seed);
  const got = runWasm(dtype, s, a, b);
  const what = `${dtype} batch ${s.batch} ${s.m}x${s.k}x${s.n} transA ${s.transA} transB ${s.transB}`;
  expectNear(got, reference(a, b, s), s.k, dtype, what);
  env.reset();
}


function shuffled(tasks: number, seed: number): number[] {
  const rand = mulberry32(seed);
  const order = Array.from({ length: tasks }, (_, i) => i);
  for (let i = tasks - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

describe('the kernel module', () => {
  it('imports only a shared env.memory and exports the kernels and SCRATCH_BYTES', () => {
    const mod = kernelModule();
    expect(WebAssembly.Module.imports(mod)).toEqual([{ module: 'env', name: 'memory', kind: 'memory' }]);
    const exports = WebAssembly.Module.exports(mod).map((e) => `${e.kind} ${e.name}`);
    expect(exports).toEqual(expect.arrayContaining(['function matmul_f32', 'function matmul_f64', 'global SCRATCH_BYTES']));
    expect((env.instance.exports.SCRATCH_BYTES as WebAssembly.Global).value).toBe(SCRATCH_BYTES);
  });

  it('has no data, start or mutable-global sections to re-run per instance', () => {
    // section ids: 6 global, 8 start, 11 data, 12 data count
    const bytes = wasmKernelBytes();
    const ids: number[] = [];
    let pos = 8;
    const leb = (): number => {
      let v = 0;
      let shift = 0;
      for (;;) {
        const byte = bytes[pos++];
        v += (byte & 0x7f) * 2 ** shift;
        shift += 7;
        if (byte < 0x80) return v;
      }
    };
    while (pos < bytes.length) {
      const id = bytes[pos++];
      const len = leb();
      ids.push(id);
      pos += len;
    }
    expect(ids).toContain(10); // code
    expect(ids.filter((id) => id === 8 || id === 11 || id === 12)).toEqual([]);
    // globals are allowed only as exported constants (SCRATCH_BYTES): an instance keeps no state
    const globals = WebAssembly.Module.exports(kernelModule()).filter((e) => e.kind === 'global');
    for (const g of globals) {
      expect(() => {
        (env.instance.exports[g.name] as WebAssembly.Global).value = 1;
      }).toThrow();
    }
  });
});

describe('matmulInto (wasm)', () => {
  it.each(DTYPES)('%s: every layout at every edge size (m, n, k in 1, 3, 7, 17, 33, 129)', (dtype) => {
    let seed = 1;
    for (const [transA, transB] of LAYOUTS) {
      for (const m of EDGE_SIZES) for (const n of EDGE_SIZES) for (const k of EDGE_SIZES) {
        check(dtype, shapeOf(1, m, k, n, { transA, transB }), seed++);
      }
    }
  });

  it.each(DTYPES)('%s: sizes that cross the cache blocks (k > 256, m > 128, n > 512) and split into tasks', (dtype) => {
    for (const [transA, transB] of LAYOUTS) {
      check(dtype, shapeOf(1, 133, 520, 21, { transA, transB }), 7); // two k slices, three row blocks (float64)
      check(dtype, shapeOf(1, 19, 33, 1030, { transA, transB }), 8); // three column blocks (float32)
      const split = shapeOf(1, 141, 110, 150, { transA, transB });
      expect(matmulTasks(split, dtype, 2).tasks).toBeGreaterThan(1);
      check(dtype, split, 9);
    }
  });

  it.each(DTYPES)('%s: k = 0 writes zeros', (dtype) => {
    for (const [m, n] of [[1, 1], [5, 9], [130, 70]]) {
      const s = shapeOf(2, m, 0, n);
      const got = runWasm(dtype, s, new (ctor(dtype))(0), new (ctor(dtype))(0));
      expect(Array.from(got)).toEqual(new Array(2 * m * n).fill(0));
    }
  });

  it.each(DTYPES)('%s: batches, broadcast (stride 0), gapped strides and many small products per task', (dtype) => {
    for (const [transA, transB] of LAYOUTS) {
      check(dtype, shapeOf(3, 9, 13, 11, { transA, transB, aBatchStride: 0 }), 11);
      check(dtype, shapeOf(3, 9, 13, 11, { transA, transB, bBatchStride: 0 }), 12);
      check(dtype, shapeOf(4, 9, 13, 11, { transA, transB, aBatchStride: 9 * 13 + 5, bBatchStride: 13 * 11 + 3 }), 13);
    }
    const many = shapeOf(37, 5, 6, 7);
    expect(matmulTasks(many, dtype, 2).batchPer).toBe(37); // one task does all of them
    check(dtype, many, 14);
    check(dtype, shapeOf(5, 70, 300, 130, { aBatchStride: 0 }), 15); // several tasks per product
  });

  it.each(DTYPES)('%s: a shared B under back-to-back A products runs as one taller product, bit-identical to one call per product', (dtype) => {
    const s = shapeOf(4, 64, 200, 90, { bBatchStride: 0 });
    expect(matmulTasks(s, dtype, 2)).toEqual(matmulTasks(shapeOf(1, 256, 200, 90), dtype, 2));
    const { a, b } = operands(dtype, s, 51);
    const batched = runWasm(dtype, s, a, b);
    const size = s.m * s.k;
    for (let bt = 0; bt < s.batch; bt++) {
      const one = runWasm(dtype, shapeOf(1, s.m, s.k, s.n), a.subarray(bt * size, (bt + 1) * size), b);
      expect(Array.from(batched.subarray(bt * s.m * s.n, (bt + 1) * s.m * s.n))).toEqual(Array.from(one));
    }
    expectNear(batched, reference(a, b, s), s.k, dtype, 'folded batch');
  });

  it('batch 0 and empty m or n write nothing', () => {
    for (const s of [shapeOf(0, 4, 4, 4), shapeOf(2, 0, 4, 4), shapeOf(2, 4, 4, 0)]) {
      expect(matmulTasks(s, 'float32', 2).tasks).toBe(0);
      expect(runWasm('float32', s, new Float32Array(64), new Float32Array(64))).toHaveLength(0);
    }
  });

  it('agrees with the cpu backend\'s matmul (float32, transposed B, broadcast batch)', () => {
    const s = shapeOf(2, 37, 45, 29, { transB: true, bBatchStride: 0 });
    const { a, b } = operands('float32', s, 21);
    const cpu = new Float32Array(s.batch * s.m * s.n);
    cpuMatmul(a, b, cpu, s);
    const got = runWasm('float32', s, a, b);
    expectNear(got, { c: Float64Array.from(cpu), scale: reference(a, b, s).scale }, s.k, 'float32', 'wasm vs cpu');
  });
});

describe('tasks', () => {
  it.each(DTYPES)('%s: each task writes its own tile only, and together they write all of C once', (dtype) => {
    const s = shapeOf(3, 150, 96, 260, { transA: true, aBatchStride: 0 });
    const plan = matmulTasks(s, dtype, 2);
    expect(plan.tasks).toBeGreaterThan(3);
    const { a, b } = operands(dtype, s, 31);
    const writes = new Uint8Array(s.batch * s.m * s.n);
    for (let t = 0; t < plan.tasks; t++) {
      const c = runWasm(dtype, s, a, b, orderedRunner(env, () => [t]));
      c.forEach((x, i) => {
        if (!Number.isNaN(x)) writes[i]++;
      });
      env.reset();
    }
    expect(writes.every((w) => w === 1)).toBe(true);
  });

  it.each(DTYPES)('%s: tasks run in a shuffled order give bit-identical results', (dtype) => {
    for (const s of [shapeOf(2, 130, 100, 170, { transB: true }), shapeOf(6, 64, 64, 64, { aBatchStride: 0 })]) {
      const { a, b } = operands(dtype, s, 41);
      const inOrder = runWasm(dtype, s, a, b);
      const tasks = matmulTasks(s, dtype, 2).tasks;
      expect(tasks).toBeGreaterThan(1);
      const reversed = runWasm(dtype, s, a, b, orderedRunner(env, (n) => Array.from({ length: n }, (_, i) => n - 1 - i)));
      const random = runWasm(dtype, s, a, b, orderedRunner(env, (n) => shuffled(n, 5)));
      expect(Array.from(reversed)).toEqual(Array.from(inOrder));
      expect(Array.from(random)).toEqual(Array.from(inOrder));
      expectNear(inOrder, reference(a, b, s), s.k, dtype, 'in order');
      env.reset();
    }
  });

  it('matmulTasks on one thread: one tile per product (every tile packs its own A and B), small products still grouped', () => {
    for (const [m, k, n] of [[64, 688, 256], [256, 256, 688], [1024, 1024, 1024]]) {
      expect(matmulTasks(shapeOf(1, m, k, n), 'float32', 1)).toEqual({ tasks: 1, batchPer: 1, rowsPer: m, colsPer: n, tilesM: 1, tilesN: 1 });
      expect(matmulTasks(shapeOf(1, m, k, n), 'float32', 2).tasks).toBeGreaterThan(1);
    }
    expect(matmulTasks(shapeOf(6, 256, 256, 256), 'float64', 1).tasks).toBe(6);
    expect(matmulTasks(shapeOf(37, 5, 6, 7), 'float32', 1).batchPer).toBe(37);
  });

  it('matmulTasks: small products are one task, big ones an even number of aligned tiles', () => {
    expect(matmulTasks(shapeOf(1, 64, 64, 64), 'float32', 2).tasks).toBe(1);
    for (const dtype of DTYPES) {
      for (const [m, k, n] of [[256, 256, 256], [256, 688, 256], [1024, 1024, 1024], [688, 256, 256], [8, 4096, 4096]]) {
        const p = matmulTasks(shapeOf(1, m, k, n), dtype, 2);
        expect(p.tasks % 2).toBe(0);
        expect(p.tasks).toBe(p.tilesM * p.tilesN);
        expect(p.rowsPer * p.tilesM).toBeGreaterThanOrEqual(m);
        expect(p.colsPer * p.tilesN).toBeGreaterThanOrEqual(n);
        if (p.tilesM > 1) expect(p.rowsPer % 4).toBe(0);
        if (p.tilesN > 1) expect((p.colsPer * (dtype === 'float32' ? 4 : 8)) % 64).toBe(0);
      }
    }
  });
});

describe('argument checks', () => {
  it('throws a BackendError naming the operand that lies outside memory, or a bad count', () => {
    const end = env.memory.buffer.byteLength;
    const s = shapeOf(1, 4, 4, 4);
    expect(() => matmulInto(env.runner, 'float32', end - 32, 0, 1 << 16, s)).toThrow(BackendError);
    expect(() => matmulInto(env.runner, 'float32', end - 32, 0, 1 << 16, s)).toThrow(/A \(byte \d+, 16 elements\) runs past the end/);
    expect(() => matmulInto(env.runner, 'float64', 1 << 16, 1 << 17, 3, s)).toThrow(/C must be a byte address aligned to 8/);
    expect(() => matmulInto(env.runner, 'float32', 0, 0, 0, { ...s, m: -1 })).toThrow(/m must be an integer/);
    expect(() => matmulInto(env.runner, 'float32', 0, 0, 0, { ...s, aOffset: 3 })).toThrow(/fold the offsets into the byte addresses/);
    expect(() => matmulInto(env.runner, 'float32', 0, 0, 0, { ...s, m: 2.5 })).toThrow(/^matmul: wasm float32 kernel \(batch 1, m 2.5, k 4, n 4, transA false, transB false\)/);
  });
});
