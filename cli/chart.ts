/**
 * A loss-curve chart as a self-contained SVG document, written by hand: every series on one set
 * of axes, the raw per-step losses drawn faintly and a centred moving average on top, axis
 * labels, ticks, grid lines, a legend, a title, and optional vertical markers (BAdam's block
 * switches). Plain SVG 1.1 with no scripts or external references, so it opens in any browser
 * and parses as XML.
 */

export interface ChartSeries {
  /** Machine name (data-series attribute). */
  id: string;
  /** Legend text. */
  label: string;
  color: string;
  /** y value of step i + 1, or of step x[i] when x is given. */
  values: readonly number[];
  /**
   * The step of each value, for a sparse series (an evaluation every N steps): drawn as points
   * joined by a line, not smoothed.
   */
  x?: readonly number[];
}

export interface ChartMarker {
  x: number;
  label: string;
}

export interface LossChartOptions {
  title: string;
  subtitle?: string;
  xLabel: string;
  yLabel: string;
  series: readonly ChartSeries[];
  /** Dashed vertical lines with a short label at the top (e.g. block switches). */
  markers?: readonly ChartMarker[];
  /** Legend text for the markers. */
  markerLabel?: string;
  /** Moving-average window (odd; default about a twentieth of the longest series). */
  smoothWindow?: number;
  width?: number;
  height?: number;
}

/** Escapes text and attribute values for XML. */
export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

/** Centred moving average with a window that shrinks at the ends; non-finite values are skipped. */
export function movingAverage(values: readonly number[], window: number): number[] {
  const half = Math.max(0, Math.floor(window / 2));
  // prefix sums of the finite values and of their count: O(n) for any window (a long run's
  // window is thousands of steps wide)
  const n = values.length;
  const sums = new Float64Array(n + 1);
  const counts = new Int32Array(n + 1);
  for (let i = 0; i < n; i++) {
    const finite = Number.isFinite(values[i]);
    sums[i + 1] = sums[i] + (finite ? values[i] : 0);
    counts[i + 1] = counts[i] + (finite ? 1 : 0);
  }
  return values.map((_, i) => {
    const lo = Math.max(0, i - half);
    const hi = Math.min(n - 1, i + half) + 1;
    const count = counts[hi] - counts[lo];
    return count > 0 ? (sums[hi] - sums[lo]) / count : NaN;
  });
}

/** About `count` round tick values (1, 2 or 5 times a power of ten apart) covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): { min: number; max: number; step: number; ticks: number[] } {
  if (!(hi > lo)) {
    const pad = Math.abs(lo) > 0 ? Math.abs(lo) * 0.1 : 1;
    lo -= pad;
    hi += pad;
  }
  const raw = (hi - lo) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const min = Math.floor(lo / step + 1e-9) * step;
  const max = Math.ceil(hi / step - 1e-9) * step;
  const ticks: number[] = [];
  for (let v = min; v <= max + step * 1e-6; v += step) ticks.push(Number(v.toPrecision(12)));
  return { min, max, step, ticks };
}

const f1 = (x: number) => (Math.round(x * 10) / 10).toString();

/** A tick value with as many decimals as the tick step needs (0.25 steps: two). */
function tickLabel(v: number, step: number): string {
  const exp = Math.floor(Math.log10(step) + 1e-9);
  const quarter = exp <= 0 && Math.abs(step / 10 ** exp - 2.5) < 1e-9 ? 1 : 0;
  return v.toFixed(Math.min(Math.max(0, -exp) + quarter, 6));
}

