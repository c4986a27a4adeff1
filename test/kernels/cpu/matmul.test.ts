import {
  matmul,
  matmulBlocked,
  matmulReference,
  type MatmulShape,
  type NumericArray,
} from '../../../src/kernels/cpu/matmul';
import { mulberry32 } from '../../helpers';


type Dtype = 'float64' | 'float32' | 'int32';
type Ctor = Float64ArrayConstructor | Float32ArrayConstructor | Int32ArrayConstructor;
const CTOR: Record<Dtype, Ctor> = { float64: Float64Array, float32: Float32Array, int32: Int32Array };

/** Random array: uniform in [-1, 1) for floats, integers in [-9, 9] for int32. */
function randomArray(dtype: Dtype, length: number, rand: () => number): NumericArray {
  const arr = new CTOR[dtype](length);
  for (let i = 0; i < length; i++) {
    arr[i] = dtype === 'int32' ? Math.floor(rand() * 19) - 9 : rand() * 2 - 1;
  }
  return arr;
}

function shape(
  m: number,
  k: number,
  n: number,
  opts: Partial<MatmulShape> = {},
): MatmulShape {
  return {
    batch: 1,
    m,
    k,
    n,
    transA: false,
    transB: false,
    aBatchStride: m * k,
    bBatchStride: k * n,
    ...opts,
  };
}

/** Inputs sized for `s` (plus offsets and a little slack at the end), filled at random. */
function makeInputs(dtype: Dtype, s: MatmulShape, rand: () => number) {
  const aLen = (s.aOffset ?? 0) + Math.max(0, s.batch - 1) * s.aBatchStride + s.m * s.k + 3;
  const bLen = (s.bOffset ?? 0) + Math.max(0, s.batch - 1) * s.bBatchStride + s.k * s.n + 3;
  return { a: randomArray(dtype, aLen, rand), b: randomArray(dtype, bLen, rand) };
}

/**
 * Compares `actual` against `expected`: exact for int32, otherwise each element within
 * rtol * (the sum of |a_ip * b_pj| over p for that element), which bounds the rounding error
 * of any summation order; `scale` carries that sum.
 */
function expectClose(actual: NumericArray, expected: NumericArray, scale: Float64Array, rtol: number): void {
  expect(actual.length).toBe(expected.length);
  if (rtol === 0) {
    expect(Array.from(actual)).toEqual(Array.from(expected));
    return;
  }
  let worst = 0;
  let worstAt = -1;
  for (let i = 0; i < expected.length; i++) {
    const err = Math.abs(actual[i] - expected[i]) / (scale[i] + 1e-300);
    if (!(err <= worst)) {
      worst = err;
      worstAt = i;
    }
  }
  if (!(worst <= rtol)) {
    throw new Error(
      `element ${worstAt}: got ${actual[worstAt]}, expected ${expected[worstAt]} (relative error ${worst} > ${rtol})`,
    );
  }
}

/** sum_p |opA[i,p]| * |opB[p,j]| per output element, via the reference on absolute values. */
function absScale(a: NumericArray, b: NumericArray, s: MatmulShape): Float64Array {
  const absA = Float64Array.from(a, Math.abs);
  const absB = Float64Array.from(b, Math.abs);
  const out = new Float64Array(s.batch * s.m * s.n);
  matmulReference(absA, absB, out, s);
  return out;
}

const RTOL: Record<Dtype, number> = { float64: 1e-12, float32: 1e-5, int32: 0 };

/** Runs the blocked kernel (and the dispatcher) against the reference on random inputs. */
function checkAgainstReference(dtype: Dtype, s: MatmulShape, seed: number): void {
  const rand = mulberry32(seed);
  const { a, b } = makeInputs(dtype, s, rand);
  const size = s.batch * s.m * s.n;
  const expected = new CTOR[dtype](size);
  matmulReference(a, b, expected, s);

  // Prefill outputs with garbage: the kernels must write every element, not accumulate.
  const blocked = randomArray(dtype, size, rand);
  matmulBlocked(a, b, blocked, s);
  const dispatched = randomArray(dtype, size, rand);
  matmul(a, b, dispatched, s);

  const scale = absScale(a, b, s);
  expectClose(blocked, expected, scale, RTOL[dtype]);
  expectClose(dispatched, expected, scale, RTOL[dtype]);
}

