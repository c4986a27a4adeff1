/**
 * The engine frees what a backward makes as soon as it is consumed (each op's backward
 * temporaries when it returns, each gradient once accumulated or passed on), not at the end of
 * the caller's tidy scope. Repeated backwards on one retained graph inside a single scope (a
 * benchmark's loop, gradient accumulation over micro-batches) therefore hold the same live memory
 * after each one, and the peak of one backward stays near the gradients it must hold at once.
 * Before, every backward left its ~13 MB of temporaries behind until the scope ended (the 8-layer
 * Llama of the backward benchmark), so each one touched fresh memory.
 */
import { LlamaForCausalLM, memory, randint, setBackend, tidy, type Tensor } from '../../src';
import { backendsUnderTest } from '../backends/helpers';

const CONFIG = { vocabSize: 50, hiddenSize: 32, intermediateSize: 64, numHiddenLayers: 3, numAttentionHeads: 4, maxPositionEmbeddings: 64 };

describe.each(backendsUnderTest({ webasm: false }).filter((b) => b.name !== 'gpu'))('on $label', ({ name, options }) => {
  beforeAll(() => setBackend(name, options));
  afterAll(() => setBackend('cpu'));

  test.each([
    ['everything trainable', null],
    ['BAdam: only the middle layer trainable', 1],
  ] as const)('%s: live bytes are the same after each of four backwards in one scope', (_, block) => {
    const model = tidy(() => new LlamaForCausalLM(CONFIG));
    model.requiresGrad_(block === null);
    if (block !== null) for (const [n, p] of model.namedParameters()) if (n.startsWith(`model.layers.${block}.`)) p.requiresGrad_(true);
    const clear = () => {
      for (const p of model.parameters()) {
        p.grad?.dispose();
        p.grad = null;
      }
    };
    const live: number[] = [];
    tidy(() => {
      const ids = randint(0, CONFIG.vocabSize, [2, 16]);
      const loss = model.forward(ids, { labels: ids }).loss as Tensor;
      for (let i = 0; i < 4; i++) {
        loss.backward(null, { retainGraph: true });
        clear();
        live.push(memory.stats().liveBytes);
      }
    });
    expect(live.every((b) => b === live[0])).toBe(true);
    for (const p of model.parameters()) p.dispose();
  });
});
