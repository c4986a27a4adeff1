/** The public memory API: live and peak bytes by category, over every backend. */
import { memoryTracker, type MemoryCategory, type MemoryStats } from '../kernels/memory';
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
  /** Moves a tensor's storage to a category (weights, grads, optimizer, activations, other). */
  tag(t: Tensor, category: MemoryCategory): Tensor {
    return t.tagMemory(category);
  },
};
