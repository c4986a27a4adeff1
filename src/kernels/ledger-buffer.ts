/**
 * What every backend's buffer shares: its ledger (the accounting record that outlives it, see
 * BufferLedger), with the ledger's fields mirrored as properties. A backend's buffer class adds
 * its data: a typed array (cpu), a device slot (gpu).
 */
import type { BackendBuffer, BufferLedger } from './backend';
import { memoryTracker, type MemoryCategory } from './memory';
import type { DType } from '../tensor/dtype';

export abstract class LedgerBuffer implements BackendBuffer {
  abstract readonly length: number;

  constructor(
    readonly ledger: BufferLedger,
    readonly dtype: DType,
  ) {}
  get id() {
    return this.ledger.id;
  }
  get backend() {
    return this.ledger.backend;
  }
  get bytes() {
    return this.ledger.bytes;
  }
  get category() {
    return this.ledger.category;
  }
  set category(c: MemoryCategory) {
    this.ledger.category = c;
  }
  get refs() {
    return this.ledger.refs;
  }
  set refs(n: number) {
    this.ledger.refs = n;
  }
  get released() {
    return this.ledger.released;
  }
}

/**
 * Marks a buffer (or its ledger) released and stops counting it: what every backend's release()
 * does first. Returns the ledger, or null when it was released already (release is idempotent),
 * so that a backend frees its own storage only once.
 */
export function releaseLedger(buf: BackendBuffer | BufferLedger): BufferLedger | null {
  const ledger = 'ledger' in buf ? buf.ledger : buf;
  if (ledger.released) return null;
  ledger.released = true;
  memoryTracker.onRelease(ledger);
  return ledger;
}
