/**
 * LoRA (Hu et al., 2021) in the manner of Hugging Face PEFT: each target Linear y = W·x + b
 * gets a trainable low-rank update,
 *
 *   y = W·x + b + (alpha / r) · B·A·dropout(x),   A: [r, in], B: [out, r],
 *
 * with A initialised kaiming_uniform(a = √5) and B zero, so the adapted model starts equal to
 * the base model. Every parameter that existed before is frozen, so backward computes only
 * what A and B need: the frozen W gets no weight-gradient matmul (the linear node's needs mask
 * skips dW), and layers below the first adapter record nothing (docs/design.md, mechanisms 1 and 2).
 *
 * The adapters are child modules of the Linear they adapt, named as PEFT names them in adapter
 * files: `...q_proj.lora_A.weight` and `...q_proj.lora_B.weight` (PEFT's in-memory names carry
 * an extra `.default` for the adapter name and `.base_layer` for W; blockgrad keeps W where it
 * was, so base checkpoints still load). The Linear's `adapter` hook adds the update.
 *
 * Adapter weights take the base weight's dtype, except that a float16 or bfloat16 base gets float32
 * adapters (PEFT's autocast_adapter_dtype): the input is cast to the adapter dtype and the
 * update back to the layer's output dtype.
 */
import { ValueError } from '../errors';
import { promoteTypes, type DType, isHalf } from '../tensor/dtype';
import { defaultGenerator, Generator } from '../tensor/random';
import type { Tensor } from '../tensor/tensor';
import { noGrad } from '../autograd/grad-mode';
import { add, cast, mul, sub } from '../autograd/ops/elementwise';
import { matmul } from '../autograd/ops/matmul';
import { copy_ } from '../autograd/ops/inplace';
import * as init from './init';
import { Dropout, Linear } from './layers';
import type { Module } from './module';

export interface LoraOptions {
  /**
   * Which Linear layers to adapt, as PEFT matches a list: a module whose dotted name equals an
   * entry or ends with '.' + entry ('query' matches 'roberta.encoder.layer.0.attention.self.query';
   * 'self.query' and the full name do too; 'uery' does not).
   */
  targetModules: string[];
  /** Rank r of the update (default 8). */
  r?: number;
  /** The update is scaled by alpha / r (default alpha 8). */
  alpha?: number;
  /** Dropout on the adapter's input, in [0, 1) (default 0: none). */
  dropout?: number;
  /** Seeds A's initialisation and the adapter dropout masks; absent: the default generator. */
  seed?: number;
}

/** One adapted Linear. */
export interface LoraLayer {
  name: string;
  base: Linear;
  loraA: Linear;
  loraB: Linear;
  dropout: Dropout | null;
  scaling: number;
}

/** PEFT's rule for a list of target names: an exact match, or a match of a whole dotted suffix. */
function matches(name: string, targets: readonly string[]): boolean {
  return targets.some((t) => name === t || name.endsWith(`.${t}`));
}

/** LoRA's A and B layers, so that a second applyLora never adapts an adapter. */
const adapterParts = new WeakSet<Module>();

/** What applyLora returns: the adapted layers, merging, and trainable-size accounting. */
export class LoraHandle {
  private mergedState = false;

  constructor(
    readonly model: Module,
    readonly layers: readonly LoraLayer[],
    private readonly adapters: ReadonlyMap<Linear, (x: Tensor) => Tensor>,
  ) {}

  /** Dotted names of the adapted Linear layers, in module order. */
  get modules(): string[] {
    return this.layers.map((l) => l.name);
  }

  /** Elements of the model's parameters that require grad (the adapters, unless more was unfrozen since). */
  get numTrainable(): number {
    return this.model.numParameters({ trainableOnly: true });
  }

  get merged(): boolean {
    return this.mergedState;
  }

  /** The adapter weights with their dotted names (`...lora_A.weight`, `...lora_B.weight`): what an optimizer needs. */
  namedParameters(): [string, Tensor][] {
    return this.layers.flatMap((l) => [
      [`${l.name}.lora_A.weight`, l.loraA.weight] as [string, Tensor],
      [`${l.name}.lora_B.weight`, l.loraB.weight] as [string, Tensor],
    ]);
  }

  /**
   * Folds each update into its base weight, W += (alpha / r)·B·A, in place and without
   * recording, and turns the adapter path off: the model then runs at the base model's cost.
   * Merging twice is an error (it would add the update twice).
   */
  merge(): void {
    if (this.mergedState) throw new ValueError('LoraHandle.merge', 'the adapters are already merged; call unmerge() first');
    noGrad(() => {
      for (const l of this.layers) {
        copy_(l.base.weight, add(l.base.weight, delta(l)));
        l.base.adapter = null;
      }
    });
    this.mergedState = true;
  }

  /** Undoes merge(): W −= (alpha / r)·B·A (equal to the original up to rounding) and the adapter path back on. */
  unmerge(): void {
    if (!this.mergedState) throw new ValueError('LoraHandle.unmerge', 'the adapters are not merged; there is nothing to unmerge');
    noGrad(() => {
      for (const l of this.layers) {
        copy_(l.base.weight, sub(l.base.weight, delta(l)));
        l.base.adapter = this.adapters.get(l.base) ?? null;
      }
    });
    this.mergedState = false;
  }
}

