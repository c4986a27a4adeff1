/**
 * The JS side of the wasm rotary-embedding kernel (wasm/assembly/rotary.ts): coalesces the
 * leading dims of x and its broadcast cos / sin tables, writes the descriptor and runs the rows in
 * tasks. The result equals the cpu backend's rotary kernel (src/kernels/cpu/rotary.ts) bit for bit.
 *
 * Descriptor, at rt.descPtr (byte offset: field; 32-bit little-endian):
 *    0 out   4 x   8 cos   12 sin      byte addresses (view offsets folded in)
 *   16 shape     3 x i32, the leading dims (coalesced, padded in front with 1s)
 *   28 xStride   4 x i32 (3 leading + last)   44 cStride   60 sStride
 *   76 half   80 rowsPer   84 rows   88 transpose
 */
import { BackendError, fmtShape } from '../../errors';
import { coalesce } from '../cpu/strided';
import { checkExtent, type WasmOperand } from './elementwise';
import type { WasmKernelRunner } from './runner';

const LEADING_DIMS = 3;
const DESC_WORDS = 23;
/**
 * Elements a task covers at least: the kernel is about 1 ns per element, so ~30 us a task. With
 * 8K-element tasks, the rotary of a 64-token backward on two threads took twice its one-thread
 * time (0.9 against 0.5 ms per backward): waking the other thread cost more than the task.
 */
const MIN_TASK_ELEMENTS = 1 << 15;

/**
 * out = rotary(x) (transpose false) or its adjoint rotaryᵀ(x) (true), float32; cos and sin are
 * broadcast to x's shape, whose last dim D is even; `out` is the byte address of numel(x)
 * contiguous float32 values. Returns false, doing nothing, when the leading dims do not coalesce
 * to 3 (the TypeScript kernel runs instead).
 */
export function rotaryInto(rt: WasmKernelRunner, x: WasmOperand, cos: WasmOperand, sin: WasmOperand, out: number, transpose: boolean): boolean {
  const shape = x.shape;
  const nd = shape.length;
  const d = nd === 0 ? 0 : shape[nd - 1];
  for (const [name, o] of [['cos', cos], ['sin', sin]] as const) {
    if (o.shape.length !== nd || o.shape.some((s, i) => s !== shape[i]) || o.strides.length !== nd) {
      throw new BackendError('rotary', `wasm kernel: ${name} of shape ${fmtShape(o.shape)} is not broadcast to x's shape ${fmtShape(shape)}; broadcast the tables first`);
    }
  }
  if (nd === 0 || d % 2 !== 0) throw new BackendError('rotary', `wasm kernel: x of shape ${fmtShape(shape)} needs an even last dim`);
  const total = shape.reduce((a, b) => a * b, 1);
  if (total === 0) return true;
  const lead = coalesce(shape.slice(0, -1), [x, cos, sin].map((o) => o.strides.slice(0, -1)));
  if (lead.shape.length > LEADING_DIMS) return false;
  for (const [name, o] of [['x', x], ['cos', cos], ['sin', sin]] as const) checkExtent(rt, 'rotary', name, o, out, total);
  checkExtent(rt, 'rotary', 'output', null, out, total);
  const pad = LEADING_DIMS - lead.shape.length;
  const rows = total / d;
  const rowsPer = Math.max(1, Math.ceil(MIN_TASK_ELEMENTS / d));
  const w = new Int32Array(rt.memory.buffer, rt.descPtr, DESC_WORDS);
  w[0] = out;
  [x, cos, sin].forEach((o, k) => {
    w[1 + k] = o.address + 4 * o.offset;
    const strides = [...new Array<number>(pad).fill(0), ...lead.strides[k], o.strides[nd - 1]];
    w.set(strides, 7 + 4 * k);
  });
  w.set([...new Array<number>(pad).fill(1), ...lead.shape], 4);
  w[19] = d / 2;
  w[20] = rowsPer;
  w[21] = rows;
  w[22] = transpose ? 1 : 0;
  rt.run('rotary_f32', rt.descPtr, Math.ceil(rows / rowsPer));
  return true;
}
