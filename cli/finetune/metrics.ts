/**
 * metrics.jsonl (one JSON object per line, appended as the run goes) and the loss chart drawn
 * from it: the training loss at every step, the evaluation loss where it was measured, and
 * BAdam's block switches as markers.
 */
import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { memory, type MemoryCategory } from '../../src';
import { lossChart, type ChartMarker, type ChartSeries } from '../chart';
import { METRICS_FILE } from './checkpoint';

/** One training step's line. */
export interface StepMetrics {
  step: number;
  /** Mean of the micro-batches' losses (each the mean over its answer tokens). */
  loss: number;
  /** The learning rate this step used. */
  lr: number;
  /** BAdam's active block (block mode), else null. */
  activeBlock: number | null;
  /** Answer and prompt tokens (pads excluded) per second of this step. */
  tokensPerSecond: number;
  /** Live bytes by category after the step, and the peak during it. */
  memory: Record<MemoryCategory, number> & { peak: number };
  /** float16 with loss scaling: the scale the step used, and whether it was skipped for an overflow. */
  lossScale?: number;
  skipped?: boolean;
  /** Present on steps that evaluated: the token-weighted mean loss on the evaluation set and exp of it. */
  evalLoss?: number;
  perplexity?: number;
}

/** The memory fields of a line: live bytes by category now, and the peak since the last resetPeak. */
export function memoryFields(): StepMetrics['memory'] {
  const stats = memory.stats();
  return { ...stats.byCategory, peak: stats.peakBytes };
}

export class MetricsLog {
  readonly path: string;
  private lines: string[];

  /** Starts `<out>/metrics.jsonl` with `previous` (a resumed run's lines up to its checkpoint). */
  constructor(out: string, previous = '') {
    this.path = join(out, METRICS_FILE);
    this.lines = previous.split('\n').filter((l) => l.trim() !== '');
    writeFileSync(this.path, this.text());
  }

  add(m: StepMetrics): void {
    const line = JSON.stringify(m);
    this.lines.push(line);
    appendFileSync(this.path, `${line}\n`);
  }

  text(): string {
    return this.lines.map((l) => `${l}\n`).join('');
  }

  entries(): StepMetrics[] {
    return this.lines.map((l) => JSON.parse(l) as StepMetrics);
  }
}

/** loss.svg: training loss per step, evaluation loss where measured, block switches marked. */
export function metricsChart(entries: readonly StepMetrics[], title: string, subtitle: string): string {
  const train: number[] = [];
  for (const e of entries) train[e.step - 1] = e.loss;
  const evals = entries.filter((e) => e.evalLoss !== undefined);
  const series: ChartSeries[] = [{ id: 'train', label: 'training loss', color: '#1f77b4', values: Array.from(train, (v) => v ?? NaN) }];
  if (evals.length > 0) series.push({ id: 'eval', label: 'evaluation loss', color: '#d62728', values: evals.map((e) => e.evalLoss as number), x: evals.map((e) => e.step) });
  const markers: ChartMarker[] = [];
  for (let i = 1; i < entries.length; i++) {
    const block = entries[i].activeBlock;
    if (block !== null && block !== entries[i - 1].activeBlock) markers.push({ x: entries[i].step - 0.5, label: `b${block}` });
  }
  return lossChart({ title, subtitle, xLabel: 'optimizer step', yLabel: 'cross-entropy loss (nats / token)', series, markers, markerLabel: 'BAdam block switch\n(b: the new active block)' });
}
