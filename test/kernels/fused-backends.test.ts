/**
 * The backends' fused backward methods (softmaxBackwardLast, siluMul, siluMulBackward) against the
 * cpu backend's: the wasm backend on 1 and 2 threads (float32 on its kernels, float64 and float16
 * storage on the cpu kernels it falls back to: the cpu's bits), and the cpu backend against the
 * composite its reference replaces (the same bits: see src/kernels/cpu/rows.ts and silu-mul.ts).
 * The wasm kernels' own bounds: test/kernels/wasm/fused-backward.test.ts; the gpu composites:
 * test/kernels/gpu/fused.test.ts.
 */
import { BackendError } from '../../src/errors';
import type { Backend, BackendBuffer } from '../../src/kernels/backend';
import { softmaxBackwardComposite, siluMulBackwardComposite, siluMulComposite } from '../../src/kernels/composite';
import { CpuBackend } from '../../src/kernels/cpu/backend';
import { WasmBackend } from '../../src/kernels/wasm/backend';
import type { DType } from '../../src/tensor/dtype';
import { expectClose, uniformValues } from '../helpers';

const cpu = new CpuBackend();
const wasms = [1, 2].map((threads) => ({ threads, be: new WasmBackend({ threads }) }));
afterAll(() => wasms.forEach(({ be }) => be.dispose()));

const values = (be: Backend, buf: BackendBuffer): number[] => Array.from(be.read({ buffer: buf, shape: [buf.length], strides: [1], offset: 0 }));
const SHAPES: [number, number][] = [[1, 1], [3, 5], [7, 17], [256, 64], [64, 259]];

/** Softmax (or log-softmax) rows of random logits on `be`, and a random gradient. */
function softmaxInputs(be: Backend, dtype: DType, outer: number, inner: number, log: boolean): [BackendBuffer, BackendBuffer] {
  const x = be.upload(dtype, uniformValues(outer * inner, outer * 100 + inner, -6, 6));
  const y = be.softmaxLast(x, outer, inner, log);
  be.release(x);
  return [y, be.upload(dtype, uniformValues(outer * inner, inner * 100 + outer, -1, 1))];
}

describe('softmaxBackwardLast', () => {
  test.each([false, true])('cpu (log %s): the composite mul, sum, sub, mul (exp, sum, mul, sub) bit for bit, in every float dtype', (log) => {
    for (const dtype of ['float32', 'float64', 'float16', 'bfloat16'] as DType[]) {
      for (const [outer, inner] of SHAPES) {
        const [y, g] = softmaxInputs(cpu, dtype, outer, inner, log);
        expect(values(cpu, cpu.softmaxBackwardLast(y, g, outer, inner, log))).toEqual(values(cpu, softmaxBackwardComposite(cpu, y, g, outer, inner, log)));
      }
    }
  });

  describe.each(wasms)('wasm, $threads thread(s)', ({ be }) => {
    test.each([false, true])('log %s: float32 within a few ulp of the cpu, float64 and float16 its bits', (log) => {
      for (const dtype of ['float32', 'float64', 'float16'] as DType[]) {
        for (const [outer, inner] of SHAPES) {
          const [yc, gc] = softmaxInputs(cpu, dtype, outer, inner, log);
          const [yw, gw] = [be.upload(dtype, values(cpu, yc)), be.upload(dtype, values(cpu, gc))];
          const want = values(cpu, cpu.softmaxBackwardLast(yc, gc, outer, inner, log));
          const out = be.softmaxBackwardLast(yw, gw, outer, inner, log);
          expect(out.dtype).toBe(dtype);
          if (dtype === 'float32') expectClose(values(be, out), want, 2e-6);
          else expect(values(be, out)).toEqual(want);
          [yw, gw, out].forEach((b) => be.release(b));
        }
      }
    });
  });

  test('operands of other sizes or dtypes, or integers, are BackendErrors on every backend', () => {
    for (const be of [cpu, wasms[1].be]) {
      const y = be.upload('float32', [0.5, 0.5, 0.25, 0.75]);
      expect(() => be.softmaxBackwardLast(y, be.upload('float32', [1, 2, 3]), 2, 2, false)).toThrow(BackendError);
      expect(() => be.softmaxBackwardLast(y, be.upload('float64', [1, 2, 3, 4]), 2, 2, false)).toThrow(/softmax \(backward\).*share one floating dtype/);
      expect(() => be.softmaxBackwardLast(y, y, 3, 2, true)).toThrow(/logSoftmax \(backward\).*outer·inner = 6/);
      const i = be.upload('int32', [1, 2, 3, 4]);
      expect(() => be.softmaxBackwardLast(i, i, 2, 2, false)).toThrow(BackendError);
    }
  });
});

