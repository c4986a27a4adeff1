/**
 * `npm run experiments -- [--quick] [--only memory|time|convergence|classification] [--page-only] [--out DIR] [--data FILE]`:
 * runs the paper's experiments in miniature (experiments/*.ts) and writes DIR/experiments.md
 * (default docs/), its SVG figures and each experiment's results as JSON in DIR/experiments/. An
 * experiment left out with --only keeps its last results (read back from its JSON); --page-only
 * runs none and writes the page and figures from the JSON files alone. --data is
 * the Alpaca file the convergence experiment fine-tunes on (default: the embedded instructions).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runMemory, type MemoryResult } from './memory';
import { runTime, type TimeResult } from './time';
import { runConvergence, type ConvergenceResult } from './convergence';
import { runClassification, type ClassificationResult } from './classification';
import { classificationFigures, convergenceFigures, experimentsPage, memoryFigure, timeFigure, type Timing } from './report';

export const EXPERIMENTS = ['memory', 'time', 'convergence', 'classification'] as const;

export async function runExperiments(argv: readonly string[], log: (line: string) => void = console.log): Promise<{ memory: MemoryResult | null; time: TimeResult | null; convergence: ConvergenceResult | null; classification: ClassificationResult | null }> {
  const { values } = parseArgs({ args: [...argv], options: { quick: { type: 'boolean' }, only: { type: 'string' }, 'page-only': { type: 'boolean' }, out: { type: 'string' }, data: { type: 'string' } }, strict: true });
  const only = values.only;
  if (only !== undefined && !(EXPERIMENTS as readonly string[]).includes(only)) throw new Error(`--only must be one of ${EXPERIMENTS.join(', ')}, got '${only}'`);
  const quick = values.quick ?? false;
  const out = values.out ?? 'docs';
  const dir = join(out, 'experiments');
  mkdirSync(dir, { recursive: true });
  const wanted = (name: string) => !values['page-only'] && (only === undefined || only === name);
  const previous = <T>(name: string): T | null => (existsSync(join(dir, `${name}.json`)) ? (JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8')) as T) : null);

  const t0 = performance.now();
  /** Runs one experiment and records how long it took, with the date, in its result. */
  const timed = async <T extends object>(fn: () => T | Promise<T>): Promise<T & Timing> => {
    const start = performance.now();
    const result = await fn();
    return { ...result, seconds: (performance.now() - start) / 1000, date: new Date().toISOString().slice(0, 10) };
  };
  const memory = wanted('memory') ? await timed(() => runMemory(quick, log)) : previous<MemoryResult & Timing>('memory');
  const time = wanted('time') ? await timed(() => runTime(quick, log)) : previous<TimeResult & Timing>('time');
  const convergence = wanted('convergence')
    ? await timed(() => runConvergence({ quick, data: values.data, cacheDir: join('.tmp', 'experiments-cache') }, log))
    : previous<ConvergenceResult & Timing>('convergence');
  const classification = wanted('classification')
    ? await timed(() => runClassification({ quick, cacheDir: join('.tmp', 'experiments-cache') }, log))
    : previous<ClassificationResult & Timing>('classification');
  const seconds = (performance.now() - t0) / 1000;

  if (memory) {
    writeFileSync(join(dir, 'memory.json'), `${JSON.stringify(memory, null, 1)}\n`);
    writeFileSync(join(dir, 'memory.svg'), memoryFigure(memory));
  }
  if (time) {
    writeFileSync(join(dir, 'time.json'), `${JSON.stringify(time, null, 1)}\n`);
    writeFileSync(join(dir, 'time.svg'), timeFigure(time));
  }
  if (convergence) {
    writeFileSync(join(dir, 'convergence.json'), `${JSON.stringify(convergence)}\n`);
    const figures = convergenceFigures(convergence);
    writeFileSync(join(dir, 'convergence-steps.svg'), figures.steps);
    writeFileSync(join(dir, 'convergence-time.svg'), figures.time);
  }
  if (classification) {
    writeFileSync(join(dir, 'classification.json'), `${JSON.stringify(classification)}\n`);
    const figures = classificationFigures(classification);
    writeFileSync(join(dir, 'classification-accuracy.svg'), figures.accuracy);
    writeFileSync(join(dir, 'classification-loss.svg'), figures.loss);
  }
  const machine = `${cpus().length} cores (${cpus()[0]?.model.trim() ?? 'unknown CPU'}), Node ${process.versions.node}`;
  writeFileSync(join(out, 'experiments.md'), experimentsPage(memory, time, convergence, classification, { date: new Date().toISOString().slice(0, 10), seconds, machine, quick }));
  log(`wrote ${join(out, 'experiments.md')} and ${dir}/ in ${seconds.toFixed(0)} s`);
  return { memory, time, convergence, classification };
}

if (require.main === module) {
  runExperiments(process.argv.slice(2)).catch((err) => {
    process.stderr.write(`experiments: ${(err as Error).message}\n`);
    process.exitCode = 1;
  });
}
