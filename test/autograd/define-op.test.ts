/**
 * defineOp: custom differentiable ops. A student's op checks out with gradcheck and
 * gradgradcheck; it prunes exactly as the built-in ops do (no node without a reason to record,
 * per-input masks, reachability); the backward's gradients are validated with errors that name
 * the op, the input and the fix; tidy() frees what the forward and the backward leave behind.
 */
import {
  AutogradError,
  DTypeError,
  ShapeError,
  ValueError,
  defineOp,
  grad,
  gradcheck,
  gradgradcheck,
  memory,
  mul,
  noGrad,
  ones,
  profile,
  sumTo,
  tensor,
  tidy,
  zeros,
  type NestedArray,
  type Tensor,
} from '../../src';
import { expectClose, expectError, flat } from '../helpers';

const f64 = (v: NestedArray, requiresGrad = true) => tensor(v, { dtype: 'float64', requiresGrad });

/** The student's op: x³, whose derivative 3x² reads the input. */
const cube = defineOp({
  name: 'cube',
  forward(ctx, x) {
    ctx.save(x);
    return x.mul(x).mul(x);
  },
  backward(g, [x]) {
    return [g.mul(x.mul(x)).mul(3)];
  },
});

/** softplus(x) = log(1 + eˣ), whose derivative σ(x) reads the input. */
const softplus = defineOp({
  name: 'softplus',
  forward(ctx, x) {
    ctx.save(x);
    return x.exp().add(1).log();
  },
  backward(g, [x]) {
    return [g.mul(x.sigmoid())];
  },
});

/** eˣ saving its output, as the built-in exp does: a recorded backward must read it through the node. */
const myExp = defineOp({
  name: 'myExp',
  forward(ctx, x) {
    const y = x.exp();
    ctx.save(y);
    return y;
  },
  backward(g, [y]) {
    return [g.mul(y)];
  },
});

/** mul written the way the built-in is: each operand saved only when its partner's gradient will read it. */
let mulBackwardCalls: boolean[][] = [];
const myMul = defineOp({
  name: 'myMul',
  forward(ctx, x, y) {
    const [xNeeds, yNeeds] = ctx.needsInputGrad;
    ctx.save(yNeeds ? x : null, xNeeds ? y : null);
    return x.mul(y);
  },
  backward(g, [x, y], needs) {
    mulBackwardCalls.push([...needs]);
    return [needs[0] ? g.mul(y) : null, needs[1] ? g.mul(x) : null];
  },
});

describe('a custom op, from forward and backward to its checks', () => {
  test('cube: values, the graph node, and its first and second derivatives', () => {
    const x = f64([0.5, -1.25, 2]);
    const y = cube(x);
    expect(flat(y)).toEqual([0.125, -1.953125, 8]);
    expect(y.gradFn?.op).toBe('cube');
    expect(y.requiresGrad).toBe(true);
    expect(cube.name).toBe('cube');
    y.sum().backward();
    expectClose(flat(x.grad as Tensor), [0.75, 4.6875, 12]);
    const [d] = grad(cube(x).sum(), [x], { createGraph: true }); // 3x²
    const [d2] = grad((d as Tensor).sum(), [x]); // 6x
    expectClose(flat(d2 as Tensor), [3, -7.5, 12]);
    expect(gradcheck(cube, [x]).ok).toBe(true);
    expect(gradgradcheck(cube, [x]).ok).toBe(true);
  });

  test('softplus and an op that saves its output pass gradcheck and gradgradcheck', () => {
    const x = f64([-2, -0.3, 0.4, 3]);
    expectClose(flat(softplus(x)), [-2, -0.3, 0.4, 3].map((v) => Math.log(1 + Math.exp(v))));
    for (const op of [softplus, myExp]) {
      expect(gradcheck(op, [x]).ok).toBe(true);
      expect(gradgradcheck(op, [x]).ok).toBe(true);
    }
  });

  test('custom ops compose with built-in ops and each other, broadcasting included', () => {
    const x = f64([[0.3, -0.7, 1.1], [0.2, 0.9, -1.4]]);
    const w = f64([0.5, -1.5, 2]);
    const fn = (x: Tensor, w: Tensor) => softplus(cube(x).mul(w)).tanh().sum({ dim: 1 });
    expect(gradcheck(fn, [x, w]).ok).toBe(true);
    expect(gradgradcheck(fn, [x, w]).ok).toBe(true);
  });

  test('a backward written with a detached term passes gradcheck and fails gradgradcheck', () => {
    const cubeDetached = defineOp({
      name: 'cubeDetached',
      forward(ctx, x) {
        ctx.save(x);
        return x.mul(x).mul(x);
      },
      backward(g, [x]) {
        const xd = x.detach(); // cut from the graph: right value, derivative lost
        return [g.mul(xd.mul(xd)).mul(3)];
      },
    });
    const x = f64([0.5, -1.25, 2]);
    expect(gradcheck(cubeDetached, [x]).ok).toBe(true);
    expectError(() => gradgradcheck(cubeDetached, [x]), ValueError, 'gradgradcheck', 'second-derivative mismatch for input 0', 'analytic 0');
  });
});

