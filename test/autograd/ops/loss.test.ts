import {
  DTypeError,
  ShapeError,
  Tensor,
  ValueError,
  add,
  cat,
  crossEntropy,
  div,
  gather,
  grad,
  gradcheck,
  logsumexp,
  manualSeed,
  mseLoss,
  mul,
  ne,
  neg,
  randn,
  squeeze,
  sub,
  sum,
  tensor,
  transpose,
  unsqueeze,
  where,
} from '../../../src';
import { expectClose, flat } from '../../helpers';

const f64 = (data: number[] | number[][]) => tensor(data, { dtype: 'float64' });
const i32 = (data: number | number[] | number[][] | number[][][]) => tensor(data, { dtype: 'int32' });

type Reduction = 'mean' | 'sum' | 'none';
interface CeOptions {
  ignoreIndex?: number;
  reduction?: Reduction;
  labelSmoothing?: number;
}

/** Cross-entropy composed from primitives: -(1-ε)·gather(logp, t) - ε/C·Σ logp, masked and reduced. */
function compositeCrossEntropy(logits: Tensor, target: Tensor, o: CeOptions = {}): Tensor {
  const ignoreIndex = o.ignoreIndex ?? -100;
  const eps = o.labelSmoothing ?? 0;
  const classDim = logits.ndim === 1 ? 0 : 1;
  const classes = logits.shape[classDim];
  const logp = sub(logits, logsumexp(logits, { dim: classDim, keepDim: true }));
  const valid = ne(target, ignoreIndex);
  const safe = where(valid, target, 0);
  const picked = squeeze(gather(logp, classDim, unsqueeze(safe, classDim)), classDim);
  const perRow = neg(add(mul(picked, 1 - eps), mul(sum(logp, { dim: classDim }), eps / classes)));
  const masked = where(valid, perRow, 0);
  const reduction = o.reduction ?? 'mean';
  if (reduction === 'none') return masked;
  if (reduction === 'sum') return sum(masked);
  return div(sum(masked), sum(valid));
}

/** −Σ_c q_c·log p_c for one row by plain arithmetic. */
function rowLoss(row: number[], t: number, eps: number): number {
  const lse = Math.log(row.reduce((s, x) => s + Math.exp(x), 0));
  return row.reduce((s, x, c) => s - ((c === t ? 1 - eps : 0) + eps / row.length) * (x - lse), 0);
}

describe('crossEntropy forward', () => {
  // logits [[1, 2, 3], [1, 0, -1]], targets [2, 0]
  const logits = f64([
    [1, 2, 3],
    [1, 0, -1],
  ]);
  const target = i32([2, 0]);
  const l0 = Math.log(Math.exp(1) + Math.exp(2) + Math.exp(3)) - 3;
  const l1 = Math.log(Math.exp(1) + Math.exp(0) + Math.exp(-1)) - 1;

  test('a 2x3 example worked out by hand, every reduction', () => {
    expectClose([crossEntropy(logits, target).item()], [(l0 + l1) / 2]);
    expectClose([crossEntropy(logits, target, { reduction: 'sum' }).item()], [l0 + l1]);
    const none = crossEntropy(logits, target, { reduction: 'none' });
    expect(none.shape).toEqual([2]);
    expectClose(flat(none), [l0, l1]);
  });

  test('label smoothing: −Σ q·log p with q = (1 − ε)·onehot + ε/C', () => {
    const eps = 0.2;
    const lse0 = Math.log(Math.exp(1) + Math.exp(2) + Math.exp(3));
    const lse1 = Math.log(Math.exp(1) + Math.exp(0) + Math.exp(-1));
    // row 0: (1 − ε)(lse0 − 3) + ε/3·Σ(lse0 − x);  row 1 likewise with target 0
    const s0 = (1 - eps) * (lse0 - 3) + (eps / 3) * (3 * lse0 - 6);
    const s1 = (1 - eps) * (lse1 - 1) + (eps / 3) * (3 * lse1 - 0);
    expectClose(flat(crossEntropy(logits, target, { labelSmoothing: eps, reduction: 'none' })), [s0, s1]);
    expectClose([crossEntropy(logits, target, { labelSmoothing: eps }).item()], [(s0 + s1) / 2]);
    expectClose([rowLoss([1, 2, 3], 2, eps)], [s0]);
  });

  test('ignoreIndex entries give 0 and leave the mean denominator', () => {
    const t = i32([2, -100]);
    expectClose(flat(crossEntropy(logits, t, { reduction: 'none' })), [l0, 0]);
    expectClose([crossEntropy(logits, t).item()], [l0]);
    expectClose([crossEntropy(logits, t, { reduction: 'sum' }).item()], [l0]);
    // a custom ignoreIndex that is also a valid class
    expectClose([crossEntropy(logits, target, { ignoreIndex: 0 }).item()], [l0]);
    expectClose([crossEntropy(logits, i32([2, 0]), { ignoreIndex: 0, labelSmoothing: 0.1 }).item()], [rowLoss([1, 2, 3], 2, 0.1)]);
  });

  test("all entries ignored: 'mean' is NaN (as PyTorch), 'sum' is 0, gradients are 0", () => {
    const x = f64([
      [1, 2, 3],
      [1, 0, -1],
    ]).requiresGrad_();
    const t = i32([-100, -100]);
    const m = crossEntropy(x, t);
    expect(Number.isNaN(m.item())).toBe(true);
    expect(crossEntropy(x, t, { reduction: 'sum' }).item()).toBe(0);
    const [g] = grad(m, x);
    expect(flat(g as Tensor)).toEqual([0, 0, 0, 0, 0, 0]);
  });

  test('3-D logits [N, C, d] with target [N, d] match a plain loop', () => {
    manualSeed(41);
    const x = randn([2, 3, 4], { dtype: 'float64' });
    const v = flat(x);
    const tv = [
      [0, 2, 1, -100],
      [1, 1, 0, 2],
    ];
    const expected: number[] = [];
    for (let n = 0; n < 2; n++) {
      for (let d = 0; d < 4; d++) {
        const row = [0, 1, 2].map((c) => v[n * 12 + c * 4 + d]);
        expected.push(tv[n][d] === -100 ? 0 : rowLoss(row, tv[n][d], 0.1));
      }
    }
    const none = crossEntropy(x, i32(tv), { reduction: 'none', labelSmoothing: 0.1 });
    expect(none.shape).toEqual([2, 4]);
    expectClose(flat(none), expected);
    expectClose([crossEntropy(x, i32(tv), { labelSmoothing: 0.1 }).item()], [expected.reduce((a, b) => a + b) / 7]);
  });

  test('1-D logits [C] with a 0-d target', () => {
    const out = crossEntropy(f64([1, 2, 3]), i32(0), { reduction: 'none' });
    expect(out.shape).toEqual([]);
    expectClose([out.item()], [rowLoss([1, 2, 3], 0, 0)]);
    expectClose([crossEntropy(f64([1, 2, 3]), i32(1)).item()], [rowLoss([1, 2, 3], 1, 0)]);
  });

  test('is stable for large logits', () => {
    const out = crossEntropy(f64([[1000, 1001, 999]]), i32([0])).item();
    expectClose([out], [rowLoss([1, 2, 0], 0, 0)], 1e-9);
  });

  test('records nothing when the logits do not require grad', () => {
    expect(crossEntropy(logits, target).gradFn).toBeNull();
  });
});

