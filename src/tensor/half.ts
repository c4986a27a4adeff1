/**
 * The two 16-bit float storages behind one interface, so that a backend stores and reads either
 * the same way: bits in a Uint16Array, values widened to float32 to compute on, and results
 * rounded once, to nearest even, when stored. float16.ts and bfloat16.ts hold the bit layouts.
 */
import { decodeBFloat16, encodeBFloat16, roundToBFloat16 } from './bfloat16';
import type { HalfDType } from './dtype';
import { decodeFloat16, encodeFloat16, roundToFloat16 } from './float16';

export interface HalfCodec {
  /** Bits -> float32 values, exactly (into `out` when given). */
  decode(bits: Uint16Array, out?: Float32Array): Float32Array;
  /** Numbers -> bits, each rounded once to nearest, ties to even (into `out` when given). */
  encode(values: ArrayLike<number>, out?: Uint16Array): Uint16Array;
  /** A number rounded to the nearest value the dtype holds, as a number. */
  round(x: number): number;
}

// each entry calls its module's function when used, not a copy taken here (tests spy on them)
const CODECS: Record<HalfDType, HalfCodec> = {
  float16: { decode: (bits, out) => decodeFloat16(bits, out), encode: (v, out) => encodeFloat16(v, out), round: (x) => roundToFloat16(x) },
  bfloat16: { decode: (bits, out) => decodeBFloat16(bits, out), encode: (v, out) => encodeBFloat16(v, out), round: (x) => roundToBFloat16(x) },
};

export function halfCodec(dtype: HalfDType): HalfCodec {
  return CODECS[dtype];
}
