/**
 * The demo's figures: the loss of every optimizer against steps (with BAdam's block switches) and
 * against seconds, and the memory of one step as stacked bars, both as SVG files and, for the
 * memory, as bars in the terminal.
 */
import { barChart } from '../cli/bars';
import { lossChart, movingAverage, type ChartMarker } from '../cli/chart';
import type { TrainingMemory } from '../src';
import { OPTIMIZER_LABELS, type OptimizerName } from './train';

const COLORS: Record<OptimizerName, string> = { badam: '#1f77b4', adam: '#ff7f0e', lora: '#2ca02c', lomo: '#9467bd' };

/** What the loss charts need of each optimizer's run. */
export interface LossRun {
  name: OptimizerName;
  losses: readonly number[];
  /** Seconds since fine-tuning started, after each step. */
  elapsed: readonly number[];
  finalLoss: number;
}

/** The loss against steps (BAdam's switches marked) and against seconds, as two SVG documents. */
export function lossFigures(runs: readonly LossRun[], subtitle: string, switches: readonly { step: number; block: number }[]): { steps: string; time: string } {
  const title = `Fine-tuning loss: ${runs.map((r) => OPTIMIZER_LABELS[r.name]).join(' vs ')}`;
  const yLabel = 'training loss (cross-entropy on response tokens)';
  const markers: ChartMarker[] = switches.filter((s) => s.step > 0).map((s) => ({ x: s.step + 0.5, label: `b${s.block}` }));
  const steps = lossChart({
    title,
    subtitle,
    xLabel: 'fine-tuning step',
    yLabel,
    series: runs.map((r) => ({ id: r.name, label: `${OPTIMIZER_LABELS[r.name]} (final ${r.finalLoss.toFixed(3)})`, color: COLORS[r.name], values: r.losses })),
    markers,
    markerLabel: 'BAdam block switch\n(bN: block N trainable from here)',
  });
  // a series with its own x is drawn as it is, so it is smoothed here as the step chart smooths
  const window = Math.max(1, 2 * Math.round(Math.max(...runs.map((r) => r.losses.length)) / 40) + 1);
  const time = lossChart({
    title: `${title}, against time`,
    subtitle,
    xLabel: 'seconds of fine-tuning',
    yLabel,
    series: runs.map((r) => ({
      id: r.name,
      label: `${OPTIMIZER_LABELS[r.name]} (${r.elapsed[r.elapsed.length - 1].toFixed(1)} s${window > 1 ? `, ${window}-step average` : ''})`,
      color: COLORS[r.name],
      values: movingAverage(r.losses, window),
      x: r.elapsed,
    })),
  });
  return { steps, time };
}

/** The memory categories the bars stack, in order, with the character each fills in the terminal. */
const CATEGORIES = [
  { key: 'weights', label: 'weights', color: '#9ecae1', char: '█' },
  { key: 'grads', label: 'gradients', color: '#fd8d3c', char: '▓' },
  { key: 'master', label: 'float32 masters', color: '#74c476', char: '▒' },
  { key: 'optimizer', label: 'optimizer state', color: '#9e9ac8', char: '░' },
] as const;

/** Bytes per parameter of each category of one measured step. */
const perParameter = (m: TrainingMemory) => CATEGORIES.map((c) => m[c.key] / m.parameters);

/** The memory of one step of each optimizer as stacked bars of bytes per parameter (SVG). */
export function memoryFigure(rows: readonly TrainingMemory[], names: readonly OptimizerName[], subtitle: string): string {
  return barChart({
    title: 'Memory of model state per parameter, one training step',
    subtitle,
    yLabel: 'bytes per parameter',
    segments: CATEGORIES.map((c) => ({ label: c.label, color: c.color })),
    bars: rows.map((m, i) => ({ label: OPTIMIZER_LABELS[names[i]], values: perParameter(m) })),
    format: (v) => v.toFixed(0),
    legendNote: ['saved activations not included', '(the paper counts model state)'],
  });
}

/**
 * The same bars for the terminal: one line per optimizer, `width` characters for the largest
 * total, each category in its own shade, and a legend line.
 */
export function memoryBarsText(rows: readonly TrainingMemory[], names: readonly OptimizerName[], width = 48): string[] {
  const values = rows.map(perParameter);
  const largest = Math.max(...values.map((v) => v.reduce((a, b) => a + b, 0)));
  const labelWidth = Math.max(...names.map((n) => OPTIMIZER_LABELS[n].length));
  const lines = values.map((v, i) => {
    // each category's characters, rounded so that the bar's length is its rounded total
    let bar = '';
    let sum = 0;
    v.forEach((x, c) => {
      const before = Math.round((sum / largest) * width);
      sum += x;
      bar += CATEGORIES[c].char.repeat(Math.round((sum / largest) * width) - before);
    });
    return `  ${OPTIMIZER_LABELS[names[i]].padEnd(labelWidth)} ${bar.padEnd(width)} ${sum.toFixed(2)} bytes/param`;
  });
  return [...lines, `  ${' '.repeat(labelWidth)} ${CATEGORIES.map((c) => `${c.char} ${c.label}`).join('  ')}`];
}
