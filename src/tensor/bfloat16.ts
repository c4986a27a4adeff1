/**
 * bfloat16 <-> float32 bit conversions.
 *
 * The storage of bfloat16 tensors (half.ts gives both 16-bit floats one interface) and of the
 * BF16 tensors of safetensors files. See float16.ts for binary16, the other half type.
 *
 * ## The bfloat16 bit layout
 *
 * ```
 *   bit: 15 | 14 13 12 11 10 9 8 7 | 6 5 4 3 2 1 0
 *        s  |     exponent (8)     | mantissa (7)
 * ```
 *
 * These are exactly the top 16 bits of a float32 (same sign, same 8-bit exponent with bias 127,
 * the top 7 of float32's 23 mantissa bits). So decoding is a shift and never rounds, and
 * encoding rounds away float32's low 16 bits.
 */

/** bfloat16 bits -> float32 values, exactly: each pattern becomes the high half of a float32. */
export function decodeBFloat16(bits: Uint16Array, out?: Float32Array): Float32Array {
  const n = bits.length;
  const values = out ?? new Float32Array(n);
  const wide = new Uint32Array(values.buffer, values.byteOffset, n);
  for (let i = 0; i < n; i++) wide[i] = bits[i] << 16;
  return values;
}

/** float32 bits -> bfloat16 bits, round to nearest, ties to even; NaN stays a (quiet) NaN. */
export function float32BitsToBFloat16Bits(bits: number): number {
  const u = bits >>> 0;
  if ((u & 0x7fffffff) > 0x7f800000) return ((u >>> 16) | 0x0040) & 0xffff;
  // Add just under half an ulp, plus one when the kept part is odd, so that a tie rounds to even.
  // A carry into the exponent is right (1.1111111|1... -> 10.0), and out of the largest finite
  // exponent it gives 0x7f80, Infinity.
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/**
 * A number -> bfloat16 bits, rounding once, to nearest, ties to even.
 *
 * Rounding a double to float32 and then to bfloat16 can round twice (1 + 2^-8 + 2^-30 becomes
 * the tie 1 + 2^-8 in float32, which then rounds down to 1 instead of up). So the first step
 * rounds to odd: an inexact float32 result is replaced by the float32 just toward zero from x,
 * with its last bit set. float32 keeps 16 more bits than bfloat16 (>= 2), so the sticky last bit
 * makes the second rounding exact.
 */
export function numberToBFloat16Bits(x: number): number {
  scratchF32[0] = x;
  let u = scratchU32[0];
  const f = scratchF32[0];
  if (f !== x && !Number.isNaN(x)) {
    if (Math.abs(f) > Math.abs(x)) u -= 1; // the float32 below |x| (f != 0 here); also Inf -> max finite
    u |= 1;
  }
  return float32BitsToBFloat16Bits(u);
}

/**
 * Numbers -> bfloat16 bits, each rounded once to nearest, ties to even. A Float32Array is read
 * as its bits (its values are float32 already, so no double rounding can arise).
 */
export function encodeBFloat16(values: ArrayLike<number>, out?: Uint16Array): Uint16Array {
  const n = values.length;
  const bits = out ?? new Uint16Array(n);
  if (values instanceof Float32Array) {
    const u32 = new Uint32Array(values.buffer, values.byteOffset, n);
    for (let i = 0; i < n; i++) bits[i] = float32BitsToBFloat16Bits(u32[i]);
  } else {
    for (let i = 0; i < n; i++) bits[i] = numberToBFloat16Bits(values[i]);
  }
  return bits;
}

/** A number rounded to the nearest bfloat16 value (ties to even), as a number. */
export function roundToBFloat16(x: number): number {
  scratchU32[0] = numberToBFloat16Bits(x) << 16;
  return scratchF32[0];
}
