/**
 * Memory accounting. Every buffer a backend allocates is counted here until it is released,
 * under a category, so that the BAdam story (weights, gradients, optimizer state, activations
 * saved for backward) can be told in bytes. Backends call `onAlloc`/`onRelease`; the autograd
 * engine reports the buffers it keeps alive for backward through `onSave`/`onUnsave`.
 */
import type { BufferLedger } from './backend';

/** The accounting view of a buffer (a BufferLedger or anything with the same fields). */
type Counted = Pick<BufferLedger, 'bytes' | 'category'>;

/**
 * weights: model parameters; grads: accumulated gradients; optimizer: moments and buffers;
 * master: float32 master copies of float16 weights (mixed precision); activations: what a
 * caller tags as such; other: everything else (temporaries). Bytes saved for backward are
 * tracked separately (savedForBackwardBytes), since a buffer can be both an output and saved.
 */
export type MemoryCategory = 'weights' | 'grads' | 'optimizer' | 'master' | 'activations' | 'other';
export const MEMORY_CATEGORIES: readonly MemoryCategory[] = ['weights', 'grads', 'optimizer', 'master', 'activations', 'other'];

export interface MemoryStats {
  /** Bytes in live buffers now, over all backends. */
  liveBytes: number;
  /** Highest liveBytes since the start or the last resetPeak(). */
  peakBytes: number;
  liveBuffers: number;
  peakBuffers: number;
  /** Live bytes by category (a buffer's category can change: see memory.tag). */
  byCategory: Record<MemoryCategory, number>;
  /** Highest live bytes of each category since the start or the last resetPeak(). */
  peakByCategory: Record<MemoryCategory, number>;
  /** Bytes of distinct non-weight buffers that graph nodes hold for their backward. */
  savedForBackwardBytes: number;
  /** Peak of savedForBackwardBytes since the last resetPeak(). */
  peakSavedForBackwardBytes: number;
}

function zeroCategories(): Record<MemoryCategory, number> {
  return { weights: 0, grads: 0, optimizer: 0, master: 0, activations: 0, other: 0 };
}

class MemoryTracker {
  private live = 0;
  private peak = 0;
  private buffers = 0;
  private peakBufs = 0;
  private byCategory = zeroCategories();
  private peakByCategory = zeroCategories();
  private saved = new Map<BufferLedger, number>();
  private savedBytes = 0;
  private peakSaved = 0;

  onAlloc(buf: Counted): void {
    this.live += buf.bytes;
    this.buffers++;
    this.grow(buf.category, buf.bytes);
    if (this.live > this.peak) this.peak = this.live;
    if (this.buffers > this.peakBufs) this.peakBufs = this.buffers;
  }

  onRelease(buf: Counted): void {
    this.live -= buf.bytes;
    this.buffers--;
    this.byCategory[buf.category] -= buf.bytes;
  }

  onRetag(buf: Counted, from: MemoryCategory): void {
    this.byCategory[from] -= buf.bytes;
    this.grow(buf.category, buf.bytes);
  }

  private grow(category: MemoryCategory, bytes: number): void {
    this.byCategory[category] += bytes;
    if (this.byCategory[category] > this.peakByCategory[category]) this.peakByCategory[category] = this.byCategory[category];
  }

  onSave(buf: BufferLedger): void {
    if (buf.category === 'weights') return;
    const n = this.saved.get(buf) ?? 0;
    this.saved.set(buf, n + 1);
    if (n === 0) {
      this.savedBytes += buf.bytes;
      if (this.savedBytes > this.peakSaved) this.peakSaved = this.savedBytes;
    }
  }

  onUnsave(buf: BufferLedger): void {
    const n = this.saved.get(buf);
    if (n === undefined) return;
    if (n === 1) {
      this.saved.delete(buf);
      this.savedBytes -= buf.bytes;
    } else this.saved.set(buf, n - 1);
  }

  stats(): MemoryStats {
    return {
      liveBytes: this.live,
      peakBytes: this.peak,
      liveBuffers: this.buffers,
      peakBuffers: this.peakBufs,
      byCategory: { ...this.byCategory },
      peakByCategory: { ...this.peakByCategory },
      savedForBackwardBytes: this.savedBytes,
      peakSavedForBackwardBytes: this.peakSaved,
    };
  }

  resetPeak(): void {
    this.peak = this.live;
    this.peakBufs = this.buffers;
    this.peakSaved = this.savedBytes;
    this.peakByCategory = { ...this.byCategory };
  }
}

/** The one tracker all backends report to. */
export const memoryTracker = new MemoryTracker();
