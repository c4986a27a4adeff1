/**
 * gradgradcheck: second derivatives (the engine differentiating each op's recorded backward)
 * against central differences of first derivatives, in float64. The built-in ops pass, broadcast
 * shapes included; a backward with a detached term passes gradcheck but fails here, both in its
 * dependence on the input and on the output gradient; the fused norms and gelu's tanh form refuse
 * createGraph with a clear error rather than give wrong second derivatives.
 */
import {
  AutogradError,
  Generator,
  ValueError,
  crossEntropy,
  defineOp,
  exp,
  gelu,
  gradcheck,
  gradgradcheck,
  layerNorm,
  linear,
  logSoftmax,
  matmul,
  mul,
  rmsNorm,
  softmax,
  tanh,
  tensor,
  type Tensor,
} from '../../src';
import { expectError } from '../helpers';

const gen = new Generator(11);
/** A float64 leaf that requires grad, with values uniform in [lo, hi). */
function input(shape: number[], lo = -1, hi = 1): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const values = Array.from({ length: n }, () => lo + (hi - lo) * gen.random());
  return tensor(values, { dtype: 'float64' }).reshape(shape).detach().requiresGrad_(true);
}

describe('built-in ops have correct second derivatives', () => {
  const cases: [string, (...x: Tensor[]) => Tensor, () => Tensor[]][] = [
    ['mul, broadcasting [2,3] with [3]', (a, b) => mul(a, b), () => [input([2, 3]), input([3])]],
    ['mul of an input with itself', (a) => mul(a, a).mul(a), () => [input([4])]],
    ['exp', (a) => exp(a), () => [input([2, 3])]],
    ['tanh', (a) => tanh(a), () => [input([2, 3])]],
    ['matmul', (a, b) => matmul(a, b), () => [input([2, 3]), input([3, 4])]],
    ['matmul, batch broadcast [2,2,3] @ [3,2]', (a, b) => matmul(a, b), () => [input([2, 2, 3]), input([3, 2])]],
    ['matmul, vector @ matrix', (a, b) => matmul(a, b), () => [input([3]), input([3, 2])]],
    ['softmax over the last dim', (a) => softmax(a, -1), () => [input([2, 3])]],
    ['softmax over dim 0', (a) => softmax(a, 0), () => [input([3, 2])]],
    ['logSoftmax', (a) => logSoftmax(a, 1), () => [input([2, 3])]],
    ['linear with bias, then tanh', (x, w, b) => linear(x, w, b).tanh(), () => [input([2, 3]), input([4, 3]), input([4])]],
    ['crossEntropy', (a) => crossEntropy(a, tensor([0, 2], { dtype: 'int32' })), () => [input([2, 3])]],
    ['div and pow, broadcast', (a, b) => a.div(b).pow(3), () => [input([2, 3]), input([3], 0.5, 2)]],
  ];
  for (const [name, fn, inputs] of cases) {
    test(name, () => {
      const xs = inputs();
      expect(gradcheck(fn, xs).ok).toBe(true);
      const result = gradgradcheck(fn, xs);
      expect(result.ok).toBe(true);
      expect(result.maxAbsError).toBeLessThan(1e-6);
    });
  }

  test('an input that only some inputs depend on, and one that is not checked', () => {
    const x = input([3]);
    const frozen = input([3]).detach(); // requires no grad: not checked, used as a constant
    expect(gradgradcheck((a, c) => a.mul(c).exp(), [x, frozen]).ok).toBe(true);
    // a linear function: its second derivative with respect to x is zero
    expect(gradgradcheck((a) => a.mul(3), [x]).ok).toBe(true);
  });
});

describe('it fails where a backward is not differentiated correctly', () => {
  test('a detached term: right first derivatives, second derivative with respect to the input lost', () => {
    const square = defineOp({
      name: 'squareDetached',
      forward(ctx, x) {
        ctx.save(x);
        return x.mul(x);
      },
      backward: (g, [x]) => [g.mul(x.detach()).mul(2)],
    });
    const x = input([3]);
    expect(gradcheck(square, [x]).ok).toBe(true);
    const err = expectError(() => gradgradcheck(square, [x]), ValueError, 'gradgradcheck', 'second-derivative mismatch for input 0', 'analytic 0', 'nothing detached');
    expect(err.message).toContain('(atol 0.00001, rtol 0.001)');
  });

  test('a detached output gradient: the first derivatives do not depend on it in the graph', () => {
    const square = defineOp({
      name: 'squareDetachedGrad',
      forward(ctx, x) {
        ctx.save(x);
        return x.mul(x);
      },
      backward: (g, [x]) => [g.detach().mul(x).mul(2)],
    });
    const x = input([3]);
    expect(gradcheck(square, [x]).ok).toBe(true);
    expectError(() => gradgradcheck(square, [x]), ValueError, 'gradgradcheck', 'second-derivative mismatch for the output gradient');
  });

  test('a term computed on the host (toArray, then a new tensor) leaves the graph the same way', () => {
    const square = defineOp({
      name: 'squareOnHost',
      forward(ctx, x) {
        ctx.save(x);
        return x.mul(x);
      },
      backward: (g, [x]) => {
        const twiceX = tensor((x.toArray() as number[]).map((v) => 2 * v), { dtype: 'float64' }); // right values, no graph
        return [g.mul(twiceX)];
      },
    });
    const x = input([3], 0.5, 2);
    expect(gradcheck(square, [x]).ok).toBe(true);
    expectError(() => gradgradcheck(square, [x]), ValueError, 'gradgradcheck', 'second-derivative mismatch for input 0');
  });
});

describe('ops that refuse createGraph say so instead of giving wrong second derivatives', () => {
  test('layerNorm and rmsNorm (fused normalisation) and gelu with approximate tanh', () => {
    const x = input([2, 3]);
    const w = input([3]);
    expectError(() => gradgradcheck((a) => layerNorm(a, 3), [x]), AutogradError, 'layerNorm (backward)', 'createGraph', 'compose it from primitives');
    expectError(() => gradgradcheck((a, b) => rmsNorm(a, 3, b), [x, w]), AutogradError, 'rmsNorm (backward)', 'createGraph');
    expectError(() => gradgradcheck((a) => gelu(a, { approximate: 'tanh' }), [x]), AutogradError, 'gelu', 'use the exact form');
    expect(gradgradcheck((a) => gelu(a), [x]).ok).toBe(true);
  });
});

describe('arguments', () => {
  test('float32 inputs and inputs of which none requires grad are refused, as in gradcheck', () => {
    expectError(() => gradgradcheck((a) => a.exp(), [tensor([1, 2], { requiresGrad: true })]), ValueError, 'gradgradcheck', 'input 0 is float32', 'float64');
    expectError(() => gradgradcheck((a) => a.exp(), [tensor([1, 2], { dtype: 'float64' })]), ValueError, 'gradgradcheck', 'no input requires grad');
  });

  // (that a mismatch in the output gradient is reported as such: 'a detached output gradient' above)
  test('a passing check leaves the inputs as they were: no .grad, still leaves', () => {
    const x = input([2]);
    const result = gradgradcheck((a) => a.mul(a), [x], { seed: 5 });
    expect(result.ok).toBe(true);
    expect(x.grad).toBeNull();
    expect(x.isLeaf).toBe(true);
  });
});
