/**
 * checkpoint(fn, ...inputs): the gradients are those of the plain run to the bit (float64), the
 * graph keeps no saved tensors of fn, the recomputation runs once and only where the backward
 * needs it, dropout draws the same masks, and misuse is a clear error.
 */
import {
  AutogradError,
  Generator,
  LlamaForCausalLM,
  ValueError,
  checkpoint,
  copy_,
  dropout,
  grad,
  memory,
  profile,
  tensor,
  tidy,
  type Tensor,
} from '../../src';
import { expectError, uniformLeaf } from '../helpers';

const values = (t: Tensor | null) => Array.from(t?.toTypedArray() ?? []);

/** A small two-layer block with a nonlinearity whose backward reads saved tensors of every kind. */
function block(w1: Tensor, w2: Tensor) {
  return (x: Tensor) => x.matmul(w1).silu().mul(x.matmul(w1).exp().add(1).log()).matmul(w2).tanh();
}

describe('gradients', () => {
  test('equal the plain run to the bit, for the input and for the parameters fn closes over', () => {
    const x = uniformLeaf([3, 4], 1);
    const w1 = uniformLeaf([4, 5], 2);
    const w2 = uniformLeaf([5, 2], 3);
    const f = block(w1, w2);
    const plain = grad(f(x).sum(), [x, w1, w2]);
    const calls: number[] = [];
    const counted = (t: Tensor) => (calls.push(1), f(t));
    const ckpt = grad(checkpoint(counted, x).sum(), [x, w1, w2]);
    ckpt.forEach((g, i) => expect(values(g)).toEqual(values(plain[i])));
    expect(calls.length).toBe(2); // the forward, and one recomputation for all of its nodes
  });

  test('nested in a larger graph, with several inputs and an input that needs no gradient', () => {
    const x = uniformLeaf([2, 3], 4);
    const c = uniformLeaf([2, 3], 5).detach(); // a constant input
    const w = uniformLeaf([3, 3], 6);
    const f = (a: Tensor, b: Tensor) => a.mul(b).matmul(w).sigmoid().add(a.pow(2));
    const loss = (y: Tensor) => y.mul(y).sum();
    const plain = grad(loss(f(x.mul(2), c)), [x, w]);
    const ckpt = grad(loss(checkpoint(f, x.mul(2), c)), [x, w]);
    ckpt.forEach((g, i) => expect(values(g)).toEqual(values(plain[i])));
  });

  test('dropout inside draws the same mask in the recomputation', () => {
    const x = uniformLeaf([4, 8], 7);
    const w = uniformLeaf([8, 8], 8);
    const f = (gen: Generator) => (t: Tensor) => dropout(t.matmul(w), 0.5, { generator: gen, training: true }).relu();
    const plain = grad(f(new Generator(11))(x).sum(), [x, w]);
    const ckpt = grad(checkpoint(f(new Generator(11)), x).sum(), [x, w]);
    ckpt.forEach((g, i) => expect(values(g)).toEqual(values(plain[i])));
    // and a generator used after the region continues from where the forward left it, not the recomputation
    const gen = new Generator(11);
    const after = tidy(() => {
      const y = checkpoint(f(gen), x);
      const next = gen.nextUint32();
      grad(y.sum(), [x]);
      return next;
    });
    const reference = new Generator(11);
    f(reference)(x);
    expect(after).toBe(reference.nextUint32());
  });
});

describe('memory', () => {
  test('the region keeps no saved tensors of its own: only its inputs', () => {
    const x = uniformLeaf([16, 32], 9);
    const w1 = uniformLeaf([32, 64], 10);
    const w2 = uniformLeaf([64, 32], 11);
    const f = block(w1, w2);
    const savedBytes = (run: () => Tensor) => {
      const { result, report } = profile(() => run());
      result.dispose();
      return report.savedBytes;
    };
    const plain = savedBytes(() => f(x));
    const ckpt = savedBytes(() => checkpoint(f, x));
    expect(plain).toBeGreaterThan(16 * 64 * 8); // at least one [16, 64] float64 activation
    expect(ckpt).toBe(0);
  });

  test('everything it kept or recomputed is freed after the backward', () => {
    const x = uniformLeaf([8, 8], 12);
    const w = uniformLeaf([8, 8], 13);
    const before = memory.stats().liveBytes;
    tidy(() => {
      const y = checkpoint((t: Tensor) => t.matmul(w).exp().matmul(w), x);
      y.sum().backward();
    });
    x.grad?.dispose();
    w.grad?.dispose();
    x.grad = null;
    w.grad = null;
    expect(memory.stats().liveBytes).toBe(before);
  });

  test('what was recomputed for a node is freed as soon as that node has run, as a plain node frees what it saved', () => {
    const x = uniformLeaf([4, 8], 20).detach(); // 256 bytes, kept for the recomputation
    const w = uniformLeaf([8, 8], 21);
    const before = memory.stats().savedForBackwardBytes;
    let whenHReady = NaN;
    const y = checkpoint((t: Tensor) => {
      const h = t.matmul(w);
      // h's gradient is complete once exp and mul (above it) have run; matmul (below it) has not
      h.registerHook(() => void (whenHReady = memory.stats().savedForBackwardBytes - before));
      return h.exp().mul(h);
    }, x);
    y.sum().backward();
    // left: x (kept, and what matmul reads to give w its gradient); exp's output and h, which exp
    // and mul read, 512 more bytes, are gone
    expect(whenHReady).toBe(4 * 8 * 8);
    expect(memory.stats().savedForBackwardBytes).toBe(before);
  });

  test('no input and no parameter needs a gradient: no node, nothing kept, no recomputation', () => {
    const x = uniformLeaf([3, 3], 14).detach();
    const calls: number[] = [];
    const y = checkpoint((t: Tensor) => (calls.push(1), t.exp()), x);
    expect(y.gradFn).toBeNull();
    expect(calls.length).toBe(1);
  });
});

