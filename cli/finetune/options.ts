/**
 * `blockgrad finetune`'s options: one table (flag, help, how a value is read, default), which
 * builds the commander program and its --help, and the checks that need several options at once.
 *
 * Options split in two:
 * - the run's *configuration* (model, data, method, hyperparameters, sizes, seed): saved in every
 *   checkpoint, and on `--resume` taken from it; a flag given again must agree with it, because a
 *   resumed run that changed its learning rate or data would not be the run it continues;
 * - *settings* (`--out`, `--eval-every`, `--save-every`, `--resume`): how this process reports
 *   and saves; free to change between an interrupted run and its resumption.
 */
import { Command, Option } from 'commander';
import { SWITCH_MODES } from '../../src';

/** A problem the user can fix: one line on stderr and exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export const METHODS = ['badam', 'adam', 'adamw', 'lora', 'lomo'] as const;
export type Method = (typeof METHODS)[number];
export const PRESETS = ['tiny', 'small'] as const;
export type PresetName = (typeof PRESETS)[number];
export const SCHEDULERS = ['constant', 'linear', 'cosine'] as const;
export const DTYPES = ['float32', 'float16', 'bfloat16'] as const;
export type TrainDType = (typeof DTYPES)[number];

/** Everything that decides what the run computes; a checkpoint holds it, and a resume checks it. */
export interface FinetuneConfig {
  /** A Hugging Face model directory, or null: a fresh model from `preset`. */
  model: string | null;
  preset: PresetName;
  /** Convert the model to this dtype before training (null: keep the model's). */
  dtype: TrainDType | null;
  data: string[];
  evalData: string[];
  /** Fraction of the training examples held out for evaluation (0: none). */
  valSplit: number;
  /** Tokens per example (null: 512, or the model's context when shorter). */
  maxLength: number | null;
  optimizer: Method;
  badamMode: 'block' | 'ratio';
  switchEvery: number;
  switchMode: (typeof SWITCH_MODES)[number];
  startBlock: number | null;
  updateRatio: number;
  maskMode: 'adjacent' | 'scatter';
  includeEmbedding: boolean;
  includeLmHead: boolean;
  loraR: number;
  loraAlpha: number;
  loraTargets: string[];
  lr: number;
  weightDecay: number;
  lrScheduler: (typeof SCHEDULERS)[number];
  warmupSteps: number;
  maxGradNorm: number | null;
  batchSize: number;
  gradAccum: number;
  /** Optimizer steps; null: `epochs` passes over the training data. */
  steps: number | null;
  epochs: number;
  seed: number;
  gradientCheckpointing: boolean;
  /** Dynamic loss scaling of a float16 model ('dynamic'), or none ('off'); bfloat16 and float32 need none. */
  lossScaling: 'dynamic' | 'off';
}

/** How this process reports and saves; may differ between a run and its resumption. */
export interface RunSettings {
  /** null: finetune-output, or on --resume the run directory of the checkpoint. */
  out: string | null;
  /** A checkpoint directory, or a run's output directory (its newest checkpoint). */
  resume: string | null;
  /** Evaluate every N steps (0: at the end only; null: about ten times per run). */
  evalEvery: number | null;
  /** Save a checkpoint every N steps (0: at the end only). */
  saveEvery: number;
  /** BAdam's console lines: 0 none, 1 one per block switch. */
  badamVerbose: 0 | 1;
  /** The backend to train on (null: the library's default, wasm where WebAssembly SIMD runs). */
  backend: 'cpu' | 'wasm' | null;
  /** wasm threads (null: all cores). */
  threads: number | null;
  /** Print the run as a LLaMA-Factory YAML and exit, without training. */
  printLlamaFactory: boolean;
}

export interface ParsedArgs {
  config: FinetuneConfig;
  settings: RunSettings;
  /** Configuration keys the user gave on the command line (a resume checks them against the checkpoint). */
  given: (keyof FinetuneConfig)[];
  /** Settings the user gave (a resume takes the others from the run it continues). */
  givenSettings: (keyof RunSettings)[];
}

