/**
 * The offsets-free walk over strided views (coalesce, RowWalk) and the kernels built on it,
 * against the reference path (positions: one offset per element). Each common layout must land
 * on the loop meant for it: one unit-stride run for contiguous data, rows of stride 1 for a
 * row-repeated broadcast, stride 0 for a column-repeated one or a scalar.
 */
import {
  RowWalk,
  binaryReference,
  binaryViews,
  coalesce,
  gatherView,
  gatherViewReference,
  positions,
  scatterView,
  scatterViewReference,
  span,
  unaryReference,
  unaryView,
  type Layout,
} from '../../../src/kernels/cpu/strided';
import { binaryRun, binaryRunScalarA, binaryRunScalarB, binaryRunStrided, unaryRun, unaryRunStrided, BINARY, UNARY } from '../../../src/kernels/cpu/math';
import type { BinaryOp, UnaryOp } from '../../../src/kernels/backend';
import { mulberry32 as rng } from '../../helpers';

/** Every position a walk visits, in order. */
function walked(shape: number[], views: Layout[]): number[][] {
  const w = new RowWalk(shape, views);
  const out: number[][] = views.map(() => []);
  for (let r = 0; r < w.rows; r++, w.next()) {
    for (let i = 0; i < w.inner; i++) views.forEach((_, v) => out[v].push(w.base[v] + i * w.innerStride[v]));
  }
  return out;
}

/** Positions by the reference path (contiguous: offset + i). */
function listed(view: Layout): number[] {
  const n = view.shape.reduce((a, b) => a * b, 1);
  const pos = positions(view);
  return Array.from({ length: n }, (_, i) => (pos === null ? view.offset + i : pos[i]));
}

describe('coalesce merges the dims every view walks as one', () => {
  test('[512, 1024] + [1024]: 512 rows of 1024, strides (1024, 1) and (0, 1)', () => {
    expect(coalesce([512, 1024], [[1024, 1], [0, 1]])).toEqual({ shape: [512, 1024], strides: [[1024, 1], [0, 1]] });
  });
  test('contiguous same-shape tensors become one run', () => {
    expect(coalesce([4, 3, 5], [[15, 5, 1], [15, 5, 1]])).toEqual({ shape: [60], strides: [[1], [1]] });
  });
  test('a scalar against a tensor: one run, stride 0 for the scalar', () => {
    expect(coalesce([4, 3, 5], [[15, 5, 1], [0, 0, 0]])).toEqual({ shape: [60], strides: [[1], [0]] });
  });
  test('column-repeated [N, 1] -> [N, C]: rows with inner stride 0', () => {
    expect(coalesce([6, 9], [[9, 1], [1, 0]])).toEqual({ shape: [6, 9], strides: [[9, 1], [1, 0]] });
  });
  test('size-1 dims drop out, leading broadcast dims merge', () => {
    // [2, 3, 1, 4] with b = [4] broadcast: b strides (0, 0, 0, 1); a contiguous
    expect(coalesce([2, 3, 1, 4], [[12, 4, 4, 1], [0, 0, 0, 1]])).toEqual({ shape: [6, 4], strides: [[4, 1], [0, 1]] });
  });
  test('a transpose stays two dims; one element is shape [1]', () => {
    expect(coalesce([3, 5], [[1, 3]])).toEqual({ shape: [3, 5], strides: [[1, 3]] });
    expect(coalesce([], [[], []])).toEqual({ shape: [1], strides: [[0], [0]] });
    expect(coalesce([1, 1], [[7, 3]])).toEqual({ shape: [1], strides: [[0]] });
  });
});

