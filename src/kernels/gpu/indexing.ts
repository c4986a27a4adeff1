/**
 * Indexing kernels for the gpu backend. Every kernel is one thread per OUTPUT element: shaders
 * have no atomic adds, so the adjoints (indexAdd, scatterAdd) are written gather-style, each
 * output element looping over the source positions that could land on it and summing those whose
 * index matches. Summing in the source's order keeps the cpu backend's order of additions.
 *
 * Index values are whole numbers stored as float32 (exact below 2^24) and coordinates come from
 * `divmod`, so comparing them with `==` is exact. Indices are validated by the ops above.
 */
import type { BackendBuffer } from '../backend';
import { contiguousStrides, numel } from '../../tensor/shape';
import type { GpuBackend } from './backend';
import { divmod, store } from './codegen';

/**
 * Statements declaring `c0`..`c{r-1}`, the row-major coordinates of element `flat` of `shape`
 * (a size-1 dimension gets 0 without a division).
 */
function coords(flat: string, shape: readonly number[]): string {
  const rank = shape.length;
  if (rank === 0) return '';
  const lines = [`let rem = ${flat};`];
  for (let d = rank - 1; d > 0; d--) {
    if (shape[d] === 1) {
      lines.push(`let c${d} = 0.0;`);
      continue;
    }
    lines.push(divmod(`q${d}`, `c${d}`, 'rem', shape[d]), `rem = q${d};`);
  }
  lines.push('let c0 = rem;');
  return lines.join('\n        ');
}

/** out[o, j, i] = x[o, index[j], i] for x of shape [outer, dimSize, inner]. */
export function indexSelect(gpu: GpuBackend, x: BackendBuffer, index: BackendBuffer, outer: number, dimSize: number, inner: number): BackendBuffer {
  const m = index.length;
  const n = outer * m * inner;
  const data = gpu.launch(
    'indexSelect',
    n,
    `indexSelect:${x.dtype}:${x.length}:${m}:${dimSize}:${inner}`,
    () => `function(x, idx) {
        ${coords('this.thread.x', [outer, m, inner])}
        return x[(c0 * ${dimSize} + idx[c1]) * ${inner} + c2];
      }`,
    [gpu.input('indexSelect', x), gpu.input('indexSelect', index)],
  );
  return gpu.wrap(x.dtype, n, data);
}

/**
 * Above this many loop iterations (outputs x index length), indexAdd stops scanning the whole
 * index per output and reads the index back to build, on the host, each output's list of source
 * rows: BAdam's ratio variant scatters k of n entries of a parameter (n·k would be ~10^11 for a
 * million-element weight), while an embedding backward (vocab x hidden x tokens) stays far below.
 */
export const INDEX_ADD_SCAN_LIMIT = 2 ** 26;

/** out = zeros([outer, dimSize, inner]); out[o, index[j], i] += src[o, j, i] (summed per output over j). */
export function indexAdd(gpu: GpuBackend, src: BackendBuffer, index: BackendBuffer, outer: number, dimSize: number, inner: number): BackendBuffer {
  const m = index.length;
  const n = outer * dimSize * inner;
  const srcData = gpu.input('indexAdd', src);
  const idxData = gpu.input('indexAdd', index);
  if (n * m > INDEX_ADD_SCAN_LIMIT) return indexAddByLists(gpu, src, index, outer, dimSize, inner);
  const data = gpu.launch(
    'indexAdd',
    n,
    `indexAdd:${src.dtype}:${m}:${dimSize}:${inner}`,
    () => `function(src, idx) {
        ${coords('this.thread.x', [outer, dimSize, inner])}
        let sum = 0.0;
        for (let j = 0; j < ${m}; j++) {
          if (idx[j] == c1) { sum = sum + src[(c0 * ${m} + j) * ${inner} + c2]; }
        }
        return ${store(src.dtype, 'sum')};
      }`,
    [srcData, idxData],
  );
  return gpu.wrap(src.dtype, n, data);
}

/**
 * indexAdd through per-output lists: `starts[d]..starts[d+1]` delimit, in `rows`, the source rows
 * j (ascending, so sums keep the cpu's order) whose index is d. Each output loops over at most the
 * longest list, rounded up to a power of two so that few kernels are compiled.
 */
