/**
 * The gpu backend's plumbing, in every gpu.js mode available here: device data stays on the
 * device until read, kernels compile once per shape signature (offsets and hyperparameters never
 * recompile), textures are freed when their tensor is released and the memory accounting follows,
 * in-place writes reach every view, float16 rounding matches the cpu backend bit for bit, and bad
 * requests (float64, a cpu tensor, a missing mode, an oversized buffer) are typed errors.
 */
import {
  BackendError,
  ValueError,
  add,
  availableGpuModes,
  clamp,
  full,
  layerNorm,
  matmul,
  maximum,
  minimum,
  pow,
  softmax,
  sum,
  tanh,
  backendInfo,
  cast,
  copy_,
  exp,
  memory,
  mul,
  reshape,
  setBackend,
  slice,
  tensor,
  transpose,
  zeros,
  type GpuMode,
} from '../../../src';
import { GpuBackend } from '../../../src/kernels/gpu/backend';
import { CpuBackend } from '../../../src/kernels/cpu/backend';
import { MAX_ELEMENTS } from '../../../src/kernels/gpu/runtime';
import { expectClose, flat, mulberry32 } from '../../helpers';

const modes = availableGpuModes().filter((m): m is GpuMode => m !== 'webgl' && m !== 'webgl2');

describe.each(modes)('gpu backend plumbing, mode %s', (mode) => {
  beforeAll(() => setBackend('gpu', { mode }));
  afterAll(() => setBackend('cpu'));

  test('backendInfo reports the mode in use, single precision and the limits', () => {
    const info = backendInfo();
    expect(info).toMatchObject({ backend: 'gpu', mode, precision: 'single', maxElements: MAX_ELEMENTS });
    if (mode === 'headlessgl') expect(info.maxTextureSize).toBeGreaterThanOrEqual(4096);
    else expect(info.maxTextureSize).toBeNull();
  });

  test('one kernel per shape signature: new offsets and values reuse it', () => {
    const big = reshape(tensor(Array.from({ length: 24 }, (_, i) => i)), [4, 6]);
    exp(slice(big, 0, 0, 2)); // warm: compiles exp for a [2,6] view of a 24-element buffer
    const before = backendInfo().kernelsCompiled;
    const rowsLater = exp(slice(big, 0, 2, 4)); // same layout, another offset
    expect(backendInfo().kernelsCompiled).toBe(before);
    // GLSL's exp is good to a few float32 ulps, not to the last one
    expectClose(flat(rowsLater), Array.from({ length: 12 }, (_, i) => Math.exp(12 + i)), 1e-5);
    exp(reshape(tensor(Array.from({ length: 24 }, (_, i) => -i)), [4, 6]));
    expect(backendInfo().kernelsCompiled).toBe(before + 1); // a contiguous [24] is a new layout
  });

  test('in-place writes reach every view of the buffer, and the version counter moves', () => {
    const z = zeros([3, 3]);
    const view = transpose(slice(z, 0, 0, 2));
    const v0 = z.buffer.ledger.version;
    copy_(view, tensor([[1, 2], [3, 4], [5, 6]]));
    expect(z.toArray()).toEqual([[1, 3, 5], [2, 4, 6], [0, 0, 0]]);
    expect(view.toArray()).toEqual([[1, 2], [3, 4], [5, 6]]);
    expect(z.buffer.ledger.version).toBeGreaterThan(v0);
    // an expanded source broadcasts into a strided destination
    copy_(slice(z, 1, 1, 3), tensor([7, 8]));
    expect(z.toArray()).toEqual([[1, 7, 8], [2, 7, 8], [0, 7, 8]]);
  });

  test('released tensors free their device data and leave the accounting', () => {
    const liveBefore = memory.stats().liveBytes;
    const a = tensor(Array.from({ length: 1000 }, (_, i) => i / 7));
    const b = mul(a, a);
    expect(memory.stats().liveBytes - liveBefore).toBe(2 * 1000 * 4);
    const freed: unknown[] = [];
    const runtime = (backendRuntime() as unknown as { free: (d: unknown) => void });
    const original = runtime.free.bind(runtime);
    runtime.free = (d: unknown) => {
      freed.push(d);
      original(d);
    };
    try {
      b.dispose();
      a.dispose();
    } finally {
      runtime.free = original;
    }
    expect(freed).toHaveLength(2);
    expect(memory.stats().liveBytes).toBe(liveBefore);
  });

  test('int32 tensors uploaded from the host are read (validated) without a readback, until written in place', () => {
    const runtime = backendRuntime() as unknown as { toHost: (d: unknown) => Float32Array };
    const original = runtime.toHost.bind(runtime);
    let readbacks = 0;
    runtime.toHost = (d) => {
      readbacks++;
      return original(d);
    };
    try {
      const ids = tensor([3, 1, 2, 0], { dtype: 'int32' });
      expect(flat(ids)).toEqual([3, 1, 2, 0]);
      expect(flat(slice(ids, 0, 1, 3))).toEqual([1, 2]);
      expect(readbacks).toBe(0);
      copy_(slice(ids, 0, 0, 1), tensor([7], { dtype: 'int32' }));
      expect(flat(ids)).toEqual([7, 1, 2, 0]); // the host copy is gone: this one reads the device
      expect(readbacks).toBe(1);
      expect(flat(add(ids, ids))).toEqual([14, 2, 4, 0]); // a kernel's result is read back
      expect(readbacks).toBe(2);
    } finally {
      runtime.toHost = original;
    }
  });

  test('float16 storage rounds exactly as the cpu backend does (ties to even, overflow, subnormals)', () => {
    const rand = mulberry32(7);
    const values = [
      1 + 2 ** -11, 1 + 3 * 2 ** -11, 2049, 2051, 65504, 65519, 65520, -65520, 2 ** -24, 2 ** -25, 3 * 2 ** -26, 1e-7, -0.1, 0,
      ...Array.from({ length: 200 }, () => (rand() - 0.5) * 2 ** Math.floor(rand() * 40 - 20)),
    ].map(Math.fround);
    const onGpu = flat(cast(tensor(values), 'float16'));
    setBackend('cpu');
    const onCpu = flat(cast(tensor(values), 'float16'));
    setBackend('gpu', { mode });
    expect(onGpu).toEqual(onCpu);
  });

  test('int32 results truncate toward zero, as a typed array stores them', () => {
    expect(flat(cast(tensor([-2.7, -0.5, 0.5, 2.7, 1e6 + 0.75]), 'int32'))).toEqual([-2, 0, 0, 2, 1000000]);
  });

  test('empty inputs give what the cpu backend gives (gpu.js takes no empty arrays)', () => {
    expect(matmul(zeros([2, 0]), zeros([0, 3])).toArray()).toEqual([[0, 0, 0], [0, 0, 0]]);
    expect(flat(sum(zeros([3, 0]), { dim: 1 }))).toEqual([0, 0, 0]);
    expect(softmax(zeros([2, 0]), -1).shape).toEqual([2, 0]);
    expect(layerNorm(zeros([2, 0]), [0]).shape).toEqual([2, 0]);
  });

  test('NaN propagates through maximum, minimum, clamp, tanh and pow, as on cpu (GLSL builtins drop it)', () => {
    const x = tensor([NaN, 1]);
    expect(flat(maximum(x, tensor([1, NaN])))).toEqual([NaN, NaN]);
    expect(flat(minimum(x, tensor([0, 2])))).toEqual([NaN, 1]);
    expect(flat(clamp(x, 0, 0.5))).toEqual([NaN, 0.5]);
    expect(flat(tanh(x))[0]).toBeNaN();
    expect(flat(pow(x, 1))[0]).toBeNaN();
    expect(flat(pow(tensor([0, 0]), tensor([-1, 0])))).toEqual([Infinity, 1]);
  });

  test('a cast to int32 truncates toward zero and refuses NaN and infinities; int32 refuses values it cannot hold exactly', () => {
    expect(flat(cast(tensor([-3.5, 3.5, 2 ** 20 + 0.5]), 'int32'))).toEqual([-3, 3, 2 ** 20]);
    // checked on the host before the kernel runs (the shader would store them as 0)
    expect(() => cast(tensor([1, NaN]), 'int32')).toThrow(/value NaN at index 1 cannot be converted to int32/);
    expect(() => cast(tensor([-Infinity]), 'int32')).toThrow(ValueError);
    expect(() => tensor([2 ** 24 + 1], { dtype: 'int32' })).toThrow(/beyond ±2\^24/);
    expect(() => full([2], 2147483647, { dtype: 'int32' })).toThrow(BackendError);
  });

  test('float64 is refused with a BackendError that names the fix', () => {
    expect(() => tensor([1, 2], { dtype: 'float64' })).toThrow(BackendError);
    expect(() => zeros([2], { dtype: 'float64' })).toThrow(/float64 tensors are not supported.*float32/);
    expect(() => cast(tensor([1, 2]), 'float64')).toThrow(BackendError);
  });

  test('a tensor of the cpu backend is refused by name, not misread', () => {
    setBackend('cpu');
    const onCpu = tensor([1, 2, 3]);
    setBackend('gpu', { mode });
    const onGpu = tensor([1, 2, 3]);
    // two operands: the op layer sees the mismatch; one operand: the kernel registry does
    expect(() => add(onGpu, onCpu)).toThrow(/operands live on different backends \(gpu and cpu\)/);
    expect(() => exp(onCpu)).toThrow(BackendError);
    expect(() => exp(onCpu)).toThrow(/^exp: an operand of shape \[3\] lives on backend 'cpu' but the active backend is 'gpu'/);
  });
});