describe('crossEntropy gradients', () => {
  const configs: [string, number[], number[][] | number[][][] | number[] | number][] = [
    ['2-D', [3, 4], [0, -100, 3]],
    ['3-D', [2, 3, 4], [
      [0, 2, -100, 1],
      [2, -100, 0, 1],
    ]],
    ['4-D', [2, 3, 2, 2], [
      [
        [0, 1],
        [-100, 2],
      ],
      [
        [2, 2],
        [1, -100],
      ],
    ]],
    ['1-D', [4], 2],
  ];
  const options: CeOptions[] = [
    { reduction: 'mean' },
    { reduction: 'sum' },
    { reduction: 'none' },
    { reduction: 'mean', labelSmoothing: 0.15 },
    { reduction: 'sum', labelSmoothing: 0.3 },
    { reduction: 'none', labelSmoothing: 1 },
  ];

  describe.each(configs)('%s logits %j', (_name, shape, tv) => {
    test.each(options)('float64 gradcheck with %j', (o) => {
      manualSeed(51);
      const x = randn(shape, { dtype: 'float64', requiresGrad: true });
      const t = i32(tv);
      expect(gradcheck((a) => crossEntropy(a, t, o), [x]).ok).toBe(true);
    });

    test.each(options)('fused agrees with the composite (values and gradients) with %j', (o) => {
      manualSeed(52);
      const x = randn(shape, { dtype: 'float64', requiresGrad: true });
      const t = i32(tv);
      const yf = crossEntropy(x, t, o);
      const yc = compositeCrossEntropy(x, t, o);
      expect(yf.shape).toEqual(yc.shape);
      expectClose(flat(yf), flat(yc), 1e-12);
      const up = randn(yf.shape, { dtype: 'float64' });
      const [gf] = grad(sum(mul(yf, up)), x);
      const [gc] = grad(sum(mul(yc, up)), x);
      expectClose(flat(gf as Tensor), flat(gc as Tensor), 1e-12);
    });
  });

  test('gradcheck through strided logits', () => {
    manualSeed(53);
    const x = randn([4, 3], { dtype: 'float64', requiresGrad: true });
    const t = i32([1, -100, 3]);
    expect(gradcheck((a) => crossEntropy(transpose(a, 0, 1), t, { labelSmoothing: 0.1 }), [x]).ok).toBe(true);
  });

  test('gradients that arrive as offset views (cat backward narrows them) are read correctly', () => {
    manualSeed(55);
    const x = randn([3, 4], { dtype: 'float64', requiresGrad: true });
    const t = i32([1, -100, 3]);
    expect(gradcheck((a) => cat([sum(a, { dim: 1 }), crossEntropy(a, t, { reduction: 'none', labelSmoothing: 0.1 })], 0), [x]).ok).toBe(true);
  });

  test('higher-order gradients (createGraph) match the composite', () => {
    manualSeed(54);
    const x = randn([2, 3, 4], { dtype: 'float64', requiresGrad: true });
    const t = i32([
      [0, 2, -100, 1],
      [2, 1, 0, 1],
    ]);
    const w = randn([2, 3, 4], { dtype: 'float64' });
    for (const o of [{}, { reduction: 'sum', labelSmoothing: 0.2 }, { reduction: 'none' }] as CeOptions[]) {
      const second = (f: typeof crossEntropy) => {
        const y = f(x, t, o);
        const [g] = grad(sum(mul(y, y)), x, { createGraph: true });
        const [gg] = grad(sum(mul(g as Tensor, w)), x);
        return flat(gg as Tensor);
      };
      expectClose(second(crossEntropy), second(compositeCrossEntropy), 1e-10);
    }
  });
});

