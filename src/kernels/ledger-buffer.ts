/**
 * What every backend's buffer shares: its ledger (the accounting record that outlives it, see
 * BufferLedger), with the ledger's fields mirrored as properties. A backend's buffer class adds
 * its data: a typed array (cpu), a device slot (gpu).
 */
import type { BackendBuffer, BufferLedger } from './backend';
import type { MemoryCategory } from './memory';
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