/** The GpuBackend behind the registry's counting wrapper (the active backend). */
function backendRuntime() {
  // the registry wraps the instance with Object.create, so the runtime is reachable through it
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { kernels } = require('../../../src/kernels/registry') as typeof import('../../../src/kernels/registry');
  return (kernels() as unknown as GpuBackend).runtime;
}

describe('gpu backend selection', () => {
  afterAll(() => setBackend('cpu'));

  test('a mode that is not here is a BackendError naming what is missing', () => {
    expect(() => setBackend('gpu', { mode: 'webgl2' })).toThrow(BackendError);
    expect(() => setBackend('gpu', { mode: 'webgl2' })).toThrow(/WebGL2 needs a browser/);
    if (!modes.includes('headlessgl')) {
      expect(() => setBackend('gpu', { mode: 'headlessgl' })).toThrow(/gl' module|X display|DISPLAY/);
    }
    expect(() => setBackend('gpu', { mode: 'vulkan' })).toThrow(/unknown gpu mode 'vulkan'/);
  });

  test('a failed setBackend leaves the active backend as it was', () => {
    setBackend('cpu');
    expect(() => setBackend('gpu', { mode: 'webgl2' })).toThrow(BackendError);
    expect(backendInfo().backend).toBe('cpu');
    expect(backendInfo().precision).toBe('double');
  });

  test('asking again for the mode in use keeps the instance and its tensors', () => {
    setBackend('gpu', { mode: 'webasm' });
    const t = tensor([1, 2]);
    setBackend('gpu', { mode: 'webasm' });
    expect(flat(exp(t))).toEqual([Math.fround(Math.E), Math.fround(Math.exp(2))].map((v) => expect.closeTo(v, 5)));
    setBackend('gpu'); // no options: keep whatever runs
    expect(flat(add(t, t))).toEqual([2, 4]);
  });

  test('tensors of a replaced gpu instance are refused, not misread', () => {
    setBackend('gpu', { mode: 'cpu' });
    const old = tensor([1, 2]);
    setBackend('gpu', { mode: 'webasm' });
    expect(() => exp(old)).toThrow(/earlier gpu backend instance/);
  });

  test('a buffer beyond 2^24 elements is refused before anything is allocated', () => {
    const gpu = new GpuBackend({ mode: 'cpu' });
    const liveBefore = memory.stats().liveBuffers;
    expect(() => gpu.zeros('float32', MAX_ELEMENTS + 1)).toThrow(/exceeds the gpu backend's limit of 16777216/);
    expect(memory.stats().liveBuffers).toBe(liveBefore);
    gpu.dispose();
  });

  test('a device whose textures are smaller than 4096 x 4096 lowers the limit to what one texture holds', () => {
    const gpu = new GpuBackend({ mode: 'cpu' });
    // as a GL device with 1024-texel textures would report it
    Object.defineProperty(gpu.runtime, 'maxTextureSize', { get: () => 1024 });
    expect(gpu.info().maxElements).toBe(1024 * 1024);
    expect(() => gpu.upload('float32', new Float32Array(1024 * 1024 + 1))).toThrow(/limit of 1048576 \(a square texture of this device's largest side, 1024\)/);
    expect(gpu.zeros('float32', 1024 * 1024).length).toBe(1024 * 1024);
    gpu.dispose();
  });

  test('upload and download keep each dtype exact (float16 bits, int32)', () => {
    const gpu = new GpuBackend({ mode: 'cpu' });
    const cpu = new CpuBackend();
    const bits = Uint16Array.from([0x3c00, 0x3c01, 0x7bff, 0x0001, 0x8000, 0xfc00]);
    expect(Array.from(gpu.download(gpu.uploadHalfBits('float16', bits)))).toEqual(Array.from(bits));
    const ints = [-5, 0, 7, 123456];
    expect(Array.from(gpu.download(gpu.upload('int32', ints)))).toEqual(Array.from(cpu.download(cpu.upload('int32', ints))));
    gpu.dispose();
  });
});
