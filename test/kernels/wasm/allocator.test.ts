/**
 * The wasm backend's allocator (src/kernels/wasm/allocator.ts): freed blocks are reused by size,
 * the memory grows when needed, free neighbours merge when the memory cannot grow any more, and
 * an allocation past the limit is a typed error that changes nothing. Also the backend's side:
 * a steady loop of the same allocations stops growing the memory, and a tensor past wasm32's
 * 4 GiB is refused with a BackendError.
 */
import { BackendError, backendInfo, setBackend, tensor, tidy, zeros } from '../../../src';
import { ALIGN, WasmAllocator } from '../../../src/kernels/wasm/allocator';

const PAGE = 65536;

function allocator(pages: number, maxPages: number, start = 64) {
  const memory = new WebAssembly.Memory({ initial: pages, maximum: maxPages, shared: true });
  let grown = 0;
  return { a: new WasmAllocator(memory, start, () => grown++, maxPages), memory, grown: () => grown };
}

test('blocks are aligned, disjoint, and a freed block of the same size is handed out again', () => {
  const { a } = allocator(1, 4);
  const x = a.alloc(100);
  const y = a.alloc(100);
  const z = a.alloc(1);
  for (const p of [x, y, z]) expect(p % ALIGN).toBe(0);
  expect(y - x).toBeGreaterThanOrEqual(100);
  expect(z - y).toBeGreaterThanOrEqual(100);
  a.release(y);
  expect(a.stats()).toMatchObject({ usedBytes: 128 + 64, freeBytes: 128 }); // x and z in use, y free
  expect(a.alloc(128)).toBe(y); // same rounded size: the freed block
  expect(a.stats().freeBytes).toBe(0);
});

test('the memory grows when the top runs out, and onGrow is told', () => {
  const { a, memory, grown } = allocator(1, 8);
  const big = a.alloc(3 * PAGE);
  expect(big).toBeGreaterThanOrEqual(64);
  expect(memory.buffer.byteLength).toBeGreaterThanOrEqual(big + 3 * PAGE);
  expect(grown()).toBe(1);
});

test('when the memory cannot grow, free neighbours merge and the smallest fitting block is split', () => {
  const { a } = allocator(2, 2, 0);
  const blocks = Array.from({ length: 8 }, () => a.alloc(PAGE / 4)); // 2 pages, full
  expect(() => a.alloc(PAGE / 2)).toThrow(BackendError);
  a.release(blocks[2]);
  a.release(blocks[3]); // two neighbours: together PAGE / 2
  a.release(blocks[5]); // a lone quarter
  const half = a.alloc(PAGE / 2);
  expect(half).toBe(blocks[2]);
  expect(a.alloc(PAGE / 8)).toBe(blocks[5]); // split from the lone quarter
  expect(a.alloc(PAGE / 8)).toBe(blocks[5] + PAGE / 8); // its other half
});

test('free blocks at the top go back to the top, so one large block can follow many small ones', () => {
  const { a } = allocator(1, 1, 0);
  const small = Array.from({ length: 16 }, () => a.alloc(PAGE / 16));
  for (const p of small) a.release(p);
  expect(a.alloc(PAGE)).toBe(0);
});

test('past the limit: a BackendError naming the request and the 4 GiB limit, and nothing changes', () => {
  const { a } = allocator(1, 2, 0);
  a.alloc(1000);
  const before = a.stats();
  let error: unknown;
  try {
    a.alloc(3 * PAGE);
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(BackendError);
  expect((error as Error).message).toMatch(/^wasm: cannot allocate 196608 bytes: 1024 bytes are in use .*4 GiB.*tidy\(\)/);
  expect(a.stats()).toEqual(before);
  expect(() => a.release(12345)).toThrow(/not an allocated block/);
});

describe('on the wasm backend', () => {
  beforeAll(() => setBackend('wasm', { threads: 1 }));
  afterAll(() => setBackend('cpu'));

  test('a steady loop reuses its blocks: the memory stops growing and the bytes in use return', () => {
    const step = () =>
      tidy(() => {
        const x = tensor([[1, 2, 3], [4, 5, 6]]).matmul(zeros([3, 1000]).add(1)).exp();
        return x.sum().item();
      });
    step();
    const { memoryBytes, memoryInUseBytes } = backendInfo();
    for (let i = 0; i < 50; i++) step();
    expect(backendInfo().memoryBytes).toBe(memoryBytes);
    expect(backendInfo().memoryInUseBytes).toBe(memoryInUseBytes);
  });

  test('a tensor past wasm32\'s 4 GiB is a BackendError, not a crash', () => {
    expect(() => zeros([1100, 1000, 1000])).toThrow(BackendError); // 4.4 GB of float32
    expect(() => zeros([1100, 1000, 1000])).toThrow(/4 GiB/);
    expect(tensor([1, 2]).add(1).toArray()).toEqual([2, 3]); // still usable
  });
});
