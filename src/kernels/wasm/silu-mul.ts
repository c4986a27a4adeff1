/**
 * The JS side of the wasm SwiGLU kernels (wasm/assembly/silu-mul.ts): silu(a)·b with σ(a), and its
 * backward from σ(a), float32, contiguous. Each function checks its arguments, writes the
 * descriptor at rt.descPtr and runs the tasks; a BackendError for arguments no kernel could take.
 *
 * Descriptor (byte offset: field, 32-bit little-endian):
 *   forward:   0 a   4 b   8 out   12 sig (0: none)   16 n   20 chunk
 *   backward:  0 a   4 b   8 g   12 sig   16 gradA (0: none)   20 gradB (0: none)   24 n   28 chunk
 */
import type { WasmKernelRunner } from './runner';
import { kernelArgs } from './rows';

/**
 * Elements per task: the forward computes an exponential per element (~2.5 ns), split as the
 * elementwise kernels split silu (16K: ~40 us a task); the backward is a few products per element,
 * split only from 64K, below which waking another thread costs more than it saves.
 */
const CHUNK_FORWARD = 1 << 14;
const CHUNK_BACKWARD = 1 << 16;

/** out = silu(a)·b and, when sig is not 0, sig = σ(a); n float32 each. */
export function siluMulInto(rt: WasmKernelRunner, a: number, b: number, out: number, sig: number, n: number): boolean {
  const args = kernelArgs(rt, 'siluMul', `n ${n}`);
  args.count('n', n);
  if (n === 0) return true;
  args.operand('a', a, n);
  args.operand('b', b, n);
  args.operand('out', out, n);
  if (sig !== 0) args.operand('sigmoid', sig, n);
  const d = new Int32Array(rt.memory.buffer, rt.descPtr, 6);
  d.set([a, b, out, sig, n, CHUNK_FORWARD]);
  rt.run('silu_mul_f32', rt.descPtr, Math.ceil(n / CHUNK_FORWARD));
  return true;
}

/** gradA = g·b·σ·(1 + a·(1 − σ)) and gradB = g·a·σ (either 0: not computed), n float32 each. */
export function siluMulBackwardInto(rt: WasmKernelRunner, g: number, a: number, b: number, sig: number, gradA: number, gradB: number, n: number): boolean {
  const args = kernelArgs(rt, 'siluMul (backward)', `n ${n}`);
  args.count('n', n);
  if (n === 0 || (gradA === 0 && gradB === 0)) return true;
  args.operand('grad', g, n);
  args.operand('a', a, n);
  args.operand('sigmoid', sig, n);
  if (gradA !== 0) {
    args.operand('b', b, n);
    args.operand('gradA', gradA, n);
  }
  if (gradB !== 0) args.operand('gradB', gradB, n);
  const d = new Int32Array(rt.memory.buffer, rt.descPtr, 8);
  d.set([a, gradA !== 0 ? b : 0, g, sig, gradA, gradB, n, CHUNK_BACKWARD]);
  rt.run('silu_mul_backward_f32', rt.descPtr, Math.ceil(n / CHUNK_BACKWARD));
  return true;
}