// ------------------------------------------------------------------ value readers

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => (flag: string, v: string): number => {
  const t = v.trim();
  const n = Number(t);
  if (!/^[+-]?\d+$/.test(t) || !Number.isSafeInteger(n)) throw new UsageError(`${flag} must be an integer, got '${v}'`);
  if (n < min || n > max) throw new UsageError(`${flag} must be an integer from ${min} to ${max === Number.MAX_SAFE_INTEGER ? 'up' : max}, got ${n}`);
  return n;
};

const num = (min: number, max: number, { openMin = false, openMax = false } = {}) => (flag: string, v: string): number => {
  const n = Number(v.trim());
  if (v.trim() === '' || !Number.isFinite(n)) throw new UsageError(`${flag} must be a number, got '${v}'`);
  if ((openMin ? n <= min : n < min) || (openMax ? n >= max : n > max)) {
    throw new UsageError(`${flag} must be in ${openMin ? '(' : '['}${min}, ${max}${openMax ? ')' : ']'}, got ${n}`);
  }
  return n;
};

const oneOf = <T extends string>(choices: readonly T[], synonyms: Record<string, T> = {}) => (flag: string, v: string): T => {
  const t = v.trim().toLowerCase();
  if ((choices as readonly string[]).includes(t)) return t as T;
  if (t in synonyms) return synonyms[t];
  throw new UsageError(`${flag} must be one of ${choices.join(', ')}, got '${v}'`);
};

const path = (flag: string, v: string): string => {
  if (v.trim() === '') throw new UsageError(`${flag} needs a path`);
  return v;
};

const list = (flag: string, v: string): string[] => {
  const items = v.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (items.length === 0) throw new UsageError(`${flag} needs a comma-separated list of names`);
  return items;
};

// ------------------------------------------------------------------ the table

interface Spec {
  /** commander's flags, e.g. '--lr <rate>'. */
  flags: string;
  help: string;
  /** Reads one value (a variadic option's values each). */
  read?: (flag: string, value: string) => unknown;
  /** LLaMA-Factory's name, accepted as a hidden alias (`--badam_switch_interval`). */
  alias?: string;
  group: string;
}