describe('crossEntropy errors', () => {
  const logits = randn([2, 3]);

  test('target must be int32', () => {
    expect(() => crossEntropy(logits, tensor([0, 1]))).toThrow(DTypeError);
    expect(() => crossEntropy(logits, tensor([0, 1], { dtype: 'float64' }))).toThrow(/int32/);
  });

  test('shapes must agree; the message names both', () => {
    expect(() => crossEntropy(logits, i32([0, 1, 2]))).toThrow(ShapeError);
    expect(() => crossEntropy(logits, i32([0, 1, 2]))).toThrow(/\[3\].*\[2,3\]/);
    expect(() => crossEntropy(randn([2, 3, 4]), i32([0, 1]))).toThrow(/\[2\].*\[2,3,4\].*\[2,4\]/);
    expect(() => crossEntropy(randn([3]), i32([0]))).toThrow(ShapeError);
    expect(() => crossEntropy(tensor(1), i32(0))).toThrow(ShapeError);
  });

  test('target values outside [0, C) are a ValueError naming the value', () => {
    expect(() => crossEntropy(logits, i32([0, 3]))).toThrow(ValueError);
    expect(() => crossEntropy(logits, i32([0, 3]))).toThrow(/target value 3/);
    expect(() => crossEntropy(logits, i32([-1, 0]))).toThrow(/target value -1/);
    expect(() => crossEntropy(logits, i32([-100, 0]), { ignoreIndex: -1 })).toThrow(/target value -100/);
  });

  test('labelSmoothing outside [0, 1] and unknown reductions are ValueErrors', () => {
    expect(() => crossEntropy(logits, i32([0, 1]), { labelSmoothing: -0.1 })).toThrow(ValueError);
    expect(() => crossEntropy(logits, i32([0, 1]), { labelSmoothing: 1.5 })).toThrow(/labelSmoothing/);
    expect(() => crossEntropy(logits, i32([0, 1]), { labelSmoothing: NaN })).toThrow(ValueError);
    expect(() => crossEntropy(logits, i32([0, 1]), { reduction: 'avg' as Reduction })).toThrow(/reduction/);
  });

  test('integer logits are a DTypeError', () => {
    expect(() => crossEntropy(i32([[1, 2]]), i32([0]))).toThrow(DTypeError);
  });
});

describe('mseLoss', () => {
  const input = f64([1, 2, 3]);
  const target = f64([1, 0, 5]);

  test('values by hand for every reduction', () => {
    // differences 0, 2, -2: squares 0, 4, 4
    expectClose([mseLoss(input, target).item()], [8 / 3]);
    expectClose([mseLoss(input, target, { reduction: 'sum' }).item()], [8]);
    expectClose(flat(mseLoss(input, target, { reduction: 'none' })), [0, 4, 4]);
  });

  test('gradient by hand: 2(x − t)/n', () => {
    const x = f64([1, 2, 3]).requiresGrad_();
    const [g] = grad(mseLoss(x, target), x);
    expectClose(flat(g as Tensor), [0, 4 / 3, -4 / 3]);
  });

  test.each(['mean', 'sum', 'none'] as Reduction[])('float64 gradcheck with broadcasting, reduction %s', (reduction) => {
    manualSeed(61);
    const x = randn([2, 3], { dtype: 'float64', requiresGrad: true });
    const t = randn([3], { dtype: 'float64', requiresGrad: true });
    expect(gradcheck((a, b) => mseLoss(a, b, { reduction }), [x, t]).ok).toBe(true);
    expect(gradcheck((a, b) => mseLoss(a, b, { reduction }), [x, randn([2, 1], { dtype: 'float64', requiresGrad: true })]).ok).toBe(true);
  });

  test('shapes that do not broadcast are a ShapeError; bad reductions a ValueError', () => {
    expect(() => mseLoss(randn([2, 3]), randn([2]))).toThrow(ShapeError);
    expect(() => mseLoss(randn([2, 3]), randn([2]))).toThrow(/\[2,3\].*\[2\]/);
    expect(() => mseLoss(input, target, { reduction: 'max' as Reduction })).toThrow(ValueError);
  });
});
