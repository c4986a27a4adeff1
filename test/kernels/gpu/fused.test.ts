/**
 * The gpu backend's composites of the fused backward kernels (src/kernels/composite.ts:
 * softmaxBackwardLast, siluMul, siluMulBackward, built from its own mul, sub, add, exp, silu,
 * sigmoid and row-sum kernels) against the cpu backend's kernels, in every gpu.js mode that works in
 * this process. The gpu computes in float32 (its sums too), so values agree to 1e-5 relative
 * (absolute below 1), as in rows.test.ts.
 */
import { availableGpuModes } from '../../../src';
import { BackendError } from '../../../src/errors';
import type { Backend, BackendBuffer } from '../../../src/kernels/backend';
import { CpuBackend } from '../../../src/kernels/cpu/backend';
import { GpuBackend } from '../../../src/kernels/gpu/backend';
import { expectClose, uniformValues } from '../../helpers';

const TOL = 1e-5;
const cpu = new CpuBackend();
const modes = availableGpuModes();
const gpus = new Map(modes.map((mode) => [mode, new GpuBackend({ mode })]));
afterAll(() => gpus.forEach((g) => g.dispose()));

const values = (be: Backend, buf: BackendBuffer): number[] => Array.from(be.read({ buffer: buf, shape: [buf.length], strides: [1], offset: 0 }));

describe.each(modes)('gpu fused composites, mode %s', (mode) => {
  const gpu = gpus.get(mode)!;

  test.each([false, true])('softmaxBackwardLast (log %s) matches cpu at odd sizes', (log) => {
    for (const [outer, inner] of [[1, 1], [1, 7], [7, 33], [33, 1], [3, 64]]) {
      const run = (be: Backend) => {
        const x = be.upload('float32', uniformValues(outer * inner, outer * 31 + inner, -5, 5));
        const y = be.softmaxLast(x, outer, inner, log);
        const g = be.upload('float32', uniformValues(outer * inner, inner * 17 + outer, -1, 1));
        const dx = be.softmaxBackwardLast(y, g, outer, inner, log);
        expect(dx.dtype).toBe('float32');
        return values(be, dx);
      };
      expectClose(run(gpu), run(cpu), TOL);
    }
  });

  test('softmaxBackwardLast by hand: y = [0.25, 0.75], g = [1, -1]: Σ g·y = -0.5, dx = y·(g + 0.5)', () => {
    const dx = gpu.softmaxBackwardLast(gpu.upload('float32', [0.25, 0.75]), gpu.upload('float32', [1, -1]), 1, 2, false);
    expectClose(values(gpu, dx), [0.375, -0.375], TOL);
  });

  test('siluMul and siluMulBackward match cpu, with and without σ and each gradient', () => {
    for (const n of [1, 3, 17, 688]) {
      const run = (be: Backend) => {
        const [a, b, g] = [8, 1, 0.5].map((s, k) => be.upload('float32', uniformValues(n, n * 5 + k, -s, s)));
        const { out, sigmoid } = be.siluMul(a, b, true);
        expect(be.siluMul(a, b, false).sigmoid).toBeNull();
        const both = be.siluMulBackward(g, a, b, sigmoid!, true, true);
        const onlyA = be.siluMulBackward(g, a, b, sigmoid!, true, false);
        expect(onlyA.gradB).toBeNull();
        expect(be.siluMulBackward(g, a, b, sigmoid!, false, true).gradA).toBeNull();
        return [out, sigmoid!, both.gradA!, both.gradB!, onlyA.gradA!].map((x) => values(be, x));
      };
      const [got, want] = [run(gpu), run(cpu)];
      got.forEach((v, i) => expectClose(v, want[i], TOL));
    }
  });

  test('mismatched buffers are BackendErrors', () => {
    const a = gpu.upload('float32', [1, 2, 3]);
    expect(() => gpu.siluMul(a, gpu.upload('float32', [1]), true)).toThrow(BackendError);
    expect(() => gpu.softmaxBackwardLast(a, a, 2, 2, false)).toThrow(BackendError);
  });
});