describe('siluMul and siluMulBackward', () => {
  const N = [1, 3, 17, 688, 44032];
  const inputs = (be: Backend, dtype: DType, n: number) =>
    [8, 1, 0.1].map((scale, k) => be.upload(dtype, uniformValues(n, n * 3 + k, -scale, scale))) as [BackendBuffer, BackendBuffer, BackendBuffer];

  test('cpu: the forward is the composite silu then mul bit for bit, σ the sigmoid kernel', () => {
    for (const dtype of ['float32', 'float64', 'float16'] as DType[]) {
      for (const n of N) {
        const [a, b] = inputs(cpu, dtype, n);
        const fused = cpu.siluMul(a, b, true);
        const composite = siluMulComposite(cpu, a, b, true);
        expect(values(cpu, fused.out)).toEqual(values(cpu, composite.out));
        expect(values(cpu, fused.sigmoid!)).toEqual(values(cpu, composite.sigmoid!));
        expect(cpu.siluMul(a, b, false).sigmoid).toBeNull();
      }
    }
  });

  test('cpu: the backward agrees with the composite of mul, sub and add to a few roundings', () => {
    for (const n of N) {
      const [a, b, g] = inputs(cpu, 'float32', n);
      const s = cpu.siluMul(a, b, true).sigmoid!;
      const fused = cpu.siluMulBackward(g, a, b, s, true, true);
      const composite = siluMulBackwardComposite(cpu, g, a, b, s, true, true);
      expectClose(values(cpu, fused.gradA!), values(cpu, composite.gradA!), 4e-6);
      expectClose(values(cpu, fused.gradB!), values(cpu, composite.gradB!), 4e-6);
      const onlyB = cpu.siluMulBackward(g, a, b, s, false, true);
      expect(onlyB.gradA).toBeNull();
      expect(values(cpu, onlyB.gradB!)).toEqual(values(cpu, fused.gradB!));
    }
  });

  describe.each(wasms)('wasm, $threads thread(s)', ({ be }) => {
    test('float32 within a few ulp of the cpu; float64 and float16 the cpu kernels\' bits', () => {
      for (const dtype of ['float32', 'float64', 'float16'] as DType[]) {
        const tol = dtype === 'float32' ? 1e-6 : 0;
        for (const n of N) {
          const [ac, bc, gc] = inputs(cpu, dtype, n);
          const [aw, bw, gw] = [ac, bc, gc].map((x) => be.upload(dtype, values(cpu, x)));
          const fc = cpu.siluMul(ac, bc, true);
          const fw = be.siluMul(aw, bw, true);
          expect([fw.out.dtype, fw.sigmoid!.dtype]).toEqual([dtype, dtype]);
          const check = (got: BackendBuffer, want: BackendBuffer) =>
            tol === 0 ? expect(values(be, got)).toEqual(values(cpu, want)) : expectClose(values(be, got), values(cpu, want), tol);
          check(fw.out, fc.out);
          check(fw.sigmoid!, fc.sigmoid!);
          // the backward from the same σ
          const sw = be.upload(dtype, values(cpu, fc.sigmoid!));
          const bwd = be.siluMulBackward(gw, aw, bw, sw, true, true);
          const want = cpu.siluMulBackward(gc, ac, bc, fc.sigmoid!, true, true);
          if (tol === 0) check(bwd.gradA!, want.gradA!);
          else expectClose(values(be, bwd.gradA!), values(cpu, want.gradA!), 2e-6); // |da| <~ 1: absolute below 1
          check(bwd.gradB!, want.gradB!);
          const onlyA = be.siluMulBackward(gw, aw, bw, sw, true, false);
          expect(onlyA.gradB).toBeNull();
          expect(values(be, onlyA.gradA!)).toEqual(values(be, bwd.gradA!));
          [aw, bw, gw, sw, fw.out, fw.sigmoid!, bwd.gradA!, bwd.gradB!, onlyA.gradA!].forEach((x) => be.release(x));
        }
      }
    });
  });

  test('buffers of other lengths or dtypes, or integers, are BackendErrors on every backend', () => {
    for (const be of [cpu, wasms[1].be]) {
      const a = be.upload('float32', [1, 2, 3]);
      expect(() => be.siluMul(a, be.upload('float32', [1, 2]), false)).toThrow(/siluMul: b \(2 elements, float32\) must match a \(3 elements, float32\)/);
      expect(() => be.siluMul(a, be.upload('float64', [1, 2, 3]), true)).toThrow(BackendError);
      const i = be.upload('int32', [1, 2, 3]);
      expect(() => be.siluMul(i, i, false)).toThrow(/needs floating buffers/);
      expect(() => be.siluMulBackward(a, a, a, be.upload('float32', [1]), true, true)).toThrow(/siluMul \(backward\): sigmoid/);
    }
  });
});
