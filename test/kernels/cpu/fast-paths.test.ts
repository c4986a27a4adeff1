/**
 * The cpu backend's fast paths against its plain reference path (`new CpuBackend({ reference:
 * true })`: an offsets list per strided operand, one table call per element, whole float16
 * buffers decoded, middle-axis reductions through a transposed copy). Both backends get the same
 * bytes and the same views, over many layouts: contiguous, views with offsets and gaps, transposes,
 * broadcasts (stride 0: row-repeated, column-repeated, scalars, mixed), size-1 and empty dims; in
 * float64, float32, float16 and int32. Results must agree bit for bit (the fast loops do the same
 * arithmetic in the same order).
 */
import { CpuBackend } from '../../../src/kernels/cpu/backend';
import type { BackendBuffer, BinaryOp, ReduceOp, UnaryOp, View } from '../../../src/kernels/backend';
import type { DType } from '../../../src/tensor/dtype';
import * as float16 from '../../../src/tensor/float16';
import { numel } from '../../../src/tensor/shape';
import { mulberry32 } from '../../helpers';


const fast = new CpuBackend();
const ref = new CpuBackend({ reference: true });
const DTYPES: DType[] = ['float64', 'float32', 'float16', 'int32'];

/** Values for a buffer: ints in [-9, 9] for int32; floats in [-3, 3) with a few specials. */
function values(dtype: DType, length: number, rand: () => number, specials = false): number[] {
  const out: number[] = [];
  for (let i = 0; i < length; i++) {
    if (dtype === 'int32') out.push(Math.floor(rand() * 19) - 9);
    else if (specials && rand() < 0.05) out.push([NaN, Infinity, -Infinity, 0, -0][Math.floor(rand() * 5)]);
    else out.push(rand() * 6 - 3);
  }
  return out;
}

/** The same values uploaded to both backends. */
function upload(dtype: DType, vals: number[]): [BackendBuffer, BackendBuffer] {
  return [fast.upload(dtype, vals), ref.upload(dtype, vals)];
}

/** A view with the layout of `layout` on buffer `buf`. */
const on = (buf: BackendBuffer, layout: Layout): View => ({ buffer: buf, ...layout });

interface Layout {
  shape: number[];
  strides: number[];
  offset: number;
}

/**
 * A random layout that reads as `shape`: each dim is either real or broadcast (stride 0, as
 * broadcastView makes for size-1 or missing dims), the real dims are laid out in memory in a
 * random order (transposes) with random gaps (slices with a step, narrow), after a random
 * offset. Returns the layout and the buffer length it needs.
 */
function randomLayout(shape: number[], rand: () => number, opts: { broadcast?: boolean } = {}): { layout: Layout; length: number } {
  const nd = shape.length;
  const real = shape.map((s) => !(opts.broadcast && s > 1 && rand() < 0.35));
  const order = shape.map((_, i) => i).sort(() => rand() - 0.5); // memory order, outermost first
  const strides = new Array<number>(nd).fill(0);
  let step = 1 + (rand() < 0.3 ? Math.floor(rand() * 2) : 0); // innermost gap (a step slice)
  for (let k = nd - 1; k >= 0; k--) {
    const d = order[k];
    if (!real[d]) continue;
    strides[d] = step;
    const padded = shape[d] + (rand() < 0.3 ? Math.floor(rand() * 3) : 0);
    step *= Math.max(padded, 1);
  }
  const offset = rand() < 0.5 ? Math.floor(rand() * 7) : 0;
  return { layout: { shape, strides, offset }, length: offset + step + 2 };
}

