/** Registers the built-in backends. */
import { registerBackend } from './registry';
import { CpuBackend } from './cpu/backend';
import { GpuBackend } from './gpu/backend';
import type { GpuBackendOptions } from './gpu/modes';

registerBackend('cpu', () => new CpuBackend());
registerBackend('gpu', (options) => new GpuBackend(options as GpuBackendOptions));

export { registerBackend, setBackend, getBackendName, backendInfo, listBackends, kernels, kernelCounters, type BackendOptions } from './registry';
export { availableGpuModes, GPU_MODES, type GpuMode, type GpuBackendOptions } from './gpu/modes';
export type { Backend, BackendBuffer, BackendInfo, View, UnaryOp, BinaryOp, ReduceOp, MatmulShape } from './backend';
export { MEMORY_CATEGORIES, type MemoryCategory, type MemoryStats } from './memory';
