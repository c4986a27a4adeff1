/**
 * The demo (`npm run demo`) at a tiny size, in-process through its CLI function, and its
 * outputs checked: loss.svg is well-formed XML with one curve and one legend entry per
 * optimizer; summary.json's numbers agree with the memory report (BAdam: float32 masters and
 * Adam moments for the active block only; Adam: 2 + 4 + 8 bytes per parameter) and with the
 * console; a second run reuses the pretrained checkpoint. Bad flags and a malformed data file
 * exit with code 2 and a one-line message, checked on the real command (a child process).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { memory, memoryReport, tensor, type CollatedBatch } from '../../src';
import { cli, parseDemoArgs } from '../../demo/cli';
import { DEFAULTS, type DemoSummary, type OptimizerSummary } from '../../demo/demo';
import { OPTIMIZERS, buildModel, createTrainer } from '../../demo/train';
import { lossChart, movingAverage, niceTicks } from '../../cli/chart';
import { findAll, parseXml } from './xml';

const root = resolve(__dirname, '../..');

/** Collects what the demo writes (not a TTY: plain progress lines). */
function collector() {
  const chunks: string[] = [];
  return { write: (s: string) => void chunks.push(s), isTTY: false, text: () => chunks.join('') };
}

async function runCli(args: string[]) {
  const out = collector();
  const err = collector();
  const code = await cli(args, { out, err });
  return { code, out: out.text(), err: err.text() };
}


test('the XML checker rejects what is not well-formed', () => {
  expect(() => parseXml('<a><b></a></b>')).toThrow(/closes/);
  expect(() => parseXml('<a x="1" x="2"/>')).toThrow(/repeated/);
  expect(() => parseXml('<a>1 & 2</a>')).toThrow(/bare '&'/);
  expect(() => parseXml('<a><b></a>')).toThrow();
  expect(() => parseXml('<a/><b/>')).toThrow(/second root/);
  expect(parseXml('<?xml version="1.0"?><a k="&lt;&amp;">x &gt; y<b/></a>')).toEqual({
    name: 'a',
    attrs: { k: '<&' },
    children: [{ name: 'b', attrs: {}, children: [], text: '' }],
    text: 'x > y',
  });
});

test('chart helpers: moving average, round ticks, escaped labels', () => {
  expect(movingAverage([1, 2, 3, 4, 5], 3)).toEqual([1.5, 2, 3, 4, 4.5]);
  expect(movingAverage([1, NaN, 3], 3)).toEqual([1, 2, 3]);
  expect(niceTicks(1.23, 4.56, 6).ticks).toEqual([1, 2, 3, 4, 5]);
  expect(niceTicks(0.05, 0.9, 5)).toEqual({ min: 0, max: 1, step: 0.2, ticks: [0, 0.2, 0.4, 0.6, 0.8, 1] });
  expect(niceTicks(1, 60, 8).ticks).toEqual([0, 10, 20, 30, 40, 50, 60]);
  const svg = lossChart({
    title: 'a <b> & "c"',
    xLabel: 'step',
    yLabel: 'loss',
    series: [{ id: 'x&y', label: 'X & Y', color: '#000000', values: [3, 2, NaN, 1] }],
  });
  const doc = parseXml(svg);
  expect(findAll(doc, (e) => e.name === 'title')[0].text).toBe('a <b> & "c"');
  expect(findAll(doc, (e) => e.attrs.class === 'legend-label')[0].text).toBe('X & Y');
  // a NaN breaks the line into two segments
  expect(findAll(doc, (e) => e.attrs.class === 'curve')[0].attrs.d.match(/M/g)).toHaveLength(2);
});

test('the chart of long runs: 4 series of 50k losses (a spread Math.min overflowed the stack)', () => {
  const n = 50_000;
  const values = Array.from({ length: n }, (_, i) => 3 - i / n);
  values[7] = NaN;
  values[8] = Infinity; // non-finite losses are left out of the axis range
  const svg = lossChart({
    title: 'long',
    xLabel: 'step',
    yLabel: 'loss',
    series: ['a', 'b', 'c', 'd'].map((id, j) => ({ id, label: id, color: '#000000', values: values.map((v) => v + j / 10) })),
  });
  expect(svg.match(/class="curve"/g)).toHaveLength(4);
  // the y axis spans the finite losses: 2.00002 (a) to 3.3 (d)
  const axis = /<g class="y-axis"[^>]*>([\s\S]*?)<\/g>/.exec(svg)?.[1] ?? '';
  const ticks = [...axis.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => Number(m[1]));
  expect(ticks.length).toBeGreaterThan(2);
  expect(Math.min(...ticks)).toBeLessThanOrEqual(2);
  expect(Math.max(...ticks)).toBeGreaterThanOrEqual(3.3);
  expect(Math.max(...ticks)).toBeLessThan(4);
  // the moving average is a plain windowed mean
  expect(movingAverage([1, 2, 3, 4, 5, 6, 7], 5)).toEqual([2, 2.5, 3, 4, 5, 5.5, 6]);
  expect(movingAverage([NaN, NaN, 4], 1)).toEqual([NaN, NaN, 4]);
});

