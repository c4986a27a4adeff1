/**
 * BAdam's memory formula, measured: on a float16 Llama with block i active, at the moment of the
 * step when everything is alive, the tracked bytes are weights 2·M, master copies 4·M_i, Adam
 * moments 8·M_i and float32 gradients 4·M_i (2M + 16·M_i in all); mixed-precision Adam on the
 * same model holds the full 2M + 4M + 8M + 4M = 18M.
 */
import { Adam, BlockOptimizer, MixedPrecisionOptimizer, memory, type MemoryStats } from '../../../src';
import { ids, tinyLlama } from './helpers';

type Categories = MemoryStats['byCategory'];
const cats = (): Categories => memory.stats().byCategory;
const delta = (now: Categories, base: Categories) => ({
  weights: now.weights - base.weights,
  grads: now.grads - base.grads,
  master: now.master - base.master,
  optimizer: now.optimizer - base.optimizer,
});

const tokens = ids([3, 1, 4, 1, 5, 9, 2, 6]);

/**
 * Tests are synchronous, so no garbage-collector finalizer can run between the baseline and the
 * measurements: every byte counted below was freed (or not) by an explicit dispose().
 */
function halfLlama() {
  const base = cats();
  const model = tinyLlama(4).to('float16');
  return { model, base, M: model.numParameters() };
}

describe('memory accounting on a float16 model', () => {
  test('BAdam: 2M + 16·M_i while block i steps; the switch releases the old block', () => {
    const { model, base, M } = halfLlama();
    expect(delta(cats(), base)).toEqual({ weights: 2 * M, grads: 0, master: 0, optimizer: 0 });
    const i = 2;
    const opt = new BlockOptimizer(model, new Adam(model.parameters(), { lr: 1e-3 }), { verbose: 0, switchMode: 'ascending', startBlock: i, switchEvery: 1 });
    const blocks = opt.blocks();
    const Mi = blocks[i].numParams;
    expect(Mi).toBe(opt.trainableParameters().reduce((s, [, p]) => s + p.numel, 0));
    // masters made at the switch; moments at the first step
    expect(delta(cats(), base)).toEqual({ weights: 2 * M, grads: 0, master: 4 * Mi, optimizer: 0 });

    model.forward(tokens, { labels: tokens }).loss?.backward();
    // the float16 gradients of the block (and nothing else) are alive
    expect(delta(cats(), base)).toEqual({ weights: 2 * M, grads: 2 * Mi, master: 4 * Mi, optimizer: 0 });

    let during: ReturnType<typeof delta> | null = null;
    opt.step({ onBeforeFree: () => (during = delta(cats(), base)) });
    // float16 gradients consumed, float32 gradients alive: the paper's 2 + 16 bytes per active parameter
    expect(during).toEqual({ weights: 2 * M, grads: 4 * Mi, master: 4 * Mi, optimizer: 8 * Mi });
    const d = during as unknown as ReturnType<typeof delta>;
    expect(d.weights + d.grads + d.master + d.optimizer).toBe(2 * M + 16 * Mi);

    // after the step the switch to block i+1 has released block i's masters and moments
    expect(opt.currentBlock).toBe(i + 1);
    const Mnext = blocks[i + 1].numParams;
    expect(delta(cats(), base)).toEqual({ weights: 2 * M, grads: 0, master: 4 * Mnext, optimizer: 0 });
  });

  test('release() frees the masters and the Adam moments at once; training can go on', () => {
    const { model, base, M } = halfLlama();
    const opt = new BlockOptimizer(model, new Adam(model.parameters(), { lr: 1e-3 }), { verbose: 0, switchMode: 'fixed', startBlock: 1 });
    const Mi = opt.blocks()[1].numParams;
    model.forward(tokens, { labels: tokens }).loss?.backward();
    opt.step();
    expect(delta(cats(), base)).toEqual({ weights: 2 * M, grads: 0, master: 4 * Mi, optimizer: 8 * Mi });
    opt.release();
    expect(delta(cats(), base)).toEqual({ weights: 2 * M, grads: 0, master: 0, optimizer: 0 });
    expect(opt.baseOptimizer.state.size).toBe(0);
    // the schedule is kept; the next step makes the masters again and starts Adam afresh
    model.forward(tokens, { labels: tokens }).loss?.backward();
    opt.step();
    expect([opt.currentBlock, opt.globalStep]).toEqual([1, 2]);
    expect(delta(cats(), base)).toEqual({ weights: 2 * M, grads: 0, master: 4 * Mi, optimizer: 8 * Mi });
    opt.release();
    expect(delta(cats(), base).master + delta(cats(), base).optimizer).toBe(0);
  });

  test('mixed-precision Adam: the full-model 2M + 4M + 8M + 4M = 18M', () => {
    const { model, base, M } = halfLlama();
    const opt = new MixedPrecisionOptimizer(new Adam(model.parameters(), { lr: 1e-3 }));
    expect(delta(cats(), base)).toEqual({ weights: 2 * M, grads: 0, master: 4 * M, optimizer: 0 });
    model.forward(tokens, { labels: tokens }).loss?.backward();
    expect(delta(cats(), base)).toEqual({ weights: 2 * M, grads: 2 * M, master: 4 * M, optimizer: 0 });
    let during: ReturnType<typeof delta> | null = null;
    opt.step({ onBeforeFree: () => (during = delta(cats(), base)) });
    expect(during).toEqual({ weights: 2 * M, grads: 4 * M, master: 4 * M, optimizer: 8 * M });
    const d = during as unknown as ReturnType<typeof delta>;
    expect(d.weights + d.grads + d.master + d.optimizer).toBe(18 * M);
    // between steps: weights, masters and moments stay; gradients are gone
    expect(delta(cats(), base)).toEqual({ weights: 2 * M, grads: 0, master: 4 * M, optimizer: 8 * M });
    opt.release();
    expect(delta(cats(), base)).toEqual({ weights: 2 * M, grads: 0, master: 0, optimizer: 0 });
  });
});