describe('pruning, as the built-in ops prune', () => {
  test('no node and nothing saved when no input requires grad or grad mode is off; the forward still runs', () => {
    const seen: boolean[][] = [];
    const traced = defineOp({
      name: 'traced',
      forward(ctx, x) {
        seen.push([...ctx.needsInputGrad]);
        ctx.save(x.mul(2)); // an intermediate: disposed with the forward's scope when nothing records
        return x.exp();
      },
      backward: (g, [twice]) => [g.mul(twice)],
    });
    const saved0 = memory.stats().savedForBackwardBytes;
    const live0 = memory.stats().liveBytes;
    const frozen = f64([1, 2], false);
    const { result: a, report } = profile(() => traced(frozen));
    expect(a.gradFn).toBeNull();
    expect(a.requiresGrad).toBe(false);
    expect(report.notRecorded).toEqual({ traced: 1 });
    expect(report.nodesRecorded).toBe(0);
    const trainable = f64([1, 2]);
    const b = noGrad(() => traced(trainable));
    expect(b.gradFn).toBeNull();
    expect(seen).toEqual([[false], [false]]);
    expect(memory.stats().savedForBackwardBytes).toBe(saved0);
    // only the inputs and the two outputs are alive: the saved intermediates were disposed
    expect(memory.stats().liveBytes - live0).toBe(4 * 16);
    expectClose(flat(a), [Math.E, Math.exp(2)]);
  });

  test('a mul written with defineOp records, saves and skips exactly what the built-in mul does', () => {
    const run = (op: (x: Tensor, y: Tensor) => Tensor, trainX: boolean) => {
      const x = f64([1, 2, 3], trainX);
      const y = f64([4, 5, 6]);
      const fwd = profile(() => op(x, y).sum());
      const bwd = profile(() => fwd.result.backward());
      return { x, y, fwd: fwd.report, bwd: bwd.report };
    };
    for (const trainX of [true, false]) {
      mulBackwardCalls = [];
      const mine = run(myMul, trainX);
      const builtIn = run(mul, trainX);
      expect(mine.fwd.recorded.map((r) => r.needsInputGrad)).toEqual(builtIn.fwd.recorded.map((r) => r.needsInputGrad));
      expect(mine.fwd.savedBytes).toBe(builtIn.fwd.savedBytes);
      expect(mine.bwd.gradsSkippedByMask).toBe(builtIn.bwd.gradsSkippedByMask);
      expect(mulBackwardCalls).toEqual([[trainX, true]]);
      expect(flat(mine.y.grad as Tensor)).toEqual(flat(builtIn.y.grad as Tensor));
      expect(mine.x.grad === null ? null : flat(mine.x.grad)).toEqual(builtIn.x.grad === null ? null : flat(builtIn.x.grad));
    }
  });

  test('an input whose gradient is not asked for gets null, whatever the backward returns', () => {
    const greedy = defineOp({
      name: 'greedy',
      forward: (_ctx, a, b) => a.add(b),
      backward: (g) => [g, g.mul(1)], // ignores needsInputGrad
    });
    const a = f64([1, 2]);
    const b = f64([3, 4]);
    greedy(a, b).sum().backward(null, { inputs: [a] }); // reachability: b's gradient is not asked for
    expect(flat(a.grad as Tensor)).toEqual([1, 1]);
    expect(b.grad).toBeNull();
    const [ga, gb] = grad(greedy(a, b.detach()).sum(), [a, b], { allowUnused: true }); // b.detach(): mask
    expect(flat(ga as Tensor)).toEqual([1, 1]);
    expect(gb).toBeNull();
  });

  test('a null gradient for a needed input is a zero gradient', () => {
    const half = defineOp({ name: 'firstOnly', forward: (_ctx, a, b) => a.mul(b), backward: (g) => [g, null] });
    const a = f64([1]);
    const b = f64([2]);
    const [da, db] = grad(half(a, b).sum(), [a, b], { allowUnused: true });
    expect(flat(da as Tensor)).toEqual([1]);
    expect(db).toBeNull();
  });
});