describe('RowWalk visits exactly the reference positions', () => {
  const cases: [string, Layout][] = [
    ['contiguous', { shape: [3, 4], strides: [4, 1], offset: 2 }],
    ['transposed', { shape: [3, 4], strides: [1, 3], offset: 0 }],
    ['row-repeated', { shape: [5, 4], strides: [0, 1], offset: 1 }],
    ['column-repeated', { shape: [5, 4], strides: [1, 0], offset: 3 }],
    ['scalar', { shape: [2, 3, 4], strides: [0, 0, 0], offset: 9 }],
    ['3-d permuted with gaps', { shape: [2, 3, 4], strides: [1, 30, 6], offset: 5 }],
    ['4-d mixed broadcast', { shape: [2, 1, 3, 4], strides: [0, 7, 1, 0], offset: 1 }],
    ['0-d', { shape: [], strides: [], offset: 6 }],
    ['step slice', { shape: [3, 5], strides: [20, 2], offset: 4 }],
  ];
  for (const [name, view] of cases) {
    test(name, () => {
      expect(walked(view.shape as number[], [view])[0]).toEqual(listed(view));
    });
  }
  test('two views at once: a transposed one and a column-repeated one', () => {
    const a: Layout = { shape: [3, 4, 2], strides: [1, 3, 12], offset: 0 };
    const b: Layout = { shape: [3, 4, 2], strides: [2, 0, 1], offset: 1 };
    expect(walked([3, 4, 2], [a, b])).toEqual([listed(a), listed(b)]);
  });

  test('the common layouts land on their loops', () => {
    const shape = [6, 9];
    const contiguous: Layout = { shape, strides: [9, 1], offset: 0 };
    const w = (b: Layout) => {
      const walk = new RowWalk(shape, [contiguous, b]);
      return { rows: walk.rows, inner: walk.inner, strides: walk.innerStride };
    };
    expect(w(contiguous)).toEqual({ rows: 1, inner: 54, strides: [1, 1] }); // one unit-stride run
    expect(w({ shape, strides: [0, 1], offset: 0 })).toEqual({ rows: 6, inner: 9, strides: [1, 1] }); // row-repeated
    expect(w({ shape, strides: [1, 0], offset: 0 })).toEqual({ rows: 6, inner: 9, strides: [1, 0] }); // column-repeated
    expect(w({ shape, strides: [0, 0], offset: 3 })).toEqual({ rows: 1, inner: 54, strides: [1, 0] }); // scalar
    expect(w({ shape, strides: [1, 6], offset: 0 })).toEqual({ rows: 6, inner: 9, strides: [1, 6] }); // transposed
  });
});

describe('span', () => {
  test('lowest and highest positions, negative strides included', () => {
    expect(span({ shape: [3, 4], strides: [100, 2], offset: 512 })).toEqual({ lo: 512, hi: 718 });
    expect(span({ shape: [3, 4], strides: [0, 1], offset: 7 })).toEqual({ lo: 7, hi: 10 });
    expect(span({ shape: [3], strides: [-2], offset: 10 })).toEqual({ lo: 6, hi: 10 });
    expect(span({ shape: [], strides: [], offset: 4 })).toEqual({ lo: 4, hi: 4 });
  });
});


