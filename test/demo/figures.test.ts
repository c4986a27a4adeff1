/**
 * The demo's figures (demo/figures.ts): the memory bars in the terminal are as long as the bytes
 * they stand for, each category in its own character; the SVG bars stack the same values; the
 * loss chart against time puts each step at its seconds.
 */
import { lossFigures, memoryBarsText, memoryFigure } from '../../demo/figures';
import type { TrainingMemory } from '../../src';
import { findAll, parseXml } from './xml';

const row = (label: string, parameters: number, weights: number, grads: number, master: number, optimizer: number): TrainingMemory => ({
  label,
  parameters,
  trainable: parameters,
  weights,
  grads,
  master,
  optimizer,
  savedActivations: 0,
  modelStateBytes: weights + grads + master + optimizer,
  bytesPerParameter: (weights + grads + master + optimizer) / parameters,
});

// Adam: 2 + 4 + 4 + 8 = 18 bytes per parameter; BAdam: 2 + 1 + 1 + 2 = 6 (a quarter active)
const adam = row('Adam', 1000, 2000, 4000, 4000, 8000);
const badam = row('BAdam', 1000, 2000, 1000, 1000, 2000);

test('terminal bars: the largest total fills the width, the others in proportion, category by category', () => {
  const lines = memoryBarsText([badam, adam], ['badam', 'adam'], 36);
  expect(lines).toHaveLength(3);
  const bar = (line: string) => line.replace(/^\s*\S+\s+/, '').replace(/\s+[\d.]+ bytes\/param$/, '');
  const count = (s: string, c: string) => s.split(c).length - 1;
  // 36 characters for 18 bytes: 2 per byte
  expect([...'█▓▒░'].map((c) => count(bar(lines[1]), c))).toEqual([4, 8, 8, 16]);
  expect([...'█▓▒░'].map((c) => count(bar(lines[0]), c))).toEqual([4, 2, 2, 4]);
  expect(lines[0]).toMatch(/6\.00 bytes\/param$/);
  expect(lines[1]).toMatch(/18\.00 bytes\/param$/);
  expect(lines[2]).toMatch(/█ weights {2}▓ gradients {2}▒ float32 masters {2}░ optimizer state/);
});

test('SVG bars: stacked segments as tall as their bytes per parameter', () => {
  const svg = parseXml(memoryFigure([badam, adam], ['badam', 'adam'], 'a subtitle'));
  const bars = findAll(svg, (e) => e.attrs.class === 'bar');
  expect(bars.map((b) => b.attrs['data-bar'])).toEqual(['BAdam', 'Adam']);
  const heights = bars.map((b) => findAll(b, (e) => e.name === 'rect').map((r) => Number(r.attrs.height)));
  // the same scale for both bars: Adam's segments are 2, 4, 4, 8 times BAdam's weights segment
  const unit = heights[0][0] / 2;
  expect(heights[1].map((h) => h / unit)).toEqual([2, 4, 4, 8].map((x) => expect.closeTo(x, 1)));
  expect(heights[0].map((h) => h / unit)).toEqual([2, 1, 1, 2].map((x) => expect.closeTo(x, 1)));
});

test('loss against time: each series on its own seconds, the step chart marks the switches', () => {
  const runs = [
    { name: 'badam' as const, losses: [3, 2.5, 2], elapsed: [0.1, 0.2, 0.3], finalLoss: 2 },
    { name: 'adam' as const, losses: [3, 2, 1.5], elapsed: [0.2, 0.4, 0.6], finalLoss: 1.5 },
  ];
  const { steps, time } = lossFigures(runs, 'sub', [{ step: 0, block: 0 }, { step: 2, block: 1 }]);
  const t = parseXml(time);
  expect(findAll(t, (e) => e.attrs.class === 'legend-label').map((e) => e.text)).toEqual(['BAdam (0.3 s)', 'Adam (0.6 s)']);
  expect(findAll(t, (e) => e.attrs.class === 'x-label')[0].text).toBe('seconds of fine-tuning');
  const s = parseXml(steps);
  expect(findAll(s, (e) => e.attrs.class === 'legend-label').map((e) => e.text)).toEqual(['BAdam (final 2.000)', 'Adam (final 1.500)']);
  // the switch after step 2 (the start at step 0 is not a switch)
  const markers = findAll(s, (e) => e.attrs.class === 'markers')[0];
  expect(findAll(markers, (e) => e.name === 'text').map((e) => e.text)).toEqual(['b1']);
});
