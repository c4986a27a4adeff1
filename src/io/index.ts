/** Reading and writing tensors: safetensors, and Hugging Face model directories (pretrained.ts). */
export * from './safetensors';
export type { WritePretrainedOptions } from './pretrained';
