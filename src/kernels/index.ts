/** Registers the built-in backends. */
import { registerBackend, setDefaultBackends } from './registry';
import { simdSupported, wasmReady } from './wasm/prepare';
import { CpuBackend } from './cpu/backend';
import { GpuBackend } from './gpu/backend';
import type { GpuBackendOptions } from './gpu/modes';
import { WasmBackend } from './wasm/backend';
import type { WasmBackendOptions } from './wasm/options';

registerBackend('cpu', () => new CpuBackend());
registerBackend('gpu', (options) => new GpuBackend(options as GpuBackendOptions));
registerBackend('wasm', (options) => new WasmBackend(options as WasmBackendOptions));

// The default: wasm wherever WebAssembly SIMD runs and the kernels can be compiled now (Node; a
// browser page after `await prepareWasm()`), else cpu. The cpu backend stays the reference.
setDefaultBackends(() => (simdSupported() && wasmReady() ? ['wasm', 'cpu'] : ['cpu']));

export { registerBackend, setBackend, getBackendName, backendInfo, listBackends, kernels, kernelCounters, type BackendOptions } from './registry';
export { prepareWasm, simdSupported } from './wasm/prepare';
export type { WasmBackendOptions } from './wasm/options';
export { availableGpuModes, GPU_MODES, type GpuMode, type GpuBackendOptions } from './gpu/modes';
export type { Backend, BackendBuffer, BackendInfo, View, UnaryOp, BinaryOp, ReduceOp, MatmulShape } from './backend';
export { MEMORY_CATEGORIES, type MemoryCategory, type MemoryStats } from './memory';