/** (alpha / r)·B·A as [out, in], in the adapter dtype (the caller's add promotes, copy_ casts back). */
function delta(l: LoraLayer): Tensor {
  return mul(matmul(l.loraB.weight, l.loraA.weight), l.scaling);
}

function checkOptions(options: LoraOptions): Required<Omit<LoraOptions, 'seed'>> & { seed?: number } {
  const op = 'applyLora';
  if (options === null || typeof options !== 'object') throw new ValueError(op, 'expected options { targetModules, r, alpha, dropout, seed }');
  const { targetModules } = options;
  if (!Array.isArray(targetModules) || targetModules.length === 0 || !targetModules.every((t) => typeof t === 'string' && t !== '')) {
    throw new ValueError(op, `targetModules must be a non-empty list of module names (e.g. ['q_proj', 'v_proj']), got ${JSON.stringify(targetModules)}`);
  }
  const r = options.r ?? 8;
  const alpha = options.alpha ?? 8;
  const dropout = options.dropout ?? 0;
  if (!Number.isInteger(r) || r < 1) throw new ValueError(op, `r must be a positive integer, got ${r}`);
  if (typeof alpha !== 'number' || !Number.isFinite(alpha)) throw new ValueError(op, `alpha must be a finite number, got ${alpha}`);
  if (typeof dropout !== 'number' || !(dropout >= 0 && dropout < 1)) throw new ValueError(op, `dropout must be in [0, 1), got ${dropout}`);
  if (options.seed !== undefined && !Number.isFinite(options.seed)) throw new ValueError(op, `seed must be a finite number, got ${options.seed}`);
  return { targetModules, r, alpha, dropout, seed: options.seed };
}

/**
 * Adds LoRA adapters to every Linear of `model` whose name matches `targetModules` and freezes
 * all of the model's existing parameters. Everything is checked before the model is changed:
 * no match, a matching module that is not a Linear, or a layer that already has an adapter is
 * an error and leaves the model as it was. Parameter names are refreshed (nameParameters).
 */
export function applyLora(model: Module, options: LoraOptions): LoraHandle {
  const op = 'applyLora';
  const { targetModules, r, alpha, dropout, seed } = checkOptions(options);
  const all = model.namedModules().filter(([, m]) => !adapterParts.has(m));
  const linears = all.filter(([, m]) => m instanceof Linear).map(([n]) => n);
  const matched = all.filter(([name]) => name !== '' && matches(name, targetModules));
  if (matched.length === 0) {
    const shown = linears.slice(0, 8).join(', ');
    throw new ValueError(
      op,
      `no module matches targetModules [${targetModules.join(', ')}]; the model's Linear layers include ` +
        `${shown || '(none)'}${linears.length > 8 ? `, ... (${linears.length} in all)` : ''}`,
    );
  }
  const notLinear = matched.filter(([, m]) => !(m instanceof Linear));
  if (notLinear.length > 0) {
    const [name, m] = notLinear[0];
    throw new ValueError(
      op,
      `'${name}' (${m.constructor.name}) matches targetModules but is not a Linear; LoRA adapts Linear layers only, ` +
        'so name the Linear layers inside it (or make the entry more specific)',
    );
  }
  const already = matched.find(([, m]) => (m as Linear).adapter !== null);
  if (already) throw new ValueError(op, `'${already[0]}' already has an adapter; a Linear takes one LoRA adapter`);

  model.requiresGrad_(false);
  const gen = seed === undefined ? defaultGenerator : new Generator(seed);
  const scaling = alpha / r;
  const layers: LoraLayer[] = [];
  const adapters = new Map<Linear, (x: Tensor) => Tensor>();
  for (const [name, m] of matched) {
    const base = m as Linear;
    const baseDtype = base.weight.dtype;
    const dtype: DType = isHalf(baseDtype) ? 'float32' : baseDtype;
    // A: kaiming_uniform(a = √5), Linear's own default init; B: zeros, so B·A = 0 at the start
    const loraA = base.registerModule('lora_A', new Linear(base.inFeatures, r, { bias: false, dtype, generator: gen }));
    const loraB = base.registerModule('lora_B', new Linear(r, base.outFeatures, { bias: false, dtype, generator: gen }));
    init.zeros_(loraB.weight);
    const drop = dropout > 0 ? base.registerModule('lora_dropout', new Dropout(dropout, gen)) : null;
    for (const part of [loraA, loraB, ...(drop ? [drop] : [])]) {
      adapterParts.add(part);
      part.training = base.training; // new modules follow the model's train/eval mode
    }
    const adapter = (x: Tensor): Tensor => {
      const xa = x.dtype === dtype ? x : cast(x, dtype);
      const h = loraB.forward(loraA.forward(drop ? drop.forward(xa) : xa));
      const scaled = scaling === 1 ? h : mul(h, scaling);
      const outDtype = promoteTypes(promoteTypes(x.dtype, baseDtype), base.bias?.dtype ?? baseDtype);
      return scaled.dtype === outDtype ? scaled : cast(scaled, outDtype);
    };
    base.adapter = adapter;
    adapters.set(base, adapter);
    layers.push({ name, base, loraA, loraB, dropout: drop, scaling });
  }
  model.nameParameters();
  return new LoraHandle(model, layers, adapters);
}
