/** The instruction-tuning data pipeline: byte tokenizer, Alpaca records, batching, demo data. */
export * from './tokenizer';
export * from './alpaca';
export * from './batcher';
export * from './instructions';