describe('Llama with gradientCheckpointing', () => {
  const config = { vocabSize: 32, hiddenSize: 16, intermediateSize: 24, numHiddenLayers: 3, numAttentionHeads: 4, numKeyValueHeads: 2, dtype: 'float64' as const, seed: 3 };
  const ids = tensor([[1, 5, 9, 13, 2, 7], [3, 3, 8, 1, 0, 4]], { dtype: 'int32' });
  const mask = tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]], { dtype: 'int32' });

  const gradsOf = (model: LlamaForCausalLM) => {
    for (const p of model.parameters()) p.grad = null;
    const { loss } = model.forward(ids, { labels: ids, attentionMask: mask });
    (loss as Tensor).backward();
    return { loss: (loss as Tensor).item(), grads: model.namedParameters().map(([n, p]) => [n, values(p.grad)] as const) };
  };

  test('the loss and every gradient equal the plain model to the bit; the saved bytes fall', () => {
    const plain = new LlamaForCausalLM(config);
    const ckpt = new LlamaForCausalLM(config).gradientCheckpointingEnable();
    expect(gradsOf(ckpt)).toEqual(gradsOf(plain));
    const saved = (m: LlamaForCausalLM) => profile(() => m.forward(ids, { labels: ids })).report.savedBytes;
    expect(saved(ckpt)).toBeLessThan(saved(plain) / 3);
  });

  test('with the lower layers frozen (a BAdam block above them), the frozen layers record nothing and never recompute', () => {
    const model = new LlamaForCausalLM(config).gradientCheckpointingEnable();
    for (const [name, p] of model.namedParameters()) p.requiresGrad = name.startsWith('model.layers.2.');
    const reference = new LlamaForCausalLM(config);
    for (const [name, p] of reference.namedParameters()) p.requiresGrad = name.startsWith('model.layers.2.');
    const { report } = profile(() => gradsOf(model));
    const plain = gradsOf(reference);
    expect(gradsOf(model)).toEqual(plain);
    // layers 0 and 1 recorded no node (so no region of theirs kept anything or recomputed), and
    // their backward never ran: what ran are layer 2 and the head
    expect(report.recorded.some((e) => e.inputNames.some((n) => n !== null && n !== undefined && n.startsWith('model.layers.1.')))).toBe(false);
    expect(report.recorded.some((e) => e.inputNames.some((n) => n !== null && n !== undefined && n.startsWith('model.layers.2.')))).toBe(true);
    expect(report.backwardNodes.some((e) => e.inputNames.some((n) => n !== null && n !== undefined && n.startsWith('model.layers.0.')))).toBe(false);
    expect(report.backwardNodes.some((e) => e.inputNames.some((n) => n !== null && n !== undefined && n.startsWith('model.layers.2.')))).toBe(true);
  });
});

describe('errors', () => {
  test('bad arguments', () => {
    expectError(() => checkpoint(5 as never), ValueError, 'checkpoint', 'expected a function, got 5');
    expectError(() => checkpoint((t: Tensor) => t, 3 as never), ValueError, 'checkpoint', 'input 0 is 3, not a Tensor');
  });

  test('an input modified in place after the forward', () => {
    const w = uniformLeaf([3, 3], 15);
    const x = uniformLeaf([3, 3], 16).detach();
    const y = checkpoint((t: Tensor) => t.matmul(w).exp(), x);
    copy_(x, x.mul(2));
    expectError(() => y.sum().backward(), AutogradError, 'checkpoint (backward)', 'input 0 of the checkpointed function was modified in place');
  });

  test('a function that records other ops the second time', () => {
    const w = uniformLeaf([3, 3], 17);
    let first = true;
    const y = checkpoint((t: Tensor) => {
      const z = first ? t.matmul(w).exp() : t.matmul(w).tanh();
      first = false;
      return z;
    }, uniformLeaf([3, 3], 18));
    expectError(() => y.sum().backward(), AutogradError, 'checkpoint (backward)', 'recorded [matmul, tanh] where the forward recorded [matmul, exp]');
  });

  test('createGraph cannot go through a checkpointed region', () => {
    const x = uniformLeaf([3], 19);
    const y = checkpoint((t: Tensor) => t.pow(3), x).sum();
    expectError(() => grad(y, [x], { createGraph: true }), AutogradError, 'grad', 'createGraph cannot go through', 'checkpoint()');
  });
});
