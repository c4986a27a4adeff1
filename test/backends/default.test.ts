/**
 * The library's default backend, seen from a fresh process that selects none: wasm where
 * WebAssembly SIMD runs (Node 20 here), with all cores as threads. (The other suites pin the cpu
 * backend in test/setup-backend.ts, so this one asks a child process.)
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { availableParallelism } from 'node:os';

const bundle = resolve(__dirname, '../../dist/cjs/index.cjs');

test('a process that selects no backend computes on wasm, with every core as a thread', () => {
  if (!existsSync(bundle)) throw new Error('dist/cjs/index.cjs is missing: run `npm run build` (npm test does)');
  const script = `
    const bg = require(${JSON.stringify(bundle)});
    const y = bg.tensor([[1, 2], [3, 4]]).matmul(bg.tensor([[1], [1]]));
    console.log(JSON.stringify({ name: bg.getBackendName(), info: bg.backendInfo(), y: y.toArray(), where: y.backend }));
  `;
  const out = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' }));
  expect(out.name).toBe('wasm');
  expect(out.where).toBe('wasm');
  expect(out.y).toEqual([[3], [7]]);
  expect(out.info).toMatchObject({ backend: 'wasm', simd: true, threads: Math.min(availableParallelism(), 16) });
});
