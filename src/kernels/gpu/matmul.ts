/**
 * Batched matmul for the gpu backend: out[b] (m x n) = opA(A[b]) (m x k) @ opB(B[b]) (k x n),
 * row-major, one thread per output element looping over k. Shapes, strides and transposes are
 * written into the source (one kernel per shape); the offsets of A[0] and B[0] travel in h, so a
 * product over a slice at another offset reuses the kernel.
 */
import type { BackendBuffer, MatmulShape } from '../backend';
import type { DType } from '../../tensor/dtype';
import type { GpuBackend } from './backend';
import { divmod, store } from './codegen';

export function matmul(gpu: GpuBackend, a: BackendBuffer, b: BackendBuffer, s: MatmulShape, outDtype: DType): BackendBuffer {
  const { batch, m, k, n, transA, transB, aBatchStride, bBatchStride } = s;
  // opA[i][p] = a[aBase + i*aRow + p*aCol], opB[p][j] = b[bBase + p*bRow + j*bCol], as on cpu
  const aRow = transA ? 1 : k;
  const aCol = transA ? m : 1;
  const bRow = transB ? 1 : n;
  const bCol = transB ? k : 1;
  const total = batch * m * n;
  const key = `matmul:${outDtype}:${a.length}:${b.length}:${batch},${m},${k},${n}:${transA},${transB}:${aBatchStride},${bBatchStride}`;
  const data = gpu.launch(
    'matmul',
    total,
    key,
    () => `function(a, b, h) {
      ${divmod('bt', 'e', 'this.thread.x', m * n)}
      ${divmod('i', 'j', 'e', n)}
      const aBase = h[0] + bt * ${aBatchStride} + i * ${aRow};
      const bBase = h[1] + bt * ${bBatchStride} + j * ${bCol};
      let sum = 0;
      for (let p = 0; p < ${k}; p++) {
        sum += a[aBase + p * ${aCol}] * b[bBase + p * ${bRow}];
      }
      return ${store(outDtype, 'sum')};
    }`,
    [gpu.input('matmul', a), gpu.input('matmul', b), gpu.params([s.aOffset ?? 0, s.bOffset ?? 0])],
  );
  return gpu.wrap(outDtype, total, data);
}
