/**
 * The fused backward passes of softmax / logSoftmax (kernels().softmaxBackwardLast) and of siluMul
 * (SwiGLU's silu(a)·b: kernels().siluMul and siluMulBackward), on every backend:
 *  - softmax: the plain backward (one row kernel) gives the recorded one (createGraph: the composite
 *    ops) bit for bit on cpu and wasm, along the last dim and others, in float32 and float64; the
 *    gpu composes the same ops (close). Second derivatives go through the recorded path.
 *  - siluMul: the forward equals mul(silu(a), b) bit for bit; the gradients agree with the
 *    composite's to a few float32 roundings (the backward uses σ(a) kept by the forward); float64
 *    gradchecks of the fused path and of the composite it falls back to (broadcast shapes, mixed
 *    and 16-bit dtypes); createGraph gives the fused values and second derivatives.
 */
import {
  Generator,
  ValueError,
  grad,
  gradcheck,
  gradgradcheck,
  logSoftmax,
  manualSeed,
  mul,
  randn,
  setBackend,
  silu,
  siluMul,
  softmax,
  sum,
  tidy,
  type DType,
  type Tensor,
} from '../../../src';
import { backendsUnderTest, requireHeadlessGlInCI, valuesOf } from '../../backends/helpers';
import { expectClose, expectError } from '../../helpers';

requireHeadlessGlInCI();

const seeded = (shape: number[], seed: number, dtype: DType) => randn(shape, { generator: new Generator(seed) }).to(dtype);

describe.each(backendsUnderTest({ webasm: false }))('fused backward passes on $label', ({ name, options }) => {
  beforeAll(() => setBackend(name, options));
  afterAll(() => setBackend('cpu'));
  const exact = name !== 'gpu';
  const dtypes: DType[] = name === 'gpu' ? ['float32'] : ['float32', 'float64'];

  test.each([
    [[4, 7], -1],
    [[2, 3, 64], -1],
    [[2, 5, 3], 1],
    [[3, 1, 4], 0],
  ])('softmax / logSoftmax of shape %j along %d: the fused backward is the recorded one', (shape, dim) => {
    for (const dtype of dtypes) {
      for (const f of [softmax, logSoftmax]) {
        tidy(() => {
          const x = seeded(shape, 1, dtype).requiresGrad_();
          const w = seeded(shape, 2, dtype);
          const loss = () => sum(mul(f(x, dim), w));
          const [fused] = grad(loss(), x) as Tensor[];
          const [recorded] = grad(loss(), x, { createGraph: true }) as Tensor[];
          if (exact) expect(valuesOf(fused)).toEqual(valuesOf(recorded));
          else expectClose(valuesOf(fused), valuesOf(recorded), 1e-5);
        });
      }
    }
  });

  test.each([
    [[3, 5]],
    [[1, 64, 688]],
    [[7]],
  ])('siluMul of shape %j: the forward is mul(silu(a), b) bit for bit, gradients as the composite', (shape) => {
    for (const dtype of dtypes) {
      tidy(() => {
        const a = seeded(shape, 3, dtype).mul(3).requiresGrad_();
        const b = seeded(shape, 4, dtype).requiresGrad_();
        const w = seeded(shape, 5, dtype);
        const y = siluMul(a, b);
        const yc = mul(silu(a), b);
        expect(valuesOf(y)).toEqual(valuesOf(yc));
        const fused = grad(sum(mul(y, w)), [a, b]) as Tensor[];
        const composite = grad(sum(mul(yc, w)), [a, b]) as Tensor[];
        const recorded = grad(sum(mul(siluMul(a, b), w)), [a, b], { createGraph: true }) as Tensor[];
        const tol = dtype === 'float32' ? 1e-5 : 1e-13;
        for (const i of [0, 1]) {
          expectClose(valuesOf(fused[i]), valuesOf(composite[i]), tol);
          expectClose(valuesOf(recorded[i]), valuesOf(fused[i]), tol);
        }
      });
    }
  });

  test('siluMul when only one operand needs a gradient', () => {
    tidy(() => {
      const a = seeded([4, 6], 6, 'float32').requiresGrad_();
      const b = seeded([4, 6], 7, 'float32');
      const [ga] = grad(sum(siluMul(a, b)), a) as Tensor[];
      expectClose(valuesOf(ga), valuesOf(grad(sum(mul(silu(a), b)), a)[0] as Tensor), 1e-5);
      const a2 = seeded([4, 6], 6, 'float32');
      const b2 = seeded([4, 6], 7, 'float32').requiresGrad_();
      const [gb] = grad(sum(siluMul(a2, b2)), b2) as Tensor[];
      expectClose(valuesOf(gb), valuesOf(grad(sum(mul(silu(a2), b2)), b2)[0] as Tensor), 1e-5);
    });
  });
});

