/**
 * rotaryEmbedding, the fused RoPE op: on every backend it must give the composite
 * x·cos + rotate_half(x)·sin bit for bit in float32 and float16 (forward and gradient), so that
 * fusing changed no model's numbers; and bad arguments get a typed error that names the op. The
 * float64 gradchecks (x, cos and sin, broadcast tables) are in test/backends/ops.test.ts.
 */
import { DTypeError, Generator, ShapeError, ValueError, add, grad, mul, randn, rotaryEmbedding, setBackend, sum, tidy, transpose, type DType, type Tensor } from '../../../src';
import { rotateHalf } from '../../../src/autograd/ops/rotary';
import { backendsUnderTest, requireHeadlessGlInCI, valuesOf } from '../../backends/helpers';
import { expectError } from '../../helpers';

requireHeadlessGlInCI();

const composite = (x: Tensor, cos: Tensor, sin: Tensor) => add(mul(x, cos), mul(rotateHalf(x), sin));

/** The output and the gradients of Σ w·f(x, cos, sin) in x, cos and sin, as raw bits (float16) or values. */
function run(f: typeof composite, dtype: DType, xShape: number[], tableShape: number[], strided: boolean) {
  return tidy(() => {
    const seeded = (shape: readonly number[], seed: number) => randn(shape, { generator: new Generator(seed) }).to(dtype);
    // a transposed x: its storage is [B, T, H, D], read as [B, H, T, D] (the Llama heads' layout)
    const x = (strided ? transpose(seeded([xShape[0], xShape[2], xShape[1], ...xShape.slice(3)], 1), 1, 2) : seeded(xShape, 1)).requiresGrad_();
    const cos = seeded(tableShape, 2).requiresGrad_();
    const sin = seeded(tableShape, 3).requiresGrad_();
    const y = f(x, cos, sin);
    const w = seeded(y.shape, 4);
    const grads = grad(sum(mul(y, w)), [x, cos, sin]) as Tensor[];
    // float16 values are exact in float32: equal arrays mean equal bits (NaN aside, and there is none)
    const bits = (t: Tensor) => valuesOf(t.to('float32'));
    return { y: bits(y), dx: bits(grads[0]), dcos: bits(grads[1]), dsin: bits(grads[2]) };
  });
}

describe.each(backendsUnderTest({ webasm: false }))('rotaryEmbedding on $label', ({ name, options }) => {
  beforeAll(() => setBackend(name, options));
  afterAll(() => setBackend('cpu'));

  test.each([
    ['float32', [2, 3, 16, 8], [16, 8], false],
    ['float32', [2, 4, 5, 10], [2, 1, 5, 10], true],
    ['float16', [1, 2, 6, 8], [6, 8], true],
  ] as [DType, number[], number[], boolean][])('%s x %j, tables %j, transposed x %s: the composite bit for bit, forward and backward', (dtype, xShape, tableShape, strided) => {
    const fused = run(rotaryEmbedding, dtype, xShape, tableShape, strided);
    const reference = run(composite, dtype, xShape, tableShape, strided);
    expect(fused.y).toEqual(reference.y);
    expect(fused.dx).toEqual(reference.dx);
    expect(fused.dcos).toEqual(reference.dcos);
    expect(fused.dsin).toEqual(reference.dsin);
  });
});

test('one graph node instead of seven', () => {
  const x = randn([1, 2, 4, 8]).requiresGrad_();
  const cos = randn([4, 8]);
  const sin = randn([4, 8]);
  expect(rotaryEmbedding(x, cos, sin).gradFn?.op).toBe('rotaryEmbedding');
});

describe('bad arguments are refused, naming the op', () => {
  const x = randn([2, 4, 6]);
  test('an odd last dim', () => {
    expectError(() => rotaryEmbedding(randn([2, 5]), randn([5]), randn([5])), ShapeError, 'rotaryEmbedding', 'x of shape [2,5] must have an even last dim');
  });
  test('tables that broadcast x to a larger shape', () => {
    expectError(() => rotaryEmbedding(x, randn([3, 1, 4, 6]), randn([4, 6])), ShapeError, 'rotaryEmbedding', 'cos of shape [3,1,4,6] broadcasts x of shape [2,4,6] up to [3,2,4,6]');
  });
  test('tables that do not broadcast', () => {
    expectError(() => rotaryEmbedding(x, randn([4, 6]), randn([5, 6])), ShapeError, 'rotaryEmbedding', '[5,6]');
  });
  test('an int32 input', () => {
    expectError(() => rotaryEmbedding(x, randn([4, 6]).to('int32'), randn([4, 6])), DTypeError, 'rotaryEmbedding', 'cos');
  });
  test('a non-tensor', () => {
    expectError(() => rotaryEmbedding(x, null as unknown as Tensor, randn([4, 6])), ValueError, 'rotaryEmbedding', 'cos must be a Tensor, got null');
  });
});
