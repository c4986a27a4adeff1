/**
 * `blockgrad finetune` end to end, at a size that runs in seconds: a tiny Llama model directory,
 * a few dozen generated instructions, the cpu backend.
 *
 * The central property: a run interrupted at step k and resumed from its checkpoint gives, bit for
 * bit, the losses (train and eval), the learning rates and the saved weights, optimizer state and
 * adapters of a run that was never interrupted, for BAdam (block and ratio), Adam on a float16
 * model with float32 micro-batch sums, and LoRA. Then what a user meets: checkpoints that
 * fromPretrained loads, tokenizer files carried along, metrics.jsonl and loss.svg, the truncation
 * warning, and one line with exit code 2 for every bad input, with no checkpoint half-written.
 * The real command (dist/cli/blockgrad.cjs, built by `npm test`) is checked for Ctrl-C.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ByteTokenizer, LlamaForCausalLM, Tokenizer, generateInstructionDataset, loadSafetensorsFile, type Tensor } from '../../src';
import { finetuneCli } from '../../cli/finetune/cli';
import { parseFinetuneArgs, type FinetuneConfig } from '../../cli/finetune/options';
import { createMethod } from '../../cli/finetune/setup';
import { sentencepieceTokenizerJson } from '../data/tokenizer-fixtures';

const root = resolve(__dirname, '../..');
let tmp: string;
let modelDir: string;
let train: string;
let evalFile: string;

function collector() {
  const chunks: string[] = [];
  return { write: (s: string) => void chunks.push(s), isTTY: false, text: () => chunks.join('') };
}

async function finetune(args: string[], afterStep?: (step: number, abort: () => void) => void) {
  const out = collector();
  const err = collector();
  const controller = new AbortController();
  const code = await finetuneCli(args, { out, err }, { signal: controller.signal, afterStep: afterStep && ((s) => afterStep(s, () => controller.abort())) });
  return { code, out: out.text(), err: err.text() };
}

interface Metric {
  step: number;
  loss: number;
  lr: number;
  activeBlock: number | null;
  evalLoss?: number;
}
const metricsOf = (dir: string): Metric[] =>
  readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
/** The deterministic part of each metrics line. */
const trace = (dir: string) => metricsOf(dir).map(({ step, loss, lr, activeBlock, evalLoss }) => ({ step, loss, lr, activeBlock, evalLoss }));
const bytes = (file: string) => readFileSync(file);

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'blockgrad-finetune-'));
  modelDir = join(tmp, 'tiny-llama');
  const model = new LlamaForCausalLM({ vocabSize: new ByteTokenizer().vocabSize, hiddenSize: 32, intermediateSize: 64, numHiddenLayers: 2, numAttentionHeads: 4, numKeyValueHeads: 2, maxPositionEmbeddings: 128, seed: 3 });
  await model.savePretrained(modelDir);
  const examples = generateInstructionDataset({ count: 40, seed: 5 }).map(({ instruction, input, output }) => ({ instruction, input, output }));
  train = join(tmp, 'train.json');
  evalFile = join(tmp, 'eval.json');
  writeFileSync(train, JSON.stringify(examples.slice(0, 32)));
  writeFileSync(evalFile, JSON.stringify(examples.slice(32)));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The flags every run here shares: the tiny model, short sequences, small batches. */
const base = () => ['--model', modelDir, '--data', train, '--eval-data', evalFile, '--max-length', '64', '--batch-size', '4', '--eval-every', '2', '--lr', '3e-3'];

/**
 * Runs `flags` for 6 steps uninterrupted, and again interrupted after step 3 and resumed; returns
 * both output directories after checking that they agree bit for bit.
 */
