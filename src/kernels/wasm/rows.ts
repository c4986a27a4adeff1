/**
 * The JS side of the wasm row kernels (wasm/assembly/rows.ts, reduce.ts): softmax and its
 * backward, layer / RMS norm, cross-entropy forward and backward, reductions over the last or the middle axis, all
 * float32 and contiguous. Each function checks its arguments, cuts the rows into tasks, writes
 * the kernel's descriptor at rt.descPtr and runs it. Results match the cpu backend's kernels
 * (src/kernels/cpu/rows.ts) to a few float32 ulp (reduceMiddle exactly); the AssemblyScript
 * files say where the differences come from.
 *
 * Row kernels' descriptor (byte offset: field; the layout of rows.ts):
 *    0 x   4 out   8 aux (rstd | x̂ | g | int32 target)   12 aux2 (gradRow | rstd)   16 outer   20 inner
 *   24 rowsPer   28 flags   32 ignoreIndex (i32)   40 eps / labelSmoothing (f64)
 * reduce_rows_f32:   0 x   4 out   16 outer   20 inner   24 rowsPer   28 op
 * reduce_middle_f32: 0 x   4 out   8 outer   12 mid   16 inner   20 op   24 outerPer
 *                    28 colsPer   32 tilesN
 * Every function returns true once the outputs are written, false (writing nothing) for a case it
 * leaves to the TypeScript kernel, and throws a BackendError for arguments no kernel could take.
 */
import { BackendError } from '../../errors';
import type { CrossEntropyArgs } from '../backend';
import type { WasmKernelRunner } from './runner';

export type WasmReduceOp = 'sum' | 'max' | 'min';

/**
 * Elements a task should at least cover, so that handing it to another thread costs little next
 * to its work. Measured on one thread: the exp kernels take ~2.5 ns per element (a 16K-element
 * task ~40 us), the norms ~0.8 ns and the reductions ~0.2 ns (a 32K-element task 6-25 us). A
 * worker still spinning from the last task joins in a few microseconds, but waking one that
 * sleeps costs more: with half these sizes, the softmax of a 64-token backward (16K elements a
 * call) took 0.7 ms per backward on two threads against 0.5 on one.
 */
const MIN_TASK_ELEMENTS_EXP = 1 << 14;
const MIN_TASK_ELEMENTS_LIGHT = 1 << 15;
/** Column blocks of reduceMiddle tasks: a 64-byte line of each row, never shared by two tasks. */
const COL_ALIGN = 16;

/** The kernels' op code (0 sum, 1 max, 2 min), or -1 for an op they do not know. */
function reduceCode(op: WasmReduceOp): number {
  return op === 'sum' ? 0 : op === 'max' ? 1 : op === 'min' ? 2 : -1;
}

/** Argument checks shared by the wasm kernel wrappers (adam.ts uses them too). */
export interface KernelArgs {
  /** An element count: an integer in [0, 2^31). */
  count(name: string, v: number): void;
  /** A float32 / int32 operand of `elements` elements at byte address `addr`: 4-byte aligned, inside memory. */
  operand(name: string, addr: number, elements: number): void;
}

/** Checks for one call of a kernel for `op` (named in errors, e.g. 'softmax') on `shape` (e.g. 'outer 7, inner 3'). */
export function kernelArgs(rt: WasmKernelRunner, op: string, shape: string): KernelArgs {
  const fail = (problem: string, fix: string): never => {
    throw new BackendError(op, `wasm float32 kernel (${shape}): ${problem}; ${fix}`);
  };
  return {
    count(name, v) {
      if (!(Number.isInteger(v) && v >= 0 && v < 2 ** 31)) fail(`${name} must be an integer in [0, 2^31), got ${v}`, 'pass element counts');
    },
    operand(name, addr, elements) {
      if (!(Number.isInteger(addr) && addr > 0 && addr % 4 === 0)) {
        fail(`${name} must be a nonzero byte address aligned to 4, got ${addr}`, 'pass the address of a float32 / int32 buffer');
      }
      const memBytes = rt.memory.buffer.byteLength;
      if (addr + elements * 4 > memBytes) {
        fail(`${name} (byte ${addr}, ${elements} elements) runs past the end of wasm memory (${memBytes} bytes)`, "check the operand's address and size");
      }
    },
  };
}

/** Rows per task (at least `minElements` elements each, one row at least) and the task count. */
function rowTasks(outer: number, inner: number, minElements: number): { rowsPer: number; tasks: number } {
  const rowsPer = Math.max(1, Math.ceil(minElements / Math.max(inner, 1)));
  return { rowsPer, tasks: Math.ceil(outer / rowsPer) };
}

interface RowDesc {
  x: number;
  out: number;
  aux?: number;
  aux2?: number;
  outer: number;
  inner: number;
  flags?: number;
  ignoreIndex?: number;
  eps?: number;
}