describe('matmulReference (the oracle) on hand-computed cases', () => {
  test('2x3 @ 3x2', () => {
    // [1 2 3]   [ 7  8]   [1*7+2*9+3*11  1*8+2*10+3*12]   [ 58  64]
    // [4 5 6] @ [ 9 10] = [4*7+5*9+6*11  4*8+5*10+6*12] = [139 154]
    //           [11 12]
    const a = Float64Array.of(1, 2, 3, 4, 5, 6);
    const b = Float64Array.of(7, 8, 9, 10, 11, 12);
    const out = new Float64Array(4);
    matmulReference(a, b, out, shape(2, 3, 2));
    expect(Array.from(out)).toEqual([58, 64, 139, 154]);
  });

  test('transA: A stored as 3x2 is used as its 2x3 transpose', () => {
    // Stored A = [1 4; 2 5; 3 6] (3x2), so opA = [1 2 3; 4 5 6]: same product as above.
    const a = Float64Array.of(1, 4, 2, 5, 3, 6);
    const b = Float64Array.of(7, 8, 9, 10, 11, 12);
    const out = new Float64Array(4);
    matmulReference(a, b, out, shape(2, 3, 2, { transA: true }));
    expect(Array.from(out)).toEqual([58, 64, 139, 154]);
  });

  test('transB: B stored as 2x3 is used as its 3x2 transpose', () => {
    // Stored B = [7 9 11; 8 10 12] (2x3), so opB = [7 8; 9 10; 11 12].
    const a = Float64Array.of(1, 2, 3, 4, 5, 6);
    const b = Float64Array.of(7, 9, 11, 8, 10, 12);
    const out = new Float64Array(4);
    matmulReference(a, b, out, shape(2, 3, 2, { transB: true }));
    expect(Array.from(out)).toEqual([58, 64, 139, 154]);
  });

  test('transA and transB: A^T B^T = (B A)^T', () => {
    // opA = [1 2; 3 4] stored as [1 3; 2 4]; opB = [5 6; 7 8] stored as [5 7; 6 8].
    // [1 2; 3 4] @ [5 6; 7 8] = [19 22; 43 50].
    const a = Int32Array.of(1, 3, 2, 4);
    const b = Int32Array.of(5, 7, 6, 8);
    const out = new Int32Array(4);
    matmulReference(a, b, out, shape(2, 2, 2, { transA: true, transB: true }));
    expect(Array.from(out)).toEqual([19, 22, 43, 50]);
  });

  test('batch with broadcast B and offsets', () => {
    // Two 1x2 rows of A (after a 1-element offset) against one shared 2x2 B (after 2 elements).
    // [1 2] @ [1 0; 0 10] = [1 20];  [3 4] @ [1 0; 0 10] = [3 40].
    const a = Float32Array.of(99, 1, 2, 3, 4);
    const b = Float32Array.of(-1, -1, 1, 0, 0, 10);
    const out = new Float32Array(4);
    matmulReference(a, b, out, shape(1, 2, 2, { batch: 2, aOffset: 1, bOffset: 2, bBatchStride: 0 }));
    expect(Array.from(out)).toEqual([1, 20, 3, 40]);
  });

  test('k = 0 gives zeros (empty sums), overwriting what was in out', () => {
    const out = Float64Array.of(5, 5, 5, 5, 5, 5);
    matmulReference(new Float64Array(0), new Float64Array(0), out, shape(2, 0, 3));
    expect(Array.from(out)).toEqual([0, 0, 0, 0, 0, 0]);
    const out2 = Float64Array.of(5, 5, 5, 5, 5, 5);
    matmulBlocked(new Float64Array(0), new Float64Array(0), out2, shape(2, 0, 3));
    expect(Array.from(out2)).toEqual([0, 0, 0, 0, 0, 0]);
  });

  test('float32 output is the double sum rounded once', () => {
    // 1 + 2^-30 - 1 in float32 steps would lose the 2^-30; in double it survives.
    const a = Float32Array.of(1, 1, 1);
    const b = Float32Array.of(1, 2 ** -30, -1);
    const out = new Float32Array(1);
    matmulReference(a, b, out, shape(1, 3, 1));
    expect(out[0]).toBe(2 ** -30);
  });
});

