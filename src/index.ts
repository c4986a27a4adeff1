/**
 * blockgrad: tensors, a reverse-mode autodiff engine that prunes backward, and the kernels
 * under them. Importing this module installs the cpu backend and the Tensor methods.
 */
import './kernels';
import './autograd/methods';

export * from './errors';
export { Tensor, type NestedArray, type GradHook, type PostAccumulateGradHook } from './tensor/tensor';
export type { DType } from './tensor/dtype';
export { DTYPES } from './tensor/dtype';
export * from './tensor/creation';
export { Generator, manualSeed, defaultGenerator, type GeneratorState } from './tensor/random';
export { memory } from './tensor/memory';
export { tidy, keep, scopeDepth } from './tensor/scope';
export { setBackend, getBackendName, registerBackend, backendInfo, listBackends, availableGpuModes, GPU_MODES, MEMORY_CATEGORIES, prepareWasm, simdSupported } from './kernels';
export type { Backend, BackendBuffer, BackendInfo, BackendOptions, GpuMode, GpuBackendOptions, WasmBackendOptions, MemoryCategory, MemoryStats } from './kernels';

export { noGrad, enableGrad, isGradEnabled, setGradEnabled } from './autograd/grad-mode';
export { backward, grad, type BackwardOptions, type GradOptions } from './autograd/engine';
export { gradcheck, type GradcheckOptions, type GradcheckResult } from './autograd/gradcheck';
export { profile, type ProfileReport } from './autograd/profile';
export { Node } from './autograd/node';

export * from './autograd/ops/elementwise';
export * from './autograd/ops/reduce';
export * from './autograd/ops/shape';
export * from './autograd/ops/matmul';
export * from './autograd/ops/indexing';
export * from './autograd/ops/softmax';
export * from './autograd/ops/norm';
export * from './autograd/ops/loss';
export * from './autograd/ops/dropout';
export * from './autograd/ops/inplace';

export * as nn from './nn';
export * from './nn';
export * from './io';
export * from './data';
export * from './optim';
export * as optim from './optim';

import { profile } from './autograd/profile';
import { grad } from './autograd/engine';
import { gradcheck } from './autograd/gradcheck';
import { noGrad, enableGrad } from './autograd/grad-mode';
/** The autograd namespace, PyTorch style: autograd.grad, autograd.profile, ... */
export const autograd = { grad, profile, gradcheck, noGrad, enableGrad };