/** Writes the row kernels' descriptor and runs `fn` over tasks of rows. */
function runRows(rt: WasmKernelRunner, fn: string, d: RowDesc, minElements: number): void {
  const { rowsPer, tasks } = rowTasks(d.outer, d.inner, minElements);
  if (tasks === 0) return;
  const view = new DataView(rt.memory.buffer, rt.descPtr, 48);
  view.setUint32(0, d.x, true);
  view.setUint32(4, d.out, true);
  view.setUint32(8, d.aux ?? 0, true);
  view.setUint32(12, d.aux2 ?? 0, true);
  view.setInt32(16, d.outer, true);
  view.setInt32(20, d.inner, true);
  view.setInt32(24, rowsPer, true);
  view.setInt32(28, d.flags ?? 0, true);
  view.setInt32(32, d.ignoreIndex ?? 0, true);
  view.setFloat64(40, d.eps ?? 0, true);
  rt.run(fn, rt.descPtr, tasks);
}

/** out = softmax (or log-softmax) of each row of x, [outer, inner] float32. */
export function softmaxRowsInto(rt: WasmKernelRunner, x: number, out: number, outer: number, inner: number, log: boolean): boolean {
  const args = kernelArgs(rt, log ? 'logSoftmax' : 'softmax', `outer ${outer}, inner ${inner}`);
  args.count('outer', outer);
  args.count('inner', inner);
  if (outer * inner === 0) return true;
  args.operand('x', x, outer * inner);
  args.operand('out', out, outer * inner);
  runRows(rt, 'softmax_rows_f32', { x, out, outer, inner, flags: log ? 1 : 0 }, MIN_TASK_ELEMENTS_EXP);
  return true;
}

/** out = the gradient of x given y = softmax (log-softmax) of each row and g, the gradient of y; all [outer, inner] float32. */
export function softmaxBackwardRowsInto(rt: WasmKernelRunner, y: number, g: number, out: number, outer: number, inner: number, log: boolean): boolean {
  const args = kernelArgs(rt, log ? 'logSoftmax (backward)' : 'softmax (backward)', `outer ${outer}, inner ${inner}`);
  args.count('outer', outer);
  args.count('inner', inner);
  if (outer * inner === 0) return true;
  args.operand('y', y, outer * inner);
  args.operand('grad', g, outer * inner);
  args.operand('out', out, outer * inner);
  runRows(rt, 'softmax_backward_rows_f32', { x: y, out, aux: g, outer, inner, flags: log ? 1 : 0 }, log ? MIN_TASK_ELEMENTS_EXP : MIN_TASK_ELEMENTS_LIGHT);
  return true;
}

/** normalized = x̂ of each row ([outer, inner]), rstd = 1/σ of each row ([outer]), float32. */
export function normalizeRowsInto(
  rt: WasmKernelRunner,
  kind: 'layer' | 'rms',
  x: number,
  normalized: number,
  rstd: number,
  outer: number,
  inner: number,
  eps: number,
): boolean {
  const args = kernelArgs(rt, kind === 'layer' ? 'layerNorm' : 'rmsNorm', `outer ${outer}, inner ${inner}`);
  args.count('outer', outer);
  args.count('inner', inner);
  if (outer === 0) return true;
  if (inner > 0) {
    args.operand('x', x, outer * inner);
    args.operand('normalized', normalized, outer * inner);
  }
  args.operand('rstd', rstd, outer);
  runRows(rt, 'normalize_rows_f32', { x, out: normalized, aux: rstd, outer, inner, flags: kind === 'layer' ? 1 : 0, eps }, MIN_TASK_ELEMENTS_LIGHT);
  return true;
}

/** out = the gradient of x ([outer, inner]) given g, the gradient of x̂, the rows x̂ and rstd ([outer]), float32. */
export function normalizeBackwardRowsInto(
  rt: WasmKernelRunner,
  kind: 'layer' | 'rms',
  g: number,
  normalized: number,
  rstd: number,
  out: number,
  outer: number,
  inner: number,
): boolean {
  const args = kernelArgs(rt, `${kind === 'layer' ? 'layerNorm' : 'rmsNorm'} (backward)`, `outer ${outer}, inner ${inner}`);
  args.count('outer', outer);
  args.count('inner', inner);
  if (outer * inner === 0) return true;
  args.operand('grad', g, outer * inner);
  args.operand('normalized', normalized, outer * inner);
  args.operand('rstd', rstd, outer);
  args.operand('out', out, outer * inner);
  runRows(rt, 'normalize_backward_rows_f32', { x: g, out, aux: normalized, aux2: rstd, outer, inner, flags: kind === 'layer' ? 1 : 0 }, MIN_TASK_ELEMENTS_LIGHT);
  return true;
}

/** An ignoreIndex the kernels can compare with an int32 target; others are left to TypeScript. */
function int32Index(v: number): boolean {
  return Number.isInteger(v) && v >= -(2 ** 31) && v < 2 ** 31;
}