/** Named layouts of a [R, C] output that the fast paths single out. */
function namedLayouts(R: number, C: number): Record<string, { layout: Layout; length: number }> {
  return {
    contiguous: { layout: { shape: [R, C], strides: [C, 1], offset: 0 }, length: R * C },
    'contiguous with offset': { layout: { shape: [R, C], strides: [C, 1], offset: 5 }, length: R * C + 9 },
    'row-repeated [C]': { layout: { shape: [R, C], strides: [0, 1], offset: 3 }, length: C + 3 },
    'column-repeated [R, 1]': { layout: { shape: [R, C], strides: [1, 0], offset: 2 }, length: R + 2 },
    scalar: { layout: { shape: [R, C], strides: [0, 0], offset: 4 }, length: 5 },
    transposed: { layout: { shape: [R, C], strides: [1, R], offset: 0 }, length: R * C },
    'transposed with offset and gaps': { layout: { shape: [R, C], strides: [2, 2 * R + 1], offset: 3 }, length: 3 + (2 * R + 1) * C + 1 },
    'row slice of a wider buffer': { layout: { shape: [R, C], strides: [C + 4, 1], offset: 7 }, length: 7 + (C + 4) * R },
    'column-repeated transposed': { layout: { shape: [R, C], strides: [0, 3], offset: 1 }, length: 1 + 3 * C },
  };
}

const SHAPES: number[][] = [[], [1], [7], [3, 5], [5, 1], [1, 6], [4, 3, 5], [2, 1, 3, 4], [3, 0, 2], [2, 3, 2, 3], [64, 33]];

function expectSameBits(a: BackendBuffer, b: BackendBuffer, what: string): void {
  const x = Array.from(fast.download(a));
  const y = Array.from(ref.download(b));
  // Object.is: NaN equals NaN, and +0 differs from -0
  const bad = x.findIndex((v, i) => !Object.is(v, y[i]));
  if (x.length !== y.length || bad >= 0) {
    throw new Error(`${what}: fast and reference differ at ${bad}: ${x[bad]} vs ${y[bad]} (lengths ${x.length}, ${y.length})`);
  }
}

const UNARY_OPS: [UnaryOp, number[]][] = [
  ['neg', []], ['exp', []], ['log', []], ['sqrt', []], ['rsqrt', []], ['relu', []], ['sigmoid', []], ['tanh', []],
  ['silu', []], ['siluGrad', []], ['abs', []], ['gelu', []], ['powScalar', [2]], ['clamp', [-1, 1.5]],
];
const BINARY_OPS: BinaryOp[] = ['add', 'sub', 'mul', 'div', 'maximum', 'pow', 'lt', 'eq'];

describe('coverage: each named layout is a fast path, and the fast backend agrees with the reference', () => {
  for (const dtype of DTYPES) {
    test(`binary ${dtype}: every pair of named layouts, every op`, () => {
      const rand = mulberry32(11);
      for (const [R, C] of [[6, 9], [1, 5], [17, 3]]) {
        const layouts = Object.entries(namedLayouts(R, C));
        for (const [na, la] of layouts) {
          for (const [nb, lb] of layouts) {
            const [fa, ra] = upload(dtype, values(dtype, la.length, rand, true));
            const [fb, rb] = upload(dtype, values(dtype, lb.length, rand, true));
            for (const op of BINARY_OPS) {
              const outF = fast.binary(op, on(fa, la.layout), on(fb, lb.layout), dtype);
              const outR = ref.binary(op, on(ra, la.layout), on(rb, lb.layout), dtype);
              expectSameBits(outF, outR, `${op} ${dtype} [${R}, ${C}] ${na} with ${nb}`);
            }
          }
        }
      }
    });

    test(`unary, copy, read ${dtype}: every named layout`, () => {
      const rand = mulberry32(12);
      for (const [R, C] of [[6, 9], [1, 5], [17, 3]]) {
        for (const [name, l] of Object.entries(namedLayouts(R, C))) {
          const [f, r] = upload(dtype, values(dtype, l.length, rand, true));
          for (const [op, params] of UNARY_OPS) {
            const out = dtype === 'int32' ? 'float32' : dtype;
            expectSameBits(fast.unary(op, on(f, l.layout), out, params), ref.unary(op, on(r, l.layout), out, params), `${op} ${dtype} ${name}`);
          }
          for (const to of DTYPES) expectSameBits(fast.copy(on(f, l.layout), to), ref.copy(on(r, l.layout), to), `copy ${dtype}->${to} ${name}`);
          expect(Array.from(fast.read(on(f, l.layout)))).toEqual(Array.from(ref.read(on(r, l.layout))));
        }
      }
    });
  }
});