describe('validation: what the backward returns, what the op is given', () => {
  const make = (backward: (g: Tensor) => unknown, name = 'bad') =>
    defineOp({ name, forward: (_ctx, a, b) => a.mul(b), backward: backward as (g: Tensor) => (Tensor | null)[] });
  const a = () => f64([[1, 2, 3], [4, 5, 6]]);
  const b = () => f64([1, 2, 3]).reshape([1, 3]).detach().requiresGrad_(true);

  test('a wrong number of gradients', () => {
    const op = make((g) => [g]);
    expectError(() => op(a(), b()).sum().backward(), AutogradError, 'bad (backward)', 'returned 1 gradient', "'bad' has 2 inputs", 'one gradient per input');
    const notArray = make((g) => g);
    expectError(() => notArray(a(), b()).sum().backward(), AutogradError, 'bad (backward)', 'returned a Tensor of shape [2,3]', 'has 2 inputs');
  });

  test('a gradient of the wrong shape names the input, both shapes and sumTo', () => {
    const op = make((g) => [g, g]); // b was broadcast from [1,3]: its gradient must be summed back
    expectError(() => op(a(), b()).sum().backward(), ShapeError, 'bad (backward)', 'gradient 1 has shape [2,3] but input 1 has shape [1,3]', 'sumTo(grad, [1,3])');
    const fixed = make((g) => [g, sumTo(g, [1, 3])]);
    const bb = b();
    fixed(a(), bb).sum().backward();
    expect(flat(bb.grad as Tensor)).toEqual([2, 2, 2]);
  });

  test('a gradient of the wrong dtype: integer, or less precise than its input', () => {
    const ints = make((g) => [g, zeros([1, 3], { dtype: 'int32' })]);
    expectError(() => ints(a(), b()).sum().backward(), DTypeError, 'bad (backward)', 'gradient 1 is int32 but input 1 (shape [1,3]) is float64');
    // ones() is float32 by default: a float64 input must not get a float32 gradient
    const lossy = make((g) => [g, ones([1, 3])]);
    expectError(() => lossy(a(), b()).sum().backward(), DTypeError, 'bad (backward)', 'gradient 1 is float32 but input 1', "{ dtype: x.dtype }", ".to('float64')");
  });

  test('not a tensor, or undefined instead of null', () => {
    expectError(() => make((g) => [g, 3])(a(), b()).sum().backward(), AutogradError, 'bad (backward)', 'gradient 1 is 3', 'or null');
    expectError(() => make((g) => [g, undefined])(a(), b()).sum().backward(), AutogradError, 'bad (backward)', 'gradient 1 is undefined', 'return null');
  });

  test('a bad definition, a non-tensor input, a forward that returns no tensor, ctx.save after the forward', () => {
    expectError(() => defineOp({ name: '', forward: (_c, x) => x, backward: (g) => [g] }), ValueError, 'defineOp', 'non-empty string');
    expectError(() => defineOp({ name: 'x', forward: (_c: unknown, x: Tensor) => x } as never), ValueError, 'defineOp', "'x' needs a backward function");
    expectError(() => defineOp(null as never), ValueError, 'defineOp', 'expected { name, forward, backward }');
    expectError(() => (cube as (x: unknown) => Tensor)(2), ValueError, 'cube', 'input 0 is 2, not a Tensor', 'closure');
    const noOutput = defineOp({ name: 'noOutput', forward: (_ctx, _x: Tensor) => 1 as unknown as Tensor, backward: (g) => [g] });
    expectError(() => noOutput(f64([1])), ValueError, 'noOutput', 'the forward returned 1;');
    let leaked: { save(...t: (Tensor | null)[]): void } | null = null;
    const late = defineOp({
      name: 'late',
      forward(ctx, x) {
        leaked = ctx;
        return x.mul(2);
      },
      backward: (g) => [g.mul(2)],
    });
    late(f64([1]));
    expectError(() => leaked?.save(f64([1])), AutogradError, 'late', 'after the forward returned');
    expectError(() => defineOp({ name: 's', forward: (ctx, x) => (ctx.save(3 as never), x.mul(1)), backward: (g) => [g] })(f64([1])), ValueError, 's', 'ctx.save() argument 0 is 3,');
  });
});

