/**
 * `npm run bench`: runs every benchmark suite and writes the results to bench/results/ as JSON
 * (machine-readable, with the machine, Node version and date) and a markdown table (quoted by
 * the README). Each suite reports ratios against a baseline measured in the same run.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { runMatmulBench, type MatmulBenchResult } from './matmul.bench';

function machine() {
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    date: new Date().toISOString(),
  };
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

async function main(): Promise<void> {
  const info = machine();
  console.log(`blockgrad benchmarks on ${info.cpu} (${info.cores} cores), Node ${info.node}`);
  const matmul = await runMatmulBench();
  const outDir = join(process.cwd(), 'bench', 'results');
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'latest.json'), JSON.stringify({ machine: info, matmul }, null, 2) + '\n');
  const md = [
    `# blockgrad benchmark results`,
    '',
    `${info.date} · ${info.cpu} · ${info.cores} cores · ${info.memoryGiB} GiB · Node ${info.node}`,
    '',
    '## CPU matmul, float32, square, single thread (benchmark.js mean, relative margin of error)',
    '',
    matmulTable(matmul),
    '',
  ].join('\n');
  writeFileSync(join(outDir, 'latest.md'), md);
  console.log('\n' + md);
  console.log(`wrote ${join('bench', 'results', 'latest.json')} and latest.md`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