test('every trainer releases what it holds: masters, optimizer state, gradients and weights', () => {
  const config = { vocabSize: 32, hiddenSize: 16, intermediateSize: 32, numHiddenLayers: 2, numAttentionHeads: 2, seed: 0 };
  const weights = buildModel(config).stateDict();
  const ids = tensor([[1, 7, 3, 9, 4, 2]], { dtype: 'int32' });
  const batch = { inputIds: ids, labels: ids, attentionMask: tensor([[1, 1, 1, 1, 1, 1]], { dtype: 'int32' }) } as unknown as CollatedBatch;
  const counted = ['weights', 'grads', 'master', 'optimizer'] as const;
  for (const name of OPTIMIZERS) {
    const before = memory.stats().byCategory;
    const trainer = createTrainer(name, weights, { config, lr: 1e-3, lomoLr: 1e-2, switchEvery: 2, seed: 0 });
    trainer.step(batch);
    const during = memory.stats().byCategory;
    expect([name, during.weights > before.weights]).toEqual([name, true]);
    trainer.release();
    const after = memory.stats().byCategory;
    expect([name, counted.map((c) => after[c] - before[c])]).toEqual([name, [0, 0, 0, 0]]);
  }
});

test('flags: defaults, optimizer choices, and one-line errors for bad values', async () => {
  const parsed = parseDemoArgs([]);
  expect(parsed).toEqual({
    help: false,
    options: {
      steps: DEFAULTS.steps,
      layers: DEFAULTS.layers,
      optimizers: ['badam', 'adam'],
      data: undefined,
      out: DEFAULTS.out,
      seed: DEFAULTS.seed,
      pretrainSteps: DEFAULTS.pretrainSteps,
      switchEvery: undefined,
    },
  });
  const opts = (args: string[]) => {
    const p = parseDemoArgs(args);
    if (p.help) throw new Error('help');
    return p.options;
  };
  expect(opts(['--optimizer', 'lora']).optimizers).toEqual(['lora', 'adam']);
  expect(opts(['--optimizer=LOMO']).optimizers).toEqual(['lomo', 'adam']);
  expect(opts(['--optimizer', 'adam']).optimizers).toEqual(['adam']);
  expect(opts(['--optimizer', 'all']).optimizers).toEqual(['badam', 'adam', 'lora', 'lomo']);
  expect(opts(['--steps', '7', '--layers', '3', '--seed', '5', '--pretrain-steps', '0', '--switch-every', '2'])).toMatchObject({
    steps: 7,
    layers: 3,
    seed: 5,
    pretrainSteps: 0,
    switchEvery: 2,
  });
  expect(parseDemoArgs(['--help'])).toEqual({ help: true });

  const help = await runCli(['-h']);
  expect(help.code).toBe(0);
  expect(help.out).toMatch(/--optimizer NAME/);

  const bad: [string[], RegExp][] = [
    [['--steps', '0'], /--steps must be an integer from 1/],
    [['--steps', '1.5'], /--steps must be an integer, got '1\.5'/],
    [['--layers', 'four'], /--layers must be an integer/],
    [['--optimizer', 'sgd'], /--optimizer must be one of badam, adam, lora, lomo or all, got 'sgd'/],
    [['--steps'], /--steps needs a value/],
    [['--steps', '--layers', '2'], /--steps needs a value/],
    [['extra'], /unexpected argument 'extra'/],
    [['--data', join(tmpdir(), 'blockgrad-demo-no-such-file.json')], /--data: no such file/],
    [['--out', __filename], /--out: .* exists and is not a folder/],
    [['--help=yes'], /--help/],
  ];
  for (const [args, message] of bad) {
    const r = await runCli(args);
    expect({ args, code: r.code }).toEqual({ args, code: 2 });
    expect(r.err).toMatch(message);
    expect(r.err.trimEnd().split('\n')).toHaveLength(1);
    expect(r.out).toBe('');
  }
});