const CONFIG_SPECS: Record<keyof FinetuneConfig, Spec> = {
  model: { flags: '--model <dir>', help: 'a Hugging Face model directory (Llama); default: a fresh model from --preset', read: path, group: 'Model' },
  preset: { flags: '--preset <name>', help: 'the fresh model without --model: tiny (hidden 64, 4 layers) or small (hidden 256, 8 layers); default tiny', read: oneOf(PRESETS), group: 'Model' },
  dtype: { flags: '--dtype <dtype>', help: "train in float32, float16 or bfloat16 (default: the model's dtype)", read: oneOf(DTYPES), group: 'Model' },
  data: { flags: '--data <files...>', help: 'Alpaca-format JSON files ([{ instruction, input?, output }]); required', read: path, group: 'Data' },
  evalData: { flags: '--eval-data <files...>', help: 'held-out Alpaca files for the evaluation loss and perplexity', read: path, group: 'Data' },
  valSplit: { flags: '--val-split <fraction>', help: 'hold out this fraction of --data for evaluation instead (default 0)', read: num(0, 1, { openMax: true }), group: 'Data' },
  maxLength: { flags: '--max-length <tokens>', help: "tokens per example; longer ones are cut and counted (default: 512, or the model's context if shorter)", read: int(2), group: 'Data' },
  optimizer: { flags: '--optimizer <name>', help: 'badam, adam, adamw, lora (adapters + Adam) or lomo (default badam)', read: oneOf(METHODS), group: 'Method' },
  badamMode: { flags: '--badam-mode <mode>', help: 'block (one decoder layer at a time) or ratio (a fraction of every matrix) (default block)', read: oneOf(['block', 'ratio'] as const, { layer: 'block' }), alias: '--badam_mode', group: 'BAdam' },
  switchEvery: { flags: '--switch-every <steps>', help: 'steps per block, or between ratio masks (default 50)', read: int(1), alias: '--badam_switch_interval', group: 'BAdam' },
  switchMode: { flags: '--switch-mode <mode>', help: 'block order: ascending, descending, random or fixed (default ascending)', read: oneOf(SWITCH_MODES), alias: '--badam_switch_mode', group: 'BAdam' },
  startBlock: { flags: '--start-block <index>', help: 'the first block (default: the first of the order)', read: int(0), alias: '--badam_start_block', group: 'BAdam' },
  updateRatio: { flags: '--update-ratio <fraction>', help: 'ratio mode: the fraction of each matrix updated (default 0.05)', read: num(0, 1, { openMin: true }), alias: '--badam_update_ratio', group: 'BAdam' },
  maskMode: { flags: '--mask-mode <mode>', help: 'ratio mode: adjacent or scatter (default adjacent)', read: oneOf(['adjacent', 'scatter'] as const), alias: '--badam_mask_mode', group: 'BAdam' },
  includeEmbedding: { flags: '--include-embedding', help: 'the embedding is a block of its own', group: 'BAdam' },
  includeLmHead: { flags: '--include-lm-head', help: 'the final norm and lm_head are a block of their own', group: 'BAdam' },
  loraR: { flags: '--lora-r <rank>', help: 'LoRA rank (default 8)', read: int(1), group: 'LoRA' },
  loraAlpha: { flags: '--lora-alpha <alpha>', help: 'LoRA scaling numerator (default 16)', read: num(0, Infinity, { openMin: true }), group: 'LoRA' },
  loraTargets: { flags: '--lora-targets <names>', help: 'comma-separated module names (default: every projection)', read: list, group: 'LoRA' },
  lr: { flags: '--lr <rate>', help: 'peak learning rate (default 1e-4)', read: num(0, Infinity, { openMin: true }), group: 'Training' },
  weightDecay: { flags: '--weight-decay <rate>', help: 'weight decay (AdamW: decoupled; default 0)', read: num(0, Infinity), group: 'Training' },
  lrScheduler: { flags: '--lr-scheduler <name>', help: 'constant, linear or cosine decay after the warmup (default constant)', read: oneOf(SCHEDULERS), group: 'Training' },
  warmupSteps: { flags: '--warmup-steps <steps>', help: 'linear warmup from 0 (default 0)', read: int(0), group: 'Training' },
  maxGradNorm: { flags: '--max-grad-norm <norm>', help: 'clip the gradient norm of what is trained (default: no clipping)', read: num(0, Infinity, { openMin: true }), group: 'Training' },
  batchSize: { flags: '--batch-size <examples>', help: 'examples per micro-batch (default 8)', read: int(1), group: 'Training' },
  gradAccum: { flags: '--grad-accum <micro-batches>', help: 'micro-batches per optimizer step (default 1); a 16-bit model sums them in float32', read: int(1), group: 'Training' },
  steps: { flags: '--steps <steps>', help: 'optimizer steps (default: --epochs passes over the data)', read: int(1), group: 'Training' },
  epochs: { flags: '--epochs <passes>', help: 'passes over the training data when --steps is not given (default 1)', read: int(1), group: 'Training' },
  seed: { flags: '--seed <seed>', help: 'seed of the fresh model, the split, the data order and BAdam (default 0)', read: int(0, 2 ** 32 - 1), group: 'Training' },
  gradientCheckpointing: { flags: '--gradient-checkpointing', help: "recompute each decoder layer's forward in backward: less memory, about 1.3x the time", group: 'Training' },
  lossScaling: { flags: '--loss-scaling <mode>', help: 'dynamic (default: a float16 model scales its loss so that small gradients survive) or off', read: oneOf(['dynamic', 'off'] as const), group: 'Training' },
};

