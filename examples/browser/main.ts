/**
 * blockgrad in a browser: on load, select the gpu backend (gpu.js picks WebGL2 here) or the wasm
 * backend (`?backend=wasm`: WebAssembly SIMD, on worker threads since the page is served
 * cross-origin isolated), build a
 * tiny Llama-style model over the byte tokenizer's ids, and train it with BAdam
 * (`BlockOptimizer`, Adam inside) on a short embedded text. The loss curve is drawn live on a
 * canvas, shaded by the block that was trainable at each step.
 *
 * Progress is also written as JSON into `<pre id="status">`, so that a test driving a headless
 * browser (test/browser/browser.test.ts) can read it: backend and mode come from backendInfo()
 * (what really runs, not what was asked for), `losses` grows by one per step, and `done` turns
 * true at the end, with `error` set if anything threw.
 *
 * Query parameters: `?steps=40` (optimizer steps), `?backend=gpu|wasm` (default gpu),
 * `?mode=webgl2|webgl|webasm|cpu` (force a gpu.js mode instead of letting it choose), `?threads=N`
 * (wasm: threads, default all cores).
 *
 * Built and served by `npm run example:browser` (scripts/serve-browser-example.mjs).
 */
import { backendInfo, prepareWasm, setBackend, type BackendInfo, type GpuMode } from '../../src';
import { DEFAULT_STEPS, tinyLlamaRun } from './train';

interface Status {
  done: boolean;
  error: string | null;
  backend: string | null;
  mode: string | null;
  info: BackendInfo | null;
  steps: number;
  /** One loss per finished step. */
  losses: number[];
  /** The trained block's prefixes at each finished step (joined with ', '). */
  blocks: string[];
  /** The block the latest step trained. */
  activeBlock: string | null;
  elapsedMs: number;
}

const params = new URLSearchParams(location.search);
const steps = Math.max(1, Math.min(500, Number(params.get('steps') ?? DEFAULT_STEPS) || DEFAULT_STEPS));
const forcedMode = (params.get('mode') ?? undefined) as GpuMode | undefined;
const backendName = params.get('backend') ?? 'gpu';
const threads = params.get('threads') ? Number(params.get('threads')) : undefined;

const status: Status = {
  done: false,
  error: null,
  backend: null,
  mode: null,
  info: null,
  steps,
  losses: [],
  blocks: [],
  activeBlock: null,
  elapsedMs: 0,
};

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;

function publish(): void {
  $('status').textContent = JSON.stringify(status, null, 1);
  $('backend').textContent = status.mode ? `${status.backend} (${status.mode})` : (status.backend ?? 'starting…');
  $('block').textContent = status.activeBlock ?? '–';
  draw();
}

// one shade per block, cycled
const SHADES = ['#e8f0fe', '#fce8e6', '#e6f4ea', '#fef7e0', '#f3e8fd'];

function draw(): void {
  const canvas = $<HTMLCanvasElement>('chart');
  const ctx = canvas.getContext('2d');
  if (!ctx) return;
  const { width, height } = canvas;
  const left = 48;
  const right = width - 12;
  const top = 16;
  const bottom = height - 32;
  const losses = status.losses;
  // from the finite losses only, and capped: an Infinity or NaN must not stall the axis loop below
  const yMax = Math.min(100, Math.max(1, Math.ceil(Math.max(0, ...losses.filter(Number.isFinite)))));
  const x = (i: number): number => left + ((right - left) * i) / Math.max(1, steps - 1);
  const y = (v: number): number => bottom - ((bottom - top) * v) / yMax;

  ctx.clearRect(0, 0, width, height);
  ctx.font = '11px sans-serif';

  // shaded spans, one per run of steps with the same active block
  const blockIds = [...new Set(status.blocks)];
  const half = (right - left) / Math.max(1, steps - 1) / 2;
  for (let i = 0; i < status.blocks.length; ) {
    let j = i;
    while (j + 1 < status.blocks.length && status.blocks[j + 1] === status.blocks[i]) j++;
    ctx.fillStyle = SHADES[blockIds.indexOf(status.blocks[i]) % SHADES.length];
    const x0 = Math.max(left, Math.round(x(i) - half));
    ctx.fillRect(x0, top, Math.min(right, Math.round(x(j) + half)) - x0, bottom - top);
    i = j + 1;
  }

  // axes and ticks
  ctx.strokeStyle = '#888';
  ctx.fillStyle = '#444';
  ctx.beginPath();
  ctx.moveTo(left, top);
  ctx.lineTo(left, bottom);
  ctx.lineTo(right, bottom);
  ctx.stroke();
  ctx.textAlign = 'right';
  for (let v = 0; v <= yMax; v++) ctx.fillText(String(v), left - 6, y(v) + 4);
  ctx.textAlign = 'center';
  const tick = Math.max(1, Math.round(steps / 8));
  for (let i = 0; i < steps; i += tick) ctx.fillText(String(i), x(i), bottom + 14);
  ctx.fillText('step', (left + right) / 2, bottom + 28);
  ctx.save();
  ctx.translate(12, (top + bottom) / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.fillText('loss', 0, 0);
  ctx.restore();

  // legend: the blocks seen so far, on a white box over the shading (the curve goes on top)
  ctx.textAlign = 'left';
  if (blockIds.length > 0) {
    ctx.fillStyle = 'rgba(255, 255, 255, 0.85)';
    ctx.fillRect(right - 206, top + 2, 200, 16 * blockIds.length + 4);
  }
  blockIds.forEach((name, k) => {
    ctx.fillStyle = SHADES[k % SHADES.length];
    ctx.fillRect(right - 200, top + 6 + 16 * k, 12, 12);
    ctx.strokeStyle = '#bbb';
    ctx.strokeRect(right - 200, top + 6 + 16 * k, 12, 12);
    ctx.fillStyle = '#333';
    ctx.fillText(name, right - 182, top + 16 + 16 * k);
  });

  // the curve
  ctx.strokeStyle = '#1a56db';
  ctx.lineWidth = 2;
  ctx.beginPath();
  losses.forEach((v, i) => (i === 0 ? ctx.moveTo(x(i), y(v)) : ctx.lineTo(x(i), y(v))));
  ctx.stroke();
  ctx.lineWidth = 1;
}

/** Lets the page paint between steps (each step is synchronous work). */
const nextFrame = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0));

async function main(): Promise<void> {
  const t0 = performance.now();
  if (backendName === 'wasm') {
    // a browser compiles WebAssembly of this size only asynchronously
    await prepareWasm();
    setBackend('wasm', threads ? { threads } : undefined);
  } else setBackend('gpu', forcedMode ? { mode: forcedMode } : undefined);
  const info = backendInfo();
  status.info = info;
  status.backend = info.backend;
  status.mode = info.mode ?? null;
  publish();
  await nextFrame();

  const run = tinyLlamaRun(steps);
  for (const { loss, block } of run.steps) {
    status.activeBlock = block;
    status.losses.push(loss);
    status.blocks.push(block);
    status.elapsedMs = Math.round(performance.now() - t0);
    publish();
    await nextFrame();
  }
  status.info = backendInfo();
  status.done = true;
  publish();
}

main().catch((err: unknown) => {
  status.error = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  status.done = true;
  publish();
  console.error(err);
});
