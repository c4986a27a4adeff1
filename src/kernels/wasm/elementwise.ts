/**
 * The JS side of the wasm elementwise kernels (wasm/assembly/elementwise.ts): picks the kernel
 * for an op, coalesces the operands' layout, writes the descriptor and runs the tasks. `where`
 * is the one ternary kernel: cond ? a : b.
 *
 * Descriptor, at rt.descPtr (byte offset: field; 32-bit little-endian):
 *
 *    0 out      byte address of the contiguous output
 *    4 a        byte address of operand a's first element (offset folded in)
 *    8 b        same for operand b (binary only)
 *   12 shape    4 x i32, outermost first (coalesced, padded in front with 1s)
 *   28 aStride  4 x i32 elements         44 bStride  4 x i32 elements
 *   60 chunk    output elements per task 64 total    output elements
 *   68 p0 (f32) 72 p1 (f32)
 *   76 cond     byte address of where's condition   80 cStride  4 x i32 elements
 *
 * Task t writes output elements [t·chunk, (t+1)·chunk). Both entry points return false, so that
 * the caller runs its TypeScript kernel instead, for an op or parameter with no wasm kernel and
 * for layouts of more than 4 dims after coalescing.
 */
import { BackendError, fmtShape } from '../../errors';
import type { BinaryOp, UnaryOp, View } from '../backend';
import { coalesce } from '../cpu/strided';
import type { WasmKernelRunner } from './runner';

/** A float32 view in wasm memory, already broadcast to the output's shape (stride 0 on broadcast dims). */
export interface WasmOperand {
  /** Byte address of the buffer's element 0. */
  address: number;
  shape: readonly number[];
  /** In elements. */
  strides: readonly number[];
  /** In elements. */
  offset: number;
}

/** Dims the kernels walk; layouts that coalesce to more are left to the TypeScript kernels. */
const MAX_DIMS = 4;
/**
 * Output elements per task, by the op's cost. A task handed to another thread must outweigh
 * waking it: in the backward of a 64-token Llama on two threads, ops cut into 16K-element tasks
 * took longer than on one thread when they are a few loads and a store per element (mul 1.5-1.8
 * ms against 1.2 per backward; rotary and softmax alike), while silu, ~2.5 ns an element, did
 * not. So the light ops split only from 64K elements (~15 us of work a task) and the ops that
 * compute an exp or a log from 16K. Multiples of 16 (64 bytes), so that two tasks never write
 * one cache line (given a 64-byte aligned output).
 */
const CHUNK_LIGHT = 1 << 16;
const CHUNK_HEAVY = 1 << 14;
const HEAVY_UNARY: ReadonlySet<string> = new Set([
  'exp', 'log', 'tanh', 'sigmoid', 'silu', 'siluGrad', 'gelu', 'geluGrad', 'geluTanh', 'geluTanhGrad',
]);
const DESC_WORDS = 24;

/** Unary ops with a kernel (their export is `unary_${name}_f32`); powScalar is picked by exponent. */
const UNARY_KERNELS: Partial<Record<UnaryOp, string>> = {
  neg: 'neg', exp: 'exp', log: 'log', sqrt: 'sqrt', rsqrt: 'rsqrt', abs: 'abs', sign: 'sign',
  tanh: 'tanh', sigmoid: 'sigmoid', relu: 'relu', silu: 'silu', siluGrad: 'siluGrad',
  gelu: 'gelu', geluGrad: 'geluGrad', geluTanh: 'geluTanh', geluTanhGrad: 'geluTanhGrad', clamp: 'clamp', inRange: 'inRange',
};

/**
 * powScalar exponents with a kernel: x·x, the identity, 1, sqrt, 1/sqrt, 1/x. These are the
 * exponents of x², √x and of their gradients (p·x^(p-1)).
 */
const POW_KERNELS = new Map<number, string>([
  [2, 'square'], [1, 'identity'], [0, 'one'], [0.5, 'sqrtPow'], [-0.5, 'rsqrtPow'], [-1, 'recip'],
]);

const BINARY_KERNELS: ReadonlySet<BinaryOp> = new Set<BinaryOp>([
  'add', 'sub', 'mul', 'div', 'maximum', 'minimum', 'eq', 'ne', 'lt', 'le', 'gt', 'ge',
]);
const COMPARISONS: ReadonlySet<BinaryOp> = new Set<BinaryOp>(['eq', 'ne', 'lt', 'le', 'gt', 'ge']);

/**
 * What binaryInto writes for `op`: int32 0 / 1 for the comparisons, float32 for the rest. A caller
 * asked for another output dtype must not use the kernel (it would write the wrong representation).
 */
