/**
 * `npm run bench`: runs every benchmark suite in one process and writes the results to
 * bench/results/: latest.json (machine-readable: the machine, Node version, date, wall time and
 * every row) and latest.md (one markdown table per suite, quoted by the README). Each suite reports
 * ratios against a baseline measured in the same run.
 *
 *   npm run bench                          all suites (matmul, backward, checkpoint, ops, gpu, peers, wasm): ~9-11 minutes on 2 cores
 *   npm run bench -- --only wasm           the wasm backend against cpu, tfjs and PyTorch: ~3-4 minutes
 *   npm run bench -- --only backward       some suites (comma-separated or repeated --only); the
 *                                          results then go to bench/results/only-<suites>.{json,md},
 *                                          so a partial run never replaces the full table
 *
 * Exits non-zero if a suite fails or if the backward suite's mean BAdam FLOPs miss the analytic
 * prediction by more than 5% (the results are written first).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { runMatmulBench, type MatmulBenchResult } from './matmul.bench';
import { backwardMarkdown, runBackwardBench, type BackwardBenchResult } from './backward.bench';
import { opsMarkdown, runOpsBench, type OpsBenchResult } from './ops.bench';
import { peersMarkdown, runPeersBench, type PeersBenchResult } from './peers.bench';
import { gpuMarkdown, runGpuBench, type GpuBenchResult } from './gpu.bench';
import { runWasmBench, wasmMarkdown, type WasmBenchResult } from './wasm.bench';
import { checkpointMarkdown, runCheckpointBench, type CheckpointBenchResult } from './checkpoint.bench';

// wasm last: the wasm backends it starts keep their worker threads until the process exits
const SUITES = ['matmul', 'backward', 'checkpoint', 'ops', 'gpu', 'peers', 'wasm'] as const;
type Suite = (typeof SUITES)[number];

interface Results {
  matmul?: MatmulBenchResult[];
  backward?: BackwardBenchResult;
  checkpoint?: CheckpointBenchResult;
  ops?: OpsBenchResult;
  peers?: PeersBenchResult;
  gpu?: GpuBenchResult;
  wasm?: WasmBenchResult;
}

function machine() {
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    date: new Date().toISOString(),
    /** 1, 5 and 15-minute load averages at the start: other work on the machine slows every number. */
    loadAverage: loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

/** `--only a,b` / `--only a --only b` / `--only=a`; all suites without it. */
function selectedSuites(argv: string[]): Suite[] {
  const picked: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--only') picked.push(...(argv[++i] ?? '').split(','));
    else if (arg.startsWith('--only=')) picked.push(...arg.slice('--only='.length).split(','));
    else if (arg === '--help' || arg === '-h') {
      console.log(`usage: npm run bench [-- --only ${SUITES.join(',')}]`);
      process.exit(0);
    } else {
      console.error(`bench: unknown argument '${arg}'; usage: npm run bench [-- --only ${SUITES.join(',')}]`);
      process.exit(2);
    }
  }
  const names = picked.map((s) => s.trim()).filter((s) => s !== '');
  if (names.length === 0) return [...SUITES];
  const unknown = names.filter((s) => !(SUITES as readonly string[]).includes(s));
  if (unknown.length > 0) {
    console.error(`bench: unknown suite ${unknown.map((s) => `'${s}'`).join(', ')}; suites: ${SUITES.join(', ')}`);
    process.exit(2);
  }
  return SUITES.filter((s) => names.includes(s));
}

function matmulTable(rows: MatmulBenchResult[]): string {
  const lines = [
    '| size | reference GFLOP/s (±%) | blocked GFLOP/s (±%) | blocked / reference |',
    '| ---: | ---: | ---: | ---: |',
    ...rows.map(
      (r) =>
        `| ${r.size} | ${r.referenceGflops.toFixed(2)} (±${r.referenceRme.toFixed(1)}) | ` +
        `${r.blockedGflops.toFixed(2)} (±${r.blockedRme.toFixed(1)}) | ${r.speedup.toFixed(2)}x |`,
    ),
  ];
  return lines.join('\n');
}