describe('siluMul on the cpu backend (float64)', () => {
  beforeAll(() => setBackend('cpu'));

  test('gradcheck: the fused op, a non-contiguous operand, one operand needing a gradient', () => {
    manualSeed(21);
    const a = randn([3, 5], { dtype: 'float64', requiresGrad: true });
    const b = randn([3, 5], { dtype: 'float64', requiresGrad: true });
    expect(gradcheck(siluMul, [a, b]).ok).toBe(true);
    const bt = randn([5, 3], { dtype: 'float64', requiresGrad: true });
    expect(gradcheck((x, y) => siluMul(x, y.transpose(0, 1)), [a, bt]).ok).toBe(true);
    expect(gradcheck((x) => siluMul(x, b.detach()), [a]).ok).toBe(true);
    expect(gradcheck((y) => siluMul(a.detach(), y), [b]).ok).toBe(true);
  });

  test('gradcheck on broadcast shapes (the composite path), with equal values to mul(silu(a), b)', () => {
    manualSeed(22);
    for (const [sa, sb] of [[[3, 1], [1, 4]], [[2, 3, 4], [4]], [[5], [2, 5]]]) {
      const a = randn(sa, { dtype: 'float64', requiresGrad: true });
      const b = randn(sb, { dtype: 'float64', requiresGrad: true });
      expect(gradcheck(siluMul, [a, b]).ok).toBe(true);
      expect(valuesOf(siluMul(a, b))).toEqual(valuesOf(mul(silu(a), b)));
    }
  });

  test('second derivatives: createGraph records the composite backward (gradgradcheck)', () => {
    manualSeed(23);
    const a = randn([2, 3], { dtype: 'float64', requiresGrad: true });
    const b = randn([2, 3], { dtype: 'float64', requiresGrad: true });
    expect(gradgradcheck(siluMul, [a, b]).ok).toBe(true);
  });

  test('other dtypes take the composite: float16 and mixed operands as mul(silu(a), b), int32 promoted', () => {
    const a16 = seeded([3, 4], 8, 'float16');
    const b16 = seeded([3, 4], 9, 'float16');
    expect(valuesOf(siluMul(a16, b16))).toEqual(valuesOf(mul(silu(a16), b16)));
    expect(siluMul(a16, b16).dtype).toBe('float16');
    const b64 = seeded([3, 4], 9, 'float64');
    expect(valuesOf(siluMul(a16, b64))).toEqual(valuesOf(mul(silu(a16), b64)));
    const ai = seeded([3, 4], 10, 'float32').mul(3).to('int32');
    expect(valuesOf(siluMul(ai, b16))).toEqual(valuesOf(mul(silu(ai), b16)));
  });

  test('bad arguments are ValueErrors that name the op', () => {
    const a = randn([2]);
    expectError(() => siluMul(a, 3 as unknown as Tensor), ValueError, 'siluMul', 'expected two Tensors, got Tensor and number');
    expectError(() => siluMul(null as unknown as Tensor, a), ValueError, 'siluMul', 'got null and Tensor');
  });
});