async function interruptAndResume(name: string, flags: string[], files: string[]) {
  const whole = join(tmp, `${name}-whole`);
  const parts = join(tmp, `${name}-parts`);
  const a = await finetune([...base(), ...flags, '--steps', '6', '--out', whole]);
  expect(a.err).toBe('');
  expect(a.code).toBe(0);

  const b = await finetune([...base(), ...flags, '--steps', '6', '--out', parts], (step, abort) => step === 3 && abort());
  expect(b.code).toBe(130);
  expect(b.out).toContain(`interrupted at step 3 of 6`);
  expect(readdirSync(parts).filter((f) => f.startsWith('checkpoint-'))).toEqual(['checkpoint-000003']);
  expect(metricsOf(parts)).toHaveLength(3);

  const c = await finetune(['--resume', parts]);
  expect(c.err).toBe('');
  expect(c.code).toBe(0);
  expect(c.out).toContain('resuming');

  expect(trace(parts)).toEqual(trace(whole));
  expect(trace(whole).filter((m) => m.evalLoss !== undefined).map((m) => m.step)).toEqual([2, 4, 6]);
  for (const file of files) {
    expect(bytes(join(parts, 'checkpoint-000006', file)).equals(bytes(join(whole, 'checkpoint-000006', file)))).toBe(true);
  }
  return { whole, parts };
}

