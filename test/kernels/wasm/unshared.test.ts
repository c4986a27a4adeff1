/**
 * The wasm backend on an ordinary (unshared) memory, as in a browser page that is not
 * cross-origin isolated: the kernel module with its memory import's shared flag cleared, one
 * thread, and typed-array views that are made anew when the memory grows (growing an unshared
 * memory detaches its ArrayBuffer). The op suites run on it too (test/backends, 'wasm/unshared').
 */
import {
  ValueError,
  backendInfo,
  matmul,
  setBackend,
  softmax,
  tensor,
  tidy,
  where,
  zeros,
  type Tensor,
} from '../../../src';
import { wasmKernelBytes, withUnsharedMemoryImport } from '../../../src/kernels/wasm/binary';
import { expectError, flat, uniformValues } from '../../helpers';

const memory = (shared: boolean) => new WebAssembly.Memory({ initial: 1, maximum: 65536, shared });
const instantiate = (bytes: Uint8Array<ArrayBuffer>, shared: boolean) => () =>
  new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory: memory(shared) } });

describe('withUnsharedMemoryImport', () => {
  it('clears the shared flag of the memory import and nothing else: the module then links to an unshared memory only', () => {
    const bytes = wasmKernelBytes();
    const before = bytes.slice();
    const unshared = withUnsharedMemoryImport(bytes);
    expect(bytes).toEqual(before); // a copy: the compiled bytes are not modified
    const differing = [...unshared.keys()].filter((i) => unshared[i] !== bytes[i]);
    expect(differing).toHaveLength(1);
    expect([bytes[differing[0]], unshared[differing[0]]]).toEqual([0x03, 0x01]); // max + shared -> max
    expect(instantiate(bytes, false)).toThrow(WebAssembly.LinkError);
    expect(instantiate(unshared, true)).toThrow(WebAssembly.LinkError);
    const instance = instantiate(unshared, false)();
    expect(Object.keys(instance.exports)).toEqual(Object.keys(instantiate(bytes, true)().exports));
  });

  it('fails clearly on a module that imports no memory', () => {
    const empty = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]);
    expect(() => withUnsharedMemoryImport(empty)).toThrow(/imports no memory/);
  });
});

describe("setBackend('wasm', { sharedMemory: false })", () => {
  afterAll(() => setBackend('cpu'));

  it('runs one thread on an ordinary memory, and says why when more were asked for', () => {
    setBackend('wasm', { threads: 2, sharedMemory: false });
    expect(backendInfo()).toMatchObject({ backend: 'wasm', sharedMemory: false, threads: 1, threadsRequested: 2 });
    expect(backendInfo().threadsReason).toMatch(/not shared \(sharedMemory: false\)/);
    // another sharedMemory setting is another instance
    setBackend('wasm', { threads: 2 });
    expect(backendInfo()).toMatchObject({ sharedMemory: true, threads: 2 });
  });

  it('tensors made before the memory grows keep their values, and ops on them after the growth are right', () => {
    setBackend('wasm', { threads: 1, sharedMemory: false });
    const a = tensor(uniformValues(33 * 17, 1), { dtype: 'float32' }).reshape([33, 17]);
    const b = tensor(uniformValues(17 * 29, 2), { dtype: 'float32' }).reshape([17, 29]);
    const mask = tensor(Array.from({ length: 33 * 29 }, (_, i) => i % 3), { dtype: 'int32' }).reshape([33, 29]);
    const aValues = flat(a);
    const results = (): number[][] => tidy(() => {
      const y = matmul(a, b);
      return [flat(y), flat(softmax(where(mask, y, 0), -1))];
    });
    const before = results();
    const bytesBefore = backendInfo().memoryBytes as number;
    // 256 MB more than the memory had: it grows, detaching every view made on the old buffer
    const big = zeros([bytesBefore / 4 + (64 << 20)]);
    expect(backendInfo().memoryBytes).toBeGreaterThan(bytesBefore);
    expect(flat(a)).toEqual(aValues);
    expect(results()).toEqual(before);
    big.dispose();
    // and the same results as on a shared memory
    setBackend('wasm', { threads: 1 });
    const [a2, b2, mask2] = [a, b, mask].map((t) => tensor(t.toArray() as number[][], { dtype: t.dtype })) as Tensor[];
    const shared = tidy(() => {
      const y = matmul(a2, b2);
      return [flat(y), flat(softmax(where(mask2, y, 0), -1))];
    });
    expect(shared).toEqual(before);
  });

  it('rejects a sharedMemory that is not a boolean; true works where a shared memory can be made (Node)', () => {
    expectError(() => setBackend('wasm', { threads: 1, sharedMemory: 'yes' }), ValueError, 'setBackend', /sharedMemory must be true, false or left out/);
    setBackend('wasm', { threads: 1, sharedMemory: true });
    expect(backendInfo().sharedMemory).toBe(true);
  });
});
