/**
 * The JS side of the wasm Adam kernel (wasm/assembly/adam.ts): computes the step's constants in
 * doubles (as the cpu backend does), rounds each to float32 once, writes the descriptor at
 * rt.descPtr and runs the update in chunks of ADAM_CHUNK elements.
 *
 * Descriptor (byte offset: field; the layout of adam.ts):
 *    0 param   4 grad   8 expAvg   12 expAvgSq   16 maxExpAvgSq (0: none)   20 n   24 chunk
 *   28 flags (1 maximize, 2 decoupled decay, 4 L2 decay, 8 lerp from g)
 *   32 w = 1-β1   36 1-w   40 β2   44 1-β2   48 wd   52 1-lr·wd   56 stepSize   60 √(1-β2^step)
 *   64 eps        (float32 from byte 32 on)
 */
import type { AdamHyper } from '../backend';
import { kernelArgs } from './rows';
import type { WasmKernelRunner } from './runner';

/**
 * Elements per task: 64K elements are 1.75 MiB of the seven streams read or written, ~45 us of
 * work on one thread, so a task's hand-off is small and 1M parameters make 16 tasks to balance.
 */
export const ADAM_CHUNK = 1 << 16;

/**
 * One Adam / AdamW step in place on n contiguous float32 elements of param, expAvg, expAvgSq and
 * (amsgrad) maxExpAvgSq, given grad: the update of Backend.adamUpdate, in float32 arithmetic
 * (within a few float32 roundings of the cpu backend's double arithmetic). Whether amsgrad runs
 * follows maxExpAvgSq (not null), as in the cpu backend. Returns false, touching nothing, for an
 * address the descriptor cannot encode (0 for maxExpAvgSq).
 */
export function adamInto(
  rt: WasmKernelRunner,
  param: number,
  grad: number,
  expAvg: number,
  expAvgSq: number,
  maxExpAvgSq: number | null,
  n: number,
  h: AdamHyper,
): boolean {
  const args = kernelArgs(rt, 'adamUpdate', `${n} elements`);
  args.count('n', n);
  if (maxExpAvgSq === 0) return false;
  if (n === 0) return true;
  args.operand('param', param, n);
  args.operand('grad', grad, n);
  args.operand('expAvg', expAvg, n);
  args.operand('expAvgSq', expAvgSq, n);
  if (maxExpAvgSq !== null) args.operand('maxExpAvgSq', maxExpAvgSq, n);

  const { lr, beta1, beta2, eps, weightDecay: wd, decoupled, step, maximize } = h;
  const w = 1 - beta1;
  const flags = (maximize ? 1 : 0) | (wd !== 0 ? (decoupled ? 2 : 4) : 0) | (w < 0.5 ? 0 : 8);
  const d = rt.memory.buffer;
  const u32 = new Uint32Array(d, rt.descPtr, 8);
  u32.set([param, grad, expAvg, expAvgSq, maxExpAvgSq ?? 0, n, ADAM_CHUNK, flags]);
  new Float32Array(d, rt.descPtr + 32, 9).set([
    w,
    1 - w,
    beta2,
    1 - beta2,
    wd,
    1 - lr * wd,
    lr / (1 - beta1 ** step),
    Math.sqrt(1 - beta2 ** step),
    eps,
  ]);
  rt.run('adam_f32', rt.descPtr, Math.ceil(n / ADAM_CHUNK));
  return true;
}
