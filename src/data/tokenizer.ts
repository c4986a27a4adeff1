/**
 * What the data pipeline needs of a tokenizer: text to ids and back, and the ids of its special
 * tokens. Two kinds implement it: `ByteTokenizer` (every UTF-8 byte a token, nothing to load;
 * the demo's) and `HuggingFaceTokenizer` (a model's own tokenizer.json, byte-level or
 * sentencepiece-style BPE), which `Tokenizer.fromFile` loads.
 */
import { HuggingFaceTokenizer } from './hf-tokenizer';

export interface EncodeOptions {
  /** Prepend the bos token (default false). */
  addBos?: boolean;
  /** Append the eos token (default false). */
  addEos?: boolean;
}

export interface DecodeOptions {
  /** Leave special tokens out of the text (default true); when false they are written as their names, e.g. "<eos>". */
  skipSpecial?: boolean;
}

export interface Tokenizer {
  /** One more than the largest id: a model's vocabSize must be at least this. */
  readonly vocabSize: number;
  /** The id of the beginning-of-sequence token, or null where the tokenizer has none. */
  readonly bosId: number | null;
  /** The id of the end-of-sequence token (generation stops at it), or null where the tokenizer has none. */
  readonly eosId: number | null;
  /**
   * The id that batches pad with: the pad token's, or, for tokenizers that have none (Llama's),
   * the eos token's, as Hugging Face fine-tuning scripts do. Padded positions are masked out of
   * the loss, so the choice does not change what is learned.
   */
  readonly padId: number;
  /** The ids of `text`, with the bos and eos tokens added only when asked. */
  encode(text: string, options?: EncodeOptions): number[];
  /** The text of `ids`; an id outside [0, vocabSize) is a ValueError naming its position. */
  decode(ids: ArrayLike<number>, options?: DecodeOptions): string;
}

/** Loaders for the tokenizer files of a model directory (the interface above is the type). */
export const Tokenizer = {
  /**
   * A model's tokenizer from its tokenizer.json (a path to the file, or to the directory that
   * holds it), with its special tokens and chat template from the tokenizer_config.json beside it
   * where there is one. Node only; in a browser, fetch both files and call `fromJSON`.
   */
  fromFile(path: string): HuggingFaceTokenizer {
    return HuggingFaceTokenizer.fromFile(path);
  },
  /** The same from the two files' parsed contents (tokenizer_config.json's is optional). */
  fromJSON(tokenizerJson: unknown, tokenizerConfig?: unknown): HuggingFaceTokenizer {
    return new HuggingFaceTokenizer(tokenizerJson, tokenizerConfig);
  },
};
