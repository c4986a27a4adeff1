/**
 * Shared pieces of the backend suites: which backends run here, switching to the cpu backend for
 * a reference computation, deterministic host data, tolerance checks, and the tiny Llama that the
 * BAdam comparison trains.
 */
import {
  BackendError,
  LlamaForCausalLM,
  availableGpuModes,
  getBackendName,
  reshape,
  setBackend,
  tensor,
  type BackendOptions,
  type Tensor,
} from '../../src';
import { mulberry32 } from '../helpers';

// ------------------------------------------------------------------ backends

export interface BackendUnderTest {
  /** Shown in test names: 'cpu', 'wasm/1', 'wasm/2', 'wasm/unshared', 'gpu/cpu', 'gpu/webasm', 'gpu/headlessgl'. */
  label: string;
  name: 'cpu' | 'gpu' | 'wasm';
  options?: BackendOptions;
}

const gpu = (mode: string): BackendUnderTest => ({ label: `gpu/${mode}`, name: 'gpu', options: { mode } });

/**
 * The backends a parameterised suite runs on: cpu, wasm on one and on two threads and on an
 * unshared memory (one thread, as in a page that is not cross-origin isolated), gpu.js's cpu
 * and webasm modes (they run anywhere), and headlessgl when this process has an X display and the
 * native `gl` module (jest under `xvfb-run -a`). `webasm: false` leaves gpu.js's webasm mode out
 * where a suite would be too slow on it.
 */
export function backendsUnderTest(options: { cpu?: boolean; webasm?: boolean } = {}): BackendUnderTest[] {
  const list: BackendUnderTest[] = [];
  if (options.cpu ?? true) list.push({ label: 'cpu', name: 'cpu' });
  list.push({ label: 'wasm/1', name: 'wasm', options: { threads: 1 } });
  list.push({ label: 'wasm/2', name: 'wasm', options: { threads: 2 } });
  list.push({ label: 'wasm/unshared', name: 'wasm', options: { threads: 1, sharedMemory: false } });
  list.push(gpu('cpu'));
  if (options.webasm ?? true) list.push(gpu('webasm'));
  if (availableGpuModes().includes('headlessgl')) list.push(gpu('headlessgl'));
  return list;
}

/**
 * CI runs jest under xvfb, so there headlessgl must work: a suite calls this at its top level, and
 * when CI is set and headlessgl is missing, a failing test names why (setBackend's BackendError
 * says what is missing: the native module or the display). Elsewhere it adds nothing.
 */
export function requireHeadlessGlInCI(): void {
  if (!process.env.CI || availableGpuModes().includes('headlessgl')) return;
  test('headlessgl is available (required when CI is set: CI runs jest under xvfb-run)', () => {
    const before = getBackendName();
    try {
      setBackend('gpu', { mode: 'headlessgl' });
    } catch (e) {
      const reason = e instanceof BackendError ? e.message : String(e);
      throw new Error(`CI is set but the gpu backend cannot run headlessgl here: ${reason}`);
    } finally {
      setBackend(before);
    }
    throw new Error('CI is set and availableGpuModes() lacks headlessgl, yet setBackend accepted it');
  });
}

/** Runs fn with the cpu backend active, then reactivates the backend that was active (same instance). */
export function onCpu<T>(fn: () => T): T {
  const before = getBackendName();
  setBackend('cpu');
  try {
    return fn();
  } finally {
    setBackend(before);
  }
}

// ------------------------------------------------------------------ host data

/** A stable 32-bit seed from a string (FNV-1a), so that a test case's data depends on its name only. */
export function seedOf(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/**
 * n values uniform in [lo, hi), each exactly representable in float32, so that a float32 backend
 * and the float64 reference start from identical inputs and only the arithmetic differs.
 */
export function uniform(n: number, seed: number, lo = -2, hi = 2): number[] {
  const rand = mulberry32(seed);
  return Array.from({ length: n }, () => Math.fround(lo + (hi - lo) * rand()));
}

export const numelOf = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** An int32 tensor of the given shape on the active backend. */
export function intTensor(values: readonly number[], shape: readonly number[]): Tensor {
  return reshape(tensor(Int32Array.from(values), { dtype: 'int32' }), shape);
}

/** A tensor's values as a plain array, row-major. */
export const valuesOf = (t: Tensor): number[] => Array.from(t.toTypedArray() as ArrayLike<number>);

// ------------------------------------------------------------------ tolerances

/** |actual − expected| <= atol + rtol·|expected|, elementwise. */
export interface Tolerance {
  atol: number;
  rtol: number;
}

/**
 * The first element outside the tolerance, described, or null when all are inside. NaN matches
 * NaN and infinities must match exactly (a backend that overflows where the reference does not
 * is wrong).
 */
export function mismatch(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: Tolerance): string | null {
  if (actual.length !== expected.length) return `length ${actual.length}, expected ${expected.length}`;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    if (Number.isNaN(e) && Number.isNaN(a)) continue;
    if (!Number.isFinite(e) && a === e) continue;
    if (!(Math.abs(a - e) <= tol.atol + tol.rtol * Math.abs(e))) {
      return `element ${i}: got ${a}, expected ${e} (|diff| ${Math.abs(a - e).toExponential(2)} > ${tol.atol} + ${tol.rtol}·|expected|)`;
    }
  }
  return null;
}

// ------------------------------------------------------------------ a tiny Llama for training comparisons

/** 2 layers, hidden 16, vocab 32: small enough that 20 steps on gpu.js's cpu mode take seconds. */
export const TINY_LLAMA = {
  vocabSize: 32,
  hiddenSize: 16,
  intermediateSize: 32,
  numHiddenLayers: 2,
  numAttentionHeads: 2,
  numKeyValueHeads: 1,
  maxPositionEmbeddings: 16,
  initializerRange: 0.2,
  dtype: 'float32',
  seed: 0,
} as const;

export function tinyLlama(): LlamaForCausalLM {
  return new LlamaForCausalLM({ ...TINY_LLAMA });
}

/** The token batch of step `step`: int32 [batch, seq] drawn from mulberry32(step), the same on every backend. */
export function tokenBatch(step: number, batch = 2, seq = 8): Tensor {
  const rand = mulberry32(9000 + step);
  const ids = Array.from({ length: batch * seq }, () => Math.floor(rand() * TINY_LLAMA.vocabSize));
  return intTensor(ids, [batch, seq]);
}
