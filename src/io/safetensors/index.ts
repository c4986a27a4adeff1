/**
 * safetensors read/write (https://huggingface.co/docs/safetensors), the format Hugging Face
 * checkpoints use. The format, its dtypes and errors: format.ts; reading: read.ts; writing:
 * write.ts; the file system: file.ts; the bfloat16 bits: src/tensor/bfloat16.ts.
 */
export {
  SAFETENSORS_MAX_HEADER_SIZE,
  SafetensorsError,
  type SafetensorsDType,
  type SafetensorsFile,
  type SaveSafetensorsOptions,
} from './format';
export { loadSafetensors, loadSafetensorsFile, openSafetensors, parseSafetensors, type SafetensorsReader } from './read';
export { saveSafetensors, saveSafetensorsFile } from './write';
export { float32BitsToBFloat16Bits, numberToBFloat16Bits } from '../../tensor/bfloat16';
