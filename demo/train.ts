/**
 * The demo's training pieces: the model, the brief pretraining, one "trainer" per optimizer
 * (all starting from the same pretrained weights stored in float16), greedy answers.
 *
 * Each trainer's step is forward, backward (timed with performance.now and counted with
 * profile(), so the backward time and matmul FLOPs of BAdam and Adam can be compared), and the
 * optimizer's update:
 * - badam: BlockOptimizer over Adam, one block per decoder layer, 'ascending' order: only the
 *   active layer requires grad, with float32 master weights, gradients and Adam moments;
 * - adam:  MixedPrecisionOptimizer(Adam) on every parameter (float32 masters for all of them);
 * - lora:  applyLora on every projection (r 8) and Adam on the float32 adapters, base frozen;
 * - lomo:  LOMO, SGD fused into the backward pass (its "backward" time includes the updates).
 */
import {
  Adam,
  BlockOptimizer,
  LOMO,
  LlamaForCausalLM,
  MixedPrecisionOptimizer,
  applyLora,
  profile,
  tensor,
  tidy,
  type BlockSwitchEvent,
  type Tokenizer,
  type CollatedBatch,
  type LlamaConfig,
  type Tensor,
} from '../src';

export const OPTIMIZERS = ['badam', 'adam', 'lora', 'lomo'] as const;
export type OptimizerName = (typeof OPTIMIZERS)[number];

/** Short names for the console, legend and summary. */
export const OPTIMIZER_LABELS: Record<OptimizerName, string> = {
  badam: 'BAdam',
  adam: 'Adam',
  lora: 'LoRA',
  lomo: 'LOMO',
};

/** Longer descriptions for the memory table. */
export const OPTIMIZER_DESCRIPTIONS: Record<OptimizerName, string> = {
  badam: 'BAdam (Adam on one layer at a time)',
  adam: 'Adam, mixed precision, all parameters',
  lora: 'LoRA r=8 on all projections + Adam',
  lomo: 'LOMO (SGD fused into backward)',
};

export interface TrainerContext {
  config: LlamaConfig;
  /** Adam's learning rate (BAdam, Adam, LoRA). */
  lr: number;
  /** LOMO's (plain SGD) learning rate. */
  lomoLr: number;
  /** BAdam's steps per block. */
  switchEvery: number;
  seed: number;
  /** BAdam's block events (the first activation, step 0, included). */
  onSwitch?: (event: BlockSwitchEvent) => void;
}

export interface StepOutcome {
  loss: number;
  backwardMs: number;
  backwardFlops: number;
  /** Graph nodes whose backward ran. */
  backwardNodes: number;
}

export interface Trainer {
  name: OptimizerName;
  model: LlamaForCausalLM;
  /** Parameter elements updated per step now (BAdam: the active block). */
  trainable(): number;
  /** BAdam's active block (undefined for the others). */
  activeBlock(): number | undefined;
  step(batch: CollatedBatch): StepOutcome;
  /** Frees the optimizer state, masters and the model's storage. */
  release(): void;
}

/** A float32 model with `weights` loaded (or its own seeded initialisation). */
export function buildModel(config: LlamaConfig, weights?: Record<string, Tensor>): LlamaForCausalLM {
  const model = new LlamaForCausalLM({ ...config, dtype: 'float32' });
  if (weights) model.loadStateDict(weights);
  return model;
}

/** Frees the model's parameter storage and their gradients now. */
export function disposeModel(model: LlamaForCausalLM): void {
  for (const p of model.parameters()) {
    p.grad?.dispose();
    p.grad = null;
    p.dispose();
  }
}

/** Forward with the loss, then a timed and profiled backward (`run` does it: plain or fused). */
function forwardBackward(model: LlamaForCausalLM, batch: CollatedBatch, run: (loss: Tensor) => void): StepOutcome {
  const { loss } = model.forward(batch.inputIds, { labels: batch.labels, attentionMask: batch.attentionMask });
  const value = (loss as Tensor).item();
  const t0 = performance.now();
  const { report } = profile(() => run(loss as Tensor));
  const backwardMs = performance.now() - t0;
  return { loss: value, backwardMs, backwardFlops: report.matmulFlops, backwardNodes: report.nodesRun };
}

/**
 * A trainer for `name` on a fresh copy of the pretrained weights, converted to float16 in
 * place (`model.to('float16')`), so every optimizer starts from exactly the same model.
 */
/** zeroGrad, forward, backward, step: the training step of every optimizer but LOMO. */
function optimizerStep(model: LlamaForCausalLM, opt: { zeroGrad(): void; step(): unknown }, batch: CollatedBatch): StepOutcome {
  opt.zeroGrad();
  const out = forwardBackward(model, batch, (loss) => loss.backward());
  opt.step();
  return out;
}

