/**
 * The chain-rule saving under BAdam, measured with the engine's statistics: with block i of a
 * D-layer Llama active, the forward records nothing below layer i, the backward runs no node
 * below it, and no linear outside block i computes a weight gradient (block i's all do).
 */
import { Adam, BlockOptimizer, profile } from '../../../src';
import { ids, tinyLlama } from './helpers';

const layerOf = (name: string | undefined) => {
  const m = name === undefined ? null : /^model\.layers\.(\d+)\./.exec(name);
  return m ? Number(m[1]) : null;
};

describe('BAdam prunes the backward below the active block', () => {
  const D = 5;
  const model = tinyLlama(D);
  const tokens = ids([1, 5, 2, 9, 4, 7]);

  test.each([0, 2, 4])('block %i active', (i) => {
    const opt = new BlockOptimizer(model, new Adam(model.parameters()), { verbose: 0, switchMode: 'fixed', startBlock: i });
    expect(opt.trainableParameters().every(([n]) => layerOf(n) === i)).toBe(true);
    const { result: out, report: fwd } = profile(() => model.forward(tokens, { labels: tokens }));
    const { report: bwd } = profile(() => (out.loss as NonNullable<typeof out.loss>).backward());

    // forward: layers below i recorded nothing (mechanism 1), layer i did
    const fwdLayers = fwd.recorded.flatMap((e) => e.inputNames.map(layerOf)).filter((l): l is number => l !== null);
    expect(fwdLayers.length).toBeGreaterThan(0);
    expect(Math.min(...fwdLayers)).toBe(i);
    expect(fwd.notRecordedTotal).toBeGreaterThan(0);

    // backward: no node touches a layer below i
    const bwdLayers = bwd.backwardNodes.flatMap((e) => e.inputNames.map(layerOf)).filter((l): l is number => l !== null);
    expect(Math.min(...bwdLayers)).toBe(i);

    // every linear outside block i skips dW (mechanism 2); block i's seven linears compute it
    const linears = bwd.backwardNodes.filter((e) => e.op === 'linear');
    const inBlock = linears.filter((e) => layerOf(e.inputNames[1]) === i);
    const outside = linears.filter((e) => layerOf(e.inputNames[1]) !== i);
    expect(inBlock.map((e) => e.computed[1])).toEqual(Array<boolean>(7).fill(true));
    expect(outside.length).toBe(7 * (D - 1 - i) + 1); // the layers above i and lm_head
    for (const e of outside) expect([e.inputNames[1], e.computed[1]]).toEqual([e.inputNames[1], false]);
    // and no node computed a gradient for a frozen weight
    for (const e of bwd.backwardNodes) {
      e.inputNames.forEach((n, k) => {
        if (n !== undefined && e.computed[k]) expect(layerOf(n)).toBe(i);
      });
    }
    // only block i's parameters have gradients
    for (const [n, p] of model.namedParameters()) expect([n, p.grad !== null]).toEqual([n, layerOf(n) === i]);
    opt.zeroGrad();
  });

  test('the backward matmul FLOPs fall as the active block moves up', () => {
    const flops = [0, 1, 2, 3, 4].map((i) => {
      const opt = new BlockOptimizer(model, new Adam(model.parameters()), { verbose: 0, switchMode: 'fixed', startBlock: i });
      const out = model.forward(tokens, { labels: tokens });
      const { report } = profile(() => (out.loss as NonNullable<typeof out.loss>).backward());
      opt.zeroGrad();
      return report.matmulFlops;
    });
    for (let i = 1; i < D; i++) expect(flops[i]).toBeLessThan(flops[i - 1]);
  });
});
