/**
 * The wasm backend: storage in one WebAssembly memory, hot kernels in WebAssembly SIMD
 * (wasm/assembly/*.ts, compiled by AssemblyScript at build time) on a pool of threads.
 *
 * It is the cpu backend with its storage moved: a WasmBuffer's `data` is a typed-array view on
 * the wasm memory, so every kernel of the cpu backend runs unchanged on it (reading the view in
 * place, no copy), and the kernels that dominate training time are replaced, one by one, by wasm
 * SIMD kernels that read and write the same memory (matmul first: about 88% of a backward). A
 * kernel still written in TypeScript computes into a JavaScript array, which `wrap` then copies
 * into the wasm memory: one copy of its output, small next to the kernel itself.
 *
 * Storage is released deterministically (tensor dispose, tidy scopes: see tensor/scope.ts); the
 * allocator takes blocks back onto free lists by size, so a steady training loop reuses the same
 * blocks step after step. The memory ledger counts every block, as on the other backends.
 */
import type { BackendBuffer, BackendInfo, BufferLedger, MatmulShape } from '../backend';
import { CpuBackend } from '../cpu/backend';
import { LedgerBuffer } from '../ledger-buffer';
import { memoryTracker } from '../memory';
import { itemSize, type DType, type StorageArray } from '../../tensor/dtype';
import { decodeFloat16, encodeFloat16 } from '../../tensor/float16';
import { BackendError, ValueError } from '../../errors';
import { createRuntime, defaultThreads, type WasmRuntime } from './runtime';
import type { WasmBackendOptions } from './options';
import type { WasmAllocator } from './allocator';
import { matmulInto } from './matmul';

/**
 * A ledger that remembers its block and the allocator it came from, so that a finalizer holding
 * only the ledger can free it, and a buffer made by an earlier instance of the backend (another
 * thread count: another memory) goes back to its own allocator.
 */
interface WasmLedger extends BufferLedger {
  readonly address: number;
  readonly allocator: WasmAllocator;
}

type ArrayCtor = new (buffer: ArrayBufferLike, byteOffset: number, length: number) => StorageArray;

function arrayCtor(dtype: DType): ArrayCtor {
  switch (dtype) {
    case 'float64':
      return Float64Array;
    case 'float32':
      return Float32Array;
    case 'float16':
      return Uint16Array;
    case 'int32':
      return Int32Array;
  }
}

/** A block of wasm memory; `data` is a typed-array view on it (renewed if a non-shared memory grew). */
class WasmBuffer extends LedgerBuffer {
  private view: StorageArray;
  private viewGeneration: number;

  constructor(
    ledger: WasmLedger,
    dtype: DType,
    readonly length: number,
    readonly rt: WasmRuntime,
  ) {
    super(ledger, dtype);
    this.view = this.makeView();
    this.viewGeneration = rt.generation();
  }

  /** Byte address of element 0. */
  get address(): number {
    return (this.ledger as WasmLedger).address;
  }

  get data(): StorageArray {
    if (this.viewGeneration !== this.rt.generation() && !this.rt.shared) {
      this.view = this.makeView();
      this.viewGeneration = this.rt.generation();
    }
    return this.view;
  }

  private makeView(): StorageArray {
    return new (arrayCtor(this.dtype))(this.rt.memory.buffer, this.address, this.length);
  }
}


export class WasmBackend extends CpuBackend {
  override readonly name = 'wasm';
  private readonly rt: WasmRuntime;
  private readonly requestedThreads: number;
  private nextId = 1;

  constructor(options: WasmBackendOptions = {}) {
    super();
    const threads = options.threads ?? defaultThreads();
    if (!Number.isInteger(threads) || threads < 1) {
      throw new ValueError('setBackend', `wasm: threads must be a positive integer, got ${String(threads)}`);
    }
    this.requestedThreads = threads;
    this.rt = createRuntime(threads);
  }