export function binaryOutDtype(op: BinaryOp): 'float32' | 'int32' {
  return COMPARISONS.has(op) ? 'int32' : 'float32';
}

const f32 = Math.fround;

/** The smallest float32 >= v (v a double). */
function f32AtLeast(v: number): number {
  const r = f32(v);
  return r < v ? nextF32(r, 1) : r;
}

/** The largest float32 <= v. */
function f32AtMost(v: number): number {
  const r = f32(v);
  return r > v ? nextF32(r, -1) : r;
}

/** The float32 next to finite r towards +Infinity (dir 1) or -Infinity (dir -1). */
function nextF32(r: number, dir: 1 | -1): number {
  const buf = new Float32Array([r]);
  const bits = new Int32Array(buf.buffer);
  if (r === 0) bits[0] = dir > 0 ? 1 : -0x7fffffff; // the smallest subnormal of that sign
  else bits[0] += (r > 0) === (dir > 0) ? 1 : -1;
  return buf[0];
}

/**
 * The kernel's float32 parameters. clamp's comparisons and result are unchanged by rounding lo
 * and hi to float32 (no float32 lies strictly between a double and its rounding); inRange's
 * `lo <= x <= hi` is, when the rounding moves a bound past x, so its bounds are rounded inwards.
 */
function unaryParams(op: UnaryOp, params: readonly number[]): [number, number] {
  const p0 = params[0] ?? 0;
  const p1 = params[1] ?? 0;
  if (op === 'inRange') return [f32AtLeast(p0), f32AtMost(p1)];
  return [p0, p1];
}

interface Plan {
  shape: number[];
  strides: number[][];
  total: number;
}

/** Coalesced, front-padded 4-d layout of the operands, or null when it has more than MAX_DIMS dims. */
function plan(op: string, ops: readonly WasmOperand[]): Plan | null {
  const shape = ops[0].shape;
  for (const o of ops) {
    if (o.shape.length !== shape.length || o.shape.some((s, i) => s !== shape[i]) || o.strides.length !== shape.length) {
      throw new BackendError(op, `wasm kernel: operand shapes ${ops.map((v) => `${fmtShape(v.shape)} (strides ${fmtShape(v.strides)})`).join(' and ')} differ; broadcast every operand to the output's shape first`);
    }
  }
  const total = shape.reduce((a, b) => a * b, 1);
  const c = coalesce(shape, ops.map((o) => o.strides));
  if (c.shape.length > MAX_DIMS) return null;
  const pad = MAX_DIMS - c.shape.length;
  return {
    shape: [...new Array<number>(pad).fill(1), ...c.shape],
    strides: c.strides.map((s) => [...new Array<number>(pad).fill(0), ...s]),
    total,
  };
}

/** Throws a BackendError unless every element the operand reaches, and the output, lie inside memory. */
export function checkExtent(rt: WasmKernelRunner, op: string, name: string, o: WasmOperand | null, out: number, total: number): void {
  const memBytes = rt.memory.buffer.byteLength;
  const fail = (what: string): never => {
    throw new BackendError(op, `wasm kernel: ${name} ${what} (wasm memory is ${memBytes} bytes); pass the byte address of a float32 buffer in this runner's memory`);
  };
  if (o === null) {
    if (!(Number.isInteger(out) && out >= 0 && out % 4 === 0 && out + 4 * total <= memBytes)) fail(`at byte ${out} with ${total} elements is misaligned or runs past memory`);
    return;
  }
  if (!(Number.isInteger(o.address) && o.address >= 0 && o.address % 4 === 0)) fail(`address ${o.address} is not a 4-byte aligned byte address`);
  let lo = o.offset;
  let hi = o.offset;
  for (let d = 0; d < o.shape.length; d++) {
    const reach = o.strides[d] * (o.shape[d] - 1);
    if (reach < 0) lo += reach;
    else hi += reach;
  }
  if (lo < 0 || o.address + 4 * (hi + 1) > memBytes) fail(`(address ${o.address}, offset ${o.offset}, shape ${fmtShape(o.shape)}, strides ${fmtShape(o.strides)}) reaches elements [${lo}, ${hi}] outside memory`);
}

/**
 * Writes the descriptor and runs `fn` over the output in tasks of `chunk` elements. p.strides holds
 * a's, then b's, then cond's (where only).
 */
