/**
 * blockgrad: tensors, a reverse-mode autodiff engine that prunes backward, and the kernels
 * under them. Importing this module installs the cpu backend and the Tensor methods.
 */
import './kernels';
import './autograd/methods';

export * from './errors';
export { Tensor, type NestedArray, type GradHook, type PostAccumulateGradHook } from './tensor/tensor';
export type { DType, HalfDType, StorageArray, ComputeArray } from './tensor/dtype';
export type { Shape } from './tensor/shape';
export { DTYPES, promoteTypes, isHalf } from './tensor/dtype';
export * from './tensor/creation';
export { Generator, manualSeed, defaultGenerator, type GeneratorState } from './tensor/random';
export { memory } from './tensor/memory';
export { tidy, keep, scopeDepth, type ScopedTensor, type ScopedNode } from './tensor/scope';
export { setBackend, getBackendName, registerBackend, backendInfo, listBackends, availableGpuModes, GPU_MODES, MEMORY_CATEGORIES, prepareWasm, simdSupported } from './kernels';
export type { Backend, BackendBuffer, BackendInfo, BackendOptions, GpuMode, GpuBackendOptions, WasmBackendOptions, MemoryCategory, MemoryStats } from './kernels';
// the types a Backend's methods are written in, for whoever implements one (registerBackend)
export type { View, UnaryOp, BinaryOp, ReduceOp, MatmulShape, CrossEntropyArgs, BufferLedger, AdamHyper } from './kernels/backend';

export { noGrad, enableGrad, isGradEnabled, setGradEnabled } from './autograd/grad-mode';
export { backward, grad, type BackwardOptions, type GradOptions } from './autograd/engine';
export { gradcheck, gradgradcheck, type GradcheckOptions, type GradcheckResult } from './autograd/gradcheck';
export { defineOp, type OpContext, type OpDefinition } from './autograd/define-op';
export { checkpoint } from './autograd/checkpoint';
export { profile, type ProfileReport, type RecordedNodeEvent, type BackwardNodeEvent } from './autograd/profile';
export { Node, type BackwardFn, type DeferredSaves } from './autograd/node';

export * from './autograd/ops/elementwise';
export * from './autograd/ops/reduce';
export * from './autograd/ops/shape';
export * from './autograd/ops/matmul';
export * from './autograd/ops/indexing';
export * from './autograd/ops/softmax';
export * from './autograd/ops/norm';
export { rotaryEmbedding } from './autograd/ops/rotary';
export { siluMul } from './autograd/ops/swiglu';
export * from './autograd/ops/loss';
export * from './autograd/ops/dropout';
export * from './autograd/ops/inplace';

export * as nn from './nn';
export * from './nn';
// the options every Llama layer is built with (named apart from nn's LayerOptions)
export type { LayerOptions as LlamaLayerOptions } from './nn/llama/layers';
export * from './io';
export * from './data';
export * from './optim';
export * as optim from './optim';

import { profile } from './autograd/profile';
import { grad } from './autograd/engine';
import { gradcheck, gradgradcheck } from './autograd/gradcheck';
import { defineOp } from './autograd/define-op';
import { checkpoint } from './autograd/checkpoint';
import { noGrad, enableGrad } from './autograd/grad-mode';
/** The autograd namespace, PyTorch style: autograd.grad, autograd.profile, ... */
export const autograd = { grad, profile, gradcheck, gradgradcheck, defineOp, checkpoint, noGrad, enableGrad };
