/** The instruction-tuning data pipeline: tokenizers, Alpaca records, batching, demo data. */
export * from './tokenizer';
export * from './byte-tokenizer';
export * from './hf-tokenizer';
export * from './alpaca';
export * from './batcher';
export * from './instructions';