  override info(): BackendInfo {
    const a = this.rt.allocator.stats();
    return {
      backend: 'wasm',
      mode: 'simd',
      precision: 'double',
      maxTextureSize: null,
      maxElements: null,
      kernelsCompiled: 0,
      simd: true,
      threads: this.rt.pool.threads,
      threadsRequested: this.requestedThreads,
      threadsReason: this.rt.pool.reason,
      sharedMemory: this.rt.shared,
      memoryBytes: a.memoryBytes,
      memoryInUseBytes: a.usedBytes,
    };
  }

  accepts(options: Readonly<Record<string, unknown>>): boolean {
    return (options.threads ?? defaultThreads()) === this.requestedThreads;
  }

  dispose(): void {
    this.rt.dispose();
  }

  // ---------------------------------------------------------------- storage

  /** A new uninitialised block for `length` elements of `dtype`, counted by the ledger. */
  private allocate(dtype: DType, length: number): WasmBuffer {
    const bytes = length * itemSize(dtype);
    const address = this.rt.allocator.alloc(bytes);
    const ledger: WasmLedger = {
      id: this.nextId++,
      backend: this.name,
      bytes,
      category: 'other',
      refs: 0,
      released: false,
      version: 0,
      address,
      allocator: this.rt.allocator,
    };
    memoryTracker.onAlloc(ledger);
    return new WasmBuffer(ledger, dtype, length, this.rt);
  }

  /** The cpu kernels' results (JavaScript arrays) are copied into wasm memory here. */
  protected override wrap(dtype: DType, data: StorageArray): BackendBuffer {
    const buf = this.allocate(dtype, data.length);
    buf.data.set(data);
    return buf;
  }

  override zeros(dtype: DType, length: number): BackendBuffer {
    const buf = this.allocate(dtype, length);
    buf.data.fill(0); // a reused block holds its last owner's values
    return buf;
  }

  override release(buf: BackendBuffer | BufferLedger): void {
    const ledger = ('ledger' in buf ? buf.ledger : buf) as WasmLedger;
    if (ledger.released) return;
    super.release(ledger);
    ledger.allocator.release(ledger.address);
  }

  // ---------------------------------------------------------------- matmul

  override matmul(a: BackendBuffer, b: BackendBuffer, shape: MatmulShape, outDtype: DType): BackendBuffer {
    const dtype = outDtype === 'float64' ? 'float64' : outDtype === 'int32' ? null : 'float32';
    if (dtype === null) return super.matmul(a, b, shape, outDtype);
    // operands in the kernel's dtype (float16 storage and mixed dtypes are converted first)
    const av = this.asDtype(a, dtype);
    const bv = this.asDtype(b, dtype);
    const size = itemSize(dtype);
    try {
      const out = this.allocate(dtype, shape.batch * shape.m * shape.n);
      matmulInto(
        this.rt.pool,
        dtype,
        (av as WasmBuffer).address + (shape.aOffset ?? 0) * size,
        (bv as WasmBuffer).address + (shape.bOffset ?? 0) * size,
        out.address,
        { ...shape, aOffset: 0, bOffset: 0 },
      );
      if (outDtype === dtype) return out;
      const rounded = this.wrap(outDtype, encodeFloat16(out.data as Float32Array));
      this.release(out);
      return rounded;
    } finally {
      if (av !== a) this.release(av);
      if (bv !== b) this.release(bv);
    }
  }

  /**
   * `buf` itself if it holds `dtype` in this instance's memory, else a converted copy that the
   * caller releases (float16 storage; another dtype; a buffer of an earlier instance, whose
   * memory the kernels of this one cannot address).
   */
  private asDtype(buf: BackendBuffer, dtype: 'float32' | 'float64'): BackendBuffer {
    if (!(buf instanceof WasmBuffer)) throw new BackendError('matmul', `an operand lives on backend '${buf.backend}', not wasm`);
    if (buf.dtype === dtype && buf.rt === this.rt) return buf;
    const out = this.allocate(dtype, buf.length);
    const src = (buf as WasmBuffer).data;
    if (buf.dtype === 'float16') {
      if (dtype === 'float32') decodeFloat16(src as Uint16Array, out.data as Float32Array);
      else (out.data as Float64Array).set(decodeFloat16(src as Uint16Array));
    } else (out.data as Float32Array | Float64Array).set(src);
    return out;
  }
}