const SETTING_SPECS: Record<keyof RunSettings, Spec> = {
  out: { flags: '--out <dir>', help: 'output directory: checkpoints, metrics.jsonl, loss.svg (default finetune-output; on --resume, the run it resumes)', read: path, group: 'Output' },
  resume: { flags: '--resume <dir>', help: "continue a run from a checkpoint directory, or from a run's --out (its newest checkpoint)", read: path, group: 'Output' },
  evalEvery: { flags: '--eval-every <steps>', help: 'evaluate every N steps (default: about ten times; 0: at the end only)', read: int(0), group: 'Output' },
  saveEvery: { flags: '--save-every <steps>', help: 'save a checkpoint every N steps (default 0: at the end, and on Ctrl-C)', read: int(0), group: 'Output' },
  badamVerbose: { flags: '--badam-verbose <level>', help: 'BAdam: 1 prints each block switch (default 1), 0 nothing', read: int(0, 1), alias: '--badam_verbose', group: 'Output' },
  backend: { flags: '--backend <name>', help: 'cpu (the readable reference) or wasm (SIMD, threads; the default where it runs); a bit-exact resume needs the same one', read: oneOf(['cpu', 'wasm'] as const), group: 'Output' },
  threads: { flags: '--threads <count>', help: 'wasm threads (default: all cores)', read: int(1, 64), group: 'Output' },
  printLlamaFactory: { flags: '--print-llamafactory', help: "print this run as LLaMA-Factory's training YAML (to continue on GPUs with PyTorch BAdam) and exit", group: 'Output' },
};

export const CONFIG_DEFAULTS: FinetuneConfig = {
  model: null,
  data: [],
  preset: 'tiny',
  dtype: null,
  evalData: [],
  valSplit: 0,
  maxLength: null,
  optimizer: 'badam',
  badamMode: 'block',
  switchEvery: 50,
  switchMode: 'ascending',
  startBlock: null,
  updateRatio: 0.05,
  maskMode: 'adjacent',
  includeEmbedding: false,
  includeLmHead: false,
  loraR: 8,
  loraAlpha: 16,
  loraTargets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
  lr: 1e-4,
  weightDecay: 0,
  lrScheduler: 'constant',
  warmupSteps: 0,
  maxGradNorm: null,
  batchSize: 8,
  gradAccum: 1,
  steps: null,
  epochs: 1,
  seed: 0,
  gradientCheckpointing: false,
  lossScaling: 'dynamic',
};

const SETTING_DEFAULTS: RunSettings = { out: null, resume: null, evalEvery: null, saveEvery: 0, badamVerbose: 1, backend: null, threads: null, printLlamaFactory: false };

/** The flag of a configuration key, for messages: 'lr' -> '--lr'. */
export function flagOf(key: keyof FinetuneConfig): string {
  return CONFIG_SPECS[key].flags.split(' ')[0];
}

