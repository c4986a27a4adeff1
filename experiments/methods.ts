/**
 * The five training methods the experiments compare, each built the same way on a given model:
 * mixed-precision Adam on every parameter (the paper's baseline), BAdam in block mode (one
 * decoder layer at a time, ascending) and in ratio mode (5% of every matrix), LoRA (rank 8 on
 * every projection, Adam on the float32 adapters) and LOMO (SGD fused into backward).
 */
import {
  Adam,
  BlockOptimizer,
  BlockOptimizerRatio,
  LOMO,
  MixedPrecisionOptimizer,
  SGD,
  applyLora,
  type LlamaForCausalLM,
  type Tensor,
} from '../src';

export const METHODS = ['adam', 'badam', 'badam-ratio', 'lora', 'lomo'] as const;
/** BAdam with SGD as its inner solver: the paper's ablation (is it Adam or the blocks that help?). */
export type MethodName = (typeof METHODS)[number] | 'badam-sgd';

export const METHOD_LABELS: Record<MethodName, string> = {
  adam: 'Adam (mixed precision)',
  badam: 'BAdam (block)',
  'badam-ratio': 'BAdam (ratio 0.05)',
  lora: 'LoRA (r 8)',
  lomo: 'LOMO',
  'badam-sgd': 'BAdam over SGD',
};

export const LORA_TARGETS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

/** One method on one model: the optimizer step split in its parts, so that each can be timed. */
export interface Method {
  name: MethodName;
  zeroGrad(): void;
  backward(loss: Tensor): void;
  /** The update (a no-op for LOMO, whose update is inside backward). */
  update(): void;
  /** Parameter elements the method updates now (BAdam: the active block; ratio: the selected entries). */
  trainable(): number;
  release(): void;
}

/**
 * `name` on `model` with learning rate `lr`; `switchEvery` is BAdam's K (default 1: every block
 * once in D steps, which the memory and time experiments want).
 */
export function buildMethod(name: MethodName, model: LlamaForCausalLM, lr = 1e-3, switchEvery = 1): Method {
  const plain = (opt: { zeroGrad(): void; step(): unknown }, trainable: () => number, release: () => void): Method => ({
    name,
    zeroGrad: () => opt.zeroGrad(),
    backward: (loss) => loss.backward(),
    update: () => void opt.step(),
    trainable,
    release,
  });
  switch (name) {
    case 'adam': {
      const opt = new MixedPrecisionOptimizer(new Adam(model.parameters(), { lr }));
      return plain(opt, () => model.numParameters(), () => opt.release());
    }
    case 'badam': {
      const opt = new BlockOptimizer(model, new Adam(model.parameters(), { lr }), { switchMode: 'ascending', switchEvery, verbose: 0 });
      return plain(opt, () => opt.trainableParameters().reduce((n, [, p]) => n + p.numel, 0), () => opt.release());
    }
    case 'badam-sgd': {
      const opt = new BlockOptimizer(model, new SGD(model.parameters(), { lr }), { switchMode: 'ascending', switchEvery, verbose: 0 });
      return plain(opt, () => opt.trainableParameters().reduce((n, [, p]) => n + p.numel, 0), () => opt.release());
    }
    case 'badam-ratio': {
      const opt = new BlockOptimizerRatio(model, { lr, updateRatio: 0.05, verbose: 0 });
      return plain(opt, () => opt.masks().reduce((n, m) => n + m.k, 0), () => opt.release());
    }
    case 'lora': {
      const lora = applyLora(model, { targetModules: LORA_TARGETS, r: 8, alpha: 16, seed: 0 });
      const opt = new Adam(lora.namedParameters().map(([, p]) => p), { lr });
      return plain(opt, () => lora.numTrainable, () => opt.resetState());
    }
    case 'lomo': {
      const lomo = new LOMO(model, { lr });
      return {
        name,
        zeroGrad: () => lomo.zeroGrad(),
        backward: (loss) => lomo.fusedBackward(loss),
        update: () => {},
        trainable: () => model.numParameters({ trainableOnly: true }),
        release: () => lomo.dispose(),
      };
    }
  }
}