export function createTrainer(name: OptimizerName, weights: Record<string, Tensor>, ctx: TrainerContext): Trainer {
  const model = buildModel(ctx.config, weights).to('float16');
  model.train();
  switch (name) {
    case 'badam': {
      const opt = new BlockOptimizer(model, new Adam(model.parameters(), { lr: ctx.lr }), {
        switchEvery: ctx.switchEvery,
        switchMode: 'ascending',
        verbose: 0,
        seed: ctx.seed,
        log: (e) => ctx.onSwitch?.(e),
      });
      return {
        name,
        model,
        trainable: () => opt.trainableParameters().reduce((n, [, p]) => n + p.numel, 0),
        activeBlock: () => opt.currentBlock,
        step: (batch) => optimizerStep(model, opt, batch),
        release() {
          opt.release(); // the masters and Adam's moments
          disposeModel(model);
        },
      };
    }
    case 'adam': {
      const opt = new MixedPrecisionOptimizer(new Adam(model.parameters(), { lr: ctx.lr }));
      return {
        name,
        model,
        trainable: () => model.numParameters(),
        activeBlock: () => undefined,
        step: (batch) => optimizerStep(model, opt, batch),
        release() {
          opt.release();
          disposeModel(model);
        },
      };
    }
    case 'lora': {
      const lora = applyLora(model, {
        targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
        r: 8,
        alpha: 16,
        seed: ctx.seed,
      });
      const opt = new Adam(
        lora.namedParameters().map(([, p]) => p),
        { lr: ctx.lr },
      );
      return {
        name,
        model,
        trainable: () => lora.numTrainable,
        activeBlock: () => undefined,
        step: (batch) => optimizerStep(model, opt, batch),
        release() {
          opt.resetState();
          disposeModel(model);
        },
      };
    }
    case 'lomo': {
      const lomo = new LOMO(model, { lr: ctx.lomoLr, clipGradValue: 1 });
      return {
        name,
        model,
        trainable: () => model.numParameters({ trainableOnly: true }),
        activeBlock: () => undefined,
        step(batch) {
          lomo.zeroGrad();
          return forwardBackward(model, batch, (loss) => lomo.fusedBackward(loss));
        },
        release() {
          lomo.dispose();
          disposeModel(model);
        },
      };
    }
  }
}

/**
 * Greedy answers (temperature 0) of `model` to each prompt, up to `maxNewTokens` tokens or
 * the eos token (where the tokenizer has one), decoded without special tokens.
 */
export function answers(model: LlamaForCausalLM, tokenizer: Tokenizer, prompts: readonly number[][], maxNewTokens: number): string[] {
  const eos = tokenizer.eosId ?? undefined;
  const wasTraining = model.training;
  model.eval();
  try {
    return prompts.map((ids) =>
      tidy(() => {
        const out = model.generate(tensor([ids], { dtype: 'int32' }), { maxNewTokens, temperature: 0, eosTokenId: eos });
        const row = Array.from(out.toTypedArray() as Int32Array).slice(ids.length);
        const end = eos === undefined ? -1 : row.indexOf(eos);
        return tokenizer.decode(end >= 0 ? row.slice(0, end) : row);
      }),
    );
  } finally {
    model.train(wasTraining);
  }
}

export interface PretrainOptions {
  steps: number;
  lr: number;
  /** Called after each step with its loss and the number of (non-pad) tokens in the batch. */
  onStep?: (step: number, loss: number, tokens: number) => void;
}

/**
 * The brief pretraining: plain float32 Adam on every parameter, language modelling on the
 * whole text of each example (prompt and response), so the model learns the bytes and the
 * template before it is taught to answer. Returns the model (float32).
 */
export function pretrain(config: LlamaConfig, batches: () => Iterator<CollatedBatch & { tokens: number }>, options: PretrainOptions): LlamaForCausalLM {
  const model = buildModel(config);
  model.train();
  if (options.steps === 0) return model;
  const opt = new Adam(model.parameters(), { lr: options.lr });
  const it = batches();
  for (let step = 1; step <= options.steps; step++) {
    const next = it.next();
    if (next.done) throw new Error('pretrain: the batch iterator ended early');
    const batch = next.value;
    const value = tidy(() => {
      opt.zeroGrad();
      const { loss } = model.forward(batch.inputIds, { labels: batch.labels, attentionMask: batch.attentionMask });
      (loss as Tensor).backward();
      opt.step();
      return (loss as Tensor).item();
    });
    options.onStep?.(step, value, batch.tokens);
  }
  opt.resetState();
  model.zeroGrad();
  return model;
}
