/**
 * A stacked bar chart as a self-contained SVG (the experiments' and the demo's figures): one bar
 * per item, each split into coloured segments, with a value axis, a legend and an optional
 * reference mark per bar (a formula's prediction, drawn as a short black line across the bar).
 */
import { escapeXml, niceTicks } from './chart';

export interface Bar {
  label: string;
  /** Segment values, in the order of BarChart.segments. */
  values: number[];
  /** A reference value drawn across the bar (e.g. the formula), or null. */
  mark?: number | null;
}

export interface BarChart {
  title: string;
  subtitle?: string;
  yLabel: string;
  segments: { label: string; color: string }[];
  bars: Bar[];
  markLabel?: string;
  /** Lines of small print under the legend. */
  legendNote?: string[];
  /** Formats axis values (default: as they are). */
  format?: (v: number) => string;
}

const f1 = (x: number) => (Math.round(x * 10) / 10).toString();

export function barChart(c: BarChart): string {
  const legendW = 230;
  const barW = Math.max(34, Math.min(70, Math.floor(480 / c.bars.length))); // a few bars get wider ones
  const gap = 22;
  const margin = { left: 78, right: legendW + 24, top: c.subtitle ? 74 : 56, bottom: 110 };
  const plotW = c.bars.length * (barW + gap) + gap;
  // wide enough for the title and subtitle too (a few bars make a narrow plot): about 10 and 6.5
  // pixels per character at their sizes
  const textW = Math.max(10 * c.title.length, 6.5 * (c.subtitle?.length ?? 0)) + 40;
  const width = Math.ceil(Math.max(margin.left + plotW + margin.right, textW));
  const height = 520;
  const plotH = height - margin.top - margin.bottom;
  const totals = c.bars.map((b) => b.values.reduce((a, v) => a + v, 0));
  const top = Math.max(...totals, ...c.bars.map((b) => b.mark ?? 0));
  const y = niceTicks(0, top > 0 ? top : 1, 6);
  const py = (v: number) => margin.top + (1 - v / y.max) * plotH;
  const fmt = c.format ?? ((v: number) => String(v));
  const out: string[] = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<title>${escapeXml(c.title)}</title>`,
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="26" text-anchor="middle" font-size="17" font-weight="bold" fill="#222222">${escapeXml(c.title)}</text>`,
  ];
  if (c.subtitle) out.push(`<text x="${width / 2}" y="48" text-anchor="middle" font-size="12" fill="#555555">${escapeXml(c.subtitle)}</text>`);
  out.push('<g class="y-axis" stroke="#dddddd">');
  for (const t of y.ticks) {
    out.push(`<line x1="${margin.left}" y1="${f1(py(t))}" x2="${margin.left + plotW}" y2="${f1(py(t))}"/>`);
    out.push(`<text x="${margin.left - 8}" y="${f1(py(t) + 4)}" text-anchor="end" stroke="none" fill="#333333">${escapeXml(fmt(t))}</text>`);
  }
  out.push('</g>');
  out.push(`<text x="0" y="0" transform="translate(18 ${margin.top + plotH / 2}) rotate(-90)" text-anchor="middle" fill="#222222">${escapeXml(c.yLabel)}</text>`);
  c.bars.forEach((b, i) => {
    const x = margin.left + gap + i * (barW + gap);
    let acc = 0;
    out.push(`<g class="bar" data-bar="${escapeXml(b.label)}">`);
    b.values.forEach((v, k) => {
      if (v <= 0) return;
      out.push(`<rect x="${f1(x)}" y="${f1(py(acc + v))}" width="${barW}" height="${f1(py(acc) - py(acc + v))}" fill="${c.segments[k].color}"/>`);
      acc += v;
    });
    if (b.mark !== undefined && b.mark !== null) out.push(`<line class="mark" x1="${f1(x - 5)}" y1="${f1(py(b.mark))}" x2="${f1(x + barW + 5)}" y2="${f1(py(b.mark))}" stroke="#000000" stroke-width="2"/>`);
    out.push(`<text x="0" y="0" transform="translate(${f1(x + barW / 2 + 4)} ${margin.top + plotH + 10}) rotate(50)" fill="#222222">${escapeXml(b.label)}</text>`);
    out.push('</g>');
  });
  const lx = margin.left + plotW + 16;
  out.push('<g class="legend">');
  c.segments.forEach((s, k) => {
    out.push(`<rect x="${lx}" y="${margin.top + k * 20}" width="14" height="14" fill="${s.color}"/>`);
    out.push(`<text x="${lx + 20}" y="${margin.top + k * 20 + 11}" fill="#222222">${escapeXml(s.label)}</text>`);
  });
  if (c.markLabel) {
    const yy = margin.top + c.segments.length * 20 + 8;
    out.push(`<line x1="${lx}" y1="${yy + 6}" x2="${lx + 14}" y2="${yy + 6}" stroke="#000000" stroke-width="2"/>`);
    out.push(`<text x="${lx + 20}" y="${yy + 10}" fill="#222222">${escapeXml(c.markLabel)}</text>`);
  }
  (c.legendNote ?? []).forEach((line, k) => {
    out.push(`<text x="${lx}" y="${margin.top + (c.segments.length + 2) * 20 + 10 + k * 16}" fill="#666666" font-size="11">${escapeXml(line)}</text>`);
  });
  out.push('</g>', '</svg>');
  return `${out.join('\n')}\n`;
}
