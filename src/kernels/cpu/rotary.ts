/**
 * Rotary position embedding (RoPE) in Hugging Face's rotate_half layout, the reference kernel.
 * Each row of length D = 2h pairs element j with element j + h:
 *
 *   forward:   y[j]   = x[j]·cos[j]     − x[j+h]·sin[j]        (x·cos + rotate_half(x)·sin,
 *              y[j+h] = x[j+h]·cos[j+h] + x[j]·sin[j+h]         rotate_half(x) = [−x₂, x₁])
 *   transpose: y[j]   = x[j]·cos[j]     + x[j+h]·sin[j+h]      (the adjoint in x: the backward
 *              y[j+h] = x[j+h]·cos[j+h] − x[j]·sin[j]            of the forward is dx = rotaryᵀ(dy))
 *
 * `round` rounds to the output dtype; each product is rounded and then the sum, in that order, so
 * the result equals the composite mul, mul, add bit for bit in every dtype (the wasm kernel's
 * float32 SIMD does the same roundings).
 */
type Arr = { [i: number]: number; readonly length: number };

/** x, cos, sin and out are row-major arrays of `rows` rows of length 2·half. */
export function rotaryRows(x: Arr, cos: Arr, sin: Arr, rows: number, half: number, transpose: boolean, round: (v: number) => number, out: Arr): void {
  const d = 2 * half;
  for (let r = 0; r < rows; r++) {
    for (let j = r * d; j < r * d + half; j++) {
      const k = j + half; // the partner of j
      if (transpose) {
        out[j] = round(round(x[j] * cos[j]) + round(x[k] * sin[k]));
        out[k] = round(round(x[k] * cos[k]) - round(x[j] * sin[j]));
      } else {
        out[j] = round(round(x[j] * cos[j]) - round(x[k] * sin[j]));
        out[k] = round(round(x[k] * cos[k]) + round(x[j] * sin[k]));
      }
    }
  }
}
