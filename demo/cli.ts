/**
 * The demo's command line: flags (node:util parseArgs, strict), their validation, and the exit
 * codes. Every problem a user can cause (an unknown flag, a bad value, a missing or malformed
 * data file, an output path that is not a folder) is one line on stderr and exit code 2; an
 * unexpected failure is one line and exit code 1 (set DEMO_DEBUG=1 for the stack trace).
 */
import { parseArgs } from 'node:util';
import { existsSync, statSync } from 'node:fs';
import { BlockgradError } from '../src';
import { DEFAULTS, OPTIMIZERS, UsageError, runDemo, type DemoOptions, type OptimizerName } from './demo';
import { type ConsoleIO } from '../cli/progress';

export { UsageError };

export const USAGE = `Usage: npm run demo -- [options]

Fine-tunes a small Llama-style model (byte tokenizer, hidden size 64) on instruction data with
BAdam and, for comparison, mixed-precision Adam on all parameters: same pretrained float16
weights, same batches, same number of steps. Pretrains the model first when <out> has no
pretrained.safetensors, and reuses that checkpoint on later runs.

Options:
  --steps N            fine-tuning steps per optimizer (default ${DEFAULTS.steps})
  --layers N           decoder layers = BAdam blocks (default ${DEFAULTS.layers})
  --optimizer NAME     badam | adam | lora | lomo | all (default: badam and adam);
                       any choice but adam also runs adam for comparison, all runs all four
  --data FILE          an Alpaca-format JSON file ([{ instruction, input?, output }, ...]);
                       default: the generated instruction set that ships with blockgrad
  --out DIR            output folder for loss.svg, summary.json and the checkpoint
                       (default ${DEFAULTS.out})
  --seed N             seed of the data split, batch order and initialisation (default ${DEFAULTS.seed})
  --pretrain-steps N   Adam steps of the brief pretraining when there is no checkpoint
                       (default ${DEFAULTS.pretrainSteps}; 0 starts fine-tuning from random weights)
  --switch-every N     BAdam steps per block before switching to the next
                       (default: steps / (2 x layers): two block-epochs, every block trained twice)
  -h, --help           show this help

Example: npm run demo -- --optimizer lora --steps 40 --data my-data.json --out runs/lora`;

const OPTIONS = {
  steps: { type: 'string' },
  layers: { type: 'string' },
  optimizer: { type: 'string' },
  data: { type: 'string' },
  out: { type: 'string' },
  seed: { type: 'string' },
  'pretrain-steps': { type: 'string' },
  'switch-every': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** An integer flag value in [min, max], written as plain decimal digits. */
function intFlag(name: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (!/^[+-]?\d+$/.test(v)) throw new UsageError(`--${name} must be an integer, got '${value}'`);
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new UsageError(`--${name} must be an integer from ${min} to ${max}, got ${v}`);
  return n;
}

/** parseArgs' own messages, reduced to one line that names the flag. */
function parseError(err: unknown): UsageError {
  const e = err as { code?: string; message?: string };
  const first = String(e.message ?? err).split('\n')[0];
  const ambiguous = /^Option '(--[\w-]+)' argument is ambiguous/.exec(first);
  if (ambiguous) return new UsageError(`${ambiguous[1]} needs a value (the next word starts with '-'; write ${ambiguous[1]}=VALUE if you mean it)`);
  const missing = /^Option '(--[\w-]+)(?: <value>)?' argument missing/.exec(first);
  if (missing) return new UsageError(`${missing[1]} needs a value`);
  const unknown = /^Unknown option '([^']+)'/.exec(first);
  if (unknown) return new UsageError(`unknown option ${unknown[1]}`);
  const positional = /^Unexpected argument '([^']*)'/.exec(first);
  if (positional) return new UsageError(`unexpected argument '${positional[1]}' (every option is written --name VALUE)`);
  return new UsageError(first);
}

/** The demo's options from argv (without node and the script), or { help: true }. Throws UsageError. */
export function parseDemoArgs(argv: readonly string[]): { help: true } | { help: false; options: DemoOptions } {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: [...argv], options: OPTIONS, strict: true, allowPositionals: false }));
  } catch (err) {
    throw parseError(err);
  }
  if (values.help) return { help: true };
  const str = (k: string) => values[k] as string | undefined;

  const optimizerFlag = str('optimizer');
  let optimizers: OptimizerName[] = ['badam', 'adam'];
  if (optimizerFlag !== undefined) {
    const o = optimizerFlag.trim().toLowerCase();
    if (o === 'all') optimizers = [...OPTIMIZERS];
    else if ((OPTIMIZERS as readonly string[]).includes(o)) optimizers = o === 'adam' ? ['adam'] : [o as OptimizerName, 'adam'];
    else throw new UsageError(`--optimizer must be one of ${OPTIMIZERS.join(', ')} or all, got '${optimizerFlag}'`);
  }

  const data = str('data');
  if (data !== undefined) {
    if (data.trim() === '') throw new UsageError('--data needs a file path');
    if (!existsSync(data)) throw new UsageError(`--data: no such file '${data}'`);
    if (!statSync(data).isFile()) throw new UsageError(`--data: '${data}' is not a file`);
  }
  const out = str('out') ?? DEFAULTS.out;
  if (out.trim() === '') throw new UsageError('--out needs a folder path');
  if (existsSync(out) && !statSync(out).isDirectory()) throw new UsageError(`--out: '${out}' exists and is not a folder`);

  const steps = intFlag('steps', str('steps'), 1, 100_000) ?? DEFAULTS.steps;
  const options: DemoOptions = {
    steps,
    layers: intFlag('layers', str('layers'), 1, 32) ?? DEFAULTS.layers,
    optimizers,
    data,
    out,
    seed: intFlag('seed', str('seed'), 0, 2 ** 32 - 1) ?? DEFAULTS.seed,
    pretrainSteps: intFlag('pretrain-steps', str('pretrain-steps'), 0, 100_000) ?? DEFAULTS.pretrainSteps,
    switchEvery: intFlag('switch-every', str('switch-every'), 1, 100_000),
  };
  return { help: false, options };
}

/**
 * Runs the demo for argv and returns the process exit code: 0 done (or --help), 2 a usage or
 * data problem, 1 anything else. Never throws.
 */
export async function cli(argv: readonly string[], io: ConsoleIO): Promise<number> {
  const fail = (code: number, message: string) => {
    io.err.write(`demo: ${message.split('\n')[0]}\n`);
    return code;
  };
  let parsed: ReturnType<typeof parseDemoArgs>;
  try {
    parsed = parseDemoArgs(argv);
  } catch (err) {
    if (err instanceof UsageError) return fail(2, `${err.message} (see --help)`);
    return fail(1, String((err as Error)?.message ?? err));
  }
  if (parsed.help) {
    io.out.write(`${USAGE}\n`);
    return 0;
  }
  try {
    await runDemo(parsed.options, io);
    return 0;
  } catch (err) {
    io.out.write(io.out.isTTY ? '\n' : '');
    if (err instanceof UsageError) return fail(2, err.message);
    if (process.env.DEMO_DEBUG) io.err.write(`${(err as Error)?.stack ?? err}\n`);
    const message = err instanceof BlockgradError || err instanceof Error ? err.message : String(err);
    return fail(1, `failed: ${message}${process.env.DEMO_DEBUG ? '' : ' (DEMO_DEBUG=1 shows the stack trace)'}`);
  }
}