describe('a tiny run', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'blockgrad-demo-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('writes a well-formed chart and a summary consistent with the memory report; a second run reuses the checkpoint', async () => {
    const steps = 6;
    const first = await runCli(['--steps', String(steps), '--layers', '2', '--pretrain-steps', '3', '--out', dir]);
    expect(first.err).toBe('');
    expect(first.code).toBe(0);
    const log = first.out;
    const lines = log.trimEnd().split('\n');
    // the final line names the folder
    expect(lines[lines.length - 1]).toContain(dir);
    expect(log).toMatch(/Pretraining: plain Adam/);
    expect(existsSync(join(dir, 'pretrained.safetensors'))).toBe(true);

    const summary = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as DemoSummary;
    expect(summary.config).toMatchObject({ steps, layers: 2, optimizers: ['badam', 'adam'], pretrainSteps: 3, switchEvery: 2 });
    const badam = summary.optimizers.badam as OptimizerSummary;
    const adam = summary.optimizers.adam as OptimizerSummary;
    const M = summary.config.model.parameters;
    for (const r of [badam, adam]) {
      expect(r.losses).toHaveLength(steps);
      expect(r.losses.every(Number.isFinite)).toBe(true);
      expect(r.finalLoss).toBeCloseTo(r.losses.reduce((a, b) => a + b, 0) / steps, 10);
      for (const k of ['meanBackwardMs', 'meanBackwardFlops', 'tokensPerSecond', 'seconds'] as const) {
        expect(Number.isFinite(r[k]) && r[k] > 0).toBe(true);
      }
      expect(r.memory.parameters).toBe(M);
      expect(r.answers).toHaveLength(3);
      for (const a of r.answers) expect(typeof a.before === 'string' && typeof a.after === 'string').toBe(true);
    }
    // same start, same first batch: the first losses agree
    expect(badam.losses[0]).toBeCloseTo(adam.losses[0], 6);

    // BAdam's schedule: 2 steps per block, ascending over 2 layers
    expect(badam.blockSwitches!.map((s) => [s.step, s.block])).toEqual([[0, 0], [2, 1], [4, 0], [6, 1]]);
    const active = badam.blockSwitches![0].numParams;
    expect(lines.some((l) => /BAdam: after step 2, block 1 of 2 \(model\.layers\.1\.\)/.test(l))).toBe(true);

    // the memory rows against the formula: float16 weights for everything, float32 masters and
    // Adam moments for the active block (BAdam) or for every parameter (Adam)
    expect(badam.memory.trainable).toBe(active);
    expect(badam.memory.weights).toBe(2 * M);
    expect(badam.memory.master).toBe(4 * active);
    expect(badam.memory.optimizer).toBe(8 * active);
    expect(badam.memory.grads).toBeGreaterThanOrEqual(4 * active);
    expect(adam.memory.trainable).toBe(M);
    expect(adam.memory.weights).toBe(2 * M);
    expect(adam.memory.master).toBe(4 * M);
    expect(adam.memory.optimizer).toBe(8 * M);
    expect(adam.memory.grads).toBeGreaterThanOrEqual(4 * M);
    expect(adam.memory.savedActivations).toBeGreaterThan(0);
    for (const r of [badam, adam]) {
      const m = r.memory;
      expect(m.modelStateBytes).toBe(m.weights + m.grads + m.master + m.optimizer);
    }
    // the table in the summary is memoryReport of these rows, and it is the one printed
    expect(summary.memoryTable).toBe(memoryReport([badam.memory, adam.memory]));
    expect(log).toContain(summary.memoryTable);
    // the backward comparison
    expect(summary.backwardRatioToAdam.badam!.time).toBeCloseTo(badam.meanBackwardMs / adam.meanBackwardMs, 10);
    expect(summary.backwardRatioToAdam.badam!.flops).toBeLessThan(1);
    expect(log).toContain(`BAdam/Adam: time ${summary.backwardRatioToAdam.badam!.time.toFixed(2)}`);

    // the chart: well-formed, one curve (and one faint raw line) per optimizer, named in the legend
    const svg = parseXml(readFileSync(join(dir, 'loss.svg'), 'utf8'));
    expect(svg.name).toBe('svg');
    expect(svg.attrs.xmlns).toBe('http://www.w3.org/2000/svg');
    const curves = findAll(svg, (e) => e.name === 'path' && e.attrs.class === 'curve');
    expect(curves.map((c) => c.attrs['data-series'])).toEqual(['badam', 'adam']);
    for (const c of curves) expect(c.attrs.d.match(/[ML]/g)).toHaveLength(steps);
    expect(findAll(svg, (e) => e.name === 'polyline' && e.attrs.class === 'raw')).toHaveLength(2);
    const legend = findAll(svg, (e) => e.attrs.class === 'legend-label');
    expect(legend.map((e) => e.attrs['data-series'])).toEqual(['badam', 'adam']);
    expect(legend[0].text).toMatch(/^BAdam /);
    expect(legend[1].text).toMatch(/^Adam /);
    expect(findAll(svg, (e) => e.attrs.class === 'x-label')[0].text).toMatch(/step/);
    expect(findAll(svg, (e) => e.attrs.class === 'y-label')[0].text).toMatch(/loss/);
    expect(findAll(svg, (e) => e.name === 'title')[0].text).toMatch(/BAdam vs Adam/);

    // against time: one point per step at the seconds each step ended, increasing
    for (const r of [badam, adam]) {
      expect(r.elapsed).toHaveLength(steps);
      expect(r.elapsed.every((t, i) => t > (i === 0 ? 0 : r.elapsed[i - 1]))).toBe(true);
      expect(r.elapsed[steps - 1]).toBeLessThanOrEqual(r.seconds);
    }
    const timeSvg = parseXml(readFileSync(summary.outputs.timeChart, 'utf8'));
    expect(findAll(timeSvg, (e) => e.attrs.class === 'x-label')[0].text).toMatch(/seconds/);
    expect(findAll(timeSvg, (e) => e.name === 'path' && e.attrs.class === 'curve').map((c) => c.attrs['data-series'])).toEqual(['badam', 'adam']);
    // the memory bars: one bar per optimizer, and the same bars printed under the table
    const memorySvg = parseXml(readFileSync(summary.outputs.memoryChart, 'utf8'));
    expect(findAll(memorySvg, (e) => e.attrs.class === 'bar').map((b) => b.attrs['data-bar'])).toEqual(['BAdam', 'Adam']);
    expect(log).toContain(`${adam.memory.bytesPerParameter.toFixed(2)} bytes/param`);

    // a second run in the same folder reuses the checkpoint: the same start, so the same first loss
    const second = await runCli(['--steps', '2', '--layers', '2', '--pretrain-steps', '3', '--out', dir, '--optimizer', 'all']);
    expect(second.code).toBe(0);
    expect(second.out).toMatch(/pretrained\.safetensors \(reused/);
    expect(second.out).not.toMatch(/Pretraining: plain Adam/);
    const again = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as DemoSummary;
    expect(again.pretraining.reused).toBe(true);
    expect(Object.keys(again.optimizers)).toEqual(['badam', 'adam', 'lora', 'lomo']);
    for (const r of Object.values(again.optimizers)) expect(r!.losses[0]).toBeCloseTo(badam.losses[0], 6);
    const svg2 = parseXml(readFileSync(join(dir, 'loss.svg'), 'utf8'));
    expect(findAll(svg2, (e) => e.attrs.class === 'curve')).toHaveLength(4);
    // LoRA trains only its adapters, LOMO keeps no optimizer state
    expect(again.optimizers.lora!.memory.trainable).toBeLessThan(M);
    expect(again.optimizers.lomo!.memory.optimizer).toBe(0);
  }, 150_000); // about 20 s on an idle 2-core machine; room for a busy one
});