describe('random layouts (views with offsets, gaps, transposes, broadcasts) on many shapes', () => {
  for (const dtype of DTYPES) {
    test(`binary/unary/where/copy ${dtype}`, () => {
      const rand = mulberry32(100 + DTYPES.indexOf(dtype));
      for (let trial = 0; trial < 6; trial++) {
        for (const shape of SHAPES) {
          const A = randomLayout(shape, rand, { broadcast: true });
          const B = randomLayout(shape, rand, { broadcast: true });
          const K = randomLayout(shape, rand, { broadcast: true });
          const [fa, ra] = upload(dtype, values(dtype, A.length, rand, true));
          const [fb, rb] = upload(dtype, values(dtype, B.length, rand, true));
          const [fc, rc] = upload('int32', values('int32', K.length, rand));
          const what = `${dtype} ${JSON.stringify(shape)} a=${JSON.stringify(A.layout)} b=${JSON.stringify(B.layout)}`;
          for (const op of BINARY_OPS) {
            expectSameBits(fast.binary(op, on(fa, A.layout), on(fb, B.layout), dtype), ref.binary(op, on(ra, A.layout), on(rb, B.layout), dtype), `${op} ${what}`);
          }
          // both operands on one buffer (x * x.T, x * x[broadcast]): float16 decodes one span for both
          const [fx, rx] = upload(dtype, values(dtype, Math.max(A.length, B.length), rand, true));
          expectSameBits(fast.binary('mul', on(fx, A.layout), on(fx, B.layout), dtype), ref.binary('mul', on(rx, A.layout), on(rx, B.layout), dtype), `x*x' ${what}`);
          for (const [op, params] of UNARY_OPS) {
            const out = dtype === 'int32' ? 'float64' : dtype;
            expectSameBits(fast.unary(op, on(fa, A.layout), out, params), ref.unary(op, on(ra, A.layout), out, params), `${op} ${what}`);
          }
          expectSameBits(
            fast.where(on(fc, K.layout), on(fa, A.layout), on(fb, B.layout), dtype),
            ref.where(on(rc, K.layout), on(ra, A.layout), on(rb, B.layout), dtype),
            `where ${what}`,
          );
          for (const to of DTYPES) expectSameBits(fast.copy(on(fa, A.layout), to), ref.copy(on(ra, A.layout), to), `copy ->${to} ${what}`);
        }
      }
    });

    test(`assign into a strided destination, ${dtype}`, () => {
      const rand = mulberry32(200 + DTYPES.indexOf(dtype));
      for (let trial = 0; trial < 6; trial++) {
        for (const shape of SHAPES) {
          const D = randomLayout(shape, rand); // no broadcast: every destination element once
          const S = randomLayout(shape, rand, { broadcast: true });
          const base = values(dtype, D.length, rand);
          const [fd, rd] = upload(dtype, base);
          const [fs, rs] = upload(trial % 2 === 0 ? dtype : 'float64', values(dtype, S.length, rand, true));
          fast.assign(on(fd, D.layout), on(fs, S.layout));
          ref.assign(on(rd, D.layout), on(rs, S.layout));
          expectSameBits(fd, rd, `assign ${dtype} ${JSON.stringify(shape)} dst=${JSON.stringify(D.layout)} src=${JSON.stringify(S.layout)}`);
        }
      }
    });
  }
});