describe('kernels on raw arrays: fast against reference, in each array type', () => {
  const layouts: Layout[] = [
    { shape: [4, 5], strides: [5, 1], offset: 3 },
    { shape: [4, 5], strides: [0, 1], offset: 1 },
    { shape: [4, 5], strides: [1, 0], offset: 2 },
    { shape: [4, 5], strides: [0, 0], offset: 6 },
    { shape: [4, 5], strides: [1, 4], offset: 0 },
    { shape: [4, 5], strides: [12, 2], offset: 1 },
  ];
  const ctors = [Float64Array, Float32Array, Int32Array] as const;
  for (const Ctor of ctors) {
    test(Ctor.name, () => {
      const rand = rng(7);
      const filled = (n: number, f: (i: number) => number) => {
        const arr = new Ctor(n);
        for (let i = 0; i < n; i++) arr[i] = f(i);
        return arr;
      };
      const src = filled(64, () => (Ctor === Int32Array ? Math.floor(rand() * 19) - 9 : rand() * 4 - 2));
      const src2 = filled(64, () => (Ctor === Int32Array ? Math.floor(rand() * 19) - 8 : rand() * 4 - 1.5));
      for (const a of layouts) {
        const g1 = new Ctor(20);
        const g2 = new Ctor(20);
        gatherView(src, a, g1);
        gatherViewReference(src, a, g2);
        expect(Array.from(g1)).toEqual(Array.from(g2));
        for (const op of ['neg', 'exp', 'silu', 'sign'] as UnaryOp[]) {
          const u1 = new Float64Array(20);
          const u2 = new Float64Array(20);
          unaryView(op, src, a, u1, 0, 0);
          unaryReference(op, src, a, u2, 0, 0);
          expect(Array.from(u1)).toEqual(Array.from(u2));
        }
        for (const b of layouts) {
          for (const op of ['add', 'sub', 'mul', 'div', 'minimum', 'ge'] as BinaryOp[]) {
            const o1 = new Ctor(20);
            const o2 = new Ctor(20);
            binaryViews(op, src, a, src2, b, o1);
            binaryReference(op, src, a, src2, b, o2);
            expect([op, Array.from(o1)]).toEqual([op, Array.from(o2)]);
          }
        }
        if (a.strides[0] !== 0 && a.strides[1] !== 0) {
          const t1 = filled(64, (i) => src[i]);
          const t2 = filled(64, (i) => src[i]);
          const vals = filled(20, (i) => i * 3 - 10);
          scatterView(vals, a, t1);
          scatterViewReference(vals, a, t2);
          expect(Array.from(t1)).toEqual(Array.from(t2));
        }
      }
    });
  }
});

describe('the run loops equal the table functions element by element', () => {
  const xs = [-3, -1.5, -0, 0, 0.25, 1, 2.5, 40, -800, NaN, Infinity, -Infinity];
  test('unary runs (unit stride, strided, stride 0)', () => {
    const ops = Object.keys(UNARY) as UnaryOp[];
    for (const op of ops) {
      const [p0, p1] = op === 'clamp' || op === 'inRange' ? [-1, 2] : op === 'powScalar' ? [3, 0] : [0, 0];
      const want = xs.map((x) => UNARY[op](x, p0, p1));
      const out = new Float64Array(xs.length);
      unaryRun(op, xs, 0, out, 0, xs.length, p0, p1);
      expect([op, Array.from(out)]).toEqual([op, want]);
      const padded = xs.flatMap((x) => [x, 99]);
      const out2 = new Float64Array(xs.length);
      unaryRunStrided(op, padded, 0, 2, out2, 0, xs.length, p0, p1);
      expect([op, Array.from(out2)]).toEqual([op, want]);
      const out3 = new Float64Array(3);
      unaryRunStrided(op, xs, 4, 0, out3, 0, 3, p0, p1);
      expect([op, Array.from(out3)]).toEqual([op, [want[4], want[4], want[4]]]);
    }
  });
  test('binary runs (both unit stride, scalar a, scalar b, any strides)', () => {
    const ys = [2, -0, 0, -7, 3, NaN, 1, -1, 0.5, 4, -Infinity, 8];
    for (const op of Object.keys(BINARY) as BinaryOp[]) {
      const f = BINARY[op];
      const n = xs.length;
      const out = new Float64Array(n);
      binaryRun(op, xs, 0, ys, 0, out, 0, n);
      expect([op, Array.from(out)]).toEqual([op, xs.map((x, i) => f(x, ys[i]))]);
      binaryRunScalarB(op, xs, 0, ys[3], out, 0, n);
      expect([op, Array.from(out)]).toEqual([op, xs.map((x) => f(x, ys[3]))]);
      binaryRunScalarA(op, xs[4], ys, 0, out, 0, n);
      expect([op, Array.from(out)]).toEqual([op, ys.map((y) => f(xs[4], y))]);
      const out2 = new Float64Array(6);
      binaryRunStrided(op, xs, 1, 2, ys, 11, -2, out2, 0, 6);
      expect([op, Array.from(out2)]).toEqual([op, [0, 1, 2, 3, 4, 5].map((i) => f(xs[1 + 2 * i], ys[11 - 2 * i]))]);
    }
  });
});