function launch(
  rt: WasmKernelRunner, fn: string, p: Plan, chunk: number, out: number, a: WasmOperand, b: WasmOperand | null, p0: number, p1: number,
  cond: WasmOperand | null = null,
): void {
  const d = new Int32Array(rt.memory.buffer, rt.descPtr, DESC_WORDS);
  d[0] = out;
  d[1] = a.address + 4 * a.offset;
  d[2] = b === null ? 0 : b.address + 4 * b.offset;
  for (let i = 0; i < MAX_DIMS; i++) {
    d[3 + i] = p.shape[i];
    d[7 + i] = p.strides[0][i];
    d[11 + i] = b === null ? 0 : p.strides[1][i];
    d[20 + i] = cond === null ? 0 : p.strides[2][i];
  }
  d[19] = cond === null ? 0 : cond.address + 4 * cond.offset;
  d[15] = chunk;
  d[16] = p.total;
  const f = new Float32Array(rt.memory.buffer, rt.descPtr, DESC_WORDS);
  f[17] = p0;
  f[18] = p1;
  rt.run(fn, rt.descPtr, Math.ceil(p.total / chunk));
}

/**
 * out = op(x) elementwise, float32 in and out; `out` is the byte address of numel(x.shape)
 * contiguous float32 values (inRange writes 1 / 0 as float32). Returns false, doing nothing,
 * when there is no wasm kernel for the op (or powScalar's exponent) or for the layout.
 */
export function unaryInto(rt: WasmKernelRunner, op: UnaryOp, x: WasmOperand, out: number, params: readonly number[]): boolean {
  const name = op === 'powScalar' ? POW_KERNELS.get(params[0] ?? NaN) : UNARY_KERNELS[op];
  if (name === undefined) return false;
  const p = plan(op, [x]);
  if (p === null) return false;
  if (p.total === 0) return true;
  checkExtent(rt, op, 'operand', x, out, p.total);
  checkExtent(rt, op, 'output', null, out, p.total);
  const [p0, p1] = unaryParams(op, params);
  launch(rt, `unary_${name}_f32`, p, HEAVY_UNARY.has(name) ? CHUNK_HEAVY : CHUNK_LIGHT, out, x, null, p0, p1);
  return true;
}

/**
 * out = op(a, b) elementwise over float32 operands of one (broadcast) shape; `out` is the byte
 * address of numel contiguous float32 values, or int32 0 / 1 for the comparisons. Returns false,
 * doing nothing, when there is no wasm kernel for the op or the layout.
 */
export function binaryInto(rt: WasmKernelRunner, op: BinaryOp, a: WasmOperand, b: WasmOperand, out: number): boolean {
  if (!BINARY_KERNELS.has(op)) return false;
  const p = plan(op, [a, b]);
  if (p === null) return false;
  if (p.total === 0) return true;
  checkExtent(rt, op, 'operand a', a, out, p.total);
  checkExtent(rt, op, 'operand b', b, out, p.total);
  checkExtent(rt, op, 'output', null, out, p.total);
  launch(rt, `binary_${op}_f32`, p, CHUNK_LIGHT, out, a, b, 0, 0);
  return true;
}

/**
 * out = cond ? a : b elementwise, float32 a and b, an int32 or float32 condition (nonzero is
 * true: NaN is, -0 is not), all of one (broadcast) shape; `out` is the byte address of numel
 * contiguous float32 values, each a bit-for-bit copy of the value picked. Returns false, doing
 * nothing, for a layout of more than 4 dims after coalescing.
 */
export function whereInto(rt: WasmKernelRunner, cond: WasmOperand, condDtype: 'int32' | 'float32', a: WasmOperand, b: WasmOperand, out: number): boolean {
  const p = plan('where', [a, b, cond]);
  if (p === null) return false;
  if (p.total === 0) return true;
  checkExtent(rt, 'where', 'condition', cond, out, p.total);
  checkExtent(rt, 'where', 'operand a', a, out, p.total);
  checkExtent(rt, 'where', 'operand b', b, out, p.total);
  checkExtent(rt, 'where', 'output', null, out, p.total);
  launch(rt, `where_${condDtype === 'int32' ? 'i32' : 'f32'}_f32`, p, CHUNK_LIGHT, out, a, b, 0, 0, cond);
  return true;
}

/**
 * out = x gathered into row-major order (a strided view made contiguous, float32). The identity
 * kernel (x¹, powScalar's exponent 1) is exactly this walk. Returns false for a layout of more
 * than 4 dims after coalescing.
 */
export function copyInto(rt: WasmKernelRunner, x: WasmOperand, out: number): boolean {
  return unaryInto(rt, 'powScalar', x, out, [1]);
}

/**
 * Whether dst and src can be written through without reading a value already overwritten: they
 * use different buffers, or the same elements in the same order (an exact alias).
 */
export function overlapsNot(dst: View, src: View): boolean {
  if (dst.buffer !== src.buffer) return true;
  return dst.offset === src.offset && dst.shape.every((s, i) => s === src.shape[i] && (s === 1 || dst.strides[i] === src.strides[i]));
}
