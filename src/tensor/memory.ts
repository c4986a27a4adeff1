/** The public memory API: live and peak bytes by category, over every backend. */
import { memoryTracker, MEMORY_CATEGORIES, type MemoryCategory, type MemoryStats } from '../kernels/memory';
import { ValueError } from '../errors';
import type { Tensor } from './tensor';

export const memory = {
  /** Live and peak bytes and buffer counts, by category, and bytes saved for backward. */
  stats(): MemoryStats {
    return memoryTracker.stats();
  },
  /** Starts a new peak measurement from the current live values. */
  resetPeak(): void {
    memoryTracker.resetPeak();
  },
  /**
   * Waits until buffers that the garbage collector has already freed are un-counted. Their
   * finalizers run after the current synchronous job, so a tight training loop sees live bytes
   * lag behind the truth until it yields; `await memory.settle()` yields (and, when Node runs
   * with --expose-gc, collects first) so that stats() is current.
   */
  async settle(): Promise<void> {
    const gc = (globalThis as { gc?: () => void }).gc;
    for (let i = 0; i < 2; i++) {
      gc?.();
      await new Promise<void>((resolve) => setTimeout(resolve, 0));
    }
  },
  /**
   * Moves a tensor's storage to a category (weights, grads, optimizer, master, activations,
   * other). An unknown name is refused: it would open a category of its own, which every byte
   * count reads as NaN.
   */
  tag(t: Tensor, category: MemoryCategory): Tensor {
    if (!(MEMORY_CATEGORIES as readonly unknown[]).includes(category)) {
      const got = typeof category === 'string' ? `'${category}'` : String(category);
      throw new ValueError('memory.tag', `unknown memory category ${got}; the categories are ${MEMORY_CATEGORIES.map((c) => `'${c}'`).join(', ')}`);
    }
    return t.tagMemory(category);
  },
};
