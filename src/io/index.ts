/** Reading and writing tensors: safetensors. */
export * from './safetensors';