function indexAddByLists(gpu: GpuBackend, src: BackendBuffer, index: BackendBuffer, outer: number, dimSize: number, inner: number): BackendBuffer {
  const m = index.length;
  const n = outer * dimSize * inner;
  const idx = gpu.download(index);
  const counts = new Int32Array(dimSize + 1);
  for (let j = 0; j < m; j++) counts[idx[j] + 1]++;
  let longest = 0;
  for (let d = 1; d <= dimSize; d++) {
    longest = Math.max(longest, counts[d]);
    counts[d] += counts[d - 1];
  }
  const starts = Float32Array.from(counts);
  const fill = counts.slice(0, dimSize);
  const rows = new Float32Array(m);
  for (let j = 0; j < m; j++) rows[fill[idx[j]]++] = j;
  const bound = 2 ** Math.ceil(Math.log2(Math.max(1, longest)));
  const data = gpu.launch(
    'indexAdd',
    n,
    `indexAddByLists:${src.dtype}:${m}:${dimSize}:${inner}:${bound}`,
    () => `function(src, starts, rows) {
        ${coords('this.thread.x', [outer, dimSize, inner])}
        const first = starts[c1];
        const count = starts[c1 + 1] - first;
        let sum = 0.0;
        for (let t = 0; t < ${bound}; t++) {
          if (t < count) { sum = sum + src[(c0 * ${m} + rows[first + t]) * ${inner} + c2]; }
        }
        return ${store(src.dtype, 'sum')};
      }`,
    // the lists are fresh host arrays each call: passed as they are, gpu.js uploads them for the launch only
    [gpu.input('indexAdd', src), starts, rows],
  );
  return gpu.wrap(src.dtype, n, data);
}

/** out[p] = x[p with coordinate `dim` replaced by index[p]]; out has index's shape. */
export function gather(gpu: GpuBackend, x: BackendBuffer, xShape: readonly number[], index: BackendBuffer, indexShape: readonly number[], dim: number): BackendBuffer {
  const n = numel(indexShape);
  const xStrides = contiguousStrides(xShape);
  // a 0-d gather reads x[0], as on cpu (there is no coordinate to replace)
  const terms = indexShape.map((_, d) => (d === dim ? `idx[this.thread.x] * ${xStrides[d]}` : `c${d} * ${xStrides[d]}`));
  const data = gpu.launch(
    'gather',
    n,
    `gather:${x.dtype}:${x.length}:${xShape.join(',')}:${indexShape.join(',')}:${dim}`,
    () => `function(x, idx) {
        ${coords('this.thread.x', indexShape)}
        return x[${terms.length === 0 ? '0' : terms.join(' + ')}];
      }`,
    [gpu.input('gather', x), gpu.input('gather', index)],
  );
  return gpu.wrap(x.dtype, n, data);
}

/**
 * out = zeros(outShape); out[p with dim replaced by index[p]] += src[p]. Output element c sums
 * src[p] over the positions p of the index shape that agree with c off `dim` (none when c lies
 * outside the index shape there) and whose index equals c's coordinate along `dim`.
 */
export function scatterAdd(gpu: GpuBackend, src: BackendBuffer, index: BackendBuffer, indexShape: readonly number[], dim: number, outShape: readonly number[]): BackendBuffer {
  const n = numel(outShape);
  const srcData = gpu.input('scatterAdd', src);
  const idxData = gpu.input('scatterAdd', index);
  const rank = indexShape.length;
  const idxStrides = contiguousStrides(indexShape);
  const data = gpu.launch(
    'scatterAdd',
    n,
    `scatterAdd:${src.dtype}:${indexShape.join(',')}:${dim}:${outShape.join(',')}`,
    () => {
      // a 0-d scatter writes src[0] to out[0], as on cpu
      if (rank === 0) return `function(src, idx) { return ${store(src.dtype, 'src[0]')}; }`;
      const guards: string[] = [];
      const base: string[] = ['0'];
      for (let d = 0; d < rank; d++) {
        if (d === dim) continue;
        if (indexShape[d] < outShape[d]) guards.push(`if (c${d} >= ${indexShape[d]}) { return 0.0; }`);
        base.push(`c${d} * ${idxStrides[d]}`);
      }
      return `function(src, idx) {
        ${coords('this.thread.x', outShape)}
        ${guards.join('\n        ')}
        const base = ${base.join(' + ')};
        let sum = 0.0;
        for (let j = 0; j < ${indexShape[dim]}; j++) {
          const p = base + j * ${idxStrides[dim]};
          if (idx[p] == c${dim}) { sum = sum + src[p]; }
        }
        return ${store(src.dtype, 'sum')};
      }`;
    },
    [srcData, idxData],
  );
  return gpu.wrap(src.dtype, n, data);
}

/** int32 mask of a rows x cols matrix: 1 where col - row <= k (lower) or >= k (upper); k travels in h. */
export function triangleMask(gpu: GpuBackend, rows: number, cols: number, k: number, lower: boolean): BackendBuffer {
  const n = rows * cols;
  const data = gpu.launch(
    'triangleMask',
    n,
    `triangleMask:${lower ? 'lower' : 'upper'}:${cols}`,
    () => `function(h) {
        ${divmod('r', 'c', 'this.thread.x', cols)}
        if (c - r ${lower ? '<=' : '>='} h[0]) { return 1.0; }
        return 0.0;
      }`,
    [gpu.params([k])],
  );
  return gpu.wrap('int32', n, data);
}