function markdown(info: ReturnType<typeof machine>, wallSeconds: number, results: Results): string {
  const sections: string[] = [
    '# blockgrad benchmark results',
    '',
    `${info.date} · ${info.cpu} · ${info.cores} cores · ${info.memoryGiB} GiB · Node ${info.node} · ` +
      `load average at start ${info.loadAverage.join(' / ')} · whole run ${wallSeconds.toFixed(0)} s. ` +
      'Times are benchmark.js means with their relative margin of error (the wasm suite: medians of interleaved rounds); ' +
      'ratios compare numbers measured in this run.',
  ];
  if (results.matmul) {
    sections.push('', '## CPU matmul kernels, float32, square, single thread', '', matmulTable(results.matmul));
  }
  if (results.backward) {
    sections.push('', '## Backward cost: full, BAdam block by block, LoRA', '', backwardMarkdown(results.backward));
  }
  if (results.checkpoint) {
    sections.push('', '## Activation checkpointing: saved bytes against step time', '', checkpointMarkdown(results.checkpoint));
  }
  if (results.ops) {
    sections.push('', '## Per-op kernels, by backend', '', opsMarkdown(results.ops));
  }
  if (results.gpu) {
    sections.push('', '## The gpu backend (gpu.js), every mode available here', '', gpuMarkdown(results.gpu));
  }
  if (results.peers) {
    sections.push('', '## Peers: TensorFlow.js', '', peersMarkdown(results.peers));
  }
  if (results.wasm) {
    sections.push('', '## The wasm backend against cpu, TensorFlow.js and PyTorch', '', wasmMarkdown(results.wasm));
  }
  return sections.join('\n') + '\n';
}

async function main(): Promise<void> {
  const start = performance.now();
  const suites = selectedSuites(process.argv.slice(2));
  const info = machine();
  console.log(`blockgrad benchmarks on ${info.cpu} (${info.cores} cores), Node ${info.node}; suites: ${suites.join(', ')}`);
  const results: Results = {};
  const seconds: Partial<Record<Suite, number>> = {};
  for (const suite of suites) {
    const t0 = performance.now();
    console.log(`\n== ${suite} ==`);
    if (suite === 'matmul') results.matmul = await runMatmulBench();
    else if (suite === 'backward') results.backward = await runBackwardBench();
    else if (suite === 'checkpoint') results.checkpoint = await runCheckpointBench();
    else if (suite === 'ops') results.ops = await runOpsBench();
    else if (suite === 'gpu') results.gpu = await runGpuBench();
    else if (suite === 'wasm') results.wasm = await runWasmBench();
    else results.peers = await runPeersBench();
    seconds[suite] = (performance.now() - t0) / 1e3;
    console.log(`(${suite}: ${seconds[suite]?.toFixed(0)} s)`);
  }
  const wallSeconds = (performance.now() - start) / 1e3;

  const outDir = join(process.cwd(), 'bench', 'results');
  mkdirSync(outDir, { recursive: true });
  const all = suites.length === SUITES.length;
  const base = all ? 'latest' : `only-${suites.join('-')}`;
  const json = { machine: info, wallSeconds, suiteSeconds: seconds, ...results };
  writeFileSync(join(outDir, `${base}.json`), JSON.stringify(json, null, 2) + '\n');
  const md = markdown(info, wallSeconds, results);
  writeFileSync(join(outDir, `${base}.md`), md);
  console.log('\n' + md);
  console.log(`wrote ${join('bench', 'results', `${base}.json`)} and ${base}.md (whole run ${wallSeconds.toFixed(0)} s)`);
  if (results.backward && !results.backward.summary.withinFivePercent) {
    console.error('bench: the mean BAdam backward FLOPs are not within 5% of the analytic prediction');
    process.exitCode = 1;
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