/** out[r] = cross-entropy of logits row r ([outer, classes] float32) against int32 target[r]; 0 where ignored. */
export function crossEntropyRowsInto(rt: WasmKernelRunner, logits: number, target: number, out: number, ce: CrossEntropyArgs): boolean {
  const { outer, classes, ignoreIndex, labelSmoothing } = ce;
  const args = kernelArgs(rt, 'crossEntropy', `outer ${outer}, classes ${classes}`);
  args.count('outer', outer);
  args.count('classes', classes);
  if (!int32Index(ignoreIndex)) return false;
  if (outer === 0) return true;
  if (classes > 0) args.operand('logits', logits, outer * classes);
  args.operand('target', target, outer);
  args.operand('out', out, outer);
  runRows(rt, 'cross_entropy_rows_f32', { x: logits, out, aux: target, outer, inner: classes, ignoreIndex, eps: labelSmoothing }, MIN_TASK_ELEMENTS_EXP);
  return true;
}

/** out = d loss / d logits ([outer, classes] float32) for the per-row upstream gradient gradRow ([outer]). */
export function crossEntropyBackwardRowsInto(rt: WasmKernelRunner, logits: number, target: number, gradRow: number, out: number, ce: CrossEntropyArgs): boolean {
  const { outer, classes, ignoreIndex, labelSmoothing } = ce;
  const args = kernelArgs(rt, 'crossEntropy backward', `outer ${outer}, classes ${classes}`);
  args.count('outer', outer);
  args.count('classes', classes);
  if (!int32Index(ignoreIndex)) return false;
  if (outer * classes === 0) return true;
  args.operand('logits', logits, outer * classes);
  args.operand('target', target, outer);
  args.operand('gradRow', gradRow, outer);
  args.operand('out', out, outer * classes);
  runRows(
    rt,
    'cross_entropy_backward_rows_f32',
    { x: logits, out, aux: target, aux2: gradRow, outer, inner: classes, ignoreIndex, eps: labelSmoothing },
    MIN_TASK_ELEMENTS_EXP,
  );
  return true;
}

/** out[r] = sum / max / min of row r of x ([outer, inner] float32). */
export function reduceRowsInto(rt: WasmKernelRunner, op: WasmReduceOp, x: number, out: number, outer: number, inner: number): boolean {
  const args = kernelArgs(rt, op, `reduce rows, outer ${outer}, inner ${inner}`);
  args.count('outer', outer);
  args.count('inner', inner);
  const code = reduceCode(op);
  if (code < 0) return false;
  if (outer === 0) return true;
  if (inner > 0) args.operand('x', x, outer * inner);
  args.operand('out', out, outer);
  runRows(rt, 'reduce_rows_f32', { x, out, outer, inner, flags: code }, MIN_TASK_ELEMENTS_LIGHT);
  return true;
}

/** How reduceMiddle cuts [outer, mid, inner] into tasks: whole slices per task, or column blocks of one. */
export function reduceMiddleTasks(outer: number, mid: number, inner: number): { tasks: number; outerPer: number; colsPer: number; tilesN: number } {
  if (outer * inner === 0) return { tasks: 0, outerPer: 1, colsPer: inner, tilesN: 0 };
  const slice = Math.max(1, mid * inner);
  const outerPer = Math.max(1, Math.min(outer, Math.floor(MIN_TASK_ELEMENTS_LIGHT / slice)));
  let colsPer = inner;
  if (outerPer === 1) {
    const wanted = Math.min(Math.floor(slice / MIN_TASK_ELEMENTS_LIGHT), Math.ceil(inner / COL_ALIGN));
    if (wanted > 1) colsPer = Math.ceil(Math.ceil(inner / wanted) / COL_ALIGN) * COL_ALIGN;
  }
  const tilesN = Math.ceil(inner / colsPer);
  return { tasks: Math.ceil(outer / outerPer) * tilesN, outerPer, colsPer, tilesN };
}

/** out[o, i] = sum / max / min over m of x[o, m, i], x [outer, mid, inner] float32 (bias gradients: outer 1). */
export function reduceMiddleInto(rt: WasmKernelRunner, op: WasmReduceOp, x: number, out: number, outer: number, mid: number, inner: number): boolean {
  const args = kernelArgs(rt, op, `reduce middle, outer ${outer}, mid ${mid}, inner ${inner}`);
  args.count('outer', outer);
  args.count('mid', mid);
  args.count('inner', inner);
  const code = reduceCode(op);
  if (code < 0) return false;
  const plan = reduceMiddleTasks(outer, mid, inner);
  if (plan.tasks === 0) return true;
  if (mid > 0) args.operand('x', x, outer * mid * inner);
  args.operand('out', out, outer * inner);
  const view = new DataView(rt.memory.buffer, rt.descPtr, 36);
  [x, out, outer, mid, inner, code, plan.outerPer, plan.colsPer, plan.tilesN].forEach((v, i) => view.setUint32(4 * i, v, true));
  rt.run('reduce_middle_f32', rt.descPtr, plan.tasks);
  return true;
}