describe('reduceMiddle: accumulating rows, against the transposed copy + reduceRows of the reference', () => {
  const cases: [number, number, number][] = [[1, 7, 5], [1, 64, 33], [3, 4, 6], [2, 1, 9], [4, 5, 1], [1, 0, 3], [0, 3, 2], [5, 3, 0], [2, 17, 2]];
  for (const dtype of DTYPES) {
    test(`sum, max, min ${dtype}`, () => {
      const rand = mulberry32(300 + DTYPES.indexOf(dtype));
      for (const [outer, mid, inner] of cases) {
        const [f, r] = upload(dtype, values(dtype, outer * mid * inner, rand, true));
        for (const op of ['sum', 'max', 'min'] as ReduceOp[]) {
          expectSameBits(fast.reduceMiddle(op, f, outer, mid, inner), ref.reduceMiddle(op, r, outer, mid, inner), `${op} ${dtype} [${outer}, ${mid}, ${inner}]`);
        }
      }
    });
  }

  test('hand-computed values: a [2, 3, 2] sum, max with a NaN, min; and int32 sums wrap as reduceLast does', () => {
    const x = fast.upload('float64', [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    // out[o, i] = Σ_m x[o, m, i]: o=0: 1+3+5, 2+4+6; o=1: 7+9+11, 8+10+12
    expect(Array.from(fast.download(fast.reduceMiddle('sum', x, 2, 3, 2)))).toEqual([9, 12, 27, 30]);
    const y = fast.upload('float32', [1, -5, NaN, 2, 0, 7]); // [1, 3, 2]: columns (1, NaN, 0) and (-5, 2, 7)
    expect(Array.from(fast.download(fast.reduceMiddle('max', y, 1, 3, 2)))).toEqual([NaN, 7]);
    expect(Array.from(fast.download(fast.reduceMiddle('min', y, 1, 3, 2)))).toEqual([NaN, -5]);
    const big = fast.upload('int32', [2 ** 31 - 1, 1, 1, 1]); // [2, 2] over dim 0: (2^31-1)+1 wraps
    expect(Array.from(fast.download(fast.reduceMiddle('sum', big, 1, 2, 2)))).toEqual(Array.from(fast.download(fast.reduceLast('sum', fast.upload('int32', [2 ** 31 - 1, 1, 1, 1]), 2, 2))));
  });
});

describe('float16 views decode only the span they cover', () => {
  afterEach(() => jest.restoreAllMocks());

  test('a small view of a big buffer decodes its span, and agrees with the whole-buffer reference', () => {
    const rand = mulberry32(400);
    const n = 100_000;
    const [f, r] = upload('float16', values('float16', n, rand));
    const spy = jest.spyOn(float16, 'decodeFloat16');
    // rows 5..7, every other column of 4, of a [1000, 100] matrix: positions 512 .. 718
    const layout: Layout = { shape: [3, 4], strides: [100, 2], offset: 512 };
    const fu = fast.unary('exp', on(f, layout), 'float16');
    const decoded = spy.mock.calls.map(([bits]) => bits.length);
    expect(decoded).toEqual([2 * 100 + 3 * 2 + 1]);
    spy.mockClear();
    const fb = fast.binary('add', on(f, layout), on(f, { shape: [3, 4], strides: [0, 1], offset: 90_000 }), 'float16');
    // one span for both operands of one buffer: 512 .. 90_003
    expect(spy.mock.calls.map(([bits]) => bits.length)).toEqual([90_003 - 512 + 1]);
    spy.mockRestore();
    expectSameBits(fu, ref.unary('exp', on(r, layout), 'float16'), 'exp of a float16 span');
    expectSameBits(fb, ref.binary('add', on(r, layout), on(r, { shape: [3, 4], strides: [0, 1], offset: 90_000 }), 'float16'), 'add of float16 spans');
    // values: element (i, j) of the view is buffer[512 + 100 i + 2 j]
    const all = Array.from(fast.read({ buffer: f, shape: [n], strides: [1], offset: 0 }));
    const got = Array.from(fast.read(on(fu, { shape: [12], strides: [1], offset: 0 })));
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 4; j++) expect(got[i * 4 + j]).toBe(float16.roundToFloat16(Math.exp(all[512 + 100 * i + 2 * j])));
    }
  });
});

describe('the layouts above', () => {
  test('stay inside their buffers', () => {
    const rand = mulberry32(500);
    for (const shape of SHAPES) {
      for (let t = 0; t < 20; t++) {
        const { layout, length } = randomLayout(shape, rand, { broadcast: true });
        if (numel(shape) === 0) continue;
        let hi = layout.offset;
        shape.forEach((s, d) => (hi += layout.strides[d] * (s - 1)));
        expect(hi).toBeLessThan(length);
      }
    }
    for (const { layout, length } of Object.values(namedLayouts(6, 9))) {
      let hi = layout.offset;
      layout.shape.forEach((s, d) => (hi += layout.strides[d] * (s - 1)));
      expect(hi).toBeLessThan(length);
    }
  });
});
