/**
 * The wasm rotary kernel against the cpu reference (src/kernels/cpu/rotary.ts, rounding each step
 * to float32): bit for bit, forward and transpose, for contiguous and strided x, broadcast tables,
 * a half size that is not a multiple of 4, and enough rows for several tasks run in reverse order.
 */
import { BackendError } from '../../../src/errors';
import { gatherView } from '../../../src/kernels/cpu/strided';
import { rotaryRows } from '../../../src/kernels/cpu/rotary';
import { rotaryInto } from '../../../src/kernels/wasm/rotary';
import type { WasmOperand } from '../../../src/kernels/wasm/elementwise';
import { contiguousStrides } from '../../../src/tensor/shape';
import { mulberry32 } from '../../helpers';
import { createWasmEnv, reversedRunner } from './helpers';

const env = createWasmEnv();
afterEach(() => env.reset());

interface Case {
  name: string;
  shape: number[];
  /** x's storage shape and the permutation that views it as `shape`. */
  storage: number[];
  perm: number[];
  /** The tables' own shape (broadcast to `shape`: leading dims added, size-1 dims stretched). */
  table: number[];
}

const CASES: Case[] = [
  { name: 'contiguous [B,H,T,D], [T,D] tables, D 64, several tasks', shape: [3, 4, 100, 64], storage: [3, 4, 100, 64], perm: [0, 1, 2, 3], table: [100, 64] },
  { name: 'heads view of [B,T,H,D], [B,1,T,D] tables', shape: [2, 3, 7, 16], storage: [2, 7, 3, 16], perm: [0, 2, 1, 3], table: [2, 1, 7, 16] },
  { name: 'half 5 (a partial vector), strided last dim', shape: [6, 10], storage: [10, 6], perm: [1, 0], table: [10] },
  { name: 'D = 2', shape: [5, 2], storage: [5, 2], perm: [0, 1], table: [5, 2] },
];

function operand(address: number, shape: number[], strides: number[]): WasmOperand {
  return { address, shape, strides, offset: 0 };
}

/** Strides of a table of shape `table` broadcast to `shape` (0 on added and stretched dims). */
function broadcastStrides(table: number[], shape: number[]): number[] {
  const own = contiguousStrides(table);
  const lead = shape.length - table.length;
  return shape.map((s, i) => (i < lead || table[i - lead] !== s ? 0 : own[i - lead]));
}

describe.each(CASES)('$name', ({ shape, storage, perm, table }) => {
  test.each([false, true])('transpose %s: the cpu reference bit for bit, tasks in reverse order', (transpose) => {
    const rand = mulberry32(shape.length * 31 + shape[shape.length - 1]);
    const n = shape.reduce((a, b) => a * b, 1);
    const tn = table.reduce((a, b) => a * b, 1);
    const values = (count: number) => Float32Array.from({ length: count }, () => rand() * 4 - 2);
    const xs = values(n);
    const cs = values(tn);
    const ss = values(tn);
    const storageStrides = contiguousStrides(storage);
    const x = operand(env.put(xs), shape, perm.map((p) => storageStrides[p]));
    const cos = operand(env.put(cs), shape, broadcastStrides(table, shape));
    const sin = operand(env.put(ss), shape, broadcastStrides(table, shape));
    const out = env.alloc(4 * n);
    expect(rotaryInto(reversedRunner(env), x, cos, sin, out, transpose)).toBe(true);

    const read = (src: Float32Array, o: WasmOperand) => {
      const dst = new Float64Array(n);
      gatherView(src, { shape: o.shape, strides: o.strides, offset: 0 }, dst);
      return dst;
    };
    const d = shape[shape.length - 1];
    const want = new Float32Array(n);
    rotaryRows(read(xs, x), read(cs, cos), read(ss, sin), n / d, d / 2, transpose, Math.fround, want);
    expect(Array.from(env.getF32(out, n))).toEqual(Array.from(want));
  });
});

test('tables not broadcast to x and an odd last dim are BackendErrors', () => {
  const a = env.alloc(4 * 64);
  const x = operand(a, [4, 6], [6, 1]);
  expect(() => rotaryInto(env.runner, x, operand(a, [6], [1]), x, a, false)).toThrow(BackendError);
  const odd = operand(a, [4, 5], [5, 1]);
  expect(() => rotaryInto(env.runner, odd, odd, odd, a, false)).toThrow(/even last dim/);
});