describe('the command', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'blockgrad-demo-cli-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const run = (args: string[]) =>
    spawnSync(process.execPath, ['scripts/run-ts.mjs', 'demo/main.ts', ...args], { cwd: root, encoding: 'utf8', timeout: 60_000 });
  const noStack = (s: string) => expect(s).not.toMatch(/^\s+at /m);

  test('a bad flag exits with code 2 and one line on stderr', () => {
    const r = run(['--stepz', '5']);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.trimEnd().split('\n')).toEqual(["demo: unknown option --stepz (see --help)"]);
  });

  test('a malformed data file exits with code 2 and names the problem', () => {
    const path = join(dir, 'bad.json');
    writeFileSync(path, JSON.stringify([{ instruction: 'Say hi.', output: 'hi' }, { instruction: 'Say bye.' }]));
    const r = run(['--data', path, '--out', join(dir, 'out')]);
    expect(r.status).toBe(2);
    noStack(r.stderr);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^demo: .*record 1: field 'output' must be a string/);

    writeFileSync(path, '[{"instruction": "Say hi.", "output": "hi"},');
    const r2 = run(['--data', path, '--out', join(dir, 'out')]);
    expect(r2.status).toBe(2);
    noStack(r2.stderr);
    expect(r2.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(r2.stderr).toMatch(/is not valid JSON/);
  });
});
