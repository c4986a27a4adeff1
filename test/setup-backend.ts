/**
 * Jest setup, before every test file: the suites run on the cpu backend, the readable reference
 * (bit-exact against PyTorch in float64), unless a suite selects another one. The library's own
 * default is wasm wherever WebAssembly SIMD runs (test/backends/default.test.ts checks that in a
 * fresh process); the backend suites (test/backends, test/kernels/wasm, test/memory) run the wasm
 * backend on one and two threads explicitly.
 */
import { setBackend } from '../src';

setBackend('cpu');
