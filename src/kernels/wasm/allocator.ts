/**
 * The wasm backend's allocator: blocks of one WebAssembly memory, handed out and taken back by
 * byte address. No garbage collector frees wasm memory, so every block returns here through
 * `free`, called when a tensor's storage is released (dispose, the end of a tidy scope, or a
 * finalizer at the top level).
 *
 * A training loop allocates the same sizes step after step, so freed blocks go onto a free list
 * per size and the next request of that size takes one back: after the first step, a steady loop
 * allocates nothing new. Otherwise a request takes fresh memory past the highest block (the
 * "top"), growing the memory when needed, up to wasm32's limit of 4 GiB. Only when even that
 * fails are the free lists coalesced (neighbouring free blocks merged, free blocks under the top
 * given back to it) and the first free block large enough split.
 */
import { BackendError } from '../../errors';

/** Every block starts on a 64-byte boundary (a cache line; SIMD loads need 16). */
export const ALIGN = 64;
const PAGE = 65536;
/** wasm32 addresses 4 GiB: 65536 pages of 64 KiB. */
export const MAX_PAGES = 65536;

export interface AllocatorStats {
  /** Bytes in blocks handed out and not freed (rounded up to ALIGN). */
  usedBytes: number;
  /** Bytes waiting on the free lists. */
  freeBytes: number;
  /** The memory's size in bytes. */
  memoryBytes: number;
  /** Address of the first byte no block has used yet. */
  top: number;
}

const roundUp = (n: number, to: number) => Math.ceil(n / to) * to;

export class WasmAllocator {
  private top: number;
  /** Size of each block handed out, by address. */
  private readonly used = new Map<number, number>();
  /** Free block addresses by block size. */
  private readonly free = new Map<number, number[]>();
  private usedBytes = 0;
  private freeBytes = 0;

  /**
   * Manages `memory` from byte `start` on (what lies below belongs to the runtime). `onGrow`
   * runs after the memory grew, so that views on a non-shared memory can be renewed.
   */
  constructor(
    private readonly memory: WebAssembly.Memory,
    start: number,
    private readonly onGrow: () => void = () => {},
    private readonly maxPages = MAX_PAGES,
  ) {
    this.top = roundUp(start, ALIGN);
  }

  /** The address of a new block of at least `bytes` bytes (0 bytes get a block of ALIGN). */
  alloc(bytes: number): number {
    const size = roundUp(Math.max(bytes, 1), ALIGN);
    const reused = this.free.get(size)?.pop();
    if (reused !== undefined) {
      this.freeBytes -= size;
      return this.take(reused, size);
    }
    if (this.fitsAtTop(size)) {
      const address = this.top;
      this.top += size;
      return this.take(address, size);
    }
    this.coalesce();
    const split = this.firstFit(size);
    if (split !== null) return this.take(split, size);
    if (this.fitsAtTop(size)) {
      const address = this.top;
      this.top += size;
      return this.take(address, size);
    }
    throw new BackendError(
      'wasm',
      `cannot allocate ${bytes} bytes: ${this.usedBytes} bytes are in use and wasm32 memory ends at ${this.maxPages * PAGE} bytes (4 GiB); ` +
        'dispose tensors you no longer need (or wrap each step in tidy()), use float16 storage, or run on the cpu backend, whose memory is not limited to 4 GiB',
    );
  }

  /** Returns a block. Freeing an address that is not a live block is a bug, reported as such. */
  release(address: number): void {
    const size = this.used.get(address);
    if (size === undefined) throw new BackendError('wasm', `free of address ${address}, which is not an allocated block`);
    this.used.delete(address);
    this.usedBytes -= size;
    this.pushFree(address, size);
  }

  stats(): AllocatorStats {
    return { usedBytes: this.usedBytes, freeBytes: this.freeBytes, memoryBytes: this.memory.buffer.byteLength, top: this.top };
  }

  private take(address: number, size: number): number {
    this.used.set(address, size);
    this.usedBytes += size;
    return address;
  }

  /** Whether `size` more bytes fit at the top, growing the memory if needed and allowed. */
  private fitsAtTop(size: number): boolean {
    const end = this.top + size;
    const have = this.memory.buffer.byteLength;
    if (end <= have) return true;
    const pages = Math.ceil((end - have) / PAGE);
    const current = have / PAGE;
    if (current + pages > this.maxPages) return false;
    // grow by at least a quarter of the current size, so that a growing model does not grow page by page
    const wanted = Math.min(this.maxPages - current, Math.max(pages, Math.ceil(current / 4)));
    try {
      this.memory.grow(wanted);
    } catch {
      try {
        this.memory.grow(pages);
      } catch {
        return false;
      }
    }
    this.onGrow();
    return true;
  }

  /** Merges neighbouring free blocks, and gives free blocks that end at the top back to it. */
  private coalesce(): void {
    const blocks: [number, number][] = [];
    for (const [size, list] of this.free) for (const a of list) blocks.push([a, size]);
    if (blocks.length === 0) return;
    blocks.sort((x, y) => x[0] - y[0]);
    const merged: [number, number][] = [];
    for (const [a, size] of blocks) {
      const last = merged[merged.length - 1];
      if (last && last[0] + last[1] === a) last[1] += size;
      else merged.push([a, size]);
    }
    const tail = merged[merged.length - 1];
    if (tail[0] + tail[1] === this.top) {
      this.top = tail[0];
      this.freeBytes -= tail[1];
      merged.pop();
    }
    this.free.clear();
    for (const [a, size] of merged) {
      let list = this.free.get(size);
      if (!list) this.free.set(size, (list = []));
      list.push(a);
    }
  }

  /** Takes `size` bytes from the smallest free block that holds them; the rest stays free. */
  private firstFit(size: number): number | null {
    let best: number | null = null;
    for (const blockSize of this.free.keys()) if (blockSize >= size && (best === null || blockSize < best)) best = blockSize;
    if (best === null) return null;
    const list = this.free.get(best) as number[];
    const address = list.pop() as number;
    if (list.length === 0) this.free.delete(best);
    this.freeBytes -= best;
    if (best > size) this.pushFree(address + size, best - size);
    return address;
  }

  /** Puts a free block on the list of its size. */
  private pushFree(address: number, size: number): void {
    this.freeBytes += size;
    let list = this.free.get(size);
    if (!list) this.free.set(size, (list = []));
    list.push(address);
  }
}
