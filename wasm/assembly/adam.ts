// The fused Adam / AdamW step of blockgrad's wasm backend, float32, in place, four elements per
// vector: PyTorch's update, as the Backend.adamUpdate comment and the cpu backend state it:
//
//   g = maximize ? -grad : grad
//   AdamW (decoupled): p = p·(1 - lr·wd)          Adam with wd != 0: g = g + wd·p
//   m = lerp(m, g, 1-β1)    (m + w·(g - m) for w = 1-β1 < 0.5, else g - (g - m)·(1 - w))
//   v = β2·v + (1-β2)·g·g
//   amsgrad: vmax = max(vmax, v), v̂ = vmax; else v̂ = v
//   p = p - stepSize · m / (√v̂ / √(1-β2^step) + eps),   stepSize = lr / (1-β1^step)
//
// The cpu kernel evaluates this in doubles; here every operation is a float32 one (the
// constants are computed in doubles by the caller and rounded once), so results differ from the
// cpu's by a few float32 roundings (the test measures and bounds them). NaN and inf go through
// as in the cpu's arithmetic (max propagates NaN, as Math.max does).
//
// Kernel `adam_f32(desc, task, scratch)` (the ABI of matmul.ts): task t updates elements
// [t*chunk, min(n, (t+1)*chunk)); elements are independent, and the tail of a chunk goes
// through the same vector code as its body (in 80 bytes of the thread's scratch), so the split
// never changes a result.
//
// Descriptor (little-endian, byte offsets; mirrored in src/kernels/wasm/adam.ts):
//
//    0 param     u32  byte address of the parameters (float32, updated in place)
//    4 grad      u32  the gradient
//    8 expAvg    u32  m (updated in place)
//   12 expAvgSq  u32  v (updated in place)
//   16 maxSq     u32  vmax (updated in place), 0 without amsgrad
//   20 n         i32  elements
//   24 chunk     i32  elements per task (a multiple of 4)
//   28 flags     i32  1 maximize, 2 decoupled decay, 4 L2 decay (into g), 8 lerp from g (w >= 0.5)
//   32 w         f32  1 - β1              36 wc      f32  1 - w
//   40 beta2     f32                      44 omb2    f32  1 - β2
//   48 wd        f32                      52 decay   f32  1 - lr·wd
//   56 stepSize  f32                      60 bc2Sqrt f32  √(1 - β2^step)
//   64 eps       f32

const MAXIMIZE = 1;
const DECOUPLED = 2;
const L2 = 4;
const LERP_FROM_G = 8;

/**
 * The update on `bytes` / 16 whole vectors: p, g, m, v (and vmax at x unless x is 0) are byte
 * addresses of their first elements. The hyperparameters are read once, into lane vectors.
 */
function updateVectors(desc: usize, p: usize, g: usize, m: usize, v: usize, x: usize, bytes: usize): void {
  const flags = load<i32>(desc, 28);
  const w = v128.load32_splat(desc, 32);
  const wc = v128.load32_splat(desc, 36);
  const beta2 = v128.load32_splat(desc, 40);
  const omb2 = v128.load32_splat(desc, 44);
  const wd = v128.load32_splat(desc, 48);
  const decay = v128.load32_splat(desc, 52);
  const stepSize = v128.load32_splat(desc, 56);
  const bc2Sqrt = v128.load32_splat(desc, 60);
  const eps = v128.load32_splat(desc, 64);
  const maximize = (flags & MAXIMIZE) != 0;
  const decoupled = (flags & DECOUPLED) != 0;
  const l2 = (flags & L2) != 0;
  const lerpFromG = (flags & LERP_FROM_G) != 0;
  for (let off: usize = 0; off < bytes; off += 16) {
    let pi = v128.load(p + off);
    let gi = v128.load(g + off);
    let mi = v128.load(m + off);
    let vi = v128.load(v + off);
    if (maximize) gi = f32x4.neg(gi);
    if (decoupled) pi = f32x4.mul(pi, decay);
    else if (l2) gi = f32x4.add(gi, f32x4.mul(wd, pi));
    const d = f32x4.sub(gi, mi);
    mi = lerpFromG ? f32x4.sub(gi, f32x4.mul(d, wc)) : f32x4.add(mi, f32x4.mul(w, d));
    vi = f32x4.add(f32x4.mul(beta2, vi), f32x4.mul(f32x4.mul(omb2, gi), gi));
    let vhat = vi;
    if (x) {
      vhat = f32x4.max(v128.load(x + off), vi);
      v128.store(x + off, vhat);
    }
    const denom = f32x4.add(f32x4.div(f32x4.sqrt(vhat), bc2Sqrt), eps);
    pi = f32x4.sub(pi, f32x4.mul(stepSize, f32x4.div(mi, denom)));
    v128.store(p + off, pi);
    v128.store(m + off, mi);
    v128.store(v + off, vi);
  }
}

/** Copies `bytes` from src to dst, in 4-byte steps (at most 12 bytes here). */
function copyTail(dst: usize, src: usize, bytes: usize): void {
  for (let i: usize = 0; i < bytes; i += 4) store<u32>(dst + i, load<u32>(src + i));
}

/**
 * One Adam step on the task's chunk of elements (see the top of this file). The last 1..3
 * elements, short of a vector, are copied to the thread's scratch, updated there as one
 * zero-padded vector by the same code, and copied back.
 */
export function adam_f32(desc: usize, task: i32, scratch: usize): void {
  const n = load<i32>(desc, 20);
  const chunk = load<i32>(desc, 24);
  const i0 = task * chunk;
  const i1 = min(n, i0 + chunk);
  if (i1 <= i0) return;
  const start = <usize>i0 << 2;
  const body = <usize>((i1 - i0) & ~3) << 2;
  const rest = <usize>((i1 - i0) & 3) << 2;
  const p = <usize>load<u32>(desc, 0) + start;
  const g = <usize>load<u32>(desc, 4) + start;
  const m = <usize>load<u32>(desc, 8) + start;
  const v = <usize>load<u32>(desc, 12) + start;
  const maxSq = <usize>load<u32>(desc, 16);
  const x = maxSq ? maxSq + start : 0;
  updateVectors(desc, p, g, m, v, x, body);
  if (rest == 0) return;
  // scratch: five zeroed 16-byte slots for p, g, m, v, vmax
  memory.fill(scratch, 0, 80);
  copyTail(scratch, p + body, rest);
  copyTail(scratch + 16, g + body, rest);
  copyTail(scratch + 32, m + body, rest);
  copyTail(scratch + 48, v + body, rest);
  if (x) copyTail(scratch + 64, x + body, rest);
  updateVectors(desc, scratch, scratch + 16, scratch + 32, scratch + 48, x ? scratch + 64 : 0, 16);
  copyTail(p + body, scratch, rest);
  copyTail(m + body, scratch + 32, rest);
  copyTail(v + body, scratch + 48, rest);
  if (x) copyTail(x + body, scratch + 64, rest);
}