/** The chart as an SVG document (a string starting with the XML declaration). */
export function lossChart(options: LossChartOptions): string {
  const series = options.series;
  const legendWidth = Math.max(230, ...series.map((s) => 72 + 7 * s.label.length));
  const width = options.width ?? 760 + legendWidth;
  const height = options.height ?? 520;
  const margin = { left: 78, right: 24 + legendWidth, top: options.subtitle ? 74 : 56, bottom: 64 };
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;
  const lastStep = (s: ChartSeries) => (s.x ? s.x.reduce((m, v) => Math.max(m, v), 0) : s.values.length);
  const longest = Math.max(1, ...series.map(lastStep));
  const window = options.smoothWindow ?? Math.max(1, 2 * Math.round(longest / 40) + 1);

  // a loop, not Math.min(...values): spreading 100k losses as arguments overflows the stack
  let lo = Infinity;
  let hi = -Infinity;
  for (const s of series) {
    for (const v of s.values) {
      if (!Number.isFinite(v)) continue;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  const anyFinite = lo <= hi;
  const yLo = anyFinite ? lo : 0;
  const yHi = anyFinite ? hi : 1;
  const y = niceTicks(yLo, yHi, 6);
  // a series with its own x (evaluations, seconds) may start before step 1: the axis starts at 0
  const xMin = series.some((s) => s.x) || longest <= 1 ? 0 : 1;
  const x = longest > 1 ? niceTicks(xMin, longest, 8) : { min: 0, max: 2, step: 1, ticks: [0, 1, 2] };
  const xMax = longest > 1 ? longest : 2;
  const px = (v: number) => margin.left + ((v - xMin) / (xMax - xMin)) * plotW;
  const py = (v: number) => margin.top + (1 - (v - y.min) / (y.max - y.min)) * plotH;

  const out: string[] = [];
  out.push('<?xml version="1.0" encoding="UTF-8"?>');
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
      `font-family="Helvetica, Arial, sans-serif" font-size="13">`,
  );
  out.push(`<title>${escapeXml(options.title)}</title>`);
  out.push(`<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(`<text x="${width / 2}" y="26" text-anchor="middle" font-size="18" font-weight="bold" fill="#222222">${escapeXml(options.title)}</text>`);
  if (options.subtitle) {
    out.push(`<text x="${width / 2}" y="48" text-anchor="middle" font-size="12" fill="#555555">${escapeXml(options.subtitle)}</text>`);
  }

  // grid, ticks and tick labels
  out.push('<g class="grid" stroke="#e4e4e4" stroke-width="1">');
  for (const t of y.ticks) out.push(`<line x1="${margin.left}" y1="${f1(py(t))}" x2="${margin.left + plotW}" y2="${f1(py(t))}"/>`);
  for (const t of x.ticks) if (t >= xMin && t <= xMax) out.push(`<line x1="${f1(px(t))}" y1="${margin.top}" x2="${f1(px(t))}" y2="${margin.top + plotH}"/>`);
  out.push('</g>');
  out.push('<g class="y-axis" fill="#333333" stroke="#333333">');
  out.push(`<line x1="${margin.left}" y1="${margin.top}" x2="${margin.left}" y2="${margin.top + plotH}"/>`);
  for (const t of y.ticks) {
    out.push(`<line x1="${margin.left - 5}" y1="${f1(py(t))}" x2="${margin.left}" y2="${f1(py(t))}"/>`);
    out.push(`<text x="${margin.left - 8}" y="${f1(py(t) + 4)}" text-anchor="end" stroke="none">${tickLabel(t, y.step)}</text>`);
  }
  out.push('</g>');
  out.push('<g class="x-axis" fill="#333333" stroke="#333333">');
  out.push(`<line x1="${margin.left}" y1="${margin.top + plotH}" x2="${margin.left + plotW}" y2="${margin.top + plotH}"/>`);
  for (const t of x.ticks) {
    if (t < xMin || t > xMax) continue;
    out.push(`<line x1="${f1(px(t))}" y1="${margin.top + plotH}" x2="${f1(px(t))}" y2="${margin.top + plotH + 5}"/>`);
    out.push(`<text x="${f1(px(t))}" y="${margin.top + plotH + 20}" text-anchor="middle" stroke="none">${tickLabel(t, x.step)}</text>`);
  }
  out.push('</g>');
  out.push(`<text class="x-label" x="${margin.left + plotW / 2}" y="${height - 18}" text-anchor="middle" fill="#222222">${escapeXml(options.xLabel)}</text>`);
  out.push(
    `<text class="y-label" x="0" y="0" transform="translate(20 ${margin.top + plotH / 2}) rotate(-90)" text-anchor="middle" fill="#222222">${escapeXml(options.yLabel)}</text>`,
  );

  // markers
  const markers = (options.markers ?? []).filter((m) => m.x >= xMin && m.x <= xMax);
  if (markers.length) {
    out.push('<g class="markers" stroke="#999999" stroke-width="1" stroke-dasharray="4 4" fill="#777777" font-size="10">');
    for (const m of markers) {
      out.push(`<line x1="${f1(px(m.x))}" y1="${margin.top}" x2="${f1(px(m.x))}" y2="${margin.top + plotH}"/>`);
      out.push(`<text x="${f1(px(m.x) + 3)}" y="${margin.top + 11}" stroke="none">${escapeXml(m.label)}</text>`);
    }
    out.push('</g>');
  }

  // the curves: raw faintly, smoothed on top; a sparse series as its points, joined
  const stepOf = (s: ChartSeries, i: number) => (s.x ? s.x[i] : longest > 1 ? i + 1 : 1);
  const pathOf = (s: ChartSeries, values: readonly number[]) => {
    let d = '';
    let pen = false;
    values.forEach((v, i) => {
      if (!Number.isFinite(v)) {
        pen = false;
        return;
      }
      d += `${pen ? 'L' : 'M'}${f1(px(stepOf(s, i)))},${f1(py(v))} `;
      pen = true;
    });
    return d.trim();
  };
  for (const s of series) {
    if (s.x) continue;
    const raw = s.values
      .map((v, i) => (Number.isFinite(v) ? `${f1(px(stepOf(s, i)))},${f1(py(v))}` : null))
      .filter((p): p is string => p !== null)
      .join(' ');
    out.push(`<polyline class="raw" data-series="${escapeXml(s.id)}" points="${raw}" fill="none" stroke="${s.color}" stroke-opacity="0.25" stroke-width="1"/>`);
  }
  for (const s of series) {
    out.push(
      `<path class="curve" data-series="${escapeXml(s.id)}" d="${pathOf(s, s.x ? s.values : movingAverage(s.values, window))}" fill="none" stroke="${s.color}" ` +
        'stroke-width="2.5" stroke-linejoin="round" stroke-linecap="round"/>',
    );
    if (!s.x || s.values.length > 60) continue; // points, where there are few enough to see
    out.push(`<g class="points" data-series="${escapeXml(s.id)}" fill="${s.color}">`);
    s.values.forEach((v, i) => {
      if (Number.isFinite(v)) out.push(`<circle cx="${f1(px(stepOf(s, i)))}" cy="${f1(py(v))}" r="3.5"/>`);
    });
    out.push('</g>');
  }

  // legend, in its own column right of the plot (never over a curve)
  const lx = margin.left + plotW + 16;
  const ly = margin.top;
  const legendW = legendWidth - 24;
  const anyDense = series.some((s) => !s.x);
  const noteLines = !anyDense ? [] : window > 1 ? ['faint: loss at each step', `bold: ${window}-step moving average`] : ['loss at each step'];
  const rows = series.length + (markers.length ? 2 : 0);
  out.push('<g class="legend">');
  out.push(`<rect x="${f1(lx)}" y="${ly}" width="${f1(legendW)}" height="${rows * 20 + noteLines.length * 16 + 18}" fill="#ffffff" stroke="#cccccc"/>`);
  series.forEach((s, i) => {
    const yy = ly + 20 + i * 20;
    out.push(`<line x1="${f1(lx + 10)}" y1="${yy - 4}" x2="${f1(lx + 34)}" y2="${yy - 4}" stroke="${s.color}" stroke-width="3"/>`);
    out.push(`<text class="legend-label" data-series="${escapeXml(s.id)}" x="${f1(lx + 40)}" y="${yy}" fill="#222222">${escapeXml(s.label)}</text>`);
  });
  let next = ly + 20 + series.length * 20;
  if (markers.length) {
    out.push(`<line x1="${f1(lx + 22)}" y1="${next - 13}" x2="${f1(lx + 22)}" y2="${next + 19}" stroke="#999999" stroke-dasharray="4 4"/>`);
    const [first, ...rest] = (options.markerLabel ?? 'marker').split('\n');
    out.push(`<text x="${f1(lx + 40)}" y="${next}" fill="#555555" font-size="12">${escapeXml(first)}</text>`);
    if (rest.length) out.push(`<text x="${f1(lx + 40)}" y="${next + 16}" fill="#555555" font-size="12">${escapeXml(rest.join(' '))}</text>`);
    next += 40;
  }
  noteLines.forEach((line, i) => out.push(`<text x="${f1(lx + 10)}" y="${next + i * 16}" fill="#777777" font-size="11">${escapeXml(line)}</text>`));
  out.push('</g>');
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