describe('tensors the caller holds are never rewired or freed', () => {
  test('an input returned as is: the input keeps its own graph, the output gets the node', () => {
    const identity = defineOp({
      name: 'identity',
      forward(ctx, x) {
        ctx.save(x);
        return x;
      },
      backward: (_g, [x]) => [x.mul(0).add(_g)],
    });
    const x = f64([1, 2]);
    const h = x.mul(3);
    const y = identity(h);
    expect(y).not.toBe(h);
    expect(h.gradFn?.op).toBe('mul');
    expect(y.gradFn?.op).toBe('identity');
    y.mul(y).sum().backward();
    expect(flat(x.grad as Tensor)).toEqual([18, 36]); // d/dx (3x)² = 18x
  });

  test('a saved tensor returned as a gradient stays alive for the backward of others', () => {
    const passSaved = defineOp({
      name: 'passSaved',
      forward(ctx, x, w) {
        ctx.save(w);
        return x.mul(w);
      },
      backward: (_g, [w]) => [w, null], // the right gradient only for g = 1, enough here
    });
    const x = f64([1, 2]);
    const w = f64([5, 7], false);
    const y = passSaved(x, w);
    y.sum().backward();
    expect(flat(x.grad as Tensor)).toEqual([5, 7]);
    expect(w.isDisposed).toBe(false);
    expect(flat(w)).toEqual([5, 7]);
    x.grad?.dispose(); // the .grad is the op's own tensor: freeing it frees nothing the caller holds
    expect(flat(w)).toEqual([5, 7]);
  });
});

describe('tidy', () => {
  const live = () => memory.stats().liveBytes;

  test('a forward and backward inside tidy leave nothing behind but the gradient', () => {
    const x = f64([0.5, -1, 2]);
    const live0 = live();
    const saved0 = memory.stats().savedForBackwardBytes;
    const value = tidy(() => {
      const loss = softplus(cube(x)).sum();
      expect(memory.stats().savedForBackwardBytes).toBeGreaterThan(saved0);
      loss.backward();
      return loss.item();
    });
    expect(value).toBeCloseTo([0.125, -1, 8].reduce((s, v) => s + Math.log(1 + Math.exp(v)), 0), 10);
    expect(memory.stats().savedForBackwardBytes).toBe(saved0);
    expect(live() - live0).toBe(24); // x.grad
  });

  test('a graph dropped inside tidy is released; a loss returned from tidy runs backward outside', () => {
    const x = f64([0.5, -1, 2]);
    const saved0 = memory.stats().savedForBackwardBytes;
    const live0 = live();
    tidy(() => {
      softplus(myExp(cube(x))).sum();
    });
    expect(memory.stats().savedForBackwardBytes).toBe(saved0);
    expect(live()).toBe(live0);
    const loss = tidy(() => myExp(cube(x)).sum());
    loss.backward();
    expectClose(flat(x.grad as Tensor), [0.5, -1, 2].map((v) => 3 * v * v * Math.exp(v ** 3)));
    expect(memory.stats().savedForBackwardBytes).toBe(saved0);
  });

  test('the forward and backward free their temporaries at once, even outside tidy', () => {
    const x = f64([0.5, -1, 2]);
    /** Buffers alive after the forward, and after forward, backward and disposing what they returned. */
    const buffersLeft = (op: (x: Tensor) => Tensor) => {
      const before = memory.stats();
      const y = op(x);
      const afterForward = memory.stats().liveBuffers - before.liveBuffers;
      const s = y.sum();
      const [g] = grad(s, [x]);
      for (const t of [y, s, g as Tensor]) t.dispose();
      const after = memory.stats();
      return [afterForward, after.liveBuffers - before.liveBuffers, after.liveBytes - before.liveBytes];
    };
    for (const op of [cube, (t: Tensor) => t.exp()]) buffersLeft(op); // make the lazily made shared constants
    // cube's forward makes x·x and its backward x·x, g·x·x and the 3: all freed at once, so
    // cube leaves exactly what the built-in exp (no temporaries) leaves to the engine's cleanup
    const exp = buffersLeft((t) => t.exp());
    expect(buffersLeft(cube)).toEqual(exp);
    expect(exp[0]).toBe(1); // the output alone
  });

  test('higher-order gradients of a custom op inside tidy', () => {
    const x = f64([1.5]);
    const d2 = tidy(() => {
      const [d] = grad(cube(x).sum(), [x], { createGraph: true });
      const [dd] = grad((d as Tensor).sum(), [x]);
      return dd as Tensor;
    });
    expect(flat(d2)).toEqual([9]);
  });
});