/** commander's attribute name for a flag: '--eval-data <files...>' -> 'evalData'. */
function attributeOf(flags: string): string {
  const long = flags.split(' ')[0].replace(/^--/, '');
  return long.includes('_') ? long : long.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

const GROUP_ORDER = ['Model', 'Data', 'Method', 'BAdam', 'LoRA', 'Training', 'Output'];

/** The commander program of `blockgrad finetune`; errors throw (exitOverride) instead of exiting. */
export function finetuneCommand(): Command {
  const cmd = new Command('blockgrad finetune')
    .description(
      'Fine-tunes a Llama-style model directory (or a fresh preset model) on Alpaca-format instruction data with BAdam, ' +
        'Adam/AdamW, LoRA or LOMO; writes checkpoints, metrics.jsonl and a loss chart to --out.',
    )
    .usage('--data FILE... [options]')
    .addHelpOption(new Option('-h, --help', 'show this help').helpGroup('Help:'))
    .exitOverride()
    .allowExcessArguments(false)
    .showSuggestionAfterError(true);
  for (const group of GROUP_ORDER) {
    for (const spec of [...Object.values(CONFIG_SPECS), ...Object.values(SETTING_SPECS)]) {
      if (spec.group !== group) continue;
      cmd.addOption(new Option(spec.flags, spec.help).helpGroup(`${group}:`));
      if (spec.alias) {
        const value = spec.flags.slice(spec.flags.indexOf(' '));
        cmd.addOption(new Option(`${spec.alias}${spec.flags.includes('<') ? value : ''}`).hideHelp());
      }
    }
  }
  cmd.addHelpText(
    'after',
    "\nLLaMA-Factory's --badam_* names are accepted for the BAdam options (--badam_mode layer is --badam-mode block)." +
      '\nExample: blockgrad finetune --model ./my-llama --data train.json --val-split 0.1 --steps 200 --switch-every 25 --out runs/badam',
  );
  return cmd;
}

/** One option's value from the parsed flags (its alias counts as the option), read and checked. */
function valueOf(cmd: Command, spec: Spec): { given: boolean; value?: unknown } {
  const main = cmd.getOptionValue(attributeOf(spec.flags));
  const alias = spec.alias ? cmd.getOptionValue(attributeOf(spec.alias)) : undefined;
  const flag = spec.flags.split(' ')[0];
  if (main !== undefined && alias !== undefined) throw new UsageError(`${flag} and ${spec.alias} are the same option; give one of them`);
  const raw = main ?? alias;
  if (raw === undefined) return { given: false };
  const used = main !== undefined ? flag : (spec.alias as string);
  if (typeof raw === 'boolean' || !spec.read) return { given: true, value: raw };
  if (Array.isArray(raw)) return { given: true, value: raw.map((v: string) => spec.read!(used, v)) };
  return { given: true, value: spec.read(used, raw as string) };
}

/** argv (after `finetune`) -> the configuration, the settings and which configuration keys were given. Throws UsageError. */
export function parseFinetuneArgs(argv: readonly string[], cmd = finetuneCommand()): ParsedArgs | { help: string } {
  let helpText: string | null = null;
  cmd.configureOutput({
    writeOut: (s) => (helpText = (helpText ?? '') + s),
    writeErr: () => {},
    outputError: () => {},
  });
  try {
    cmd.parse([...argv], { from: 'user' });
  } catch (err) {
    const e = err as { code?: string; message?: string };
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.help') return { help: helpText ?? cmd.helpInformation() };
    throw new UsageError(String(e.message ?? err).replace(/^error: /, '').split('\n')[0]);
  }
  const given: (keyof FinetuneConfig)[] = [];
  const config: Record<string, unknown> = { ...CONFIG_DEFAULTS };
  for (const [key, spec] of Object.entries(CONFIG_SPECS)) {
    const v = valueOf(cmd, spec);
    if (!v.given) continue;
    config[key] = v.value;
    given.push(key as keyof FinetuneConfig);
  }
  const settings: Record<string, unknown> = { ...SETTING_DEFAULTS };
  const givenSettings: (keyof RunSettings)[] = [];
  for (const [key, spec] of Object.entries(SETTING_SPECS)) {
    const v = valueOf(cmd, spec);
    if (!v.given) continue;
    settings[key] = v.value;
    givenSettings.push(key as keyof RunSettings);
  }
  const s = settings as unknown as RunSettings;
  if (s.resume === null && !given.includes('data')) throw new UsageError('--data is required: one or more Alpaca-format JSON files');
  if (given.includes('steps') && given.includes('epochs')) throw new UsageError('give --steps or --epochs, not both');
  if (given.includes('evalData') && given.includes('valSplit')) throw new UsageError('give --eval-data or --val-split, not both');
  if (given.includes('model') && given.includes('preset')) throw new UsageError('--preset builds a fresh model; it cannot be combined with --model');
  return { config: config as unknown as FinetuneConfig, settings: s, given, givenSettings };
}
