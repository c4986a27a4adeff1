/**
 * The memory table BAdam's argument rests on, measured rather than computed: each run builds a
 * model and an optimizer and takes training steps on the same batch, and the memory tracker's
 * per-category peaks (relative to a baseline taken before the run) give the bytes of weights,
 * gradients, float32 master copies, optimizer state and activations saved for backward.
 *
 *   const rows = [
 *     measureTrainingMemory('Adam (mixed precision)', () => { ...build model, return { model, step } }),
 *     measureTrainingMemory('BAdam', () => ...),
 *   ];
 *   console.log(memoryReport(rows));
 *
 * The paper's accounting for a model of M parameters stored in float16: mixed-precision Adam
 * keeps 2M (weights) + 4M (float32 master) + 4M (float32 gradients) + 8M (two moments) = 18M
 * bytes; BAdam keeps 2M + 16·M_active, the extra 16 bytes only for the active block.
 */
import { memory } from '../tensor/memory';
import type { MemoryCategory } from '../kernels/memory';
import type { Tensor } from '../tensor/tensor';
import { ValueError } from '../errors';

/** What one measured run needs: the model (for its parameter count) and one training step. */
export interface TrainingRun {
  model: { parameters(): Tensor[] };
  /** Runs one full training step: forward, backward and optimizer update. */
  step: () => void;
  /** Parameters the optimizer updates in a step (BAdam: the active block); default: those requiring grad. */
  trainable?: number;
}

export interface TrainingMemory {
  label: string;
  /** M: parameter elements of the model. */
  parameters: number;
  /** Parameter elements updated per step. */
  trainable: number;
  /** Live weight bytes of the model after the run. */
  weights: number;
  /** Peak bytes per category during the run (relative to the baseline before it). */
  grads: number;
  master: number;
  optimizer: number;
  /** Peak bytes that graph nodes held for backward. */
  savedActivations: number;
  /** weights + grads + master + optimizer: the bytes the paper's formula counts. */
  modelStateBytes: number;
  /** modelStateBytes / parameters. */
  bytesPerParameter: number;
}

const COUNTED: MemoryCategory[] = ['grads', 'master', 'optimizer'];

/**
 * Builds a model and optimizer with `setup` and runs `steps` training steps, measuring the peak
 * bytes per category from a baseline taken just before `setup`. Build the model inside `setup`
 * so that its weights are counted. Runs are synchronous, so storage freed only by the garbage
 * collector is not subtracted until later: the categories measured here are the ones the
 * library frees explicitly (parameters, masters, optimizer state, and gradients: every
 * optimizer's zeroGrad() disposes them, and mixed-precision steps consume float16 ones). Clear
 * gradients in `step` with the optimizer's zeroGrad(): `Module.zeroGrad()` and `p.grad = null`
 * drop them without disposing, so each step's gradients would stay counted until the GC runs.
 */
export function measureTrainingMemory(label: string, setup: () => TrainingRun, options: { steps?: number } = {}): TrainingMemory {
  const steps = options.steps ?? 1;
  if (!Number.isInteger(steps) || steps < 1) throw new ValueError('measureTrainingMemory', `steps must be a positive integer, got ${steps}`);
  memory.resetPeak();
  const base = memory.stats();
  const run = setup();
  const params = run.model.parameters();
  const trainable = run.trainable ?? params.filter((p) => p.requiresGrad).reduce((n, p) => n + p.numel, 0);
  for (let i = 0; i < steps; i++) run.step();
  const after = memory.stats();
  const peak = (c: MemoryCategory) => after.peakByCategory[c] - base.byCategory[c];
  const parameters = params.reduce((n, p) => n + p.numel, 0);
  // weights are static during training: count the model's live weights after the run (their
  // peak would include a float32 model's bytes before a .to('float16') inside setup)
  const weights = after.byCategory.weights - base.byCategory.weights;
  const [grads, master, optimizer] = COUNTED.map(peak);
  const modelStateBytes = weights + grads + master + optimizer;
  return {
    label,
    parameters,
    trainable,
    weights,
    grads,
    master,
    optimizer,
    savedActivations: after.peakSavedForBackwardBytes - base.savedForBackwardBytes,
    modelStateBytes,
    bytesPerParameter: parameters > 0 ? modelStateBytes / parameters : 0,
  };
}

function fmtBytes(n: number): string {
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(2)} MiB`;
  if (n >= 2 ** 10) return `${(n / 2 ** 10).toFixed(1)} KiB`;
  return `${n} B`;
}

/** A markdown table of measured runs, one row each. */
export function memoryReport(rows: readonly TrainingMemory[]): string {
  const header =
    '| optimizer | params M | updated per step | weights | gradients | master copies | optimizer state | saved activations | weights+grads+master+state | bytes / param |';
  const rule = '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |';
  const lines = rows.map(
    (r) =>
      `| ${r.label} | ${r.parameters} | ${r.trainable} | ${fmtBytes(r.weights)} | ${fmtBytes(r.grads)} | ${fmtBytes(r.master)} | ` +
      `${fmtBytes(r.optimizer)} | ${fmtBytes(r.savedActivations)} | ${fmtBytes(r.modelStateBytes)} | ${r.bytesPerParameter.toFixed(2)} |`,
  );
  return [header, rule, ...lines].join('\n');
}
