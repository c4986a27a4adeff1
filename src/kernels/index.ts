/** Registers the built-in backends. */
import { registerBackend } from './registry';
import { CpuBackend } from './cpu/backend';

registerBackend('cpu', () => new CpuBackend());

export { registerBackend, setBackend, getBackendName, kernels, kernelCounters } from './registry';
export type { Backend, BackendBuffer, View, UnaryOp, BinaryOp, ReduceOp, MatmulShape } from './backend';
export { MEMORY_CATEGORIES, type MemoryCategory, type MemoryStats } from './memory';