describe('resume is bit-exact', () => {
  test('BAdam, block mode, cosine schedule with warmup', async () => {
    const { whole } = await interruptAndResume('badam', ['--switch-every', '2', '--lr-scheduler', 'cosine', '--warmup-steps', '2'], ['model.safetensors', 'optimizer.safetensors']);
    const m = metricsOf(whole);
    // two steps per block, ascending over the two layers
    expect(m.map((x) => x.activeBlock)).toEqual([0, 0, 1, 1, 0, 0]);
    // the lr each step used: warmup from 0 over two steps, then half a cosine over the other four
    expect(m.slice(0, 3).map((x) => x.lr)).toEqual([0, 1.5e-3, 3e-3]);
    expect(m[3].lr).toBeCloseTo(3e-3 * 0.5 * (1 + Math.cos(Math.PI * 0.25)), 12);
    expect(m[5].loss).toBeLessThan(m[0].loss);
  });

  test('BAdam, ratio mode', async () => {
    await interruptAndResume('ratio', ['--badam-mode', 'ratio', '--switch-every', '2', '--update-ratio', '0.1'], ['model.safetensors', 'optimizer.safetensors']);
  });

  test('Adam on a float16 model, two micro-batches summed in float32, gradient checkpointing', async () => {
    const { whole } = await interruptAndResume('adam', ['--optimizer', 'adam', '--dtype', 'float16', '--grad-accum', '2', '--gradient-checkpointing'], ['model.safetensors', 'optimizer.safetensors']);
    const reloaded = LlamaForCausalLM.fromPretrained(join(whole, 'checkpoint-000006'));
    expect(reloaded.config.dtype).toBe('float16');
    // float16: dynamic loss scaling, its scale in every metrics line and its state in the checkpoint
    const lines = metricsOf(whole) as unknown as { lossScale: number; skipped: boolean }[];
    expect(lines.map((l) => l.lossScale)).toEqual(new Array(6).fill(2 ** 16));
    expect(lines.every((l) => l.skipped === false)).toBe(true);
    const state = JSON.parse(readFileSync(join(whole, 'checkpoint-000006', 'trainer_state.json'), 'utf8'));
    expect(state.method.scaler).toMatchObject({ scale: 2 ** 16, growthTracker: 6 });
  });

  test('LoRA: the base weights stay as they were, the adapters are saved apart', async () => {
    const { whole } = await interruptAndResume('lora', ['--optimizer', 'lora', '--lora-r', '4', '--lora-targets', 'q_proj,v_proj'], ['model.safetensors', 'optimizer.safetensors', 'adapter_model.safetensors']);
    const dir = join(whole, 'checkpoint-000006');
    const saved = await loadSafetensorsFile(join(dir, 'model.safetensors'));
    const original = await loadSafetensorsFile(join(modelDir, 'model.safetensors'));
    expect(Object.keys(saved).sort()).toEqual(Object.keys(original).sort());
    for (const k of Object.keys(original)) expect(Array.from(saved[k].toTypedArray())).toEqual(Array.from(original[k].toTypedArray()));
    const adapters = await loadSafetensorsFile(join(dir, 'adapter_model.safetensors'));
    expect(Object.keys(adapters)).toHaveLength(2 * 2 * 2); // 2 layers x (q, v) x (A, B)
    const b = adapters['base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight'] as Tensor; // PEFT's names
    expect(b.abs().max().item()).toBeGreaterThan(0); // B starts at zero: it was trained
    expect(JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8'))).toMatchObject({ peft_type: 'LORA', r: 4, lora_alpha: 16 });
  });
});

describe('what a run leaves behind', () => {
  test('a checkpoint is a model directory; metrics.jsonl, loss.svg; --resume of the run directory takes its newest checkpoint', async () => {
    const out = join(tmp, 'outputs');
    const r = await finetune([...base(), '--steps', '4', '--save-every', '2', '--switch-every', '1', '--out', out]);
    expect(r.code).toBe(0);
    expect(readdirSync(out).sort()).toEqual(['checkpoint-000002', 'checkpoint-000004', 'loss.svg', 'metrics.jsonl']);
    const model = LlamaForCausalLM.fromPretrained(join(out, 'checkpoint-000004'));
    const sd = await loadSafetensorsFile(join(out, 'checkpoint-000004', 'model.safetensors'));
    expect(Array.from(model.stateDict()['model.layers.1.mlp.up_proj.weight'].toTypedArray())).toEqual(Array.from(sd['model.layers.1.mlp.up_proj.weight'].toTypedArray()));
    const m = metricsOf(out);
    expect(m.map((x) => x.step)).toEqual([1, 2, 3, 4]);
    for (const x of m) {
      expect(x.loss).toBeGreaterThan(0);
      expect((x as unknown as { tokensPerSecond: number }).tokensPerSecond).toBeGreaterThan(0);
      expect((x as unknown as { memory: Record<string, number> }).memory.weights).toBeGreaterThan(0);
    }
    const evals = m.filter((x) => x.evalLoss !== undefined);
    for (const x of evals) expect((x as unknown as { perplexity: number }).perplexity).toBeCloseTo(Math.exp(x.evalLoss as number), 10);
    const svg = readFileSync(join(out, 'loss.svg'), 'utf8');
    expect(svg).toContain('data-series="train"');
    expect(svg).toContain('data-series="eval"');
    expect((svg.match(/<circle /g) ?? []).length).toBe(evals.length);
    expect(svg).toContain('BAdam block switch');

    // a half-written checkpoint (a crash mid-save) is never taken for a checkpoint
    mkdirSync(join(out, '.checkpoint-000006.partial'));
    const again = await finetune(['--resume', out, '--steps', '4']);
    expect(again.code).toBe(0);
    expect(again.out).toContain(`resuming ${join(out, 'checkpoint-000004')} at step 4 of 4`);
  });

  test('a model directory with a tokenizer: the tokenizer files travel with each checkpoint', async () => {
    const dir = join(tmp, 'with-tokenizer');
    const json = sentencepieceTokenizerJson();
    const vocabSize = Tokenizer.fromJSON(json).vocabSize;
    await new LlamaForCausalLM({ vocabSize, hiddenSize: 16, intermediateSize: 32, numHiddenLayers: 2, numAttentionHeads: 2, maxPositionEmbeddings: 256, seed: 1 }).savePretrained(dir);
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(json));
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ bos_token: '<s>', eos_token: '</s>' }));
    const out = join(tmp, 'with-tokenizer-out');
    const r = await finetune(['--model', dir, '--data', train, '--steps', '2', '--batch-size', '2', '--max-length', '200', '--out', out]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const ckpt = join(out, 'checkpoint-000002');
    expect(readFileSync(join(ckpt, 'tokenizer.json'), 'utf8')).toBe(JSON.stringify(json));
    expect(existsSync(join(ckpt, 'tokenizer_config.json'))).toBe(true);
    expect(Tokenizer.fromFile(ckpt).encode('hello')).toEqual(Tokenizer.fromFile(dir).encode('hello'));
  });

  test('--eval-every 0 evaluates once, at the end', async () => {
    const out = join(tmp, 'eval-at-end');
    expect((await finetune([...base().filter((x, i, all) => x !== '--eval-every' && all[i - 1] !== '--eval-every'), '--eval-every', '0', '--steps', '3', '--out', out])).code).toBe(0);
    expect(metricsOf(out).map((m) => m.evalLoss !== undefined)).toEqual([false, false, true]);
  });

  test('--max-length that cuts answers: a count and a warning', async () => {
    const r = await finetune(['--model', modelDir, '--data', train, '--max-length', '24', '--batch-size', '4', '--steps', '1', '--out', join(tmp, 'short')]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/training: 32 examples, 32 kept, 32 cut to --max-length 24/);
    expect(r.err).toMatch(/^warning: \d+ of 32 training examples lost answer tokens to --max-length 24/m);
  });
});

