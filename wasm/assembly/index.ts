// The AssemblyScript entry of blockgrad's wasm kernels: it only re-exports the kernel modules.
// scripts/build-wasm.mjs compiles this file (with wasm/asconfig.json) into wasm/build/kernels.wasm.
export * from './matmul';
export * from './adam';
export * from './rows';
export * from './elementwise';
export * from './rotary';
export * from './silu-mul';
