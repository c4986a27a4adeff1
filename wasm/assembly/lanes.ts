// Strided loads and partial stores of four float32 lanes, shared by the elementwise and rotary
// kernels. Not re-exported by index.ts: functions taking v128 cannot be wasm exports.

/** Four lanes from p, p + s, p + 2s, p + 3s (s in bytes; any value, 0 and negative included). */
@inline export function gather(p: usize, s: usize): v128 {
  let v = f32x4.splat(load<f32>(p));
  v = f32x4.replace_lane(v, 1, load<f32>(p + s));
  v = f32x4.replace_lane(v, 2, load<f32>(p + 2 * s));
  return f32x4.replace_lane(v, 3, load<f32>(p + 3 * s));
}

/** The first `count` (1..3) lanes from p, p + s, ...; the others are 0. */
@inline export function gatherPartial(p: usize, s: usize, count: i32): v128 {
  let v = f32x4.replace_lane(f32x4.splat(0.0), 0, load<f32>(p));
  if (count > 1) v = f32x4.replace_lane(v, 1, load<f32>(p + s));
  if (count > 2) v = f32x4.replace_lane(v, 2, load<f32>(p + 2 * s));
  return v;
}

/** Stores the first `count` (1..3) lanes of v at out (bit for bit: int32 results too). */
@inline export function storePartial(out: usize, v: v128, count: i32): void {
  store<i32>(out, i32x4.extract_lane(v, 0));
  if (count > 1) store<i32>(out, i32x4.extract_lane(v, 1), 4);
  if (count > 2) store<i32>(out, i32x4.extract_lane(v, 2), 8);
}