describe('micro-batches of a 16-bit model sum in float32', () => {
  test.each(['badam', 'adam'] as const)('%s: zeroGrad gives what is trained float32 zero gradients when --grad-accum > 1', (optimizer) => {
    const model = new LlamaForCausalLM({ vocabSize: 16, hiddenSize: 8, intermediateSize: 16, numHiddenLayers: 2, numAttentionHeads: 2, dtype: 'bfloat16', seed: 0 });
    const parsed = parseFinetuneArgs(['--data', 'x.json', '--optimizer', optimizer, '--grad-accum', '2']);
    if ('help' in parsed) throw new Error('unexpected help');
    const method = createMethod(parsed.config as FinetuneConfig, model, 4, () => {});
    method.zeroGrad();
    const withGrad = model.parameters().filter((p) => p.grad !== null);
    expect(withGrad.length).toBe(optimizer === 'badam' ? 9 : model.parameters().length); // one decoder layer: 7 matrices, 2 norms
    for (const p of withGrad) {
      expect(p.grad?.dtype).toBe('float32');
      expect(p.grad?.abs().max().item()).toBe(0);
    }
    method.release();
  });
});

describe('bad input: one line, exit code 2, nothing half-written', () => {
  const cases: [string, () => string[], RegExp][] = [
    ['an unknown option', () => ['--data', train, '--learning-rate', '1'], /unknown option '--learning-rate'/],
    ['no --data', () => ['--steps', '2'], /--data is required/],
    ['a missing data file', () => ['--data', join(tmp, 'nope.json')], /--data: no such file '.*nope\.json'/],
    ['a malformed data file', () => ['--data', join(tmp, 'bad.json')], /--data: '.*bad\.json' is not valid JSON/],
    ['a bad number', () => ['--data', train, '--lr', 'fast'], /--lr must be a number, got 'fast'/],
    ['an impossible --max-length', () => ['--model', modelDir, '--data', train, '--max-length', '4096'], /--max-length 4096 is longer than the model's context \(max_position_embeddings 128\)/],
    ['a missing model directory', () => ['--model', join(tmp, 'none'), '--data', train], /--model: no such directory/],
    ['a malformed model directory', () => ['--model', join(tmp, 'broken-model'), '--data', train], /config\.json/],
    ['LOMO with micro-batches', () => ['--model', modelDir, '--data', train, '--optimizer', 'lomo', '--grad-accum', '2'], /lomo .* cannot accumulate micro-batches: use --grad-accum 1/],
    ['a validation split that leaves nothing', () => ['--model', modelDir, '--data', join(tmp, 'one.json'), '--val-split', '0.5'], /--val-split 0.5 of 1 examples leaves none for training/],
    ['--steps with --epochs', () => ['--data', train, '--steps', '2', '--epochs', '2'], /give --steps or --epochs, not both/],
    ['an option and its LLaMA-Factory alias', () => ['--data', train, '--switch-every', '2', '--badam_switch_interval', '3'], /--switch-every and --badam_switch_interval are the same option/],
    ['a resume directory that is no checkpoint', () => ['--resume', tmp], /--resume: '.*' is neither a checkpoint/],
  ];
  beforeAll(() => {
    writeFileSync(join(tmp, 'bad.json'), '[{"instruction": "a", "output": ');
    writeFileSync(join(tmp, 'one.json'), JSON.stringify([{ instruction: 'a', output: 'b' }]));
    mkdirSync(join(tmp, 'broken-model'));
    writeFileSync(join(tmp, 'broken-model', 'config.json'), '{"model_type": "llama", "hidden_size": ');
  });

  test.each(cases)('%s', async (_, args, message) => {
    const out = join(tmp, `bad-${Math.random().toString(36).slice(2)}`);
    const r = await finetune([...args(), '--out', out]);
    expect(r.code).toBe(2);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).toMatch(/^blockgrad finetune: /);
    expect(r.err).toMatch(message);
    expect(existsSync(out) ? readdirSync(out).filter((f) => f.includes('checkpoint')) : []).toEqual([]);
  });

  test('a resume that changes the configuration or the data is refused', async () => {
    const out = join(tmp, 'to-resume');
    expect((await finetune([...base(), '--steps', '2', '--out', out])).code).toBe(0);
    const lr = await finetune(['--resume', out, '--lr', '1e-3']);
    expect(lr.code).toBe(2);
    expect(lr.err).toMatch(/--lr 0.001 differs from 0.003 in .*checkpoint-000002: a resumed run keeps the configuration it started with/);
    const same = await finetune(['--resume', out, '--lr', '3e-3', '--steps', '2']);
    expect(same.code).toBe(0); // the same values may be given again

    const changed = join(tmp, 'train-changed.json');
    writeFileSync(changed, readFileSync(train, 'utf8'));
    const dataFlag = await finetune(['--resume', out, '--data', changed]);
    expect(dataFlag.code).toBe(2);
    expect(dataFlag.err).toMatch(/--data \[".*train-changed\.json"\] differs from/);
  });

  test('the data changed on disk since the checkpoint', async () => {
    const file = join(tmp, 'mutable.json');
    writeFileSync(file, readFileSync(train, 'utf8'));
    const out = join(tmp, 'mutable-run');
    expect((await finetune(['--model', modelDir, '--data', file, '--max-length', '64', '--batch-size', '4', '--steps', '1', '--out', out])).code).toBe(0);
    writeFileSync(file, JSON.stringify([{ instruction: 'something else', output: 'entirely' }]));
    const r = await finetune(['--resume', out]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--resume: the data files differ from those .* was trained on/);
  });
});