describe('matmulBlocked matches matmulReference', () => {
  const sizes: Array<[number, number, number]> = [
    [1, 1, 1],
    [1, 7, 1],
    [2, 2, 2],
    [3, 5, 7],
    [5, 3, 2],
    [4, 4, 4],
    [4, 8, 8],
    [8, 8, 8],
    [17, 33, 9],
    [9, 1, 13],
    [16, 32, 24],
    [64, 64, 64],
    [31, 300, 11], // k spans two KC slices
    [130, 67, 129], // m spans two MC blocks
    [20, 20, 260], // n spans two NC blocks
  ];
  const transCombos: Array<[boolean, boolean]> = [
    [false, false],
    [true, false],
    [false, true],
    [true, true],
  ];

  let seed = 1;
  for (const dtype of ['float64', 'float32', 'int32'] as const) {
    for (const [m, k, n] of sizes) {
      for (const [transA, transB] of transCombos) {
        const caseSeed = seed++;
        test(`${dtype} ${m}x${k}x${n} transA=${transA} transB=${transB}`, () => {
          checkAgainstReference(dtype, shape(m, k, n, { transA, transB }), caseSeed);
        });
      }
    }
  }

  describe('batches, broadcasting and offsets', () => {
    const batchCases: Array<[string, (m: number, k: number, n: number) => Partial<MatmulShape>]> = [
      ['batch 3, both strided', (m, k, n) => ({ batch: 3, aBatchStride: m * k, bBatchStride: k * n })],
      ['batch 3, A broadcast (stride 0)', (m, k, n) => ({ batch: 3, aBatchStride: 0, bBatchStride: k * n })],
      ['batch 3, B broadcast (stride 0)', (m, k, n) => ({ batch: 3, aBatchStride: m * k, bBatchStride: 0 })],
      ['batch 2, both broadcast', () => ({ batch: 2, aBatchStride: 0, bBatchStride: 0 })],
      [
        'batch 2, gapped strides and offsets',
        (m, k, n) => ({ batch: 2, aBatchStride: m * k + 5, bBatchStride: k * n + 2, aOffset: 7, bOffset: 3 }),
      ],
      ['batch 1, offsets only', () => ({ aOffset: 11, bOffset: 1 })],
    ];
    const batchSizes: Array<[number, number, number]> = [
      [3, 5, 7],
      [17, 33, 9],
      [40, 20, 36],
    ];
    let bseed = 1000;
    for (const dtype of ['float64', 'float32', 'int32'] as const) {
      for (const [label, opts] of batchCases) {
        for (const [m, k, n] of batchSizes) {
          for (const [transA, transB] of [
            [false, false],
            [true, true],
          ] as const) {
            const caseSeed = bseed++;
            test(`${dtype} ${label} ${m}x${k}x${n} transA=${transA} transB=${transB}`, () => {
              checkAgainstReference(dtype, shape(m, k, n, { transA, transB, ...opts(m, k, n) }), caseSeed);
            });
          }
        }
      }
    }
  });

  test('mixed input types (float32 A, int32 B) into float64 out', () => {
    const rand = mulberry32(77);
    const s = shape(13, 21, 10);
    const a = randomArray('float32', 13 * 21, rand);
    const b = randomArray('int32', 21 * 10, rand);
    const expected = new Float64Array(130);
    const actual = new Float64Array(130);
    matmulReference(a, b, expected, s);
    matmulBlocked(a, b, actual, s);
    expectClose(actual, expected, absScale(a, b, s), 1e-12);
  });

  test('scratch buffers are reused safely: a large call then a small call then a large call', () => {
    checkAgainstReference('float64', shape(100, 300, 90), 501);
    checkAgainstReference('float64', shape(5, 6, 7, { transA: true }), 502);
    checkAgainstReference('float32', shape(70, 40, 300, { transB: true }), 503);
  });

  test('does not write past batch*m*n in out', () => {
    const rand = mulberry32(9);
    const s = shape(5, 4, 3, { batch: 2 });
    const { a, b } = makeInputs('float64', s, rand);
    const out = new Float64Array(2 * 5 * 3 + 4).fill(-7);
    matmulBlocked(a, b, out, s);
    expect(Array.from(out.subarray(30))).toEqual([-7, -7, -7, -7]);
    out.fill(-7);
    matmulReference(a, b, out, s);
    expect(Array.from(out.subarray(30))).toEqual([-7, -7, -7, -7]);
  });

  test('empty batch, m or n does nothing', () => {
    const out = Float64Array.of(3);
    for (const s of [shape(2, 2, 2, { batch: 0 }), shape(0, 2, 2), shape(2, 2, 0)]) {
      matmulBlocked(new Float64Array(4), new Float64Array(4), out, s);
      matmulReference(new Float64Array(4), new Float64Array(4), out, s);
      matmul(new Float64Array(4), new Float64Array(4), out, s);
    }
    expect(out[0]).toBe(3);
  });

  test('rejects arrays too short for the shape', () => {
    const s = shape(3, 4, 5);
    const a = new Float64Array(12);
    const b = new Float64Array(20);
    for (const f of [matmulReference, matmulBlocked, matmul]) {
      expect(() => f(a, b, new Float64Array(14), s)).toThrow(RangeError);
      expect(() => f(a.subarray(1), b, new Float64Array(15), s)).toThrow(RangeError);
      expect(() => f(a, b, new Float64Array(30), { ...s, batch: 2, bBatchStride: 0 })).toThrow(RangeError);
      expect(() => f(a, b, new Float64Array(15), { ...s, m: 2.5 })).toThrow(RangeError);
    }
  });
});