describe('--print-llamafactory: the same run for LLaMA-Factory', () => {
  const yamlOf = async (args: string[]) => {
    const r = await finetune([...args, '--print-llamafactory']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    // key: value lines (comments and sections left out)
    return Object.fromEntries(
      r.out
        .split('\n')
        .filter((l) => /^\w+: /.test(l))
        .map((l) => {
          const [k, ...rest] = l.replace(/\s+#.*$/, '').split(': ');
          return [k, rest.join(': ')];
        }),
    );
  };

  test('BAdam, block mode', async () => {
    const y = await yamlOf(['--model', modelDir, '--data', train, '--val-split', '0.1', '--switch-every', '30', '--switch-mode', 'descending', '--start-block', '1', '--lr', '2e-5', '--lr-scheduler', 'cosine', '--warmup-steps', '20', '--batch-size', '4', '--grad-accum', '8', '--steps', '500', '--max-length', '1024', '--dtype', 'bfloat16', '--gradient-checkpointing', '--eval-every', '50', '--out', 'runs/x']);
    expect(y).toMatchObject({
      model_name_or_path: modelDir,
      stage: 'sft',
      finetuning_type: 'full',
      use_badam: 'true',
      badam_mode: 'layer',
      badam_switch_interval: '30',
      badam_switch_mode: 'descending',
      badam_start_block: '1',
      dataset: 'train',
      template: 'alpaca',
      cutoff_len: '1024',
      per_device_train_batch_size: '4',
      gradient_accumulation_steps: '8',
      learning_rate: '0.00002',
      lr_scheduler_type: 'cosine',
      warmup_steps: '20',
      max_steps: '500',
      max_grad_norm: '0',
      bf16: 'true',
      val_size: '0.1',
      eval_steps: '50',
      output_dir: 'runs/x',
    });
    expect(y.disable_gradient_checkpointing).toBeUndefined();
  });

  test('BAdam ratio mode, LoRA, and a resumed run (its checkpoint\'s configuration)', async () => {
    expect(await yamlOf(['--data', train, '--badam-mode', 'ratio', '--update-ratio', '0.1', '--mask-mode', 'scatter'])).toMatchObject({
      badam_mode: 'ratio',
      badam_update_ratio: '0.1',
      badam_mask_mode: 'scatter',
      model_name_or_path: 'path/to/model', // a fresh preset model has no LLaMA-Factory counterpart
      disable_gradient_checkpointing: 'true',
    });
    const lora = await yamlOf(['--data', train, '--optimizer', 'lora', '--lora-r', '16', '--lora-targets', 'q_proj,v_proj']);
    expect(lora).toMatchObject({ finetuning_type: 'lora', lora_rank: '16', lora_alpha: '16', lora_target: 'q_proj,v_proj' });
    expect(lora.use_badam).toBeUndefined();
    const out = join(tmp, 'to-print');
    expect((await finetune([...base(), '--steps', '1', '--switch-every', '7', '--out', out])).code).toBe(0);
    expect(await yamlOf(['--resume', out])).toMatchObject({ badam_switch_interval: '7', max_steps: '1', learning_rate: '0.003', cutoff_len: '64' });
  });
});

test('LLaMA-Factory names parse to the same configuration', () => {
  const ours = parseFinetuneArgs(['--data', 'a.json', '--badam-mode', 'block', '--switch-every', '7', '--switch-mode', 'random', '--start-block', '1', '--update-ratio', '0.2', '--mask-mode', 'scatter']);
  const theirs = parseFinetuneArgs(['--data', 'a.json', '--badam_mode', 'layer', '--badam_switch_interval', '7', '--badam_switch_mode', 'random', '--badam_start_block', '1', '--badam_update_ratio', '0.2', '--badam_mask_mode', 'scatter']);
  if ('help' in ours || 'help' in theirs) throw new Error('unexpected help');
  expect(theirs.config).toEqual(ours.config);
  expect(ours.config).toMatchObject({ badamMode: 'block', switchEvery: 7, switchMode: 'random', startBlock: 1, updateRatio: 0.2, maskMode: 'scatter' });
});

describe('the installed command (dist/cli/blockgrad.cjs)', () => {
  const bin = join(root, 'dist/cli/blockgrad.cjs');

  test('--help and a bad flag', () => {
    if (!existsSync(bin)) throw new Error('dist/cli/blockgrad.cjs is missing: run `npm run build` first (`npm test` builds before running jest)');
    const help = spawnSync(process.execPath, [bin, 'finetune', '--help'], { encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^Usage: blockgrad finetune --data FILE\.\.\. \[options\]/);
    const bad = spawnSync(process.execPath, [bin, 'finetune', '--data'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/^blockgrad finetune: option '--data <files\.\.\.>' argument missing \(see --help\)\n$/);
  });

  test('Ctrl-C saves a checkpoint after the current step and exits with 130; the run resumes from it', async () => {
    const out = join(tmp, 'sigint');
    const child = spawn(process.execPath, [bin, 'finetune', ...base(), '--steps', '500', '--out', out, '--backend', 'cpu'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const code = await new Promise<number | null>((done) => {
      // interrupt once a step has been logged
      const timer = setInterval(() => {
        if (existsSync(join(out, 'metrics.jsonl')) && readFileSync(join(out, 'metrics.jsonl'), 'utf8').includes('"step":2,')) {
          clearInterval(timer);
          child.kill('SIGINT');
        }
      }, 50);
      child.on('close', (c) => {
        clearInterval(timer);
        done(c);
      });
    });
    expect(stderr).toContain('Ctrl-C: saving a checkpoint after this step');
    expect(code).toBe(130);
    const match = /interrupted at step (\d+) of 500: saved (\S+)/.exec(stdout);
    expect(match).not.toBeNull();
    const [, step, checkpoint] = match as RegExpExecArray;
    expect(metricsOf(out)).toHaveLength(Number(step));
    expect(readdirSync(out).filter((f) => f.startsWith('.'))).toEqual([]); // nothing half-written
    const resumed = await finetune(['--resume', checkpoint, '--steps', '500'], (s, abort) => abort());
    expect(resumed.code).toBe(130);
    expect(resumed.out).toContain(`resuming ${checkpoint} at step ${step} of 500`);
  });
});
